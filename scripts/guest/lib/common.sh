# shellcheck shell=bash
# Logging, progress and the cleanup stack shared by the guest scripts. Sourced, never run.
#
# A guest script prints progress to stderr and keeps stdout for its one machine-readable line.
# Cleanup actions are pushed as they become needed (right after the thing they undo is done) and
# run in reverse order, once, on every exit path: success, failure, or a signal.

GUEST_LOG_PREFIX=${GUEST_LOG_PREFIX:-guest}
GUEST_T0=${GUEST_T0:-$SECONDS}

guest_elapsed() { printf '%d' $((SECONDS - GUEST_T0)); }

# log MESSAGE...: one progress line on stderr with the elapsed seconds.
log() { printf '%s: [%4ss] %s\n' "$GUEST_LOG_PREFIX" "$(guest_elapsed)" "$*" >&2; }

# die MESSAGE...: an error on stderr, exit 1 (the EXIT trap still cleans up).
die() { GUEST_ERROR="$*"; printf '%s: error: %s\n' "$GUEST_LOG_PREFIX" "$*" >&2; exit 1; }

# guest_step TEXT: the step the failure summary names (guest_facts_channel).
GUEST_STEP="" GUEST_ERROR="" GUEST_FAILED_COMMAND=""
guest_step() { GUEST_STEP=$1; }

# usage_error MESSAGE...: exit 2, for bad arguments.
usage_error() { printf '%s: usage error: %s\n' "$GUEST_LOG_PREFIX" "$*" >&2; exit 2; }

GUEST_CLEANUPS=()

