// A recipe's credentials on the worker (scripts/guest/lib/secrets.sh, surrogate/debian.sh, el.sh):
// read from the build's secret parameters, never printed (the guest's output is redacted), never
// in the image (sources.list without them; apt's auth file shredded before the snapshot, proven on
// a loop device by searching the whole filesystem image), dnf's in a root-only file.
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { spawn } from "child_process";
import { leftovers, Loops, must, requireRootAndTools, run, tail } from "../support/host";

const guest = path.resolve(__dirname, "../../scripts/guest");
const PASSWORD = "pw-0451-secret";

function inDebianLib(script: string, env: NodeJS.ProcessEnv = {}): string {
  return must("bash", ["-c", `set -euo pipefail; . '${guest}/lib/common.sh'; . '${guest}/lib/secrets.sh'; . '${guest}/surrogate/debian.sh'; ${script}`], { env });
}

describe("debian recipe: a mirror with credentials", function () {
  let root: string;
  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "debian-sources-"));
    fs.mkdirSync(path.join(root, "etc/apt"), { recursive: true });
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it("writes the image's sources.list without them", () => {
    inDebianLib(`debian_apt_sources "$ROOT" "https://builder:${PASSWORD}@mirror.example.com/debian" bookworm`, { ROOT: root });
    assert.strictEqual(fs.readFileSync(path.join(root, "etc/apt/sources.list"), "utf8"), "deb https://mirror.example.com/debian bookworm main\n");
  });

  it("names the mirror without them (the log line), and leaves a URL without credentials as it is", () => {
    assert.strictEqual(inDebianLib(`plain_url "http://u:${PASSWORD}@m.example/debian"`), "http://m.example/debian\n");
    assert.strictEqual(inDebianLib(`plain_url "http://deb.debian.org/debian"`), "http://deb.debian.org/debian\n");
    assert.strictEqual(inDebianLib(`plain_url "file:///srv/mirror"`), "file:///srv/mirror\n");
  });
});

