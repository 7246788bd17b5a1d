"""The host's end of a twin worker's agent channel: SSM Run Command delivered without a network.

A twin worker VM (scripts/emulator/twin_worker/) reaches IMDS and S3 only (twin/network.py), not
the emulator's SSM endpoint. Its agent
(twin_worker/agent.py, the SSM agent's stand-in) reads commands from the virtio-serial port
"ami-factory.ssm", which qemu exposes on the host as a unix socket:

    -device virtio-serial-pci -chardev socket,id=ssm,path=SOCK,server=on,wait=off
    -device virtserialport,chardev=ssm,name=ami-factory.ssm          (qemu_args() below)

Protocol: one JSON object per line each way, byte payloads base64 (the message table is in
agent.py's docstring). This module is what the SSM patches use in twin mode:

    ch = AgentChannel(sock_path)          # connects lazily; nothing blocks here
    ch.wait_ready(timeout=300)            # -> the agent's "ready" message (uptime, hostname); the
                                          #    emulator then reports the instance Online, as the SSM
                                          #    agent registers. AgentNotReady after the deadline.
    ch.send(command_id, commands, working_directory="", execution_timeout=3600)
                                          # AWS-RunShellScript's parameters: commands (a list of
                                          #    lines or one text), workingDirectory, executionTimeout
    ch.poll(command_id)                   # -> CommandResult or None while it runs (never blocks)
    ch.wait(command_id, timeout)          # -> CommandResult; TimeoutError after `timeout` seconds
    ch.cancel(command_id)                 # kills its process group; the result says Cancelled
    ch.close()

A CommandResult has status ("Success", "Failed", "TimedOut", "Cancelled"), exit_code, stdout and
stderr (bytes, the first OUTPUT_CAP bytes the agent kept), their full sizes, and
`ssm_output()`: the StandardOutputContent / StandardErrorContent AWS would return.

TimedOut is honoured even when the agent cannot say so: a command with no result
EXECUTION_GRACE seconds after its executionTimeout ran out is cancelled and reported TimedOut
by the host. A channel whose VM went away (the socket closed), or whose agent restarted (a
"ready" of another session), reports every unfinished command Failed with `agent_lost` set, so no
caller waits for a dead process.
"""
from __future__ import annotations

import base64
import json
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

PORT_NAME = "ami-factory.ssm"
# GetCommandInvocation: "StandardOutputContent: The first 24,000 characters written by the plugin
# to stdout", "StandardErrorContent: The first 8,000 characters written by the plugin to stderr"
# (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetCommandInvocation.html).
STDOUT_CHARS = 24_000
STDERR_CHARS = 8_000
# AWS-RunShellScript's executionTimeout defaults to 3600 seconds (the document's parameter
# "executionTimeout", https://docs.aws.amazon.com/systems-manager/latest/userguide/documents-command-ssm-plugin-reference.html#aws-runShellScript).
DEFAULT_EXECUTION_TIMEOUT = 3600
# How long past its timeout the host waits for the agent's own TimedOut before declaring it.
EXECUTION_GRACE = 30.0


class AgentNotReady(RuntimeError):
    """The agent did not announce itself before the deadline (or its VM went away first)."""


def qemu_args(sock_path: str) -> list[str]:
    """The qemu arguments that give a VM the agent's port, its host end a unix socket at sock_path."""
    return ["-device", "virtio-serial-pci",
            "-chardev", f"socket,id=ssm,path={sock_path},server=on,wait=off",
            "-device", f"virtserialport,chardev=ssm,name={PORT_NAME}"]


@dataclass
class CommandResult:
    id: str
    status: str
    exit_code: int
    stdout: bytes
    stderr: bytes
    stdout_bytes: int
    stderr_bytes: int
    seconds: float
    agent_lost: bool = False

    def ssm_output(self) -> tuple[str, str]:
        """(StandardOutputContent, StandardErrorContent) as GetCommandInvocation returns them."""
        return (self.stdout.decode("utf-8", "replace")[:STDOUT_CHARS],
                self.stderr.decode("utf-8", "replace")[:STDERR_CHARS])


def _result(msg: dict[str, Any]) -> CommandResult:
    return CommandResult(
        id=str(msg["id"]), status=str(msg["status"]), exit_code=int(msg["exitCode"]),
        stdout=base64.b64decode(msg.get("stdout") or ""), stderr=base64.b64decode(msg.get("stderr") or ""),
        stdout_bytes=int(msg.get("stdoutBytes") or 0), stderr_bytes=int(msg.get("stderrBytes") or 0),
        seconds=float(msg.get("seconds") or 0))


