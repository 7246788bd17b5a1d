"""The emulator tests' fixtures: one launched server for the session, reset before each test that uses it."""

from __future__ import annotations

from typing import Iterator

import pytest

from emulator_harness import Server


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    s = Server(env={"MOTO_EC2_LOAD_DEFAULT_AMIS": "false"})
    yield s
    s.stop()


@pytest.fixture(autouse=True)
def clean(request: pytest.FixtureRequest) -> None:
    if "server" in request.fixturenames:
        s = request.getfixturevalue("server")
        s.moto_reset()
        s.ok("POST", "reset")
