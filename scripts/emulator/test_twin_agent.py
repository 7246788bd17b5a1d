"""The twin worker's agent channel without a VM (ami_emulator/twin/agent_channel.py and
twin_worker/agent.py): framing, results, timeouts, cancel, a lost agent.

The agent itself runs here as a process on one end of a socketpair (what it does on the VM's
virtio port, with bash of this machine); a scripted fake agent plays the cases a real one cannot
(an agent that never answers, garbage on the line, a VM that goes away).
The real boot is test_twin_worker_boot.py.

Run: python3 -m pytest scripts/emulator/test_twin_agent.py
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
from typing import Iterator

import pytest

from ami_emulator.twin.agent_channel import (PORT_NAME, STDERR_CHARS, STDOUT_CHARS, AgentChannel, AgentNotReady,
                                             CommandResult, qemu_args)

AGENT = os.path.join(os.path.dirname(__file__), "twin_worker", "agent.py")


@pytest.fixture
def agent(tmp_path) -> Iterator[AgentChannel]:
    """A channel to the real agent program, running on the other end of a socketpair."""
    host, guest = socket.socketpair()
    proc = subprocess.Popen([sys.executable, AGENT, "--fd", str(guest.fileno())], pass_fds=[guest.fileno()],
                            env={**os.environ, "AMI_FACTORY_AGENT_DIR": str(tmp_path / "orchestration")})
    guest.close()
    ch = AgentChannel("socketpair", connect=lambda: host)
    try:
        ch.wait_ready(timeout=20)
        yield ch
    finally:
        ch.close()
        proc.wait(timeout=10)


def test_qemu_args_name_the_port_the_agent_opens() -> None:
    args = qemu_args("/run/x/ssm.sock")
    assert "virtserialport,chardev=ssm,name=ami-factory.ssm" in args
    assert "socket,id=ssm,path=/run/x/ssm.sock,server=on,wait=off" in args
    spec = importlib.util.spec_from_file_location("twin_agent", AGENT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.PORT_NAME == PORT_NAME == "ami-factory.ssm"


def test_runs_commands_as_one_bash_script_and_reports_stdout_stderr_and_exit(agent: AgentChannel) -> None:
    agent.send("c-1", ["set -e", "cd /tmp", "echo out: $(pwd)", "echo err >&2", "[[ 1 == 1 ]] && exit 7"])
    r = agent.wait("c-1", timeout=20)
    assert (r.status, r.exit_code) == ("Failed", 7)
    assert r.stdout == b"out: /tmp\n" and r.stderr == b"err\n"
    agent.send("c-2", "printf 'ok\\n'\n")
    assert (agent.wait("c-2", timeout=20).status, agent.poll("c-2").stdout) == ("Success", b"ok\n")


def test_the_working_directory_and_the_provider_s_packed_script(agent: AgentChannel, tmp_path) -> None:
    import gzip
    # What providers/worker/command.ts sends: the script gzip+base64 in a here-document, then exec bash.
    packed = base64.b64encode(gzip.compress(b'echo "args: $*"; echo "in $(pwd)"; echo \'{"ok":true}\'\n')).decode()
    lines = ["# ami-factory guest script t", f"base64 -d <<'AMI_FACTORY_GUEST_SCRIPT' | gunzip > {tmp_path}/t.sh",
             *[packed[i:i + 1024] for i in range(0, len(packed), 1024)], "AMI_FACTORY_GUEST_SCRIPT",
             f"exec bash {tmp_path}/t.sh 'a b' 'vol-0123456789abcdef0'"]
    agent.send("packed", lines, working_directory=str(tmp_path))
    r = agent.wait("packed", timeout=20)
    assert r.status == "Success", r.stderr
    assert r.stdout.decode().splitlines() == ["args: a b vol-0123456789abcdef0", f"in {tmp_path}", '{"ok":true}']
    agent.send("nowhere", ["true"], working_directory=str(tmp_path / "missing"))
    r = agent.wait("nowhere", timeout=20)
    assert r.status == "Failed" and b"does not exist" in r.stderr


def test_execution_timeout_kills_the_whole_process_group(agent: AgentChannel, tmp_path) -> None:
    marker = tmp_path / "child-survived"
    agent.send("slow", ["echo before", f"(sleep 3; touch {marker}) &", "sleep 30"], execution_timeout=1)
    started = time.monotonic()
    r = agent.wait("slow", timeout=20)
    assert r.status == "TimedOut" and r.stdout == b"before\n"
    assert time.monotonic() - started < 10
    time.sleep(3.5)
    assert not marker.exists(), "the command's background child outlived its timeout"


def test_cancel_kills_a_running_command(agent: AgentChannel) -> None:
    agent.send("long", ["echo started", "sleep 60"])
    deadline = time.monotonic() + 10
    while not agent.started("long"):
        assert time.monotonic() < deadline, "the agent never said it started the command"
        time.sleep(0.05)
    assert agent.poll("long") is None  # still running: no output yet, as SSM shows none until the end
    agent.cancel("long")
    r = agent.wait("long", timeout=20)
    assert r.status == "Cancelled" and r.exit_code == 137 and r.stdout == b"started\n"


def test_a_command_id_sent_again_is_not_run_twice(agent: AgentChannel, tmp_path) -> None:
    count = tmp_path / "count"
    agent.send("once", [f"echo x >> {count}"])
    agent.wait("once", timeout=20)
    agent.send("once", [f"echo x >> {count}"])
    time.sleep(1)
    assert count.read_text() == "x\n"


def test_large_output_is_cut_as_ssm_shows_it(agent: AgentChannel) -> None:
    agent.send("big", ["head -c 100000 /dev/zero | tr '\\0' a", "head -c 20000 /dev/zero | tr '\\0' e >&2"])
    r = agent.wait("big", timeout=20)
    assert (r.stdout_bytes, r.stderr_bytes) == (100000, 20000)
    out, err = r.ssm_output()
    assert (len(out), len(err)) == (STDOUT_CHARS, STDERR_CHARS) == (24000, 8000)


def test_ssm_output_counts_characters_not_bytes() -> None:
    r = CommandResult("x", "Success", 0, "é".encode() * 30000, b"", 60000, 0, 0.1)
    out, _ = r.ssm_output()
    assert out == "é" * 24000


class FakeAgent:
    """The VM's end, scripted: records what the host sends, answers what the test tells it."""

    def __init__(self) -> None:
        self.host, self.guest = socket.socketpair()
        self.received: list[dict] = []
        self._buf = b""

    def read(self, timeout: float = 5) -> dict:
        self.guest.settimeout(timeout)
        while b"\n" not in self._buf:
            chunk = self.guest.recv(65536)
            if not chunk:
                raise EOFError
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        msg = json.loads(line)
        self.received.append(msg)
        return msg

    def say(self, raw: bytes) -> None:
        self.guest.sendall(raw)


