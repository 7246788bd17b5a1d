#!/usr/bin/python3
"""The twin worker's agent: runs the emulator's SSM Run Command invocations as root.

It stands in for the SSM agent of a real worker. The emulator has no network to the VM: it talks
over the virtio-serial port ami-factory.ssm (/dev/virtio-ports/ami-factory.ssm), one JSON object
per line each way. Byte payloads are base64.

  host -> agent
    {"type": "hello", "time": EPOCH, "seed": HEX}
                                           answered by "ready", then the "started"/"result" of
                                           every command not yet acknowledged (a reconnecting host
                                           loses nothing). time (optional): the host's wall clock;
                                           the agent sets the guest's to it when they differ by
                                           more than CLOCK_SLACK seconds (a worker resumed from a
                                           saved state wakes with the saved clock). seed
                                           (optional): random bytes mixed into the kernel's pool,
                                           which then reseeds (RNDRESEEDCRNG): workers resumed
                                           from one state must not draw the same random numbers.
                                           resumed (optional): true for a worker resumed from a
                                           saved state: its /etc/machine-id, still the template
                                           boot's, gets a new random id (a cold-booted worker's
                                           systemd made its own from the image's empty file;
                                           processes that read it before, systemd and journald,
                                           keep the template's)
    {"type": "run", "id": ID, "commands": B64, "workingDirectory": DIR or "",
     "executionTimeout": SECONDS}          runs the text as a bash script (AWS-RunShellScript's
                                           commands, joined by newlines), in DIR (default: the
                                           command's own folder), killed after SECONDS; an ID seen
                                           before never runs again (its result is resent until
                                           acknowledged)
    {"type": "cancel", "id": ID}           kills the command's process group
    {"type": "ack", "id": ID}              the host has the result: forget the command
  agent -> host
    {"type": "ready", "protocol": 1, "hostname": ..., "uptime": SECONDS, "agentStarted": SECONDS,
     "session": HEX, "reseeded": BOOL, "machineId": HEX}
                                           at start and on hello (uptimes: now, the agent's start;
                                           session: new at each start, so a restart is seen;
                                           reseeded: the last hello's seed went into the kernel's
                                           pool and it reseeded)
    {"type": "started", "id": ID, "pid": PID}
    {"type": "result", "id": ID, "status": "Success"|"Failed"|"TimedOut"|"Cancelled",
     "exitCode": N, "stdout": B64, "stderr": B64, "stdoutBytes": N, "stderrBytes": N, "seconds": S}
                                           stdout/stderr: the first OUTPUT_CAP bytes of each
    {"type": "error", "message": TEXT}     a line it could not understand

Status as SSM reports it (https://docs.aws.amazon.com/systems-manager/latest/userguide/monitor-commands.html):
exit 0 Success, any other exit Failed, the execution timeout reached TimedOut, a cancel Cancelled.
"""
import base64
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time

PORT_NAME = "ami-factory.ssm"
PORT = os.environ.get("AMI_FACTORY_AGENT_PORT", "/dev/virtio-ports/" + PORT_NAME)
WORK = os.environ.get("AMI_FACTORY_AGENT_DIR", "/var/lib/ami-factory-agent/orchestration")
# More than SSM ever shows (24,000 characters of stdout, 8,000 of stderr, up to 4 bytes each).
OUTPUT_CAP = 256 * 1024
PROTOCOL = 1
CLOCK_SLACK = 1.0


def _uptime() -> float:
    with open("/proc/uptime") as f:
        return float(f.read().split()[0])


STARTED = _uptime()  # for the ready message: how long the boot took to start the agent
SESSION = os.urandom(8).hex()  # a new one each start: the host sees that the agent restarted


