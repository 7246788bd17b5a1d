#!/usr/bin/env bash
# shellcheck shell=bash
# The build's secret arguments (a recipe's URLs, which may carry user:password@, and its script):
# the provider stores them in SSM SecureString parameters only this worker's role may read
# (providers/worker/buildSecret.ts) and SendCommand names the parameters, so the arguments never
# show in the command's parameters. Sourced after common.sh and tools.sh.
#
#   secret_args_expand ARGS...   SECRET_EXPANDED_ARGS: ARGS with `--secret-args NAME[,NAME…]` and
#                                `--secret-region REGION` replaced by the arguments stored there
#                                (the parameters' values concatenated in order: base64 of
#                                NUL-terminated arguments), fetched with the AWS CLI (the worker
#                                role's credentials from the instance metadata service)
#   secret_values_of ARG...      SECRET_VALUES: the credentials in the URLs among ARGS (user:password
#                                and password)
#   plain_url, url_credentials, url_decode: a URL's parts (the recipes write credentials to auth
#                                files, never into the image's sources)
#   secret_redact_output         from here on, this script's stdout and stderr pass a filter that
#                                writes *** for each of SECRET_VALUES
#
# The AWS CLI is on Amazon Linux 2023 (the default worker); elsewhere tools.sh installs it.

SECRET_EXPANDED_ARGS=()
SECRET_VALUES=()

# plain_url URL: URL without user:password@.
plain_url() { sed -E 's#^([a-z]+://)[^/@]*@#\1#' <<<"$1"; }
# url_credentials URL: its user:password@ part (percent-encoded as given), or nothing.
url_credentials() { [[ $1 =~ ^[a-z]+://([^/@]+)@ ]] && printf '%s' "${BASH_REMATCH[1]}"; return 0; }
# url_decode S: %XX sequences decoded (a URL's user and password may be percent-encoded).
url_decode() { printf '%b' "${1//%/\\x}"; }

secret_args_expand() {
  local names="" region="" payload="" name value arg
  local -a rest=()
  SECRET_EXPANDED_ARGS=()
  while [ $# -gt 0 ]; do
    case $1 in
      --secret-args) [ $# -ge 2 ] || usage_error "--secret-args needs a value"; names=$2; shift 2 ;;
      --secret-region) [ $# -ge 2 ] || usage_error "--secret-region needs a value"; region=$2; shift 2 ;;
      *) rest+=("$1"); shift ;;
    esac
  done
  if [ -z "$names" ]; then SECRET_EXPANDED_ARGS=("${rest[@]}"); return 0; fi
  [ -n "$region" ] || usage_error "--secret-args needs --secret-region"
  ensure_tools aws base64
  local -a list
  IFS=, read -ra list <<<"$names"
  for name in "${list[@]}"; do
    value=$(aws ssm get-parameter --region "$region" --name "$name" --with-decryption --query Parameter.Value --output text) ||
      die "cannot read the build's secret parameter $name (the worker role may read it: is this the build's own worker?)"
    payload+=$value
  done
  while IFS= read -r -d '' arg; do rest+=("$arg"); done < <(base64 -d <<<"$payload")
  SECRET_EXPANDED_ARGS=("${rest[@]}")
  secret_values_of "${rest[@]}"
}

secret_values_of() {
  local arg cred
  for arg in "$@"; do
    [[ $arg =~ [A-Za-z][A-Za-z0-9+.-]*://([^/@[:space:]]+)@ ]] || continue
    cred=${BASH_REMATCH[1]}
    SECRET_VALUES+=("$cred")
    [[ $cred == *:* && -n ${cred#*:} ]] && SECRET_VALUES+=("${cred#*:}")
  done
  return 0
}

# secret_filter: stdin to stdout with each of SECRET_VALUES (longest first) replaced by ***.
secret_filter() {
  local line v
  local -a values
  mapfile -t values < <(for v in "${SECRET_VALUES[@]}"; do printf '%d %s\n' "${#v}" "$v"; done | sort -rn | cut -d' ' -f2-)
  while IFS= read -r line || [ -n "$line" ]; do
    for v in "${values[@]}"; do line=${line//"$v"/***}; done
    printf '%s\n' "$line"
  done
}

secret_redact_output() {
  [ ${#SECRET_VALUES[@]} -gt 0 ] || return 0
  exec {SECRET_OUT_FD}>&2
  # The filter outlives a signal to the process group (SSM's cancel, a timeout): it ends when the
  # script's output does, so that the cleanups' lines still pass (a dead filter would kill them
  # with SIGPIPE, leaving mounts behind).
  exec 2> >(trap '' TERM INT HUP; secret_filter >&"$SECRET_OUT_FD")
  SECRET_FILTER_PID=$!
  exec 1>&2
  # Last of the cleanups (registered first): the filter gets its end of input and writes its last
  # lines before the script is gone (a process still holding the pipe gets 5 s).
  on_exit 'exec 1>&"$SECRET_OUT_FD" 2>&"$SECRET_OUT_FD"; for _i in $(seq 50); do kill -0 "$SECRET_FILTER_PID" 2>/dev/null || break; sleep 0.1; done'
}