def test_ready_is_asked_for_again_until_the_agent_answers() -> None:
    fake = FakeAgent()
    ch = AgentChannel("fake", connect=lambda: fake.host)
    got: list[dict] = []
    t = threading.Thread(target=lambda: got.append(ch.wait_ready(timeout=10, hello_every=0.1)))
    t.start()
    assert fake.read()["type"] == "hello" and fake.read()["type"] == "hello"  # an agent that came late
    fake.say(b'{"type":"ready","protocol":1,"hostname":"w","uptime":12.5}\n')
    t.join(5)
    assert got and got[0]["uptime"] == 12.5


def test_an_agent_that_never_announces_itself_fails_at_the_deadline() -> None:
    fake = FakeAgent()
    ch = AgentChannel("fake", connect=lambda: fake.host)
    started = time.monotonic()
    with pytest.raises(AgentNotReady, match="within 0.5 s"):
        ch.wait_ready(timeout=0.5, hello_every=0.1)
    assert time.monotonic() - started < 3


def test_frames_split_and_joined_anyhow_and_garbage_is_reported() -> None:
    fake = FakeAgent()
    ch = AgentChannel("fake", connect=lambda: fake.host)
    ch.send("a", ["true"])
    ch.send("b", ["true"])
    assert [fake.read()["id"], fake.read()["id"]] == ["a", "b"]
    res = {"type": "result", "status": "Success", "exitCode": 0, "stdout": base64.b64encode(b"A").decode(),
           "stderr": "", "stdoutBytes": 1, "stderrBytes": 0, "seconds": 0.1}
    both = (json.dumps({**res, "id": "a"}) + "\nnot json\n" + json.dumps({**res, "id": "b"}) + "\n").encode()
    for i in range(0, len(both), 7):  # in pieces that cut the lines anywhere
        fake.say(both[i:i + 7])
    assert ch.wait("a", timeout=5).stdout == b"A" and ch.wait("b", timeout=5).status == "Success"
    assert any("not json" in e for e in ch.errors)
    assert {fake.read()["id"], fake.read()["id"]} == {"a", "b"}  # each result acknowledged
    assert all(m["type"] == "ack" for m in fake.received[2:])