class Port:
    """The channel: a character device (the VM's port) or, for tests, a connected socket's fd."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.lock = threading.Lock()

    def send(self, message: dict) -> None:
        data = (json.dumps(message, separators=(",", ":")) + "\n").encode()
        with self.lock:
            try:
                view = memoryview(data)
                while view:
                    n = os.write(self.fd, view)
                    view = view[n:]
            except OSError as e:  # no host on the other end: it says hello when it comes back
                print(f"ami-factory-agent: could not send {message.get('type')}: {e}", file=sys.stderr)

    def lines(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError as e:
                print(f"ami-factory-agent: read: {e}", file=sys.stderr)
                time.sleep(0.5)
                continue
            if not chunk:
                # A virtio port reads as end-of-file while no host is connected: wait for one. A
                # socket (tests) really ended.
                if _is_socket(self.fd):
                    return
                time.sleep(0.2)
                continue
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.strip():
                    yield line


def _is_socket(fd: int) -> bool:
    return stat.S_ISSOCK(os.fstat(fd).st_mode)


class Command:
    def __init__(self, agent: "Agent", msg: dict) -> None:
        self.agent = agent
        self.id = str(msg["id"])
        self.text = base64.b64decode(msg.get("commands", ""))
        self.cwd = msg.get("workingDirectory") or ""
        self.timeout = float(msg.get("executionTimeout") or 3600)
        self.folder = os.path.join(WORK, _safe(self.id))
        self.proc: subprocess.Popen | None = None
        self.cancelled = False
        self.timed_out = False
        self.result: dict | None = None
        self.started: dict | None = None

    def run(self) -> None:
        begun = time.monotonic()
        os.makedirs(self.folder, exist_ok=True)
        script = os.path.join(self.folder, "_script.sh")
        with open(script, "wb") as f:
            f.write(self.text)
        out_path, err_path = os.path.join(self.folder, "stdout"), os.path.join(self.folder, "stderr")
        cwd = self.cwd or self.folder
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            if not os.path.isdir(cwd):
                err.write(f"ami-factory-agent: the working directory {cwd} does not exist\n".encode())
                code = 1
            else:
                env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                       "HOME": "/root", "LANG": "C.UTF-8", "USER": "root"}
                with self.agent.lock:
                    if self.cancelled:
                        code = None
                    else:
                        self.proc = subprocess.Popen(["bash", script], cwd=cwd, stdin=subprocess.DEVNULL,
                                                     stdout=out, stderr=err, env=env, start_new_session=True)
                        self.started = {"type": "started", "id": self.id, "pid": self.proc.pid}
                if self.proc is not None:
                    self.agent.port.send(self.started)
                    try:
                        code = self.proc.wait(timeout=self.timeout)
                    except subprocess.TimeoutExpired:
                        self.timed_out = True
                        self.kill()
                        code = self.proc.wait()
                    # What is left of the group (a command's background children) goes too.
                    self.kill()
        if self.cancelled:
            status = "Cancelled"
        elif self.timed_out:
            status = "TimedOut"
        else:
            status = "Success" if code == 0 else "Failed"
        code = -1 if code is None else (128 - code if code < 0 else code)
        result = {"type": "result", "id": self.id, "status": status, "exitCode": code,
                  "seconds": round(time.monotonic() - begun, 3)}
        for name, path in (("stdout", out_path), ("stderr", err_path)):
            with open(path, "rb") as f:
                result[name] = base64.b64encode(f.read(OUTPUT_CAP)).decode()
            result[name + "Bytes"] = os.path.getsize(path)
        self.result = result  # whole, at once: a hello in between resends only complete results
        self.agent.port.send(result)

    def kill(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def cancel(self) -> None:
        with self.agent.lock:
            if self.result is None:
                self.cancelled = True
        self.kill()


def set_clock(host_time: float) -> None:
    """The guest's wall clock from the host's, when they differ by more than CLOCK_SLACK: the
    tools commands run (e2fsck, dpkg, make) must not see timestamps from the future or the past."""
    if abs(time.time() - host_time) <= CLOCK_SLACK:
        return
    try:
        time.clock_settime(time.CLOCK_REALTIME, host_time)
    except OSError as e:
        print(f"ami-factory-agent: could not set the clock: {e}", file=sys.stderr)


RNDRESEEDCRNG = 0x5207  # linux/random.h: _IO('R', 0x07)


def reseed(seed_hex: str) -> bool:
    try:
        seed = bytes.fromhex(seed_hex)
        fd = os.open("/dev/urandom", os.O_WRONLY)
        try:
            os.write(fd, seed)
            import fcntl

            fcntl.ioctl(fd, RNDRESEEDCRNG)
        finally:
            os.close(fd)
        return True
    except (OSError, ValueError) as e:
        print(f"ami-factory-agent: could not reseed the kernel's random pool: {e}", file=sys.stderr)
        return False


MACHINE_ID = "/etc/machine-id"


def machine_id() -> str:
    try:
        with open(MACHINE_ID) as f:
            return f.read().strip()
    except OSError:
        return ""


BOOT_MACHINE_ID = machine_id()  # a resumed worker's: the template boot's, shared by all of them


def new_machine_id() -> None:
    """A machine id of its own for a resumed worker (written in place: /etc/machine-id may be a
    bind mount of systemd's). Programs that read it before (systemd, journald) keep the old one."""
    try:
        with open(MACHINE_ID, "w") as f:
            f.write(os.urandom(16).hex() + "\n")
    except OSError as e:
        print(f"ami-factory-agent: could not write a new machine id: {e}", file=sys.stderr)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:128] or "_"