/** A fake AWS CLI on PATH: `aws ssm get-parameter … --name N …` prints DIR/<N with / as _>, and logs its arguments. */
function fakeAws(dir: string, values: Record<string, string>): { path: string; log: string } {
  const bin = path.join(dir, "bin");
  fs.mkdirSync(bin, { recursive: true });
  const log = path.join(dir, "aws.log");
  for (const [name, value] of Object.entries(values)) fs.writeFileSync(path.join(dir, name.replace(/\//g, "_")), value);
  fs.writeFileSync(path.join(bin, "aws"), [
    "#!/usr/bin/env bash",
    `printf '%s\\n' "$*" >>'${log}'`,
    'while [ $# -gt 0 ]; do [ "$1" = --name ] && name=$2; shift; done',
    `cat '${dir}'/"\${name//\//_}"`,
  ].join("\n"), { mode: 0o755 });
  return { path: `${bin}:${process.env.PATH}`, log };
}

/** A guest script that starts as surrogate.sh does (facts channel, cleanup traps, secret arguments, redaction), then runs `body`. */
function probeScript(dir: string, body: string[]): string {
  const probe = path.join(dir, "probe.sh");
  fs.writeFileSync(probe, [
    "#!/usr/bin/env bash",
    "set -euo pipefail",
    "GUEST_LOG_PREFIX=probe",
    `. '${guest}/lib/common.sh'; . '${guest}/lib/tools.sh'; . '${guest}/lib/secrets.sh'`,
    "guest_facts_channel \"$@\"",
    "install_cleanup_traps",
    "secret_args_expand \"$@\"",
    "set -- \"${SECRET_EXPANDED_ARGS[@]}\"",
    "secret_redact_output",
    ...body,
  ].join("\n"));
  return probe;
}

/** The arguments as the provider stores them (providers/worker/buildSecret.ts): base64 of NUL-terminated arguments. */
const stored = (args: string[]) => Buffer.from(args.map((a) => `${a}\0`).join("")).toString("base64");

describe("the build's secret arguments on the worker", function () {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "guest-secrets-"))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("are read from the parameters in order with decryption, and their credentials print as ***; the facts line is untouched", () => {
    const mirror = `https://builder:${PASSWORD}@mirror.example.com/debian`;
    const value = stored(["--mirror", mirror, "--user-script-b64", "ZWNobyBoaQ=="]);
    const names = ["/ami-factory/build/b-1/x/0", "/ami-factory/build/b-1/x/1"];
    const aws = fakeAws(dir, { [names[0]]: value.slice(0, 10), [names[1]]: value.slice(10) });
    const probe = probeScript(dir, [
      'log "arguments: $*"',
      'echo "a tool writes the mirror to stdout: $4"',
      'printf "no newline at the end: %s" "${4#*//}" >&2',
      "guest_emit_facts '{\"ok\":true}'",
    ]);
    const r = run("bash", [probe, "--recipe", "debian", "--secret-args", names.join(","), "--secret-region", "eu-west-1"], { env: { PATH: aws.path } });
    assert.strictEqual(r.status, 0, r.stderr);
    assert.strictEqual(r.stdout, '{"ok":true}\n');
    assert.ok(!r.stderr.includes(PASSWORD), r.stderr);
    assert.match(r.stderr, /arguments: --recipe debian --mirror https:\/\/\*\*\*@mirror\.example\.com\/debian --user-script-b64 ZWNobyBoaQ==/);
    assert.match(r.stderr, /a tool writes the mirror to stdout: https:\/\/\*\*\*@mirror\.example\.com\/debian/);
    assert.match(r.stderr, /no newline at the end: \*\*\*@mirror\.example\.com\/debian/);
    assert.deepStrictEqual(fs.readFileSync(aws.log, "utf8").trim().split("\n"), names.map((n) => `ssm get-parameter --region eu-west-1 --name ${n} --with-decryption --query Parameter.Value --output text`));
  });

  it("are hidden in the failure summary on stdout too (the die message, written to a file past the output filter)", () => {
    const mirror = `https://builder:${PASSWORD}@mirror.example.com/debian`;
    const names = ["/ami-factory/build/b-2/x/0"];
    const aws = fakeAws(dir, { [names[0]]: stored(["--mirror", mirror]) });
    const probe = probeScript(dir, ['guest_step "fetch"', 'die "downloading $2 failed"']);
    const r = run("bash", [probe, "--secret-args", names.join(","), "--secret-region", "eu-west-1"], { env: { PATH: aws.path } });
    assert.strictEqual(r.status, 1, r.stderr);
    assert.match(r.stdout, /error: downloading https:\/\/\*\*\*@mirror\.example\.com\/debian failed/, r.stdout);
    assert.ok(!r.stdout.includes(PASSWORD) && !r.stderr.includes(PASSWORD), `${r.stdout}\n${r.stderr}`);
  });

  it("still clean up, their lines redacted, when the whole process group gets SIGTERM (SSM's cancel or timeout)", async () => {
    const aws = fakeAws(dir, { "/p/0": stored(["--mirror", `https://u:${PASSWORD}@m.example/d`]) });
    const marker = path.join(dir, "cleaned");
    const probe = probeScript(dir, [
      "MIRROR=$2",
      `on_exit 'log "cleanup of $MIRROR"; touch "${marker}"'`,
      'log "ready"',
      "sleep 60 & wait",
    ]);
    const child = spawn("bash", [probe, "--secret-args", "/p/0", "--secret-region", "r"], { env: { ...process.env, PATH: aws.path }, detached: true });
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    for (const end = Date.now() + 20_000; !stderr.includes("ready"); await new Promise((r) => setTimeout(r, 50))) assert.ok(Date.now() < end, `not ready: ${stderr}`);
    process.kill(-child.pid!, "SIGTERM");
    const code = await new Promise<number | null>((r) => child.on("close", (c) => r(c)));
    assert.ok(fs.existsSync(marker), `the cleanup did not run (exit ${code}): ${stderr}`);
    assert.match(stderr, /cleanup of https:\/\/\*\*\*@m\.example\/d/);
    assert.ok(!stderr.includes(PASSWORD));
  });

  it("hide the mirror's password in lib/debootstrap.sh's error lines (surrogate.sh on a worker without debootstrap)", function () {
    if (process.getuid && process.getuid() !== 0) throw new Error("needs root (test/support/hide-commands.sh): run mocha as root, as CI does");
    const mirror = `http://builder:${PASSWORD}@127.0.0.1:9/debian`; // nothing listens on port 9
    const aws = fakeAws(dir, { "/ami-factory/build/b-2/y/0": stored(["--mirror", mirror]) });
    const hide = path.resolve(__dirname, "../support/hide-commands.sh");
    const r = run(hide, ["debootstrap,dpkg,dpkg-deb,apt-get,apt", "--", "bash", path.join(guest, "surrogate.sh"), "--target", "/dev/null", "--recipe", "debian", "--suite", "bookworm",
      "--secret-args", "/ami-factory/build/b-2/y/0", "--secret-region", "us-east-1"], { env: { PATH: aws.path } });
    assert.strictEqual(r.status, 1, r.stderr);
    // stdout: the failure summary (step, error, last stderr lines), with the password hidden there too.
    assert.match(r.stdout, /^surrogate failed \(exit 1\)\n  step: .*\n  error: cannot download http:\/\/\*\*\*@127\.0\.0\.1:9\/debian\/dists\/bookworm\/Release\n(  stderr: .*\n)+$/, r.stdout);
    assert.ok(!r.stdout.includes(PASSWORD), r.stdout);
    assert.ok(!r.stdout.includes("builder:"), r.stdout);
    assert.ok(!r.stderr.includes(PASSWORD), r.stderr);
    assert.match(r.stderr, /fetching it from http:\/\/\*\*\*@127\.0\.0\.1:9\/debian/);
    assert.match(r.stderr, /error: cannot download http:\/\/\*\*\*@127\.0\.0\.1:9\/debian\/dists\/bookworm\/Release/);
  });

  it("give dnf a repository's credentials as username and password in a root-only file, its baseurl without them", () => {
    must("bash", ["-c", `set -euo pipefail; . '${guest}/lib/common.sh'; . '${guest}/lib/secrets.sh'; . '${guest}/surrogate/el.sh'; el_write_config "$D" 2023 x86_64 "base=https://r.example/KEY" "base=https://bu%40ilder:${PASSWORD}@r.example/os/"`], { env: { D: dir } });
    const repo = path.join(dir, "yum.repos.d/base.repo");
    assert.strictEqual(fs.statSync(repo).mode & 0o777, 0o600);
    const text = fs.readFileSync(repo, "utf8");
    assert.match(text, /^baseurl=https:\/\/r\.example\/os\/$/m);
    assert.match(text, /^username=bu@ilder$/m);
    assert.match(text, new RegExp(`^password=${PASSWORD}$`, "m"));
  });
});

describe("apt's credentials in the image (needs root, a loop device)", function () {
  this.timeout(120_000);
  const loops = new Loops();
  let work: string;
  before(() => {
    requireRootAndTools("the apt credentials test", ["losetup", "mkfs.ext4", "mount", "shred"]);
    work = fs.mkdtempSync(path.join(os.tmpdir(), "apt-auth-"));
  });
  after(() => {
    loops.detachAll();
    fs.rmSync(work, { recursive: true, force: true });
  });

  /** An ext4 filesystem on a loop device, mounted; `script` runs with ROOT set, then it is unmounted. */
  function onLoopFs(name: string, script: string): Buffer {
    const file = path.join(work, `${name}.img`);
    fs.writeFileSync(file, "");
    fs.truncateSync(file, 64 * 1024 * 1024);
    const dev = loops.attach(file);
    must("mkfs.ext4", ["-q", dev]);
    const root = path.join(work, name);
    fs.mkdirSync(root);
    must("mount", [dev, root]);
    try {
      must("bash", ["-c", `set -euo pipefail; . '${guest}/lib/common.sh'; . '${guest}/lib/secrets.sh'; . '${guest}/surrogate/debian.sh'; install_cleanup_traps; ${script}`], { env: { ROOT: root } });
    } finally {
      must("umount", [root]);
      loops.detach(dev);
    }
    return fs.readFileSync(file);
  }

  it("are in /etc/apt/auth.conf.d (0600) while the build runs, and leave no trace in the filesystem image after it", () => {
    const mirror = `https://builder:${PASSWORD}@mirror.example.com/debian`;
    const image = onLoopFs("shredded", [
      'mkdir -p "$ROOT/etc/apt"',
      `printf 'deb ${mirror} bookworm main\n' >"$ROOT/etc/apt/sources.list"; sync`, // as debootstrap writes it
      `debian_apt_sources "$ROOT" '${mirror}' bookworm`,
      `debian_apt_auth "$ROOT" '${mirror}'`,
      'sync',
      'test "$(stat -c %a "$ROOT/etc/apt/auth.conf.d/ami-factory.conf")" = 600',
      `test "$(cat "$ROOT/etc/apt/auth.conf.d/ami-factory.conf")" = 'machine https://mirror.example.com/debian login builder password ${PASSWORD}'`,
    ].join("\n"));
    assert.strictEqual(image.indexOf(PASSWORD), -1, "the password is somewhere in the filesystem image");
    assert.notStrictEqual(image.indexOf("deb https://mirror.example.com/debian bookworm main"), -1, "sources.list without credentials");
  });

  it("would be found by that search had the file only been removed (the search sees deleted files' blocks)", () => {
    const image = onLoopFs("removed", `mkdir -p "$ROOT/etc/apt"; printf 'password ${PASSWORD}\n' >"$ROOT/etc/apt/x.conf"; sync; rm "$ROOT/etc/apt/x.conf"; sync`);
    assert.notStrictEqual(image.indexOf(PASSWORD), -1);
  });
});

describe("a debian build from a mirror that wants credentials (needs root, loop devices, debootstrap, GRUB, the Debian mirror)", function () {
  this.timeout(30 * 60 * 1000);
  const loops = new Loops();
  const upstream = process.env.AMI_FACTORY_DEBIAN_MIRROR ?? "http://deb.debian.org/debian";
  let work: string;
  let mirror: ReturnType<typeof spawn> | undefined;
  let counts: string;
  let build: ReturnType<typeof run>;
  let diskFile: string;
  let root: string;

  before(async function () {
    requireRootAndTools("the credentialed mirror build", ["debootstrap", "grub-install", "losetup", "partx", "sfdisk", "mkfs.ext4", "python3", "shred"], [["/usr/lib/grub/i386-pc/boot.img", "grub-pc-bin"]]);
    work = fs.mkdtempSync(path.join(os.tmpdir(), "auth-mirror-"));
    counts = path.join(work, "counts.json");
    mirror = spawn("python3", [path.resolve(__dirname, "../support/auth-mirror.py"), "builder", PASSWORD, upstream, counts], { stdio: ["pipe", "pipe", "inherit"] });
    const port = await new Promise<string>((resolve, reject) => {
      mirror!.stdout!.once("data", (d: Buffer) => resolve(d.toString().trim()));
      mirror!.once("exit", (c) => reject(new Error(`auth-mirror.py exited ${c}`)));
    });
    const url = `http://builder:${PASSWORD}@127.0.0.1:${port}/debian`;
    const aws = fakeAws(work, { "/ami-factory/build/b-3/z/0": stored(["--mirror", url, "--user-script-b64", Buffer.from(USER_SCRIPT).toString("base64")]) });
    const file = path.join(work, "disk.img");
    fs.writeFileSync(file, "");
    fs.truncateSync(file, 3072 * 1024 * 1024);
    const dev = loops.attach(file);
    build = run("bash", [path.join(guest, "surrogate.sh"), "--target", dev, "--recipe", "debian", "--boot-mode", "legacy-bios", "--suite", "bookworm", "--sanitize",
      "--secret-args", "/ami-factory/build/b-3/z/0", "--secret-region", "us-east-1"], { env: { PATH: aws.path } });
    assert.strictEqual(build.status, 0, `surrogate.sh failed:\n${tail(build.stderr, 60)}`);
    assert.deepStrictEqual(leftovers(dev), [], "partitions or mounts left behind");
    loops.detach(dev);
    diskFile = file;
    root = path.join(work, "root");
    fs.mkdirSync(root);
    const ro = loops.attach(file, { readOnly: true });
    must("partx", ["-a", ro]);
    must("mount", ["-o", "ro", `${ro}p1`, root]);
  });

  after(function () {
    if (root) run("umount", [root]);
    loops.detachAll();
    mirror?.stdin?.end();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  // Runs during the build, on the worker: apt in the image reads the mirror through the auth file.
  const USER_SCRIPT = [
    "#!/bin/bash",
    "set -eu",
    'mkdir -p "$TARGET_ROOT/var/lib/ami-factory-test"',
    'stat -c %a "$TARGET_ROOT/etc/apt/auth.conf.d/ami-factory.conf" >"$TARGET_ROOT/var/lib/ami-factory-test/auth-mode"',
    'for d in dev proc; do mount --bind /$d "$TARGET_ROOT/$d"; done',
    'rc=0; chroot "$TARGET_ROOT" apt-get update || rc=$?',
    'for d in proc dev; do umount "$TARGET_ROOT/$d"; done',
    'echo "$rc" >"$TARGET_ROOT/var/lib/ami-factory-test/apt-update"',
    "",
  ].join("\n");

  it("downloads through the mirror's authentication (debootstrap and apt in the image), with the password printed nowhere", () => {
    const c = JSON.parse(fs.readFileSync(counts, "utf8")) as { authorized: number; challenged: number };
    assert.ok(c.authorized > 50, `authorized downloads: ${JSON.stringify(c)}`);
    assert.ok(!build.stderr.includes(PASSWORD) && !build.stdout.includes(PASSWORD), "the guest printed the password");
    assert.match(build.stderr, /debootstrap bookworm \(amd64\) from http:\/\/127\.0\.0\.1:\d+\/debian/);
    assert.strictEqual(JSON.parse(build.stdout.trim()).recipe, "debian", "the facts line");
    assert.strictEqual(fs.readFileSync(path.join(root, "var/lib/ami-factory-test/auth-mode"), "utf8").trim(), "600", "apt's auth file during the build");
    assert.strictEqual(fs.readFileSync(path.join(root, "var/lib/ami-factory-test/apt-update"), "utf8").trim(), "0", `apt-get update in the image with the auth file:\n${tail(build.stderr, 40)}`);
  });

  it("leaves no trace of the password in the image: not in any file, file name or free block of the disk", () => {
    assert.ok(!fs.existsSync(path.join(root, "etc/apt/auth.conf.d/ami-factory.conf")));
    assert.match(fs.readFileSync(path.join(root, "etc/apt/sources.list"), "utf8"), /^deb http:\/\/127\.0\.0\.1:\d+\/debian bookworm main$/m);
    const found = run("grep", ["-a", "-c", "-F", "--", PASSWORD, diskFile]);
    assert.strictEqual(found.status, 1, `the password is on the disk (${found.stdout.trim()} places): ${found.stderr}`);
  });
});
