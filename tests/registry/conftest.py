"""Go test programs, built once per test session and shared by the registry tests."""

from __future__ import annotations

from pathlib import Path

import pytest

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