class Agent:
    def __init__(self, port: Port, owns_machine: bool = True) -> None:
        self.port = port
        # In its VM it sets the clock and reseeds the kernel's pool; on a test's socket (--fd, on the
        # host running the tests) never.
        self.owns_machine = owns_machine
        self.lock = threading.Lock()
        self.commands: dict[str, Command] = {}
        self.forgotten: set[str] = set()  # acknowledged: never run again
        self.reseeded = False  # the last hello's seed reseeded the kernel's pool

    def ready(self) -> None:
        self.port.send({"type": "ready", "protocol": PROTOCOL, "hostname": socket.gethostname(), "uptime": _uptime(),
                        "agentStarted": STARTED, "session": SESSION, "reseeded": self.reseeded,
                        "machineId": machine_id()})

    def handle(self, msg: dict) -> None:
        kind = msg.get("type")
        if kind == "hello":
            if self.owns_machine and isinstance(msg.get("time"), (int, float)):
                set_clock(float(msg["time"]))
            if self.owns_machine and isinstance(msg.get("seed"), str):
                self.reseeded = reseed(msg["seed"])
            if self.owns_machine and msg.get("resumed") is True and machine_id() == BOOT_MACHINE_ID:
                new_machine_id()
            self.ready()
            for cmd in list(self.commands.values()):
                if cmd.result is not None:
                    self.port.send(cmd.result)
                elif cmd.started is not None:
                    self.port.send(cmd.started)
        elif kind == "run":
            cid = str(msg.get("id") or "")
            if not cid:
                raise ValueError("run without an id")
            if cid in self.forgotten:
                raise ValueError(f"command {cid} already ran and was acknowledged")
            known = self.commands.get(cid)
            if known is not None:
                if known.result is not None:
                    self.port.send(known.result)
                return
            cmd = self.commands[cid] = Command(self, msg)
            threading.Thread(target=self._run, args=(cmd,), daemon=True).start()
        elif kind == "cancel":
            cmd = self.commands.get(str(msg.get("id")))
            if cmd is not None:
                cmd.cancel()
        elif kind == "ack":
            cmd = self.commands.pop(str(msg.get("id")), None)
            if cmd is not None:
                self.forgotten.add(cmd.id)
                shutil.rmtree(cmd.folder, ignore_errors=True)
        else:
            raise ValueError(f"unknown message type {kind!r}")

    def _run(self, cmd: Command) -> None:
        try:
            cmd.run()
        except Exception as e:  # the host must hear of it, or it waits for the execution timeout
            cmd.result = {"type": "result", "id": cmd.id, "status": "Failed", "exitCode": -1, "seconds": 0,
                          "stdout": "", "stdoutBytes": 0, "stderrBytes": 0,
                          "stderr": base64.b64encode(f"ami-factory-agent: {e}\n".encode()).decode()}
            self.port.send(cmd.result)

    def serve(self) -> None:
        self.ready()
        for line in self.port.lines():
            try:
                msg = json.loads(line)
                if not isinstance(msg, dict):
                    raise ValueError("not a JSON object")
                self.handle(msg)
            except Exception as e:
                self.port.send({"type": "error", "message": f"{e}: {line[:200]!r}"})


def find_port() -> str:
    """The port's device node. udev's /dev/virtio-ports link comes seconds after the kernel's own
    node (devtmpfs, named in sysfs) on a TCG boot: whichever is there first."""
    while True:
        if os.path.exists(PORT):
            return PORT
        try:
            for vport in os.listdir("/sys/class/virtio-ports"):
                with open(f"/sys/class/virtio-ports/{vport}/name") as f:
                    if f.read().strip() == PORT_NAME and os.path.exists(f"/dev/{vport}"):
                        return f"/dev/{vport}"
        except OSError:
            pass
        time.sleep(0.1)


def main() -> None:
    test = len(sys.argv) == 3 and sys.argv[1] == "--fd"  # tests: an inherited socket
    fd = int(sys.argv[2]) if test else os.open(find_port(), os.O_RDWR)
    os.makedirs(WORK, exist_ok=True)
    Agent(Port(fd), owns_machine=not test).serve()


if __name__ == "__main__":
    main()