# guest_redact: stdin to stdout, with the build's secrets hidden once lib/secrets.sh knows them (the
# failure summary is written to a file, past the output filter).
guest_redact() { if declare -F secret_filter >/dev/null && [ ${#SECRET_VALUES[@]} -gt 0 ]; then secret_filter; else cat; fi; }

# on_exit COMMAND: run COMMAND (a string, eval'ed) when the script ends, most recent first.
on_exit() { GUEST_CLEANUPS+=("$1"); }

guest_run_cleanups() {
  local rc=$? i
  set +e
  [ -z "${GUEST_FACTS_OUT:-}" ] || printf '%s\n' "step: ${GUEST_STEP:-(none yet)}" ${GUEST_ERROR:+"error: $GUEST_ERROR"} \
    ${GUEST_FAILED_COMMAND:+"command: $GUEST_FAILED_COMMAND"} | guest_redact | cut -c1-300 >"$GUEST_FACTS_OUT.failure"
  for ((i = ${#GUEST_CLEANUPS[@]} - 1; i >= 0; i--)); do
    eval "${GUEST_CLEANUPS[i]}" || printf '%s: warning: cleanup failed: %s\n' "$GUEST_LOG_PREFIX" "${GUEST_CLEANUPS[i]}" >&2
  done
  GUEST_CLEANUPS=()
  return "$rc"
}

# install_cleanup_traps: cleanup on exit, and turn signals into an exit (which runs the cleanup).
install_cleanup_traps() {
  trap guest_run_cleanups EXIT
  trap 'log "interrupted (SIGINT)"; exit 130' INT
  trap 'log "terminated (SIGTERM)"; exit 143' TERM
  trap 'log "hang-up (SIGHUP)"; exit 129' HUP
}

# human_bytes N: 1.5 GiB style.
human_bytes() {
  awk -v b="$1" 'BEGIN { split("B KiB MiB GiB TiB", u, " "); i = 1
    while (b >= 1024 && i < 5) { b /= 1024; i++ } printf (i == 1 ? "%d %s" : "%.1f %s"), b, u[i] }'
}

# json_str S: S as a JSON string literal.
json_str() {
  local s=$1
  s=${s//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\n'/\\n}; s=${s//$'\t'/\\t}; s=${s//$'\r'/\\r}
  printf '"%s"' "$s"
}

# json_bool VALUE: true for 1/true/yes, false otherwise.
json_bool() { case $1 in 1 | true | yes) printf true ;; *) printf false ;; esac; }

# --- the facts channel ---------------------------------------------------------------------------
# The last stdout line of a guest script is its facts, which the provider trusts. Nothing the script
# runs (chroot, debootstrap, a user's script) may write there: guest_facts_channel re-runs the
# script with stdout and stderr into a file it follows onto stderr, so no process below it holds
# the real stdout, and takes
# the facts line back from a private file that only guest_emit_facts writes (its path is removed
# from the environment before anything else runs). The caller prints it on success.
#
#   guest_facts_channel "$@"     first thing after sourcing; returns in the re-run copy only
#   guest_emit_facts JSON        once, at the end
#   guest_refuse JSON            instead: declines the job having changed nothing; JSON is the last
#                                stdout line and the exit status is 3
# A failure (exit not 0, 2, 3) prints a summary, never JSON: "NAME failed (exit N)", the step, die's
# message or the last failed command, the last stderr lines (SSM keeps stderr's first 8,000 chars).
guest_facts_channel() {
  if [ -n "${GUEST_FACTS_FILE:-}" ]; then
    GUEST_FACTS_OUT=$GUEST_FACTS_FILE
    unset GUEST_FACTS_FILE
    set -o errtrace
    trap 'GUEST_FAILED_COMMAND="$BASH_COMMAND (exit $?)"' ERR
    return 0
  fi
  local dir child tailer rc=0
  # Run as `bash FILE`: the outermost source is the script file itself (not so for bash -s / bash -c).
  [ "${BASH_SOURCE[-1]}" = "$0" ] && [ -r "$0" ] || die "run this script from a file (it re-runs itself to keep its facts line private)"
  dir=$(mktemp -d "${TMPDIR:-/tmp}/${GUEST_LOG_PREFIX}-facts.XXXXXX") || exit 1
  # The copy's output, kept for the summary, is followed onto stderr by a tail that ignores the
  # group's signals (the copy's to act on) and ends after the copy.
  : >"$dir/stderr"
  GUEST_FACTS_FILE=$dir/facts bash "$0" "$@" </dev/null >"$dir/stderr" 2>&1 &
  child=$!
  (trap '' TERM HUP INT; exec tail -n +1 -s 0.2 -f --pid="$child" "$dir/stderr" >&2) &
  tailer=$!
  # A signal for this process goes to the copy as SIGTERM (a background job ignores SIGINT), whose
  # traps clean up; its exit status is ours.
  trap 'kill -TERM "$child" 2>/dev/null' TERM HUP INT
  wait "$child" || rc=$?
  while [ "$rc" -gt 128 ] && kill -0 "$child" 2>/dev/null; do rc=0; wait "$child" || rc=$?; done
  wait "$tailer" 2>/dev/null || true
  if [ "$rc" -eq 0 ]; then
    if [ -s "$dir/facts" ]; then tail -n 1 "$dir/facts"
    else printf '%s: error: finished without a facts line\n' "$GUEST_LOG_PREFIX" >&2; rc=1; fi
  elif [ "$rc" -eq 3 ] && [ -s "$dir/facts.refusal" ]; then
    tail -n 1 "$dir/facts.refusal"
  elif [ "$rc" -ne 2 ] && [ "$rc" -ne 3 ]; then
    printf '%s failed (exit %d)\n' "$GUEST_LOG_PREFIX" "$rc"
    sed 's/^/  /' "$dir/facts.failure" 2>/dev/null
    grep -v '^[[:space:]]*$' "$dir/stderr" | tail -n 5 | cut -c1-300 | sed 's/^/  stderr: /'
  fi
  rm -rf "$dir"
  exit "$rc"
}

guest_emit_facts() {
  [ -n "${GUEST_FACTS_OUT:-}" ] || die "internal: guest_emit_facts without guest_facts_channel"
  printf '%s\n' "$1" >"$GUEST_FACTS_OUT"
}

guest_refuse() {
  [ -n "${GUEST_FACTS_OUT:-}" ] || die "internal: guest_refuse without guest_facts_channel"
  printf '%s\n' "$1" >"$GUEST_FACTS_OUT.refusal"
  exit 3
}
