"""Fixtures the registry tests share: the Go test programs, built once per session, and real server
processes whose log is kept in a file."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import CLI, run_cli, terminate
from tests.gotools import build_go_program


@pytest.fixture(scope="session")
def gobin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gobin")


@pytest.fixture(scope="session")
def mksif(gobin: Path) -> Path:
    """The program that writes real SIF files with the sylabs sif package."""
    return build_go_program("mksif", gobin)


@pytest.fixture(scope="session")
def libclient_bin(gobin: Path) -> Path:
    """The command line over the real apptainer library client."""
    return build_go_program("libclient", gobin)


@dataclass
class LoggedServer:
    """A ``serve`` process whose standard error (its log) goes to a file."""

    process: subprocess.Popen
    url: str
    log: Path
    data_dir: Path

    def text(self) -> str:
        return self.log.read_text()

    def json_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.text().splitlines()]

    def admin(self, *args: str) -> str:
        return run_cli("admin", *args, "--data-dir", str(self.data_dir)).stdout

    def stop(self) -> None:
        terminate(self.process, 30)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., LoggedServer]]:
    started: list[LoggedServer] = []

    def start(*args: str) -> LoggedServer:
        data_dir = tmp_path / f"data{len(started)}"
        log = tmp_path / f"serve{len(started)}.log"
        process = subprocess.Popen(
            [*CLI, "serve", "--port", "0", "--data-dir", str(data_dir), *args],
            stdout=subprocess.PIPE,
            stderr=log.open("w"),
            text=True,
        )
        line = process.stdout.readline()
        assert "is running at" in line, log.read_text()
        server = LoggedServer(process, line.split("is running at ")[1].strip().rstrip("/"), log, data_dir)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