class AgentChannel:
    """One worker's channel. Thread-safe; a reader thread takes the agent's messages."""

    def __init__(self, sock_path: str, connect: Callable[[], socket.socket] | None = None,
                 clock: Callable[[], float] = time.monotonic, grace: float = EXECUTION_GRACE) -> None:
        self.sock_path = sock_path
        self._connect = connect or self._connect_unix
        self._clock = clock
        self._grace = grace
        self._cond = threading.Condition()
        self._sock: socket.socket | None = None
        self._closed = False
        self._lost = False
        self.ready: dict[str, Any] | None = None
        # A worker resumed from a saved state: the hello asks its agent for a machine id of its own.
        self.resumed = False
        self.errors: list[str] = []
        self._deadlines: dict[str, float] = {}
        self._results: dict[str, CommandResult] = {}
        self._started: dict[str, int] = {}

    # -- connection ------------------------------------------------------------------------------

    def _connect_unix(self) -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(self.sock_path)
        except OSError:
            s.close()
            raise
        return s

    def _ensure(self) -> socket.socket:
        with self._cond:
            if self._sock is not None:
                return self._sock
            if self._closed:
                raise AgentNotReady("the channel is closed")
            self._sock = self._connect()
            threading.Thread(target=self._reader, args=(self._sock,), daemon=True,
                             name=f"agent-channel {os.path.basename(self.sock_path)}").start()
            return self._sock

    def _write(self, msg: dict[str, Any]) -> None:
        sock = self._ensure()
        data = (json.dumps(msg, separators=(",", ":")) + "\n").encode()
        try:
            sock.sendall(data)
        except OSError:
            self._mark_lost()

    def _reader(self, sock: socket.socket) -> None:
        buf = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                self._mark_lost()
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.strip():
                    self._take(line)

    def _take(self, line: bytes) -> None:
        try:
            msg = json.loads(line)
            kind = msg["type"]
        except (ValueError, KeyError, TypeError):
            with self._cond:
                self.errors.append(f"unreadable line from the agent: {line[:200]!r}")
            return
        ack = None
        with self._cond:
            if kind == "ready":
                if self.ready is not None and msg.get("session") != self.ready.get("session"):
                    # The agent restarted (it or its VM): what it was running died with it.
                    self._fail_unfinished("the worker's agent restarted before the command ended\n")
                self.ready = msg
            elif kind == "started":
                self._started[str(msg["id"])] = int(msg.get("pid") or 0)
            elif kind == "result":
                result = _result(msg)
                # A result the host already declared (TimedOut by its own clock) stays as declared.
                self._results.setdefault(result.id, result)
                ack = result.id
            elif kind == "error":
                self.errors.append(str(msg.get("message")))
            self._cond.notify_all()
        if ack is not None:
            self._write({"type": "ack", "id": ack})

    def _mark_lost(self) -> None:
        with self._cond:
            if self._lost:
                return
            self._lost = True
            self._fail_unfinished("the worker's agent went away before the command ended\n")
            self._cond.notify_all()

    def _fail_unfinished(self, why: str) -> None:  # with self._cond held
        for cid in self._deadlines:
            self._results.setdefault(cid, CommandResult(cid, "Failed", -1, b"", why.encode(), 0, 0, 0.0, agent_lost=True))

    @property
    def lost(self) -> bool:
        """The VM's end closed: the VM stopped or crashed."""
        return self._lost

    # -- API -------------------------------------------------------------------------------------

    def wait_ready(self, timeout: float, hello_every: float = 2.0) -> dict[str, Any]:
        """Blocks until the agent has announced itself (its "ready" message); AgentNotReady after
        `timeout` seconds. Says hello every `hello_every` seconds, so an agent that started before
        the host connected announces itself again."""
        deadline = self._clock() + timeout
        while True:
            with self._cond:
                if self.ready is not None:
                    return self.ready
                if self._lost:
                    raise AgentNotReady("the worker's VM closed the agent channel before the agent was ready")
            if self._clock() >= deadline:
                raise AgentNotReady(f"the worker's agent did not announce itself within {timeout:g} s")
            try:
                            # The host's wall clock: a worker resumed from a saved state sets its own by it.
                # Fresh randomness: workers resumed from one saved state share its kernel's.
                self._write({"type": "hello", "time": time.time(), "seed": os.urandom(32).hex(),
                             **({"resumed": True} if self.resumed else {})})
            except OSError:
                pass  # qemu has not made the socket yet
            with self._cond:
                if self.ready is None and not self._lost:
                    self._cond.wait(max(0.0, min(hello_every, deadline - self._clock())))

    def send(self, command_id: str, commands: list[str] | str, working_directory: str = "",
             execution_timeout: float = DEFAULT_EXECUTION_TIMEOUT) -> None:
        """Starts a command. `commands` as AWS-RunShellScript's parameter: lines, run as one bash
        script. Sending an id again does not run it twice."""
        text = commands if isinstance(commands, str) else "\n".join(commands) + "\n"
        with self._cond:
            self._deadlines[command_id] = self._clock() + float(execution_timeout)
        self._write({"type": "run", "id": command_id, "commands": base64.b64encode(text.encode()).decode(),
                     "workingDirectory": working_directory, "executionTimeout": execution_timeout})

    def started(self, command_id: str) -> bool:
        """The agent has started the command's process."""
        with self._cond:
            return command_id in self._started

    def poll(self, command_id: str) -> CommandResult | None:
        """The command's result, or None while it runs. Past its execution timeout plus the grace
        with no word from the agent: cancelled and reported TimedOut here."""
        with self._cond:
            if command_id in self._results:
                return self._results[command_id]
            deadline = self._deadlines.get(command_id)
            if deadline is None:
                raise KeyError(f"no command {command_id} was sent on this channel")
            if self._clock() < deadline + self._grace:
                return None
            result = self._results[command_id] = CommandResult(
                command_id, "TimedOut", -1, b"", b"", 0, 0, self._clock() - deadline + 0.0)
        self.cancel(command_id)
        return result

    def wait(self, command_id: str, timeout: float) -> CommandResult:
        """Blocks until the command's result (see poll); TimeoutError after `timeout` seconds."""
        end = self._clock() + timeout
        while True:
            result = self.poll(command_id)
            if result is not None:
                return result
            left = end - self._clock()
            if left <= 0:
                raise TimeoutError(f"command {command_id} still running after {timeout:g} s")
            with self._cond:
                if command_id not in self._results:
                    self._cond.wait(min(left, 1.0))

    def cancel(self, command_id: str) -> None:
        """Asks the agent to kill the command's process group; its result then says Cancelled
        (unless it ended first)."""
        self._write({"type": "cancel", "id": command_id})

    def close(self) -> None:
        with self._cond:
            self._closed = True
            sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
