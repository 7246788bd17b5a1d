"""The emulator tests' fixtures: one launched server for the session in each mode (`server`: recorded,
`twin`: the twin, its run directory in a temporary folder), reset before each test that uses it."""

from __future__ import annotations

from typing import Iterator

import pytest

from emulator_harness import Server


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    s = Server(env={"MOTO_EC2_LOAD_DEFAULT_AMIS": "false"})
    yield s
    s.stop()


def _twin_server(tmp_path_factory: pytest.TempPathFactory) -> Server:
    return Server(env={"MOTO_EC2_LOAD_DEFAULT_AMIS": "false", "AMI_FACTORY_EMULATOR": "twin",
                       "AMI_FACTORY_TWIN_DIR": str(tmp_path_factory.mktemp("twin-runs"))})


@pytest.fixture(scope="session")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = _twin_server(tmp_path_factory)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A twin server of the module's own, never reset between its tests: the worker VM tests carry a
    worker from one test to the next."""
    s = _twin_server(tmp_path_factory)
    yield s
    s.stop()


@pytest.fixture(autouse=True)
def clean(request: pytest.FixtureRequest) -> None:
    for name in ("server", "twin"):
        if name in request.fixturenames:
            s = request.getfixturevalue(name)
            s.moto_reset()
            s.ok("POST", "reset")