def test_an_agent_that_goes_silent_past_the_timeout_is_declared_timed_out() -> None:
    now = [100.0]
    fake = FakeAgent()
    ch = AgentChannel("fake", connect=lambda: fake.host, clock=lambda: now[0], grace=30)
    ch.send("hung", ["sleep 999"], execution_timeout=60)
    fake.read()
    now[0] += 89
    assert ch.poll("hung") is None
    now[0] += 2
    r = ch.poll("hung")
    assert r is not None and r.status == "TimedOut"
    assert fake.read() == {"type": "cancel", "id": "hung"}
    # The agent's late word does not change what was reported.
    fake.say(b'{"type":"result","id":"hung","status":"Cancelled","exitCode":137,"stdout":"","stderr":""}\n')
    time.sleep(0.2)
    assert ch.poll("hung").status == "TimedOut"


def test_a_vm_that_goes_away_fails_what_was_running() -> None:
    fake = FakeAgent()
    ch = AgentChannel("fake", connect=lambda: fake.host)
    ch.send("x", ["sleep 100"])
    fake.read()
    fake.guest.close()
    r = ch.wait("x", timeout=5)
    assert r.status == "Failed" and r.agent_lost and b"went away" in r.stderr
    assert ch.lost
    with pytest.raises(AgentNotReady, match="closed"):
        ch.wait_ready(timeout=1)


def test_an_agent_that_restarts_fails_what_it_was_running() -> None:
    fake = FakeAgent()
    ch = AgentChannel("fake", connect=lambda: fake.host)
    fake.say(b'{"type":"ready","protocol":1,"session":"aaaa"}\n')
    ch.wait_ready(timeout=5)
    ch.send("x", ["sleep 100"])
    fake.say(b'{"type":"ready","protocol":1,"session":"aaaa"}\n')  # an answer to hello: same agent
    time.sleep(0.3)
    assert ch.poll("x") is None
    fake.say(b'{"type":"ready","protocol":1,"session":"bbbb"}\n')  # systemd started a new one
    r = ch.wait("x", timeout=5)
    assert r.status == "Failed" and r.agent_lost and b"restarted" in r.stderr
    assert not ch.lost and ch.ready["session"] == "bbbb"


def _agent_module():
    spec = importlib.util.spec_from_file_location("twin_agent_hello", AGENT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Sent:
    def __init__(self) -> None:
        self.messages: list[dict] = []

    def send(self, message: dict) -> None:
        self.messages.append(message)


def test_hello_sets_the_guest_clock_and_reseeds_in_its_vm_only(monkeypatch: pytest.MonkeyPatch) -> None:
    module = _agent_module()
    calls: list[tuple] = []
    monkeypatch.setattr(module, "set_clock", lambda t: calls.append(("clock", t)))
    monkeypatch.setattr(module, "reseed", lambda s: calls.append(("seed", s)))
    in_vm = module.Agent(_Sent())
    in_vm.handle({"type": "hello", "time": 1234.5, "seed": "ab" * 32})
    assert calls == [("clock", 1234.5), ("seed", "ab" * 32)] and in_vm.port.messages[-1]["type"] == "ready"
    calls.clear()
    in_vm.handle({"type": "hello"})  # an older host: nothing to set
    assert calls == [] and in_vm.port.messages[-1]["type"] == "ready"
    on_a_test_socket = module.Agent(_Sent(), owns_machine=False)
    on_a_test_socket.handle({"type": "hello", "time": 1234.5, "seed": "ab" * 32})
    assert calls == [], "the machine running the tests is not the agent's"


def test_the_clock_is_set_only_when_it_is_more_than_a_second_off(monkeypatch: pytest.MonkeyPatch) -> None:
    module = _agent_module()
    set_to: list[float] = []
    monkeypatch.setattr(module.time, "clock_settime", lambda clock, t: set_to.append(t))
    now = time.time()
    module.set_clock(now + 0.5)
    assert set_to == []
    module.set_clock(now - 3600)  # a saved state's clock, an hour behind
    assert set_to == [now - 3600]


def test_the_channel_says_hello_with_the_hosts_time_and_fresh_randomness() -> None:
    host, guest = socket.socketpair()
    ch = AgentChannel("socketpair", connect=lambda: host)
    try:
        with pytest.raises(AgentNotReady):
            ch.wait_ready(timeout=0.3, hello_every=0.1)
        lines = guest.recv(65536).decode().splitlines()
        hellos = [json.loads(line) for line in lines]
        assert all(h["type"] == "hello" and abs(h["time"] - time.time()) < 5 for h in hellos)
        assert len({h["seed"] for h in hellos}) == len(hellos) >= 2 and len(bytes.fromhex(hellos[0]["seed"])) == 32
    finally:
        ch.close()
        guest.close()
