"""The real sregistry-cli (PyPI ``sregistry`` 0.2.39, "registry" back end) against a live registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sregistry_jupyter.registry.orm import Collection, Image
from tests.gotools import make_sif

SREGISTRY = Path(sys.executable).with_name("sregistry")
LABELS = {"maintainer": "Ada <ada@example.org>"}


pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sif_file(mksif: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_sif(mksif, tmp_path_factory.mktemp("sif") / "img.sif", size=2 << 20, seed=7, labels=LABELS)


class Cli:
    """Runs ``sregistry`` as one user, from its own working directory and secrets file."""

    def __init__(self, base: str, username: str, token: str, home: Path) -> None:
        self.cwd = home
        home.mkdir(parents=True, exist_ok=True)
        secrets = home / ".sregistry"
        settings = {"base": base, "username": username, "token": token}
        secrets.write_text(json.dumps({"SREGISTRY_CLIENT": "registry", "registry": settings}))
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SREGISTRY_")},
            "SREGISTRY_CLIENT": "registry",
            "SREGISTRY_CLIENT_SECRETS": str(secrets),
            "SREGISTRY_DISABLE": "true",
            "HOME": str(home),
            "NO_PROXY": "127.0.0.1,localhost",
        }

    def __call__(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(SREGISTRY), *args], cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=120
        )


def output(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr


def image_count(registry) -> int:
    with registry.session() as session:
        return session.query(Image).count()


def test_push_pull_search_delete(registry, sif_file, tmp_path):
    alice = Cli(registry.url, "alice", registry.add_user("alice", scope="write"), tmp_path / "alice")

    pushed = alice("push", "--name", "lab/img", "--tag", "latest", str(sif_file))
    assert pushed.returncode == 0, output(pushed)
    assert "Upload Complete" in pushed.stdout

    pulled = alice("pull", "lab/img:latest")
    assert pulled.returncode == 0, output(pulled)
    assert (alice.cwd / "lab-img:latest.sif").read_bytes() == sif_file.read_bytes()

    listing = alice("search")
    assert listing.returncode == 0, output(listing)
    assert "lab/img:latest" in listing.stdout
    assert f"{registry.url}/api/container/lab/img:latest" in listing.stdout

    for query in ("lab/img:latest", "lab"):
        found = alice("search", query)
        assert found.returncode == 0, output(found)
        assert "lab/img" in found.stdout and "latest" in found.stdout

    labels = registry.client().get("/api/labels/search/maintainer/key").json()
    assert labels == [{"key": "maintainer", "value": LABELS["maintainer"], "containers": ["lab/img:latest"]}]

    deleted = alice("delete", "--force", "lab/img:latest")
    assert deleted.returncode == 0, output(deleted)
    assert "204" in output(deleted)
    assert registry.client().get("/api/container/lab/img:latest").status_code == 404
    assert image_count(registry) == 0

    gone = alice("pull", "lab/img:latest")
    assert gone.returncode != 0
    assert "404" in output(gone)


def test_private_pull_and_refusals(registry, sif_file, tmp_path):
    alice = Cli(registry.url, "alice", registry.add_user("alice", scope="write"), tmp_path / "alice")
    bob = Cli(registry.url, "bob", registry.add_user("bob", scope="write"), tmp_path / "bob")
    assert alice("push", "--name", "lab/img", "--tag", "v1", str(sif_file)).returncode == 0
    with registry.session() as session:
        session.query(Collection).filter_by(name="lab").one().private = True
        session.commit()

    pulled = alice("pull", "lab/img:v1")
    assert pulled.returncode == 0, output(pulled)
    assert (alice.cwd / "lab-img:v1.sif").read_bytes() == sif_file.read_bytes()

    denied = bob("pull", "lab/img:v1")
    assert denied.returncode != 0
    assert "404" in output(denied)
    assert not (bob.cwd / "lab-img:v1.sif").exists()

    intruder = bob("push", "--name", "lab/other", "--tag", "latest", str(sif_file))
    assert intruder.returncode != 0
    assert "Collection return status 409 collection name 'lab' is taken" in intruder.stdout

    hidden = bob("search")
    assert "No container collections found." in hidden.stdout, output(hidden)
    assert "lab/" not in hidden.stdout

    assert bob("delete", "--force", "lab/img:v1").returncode != 0
    assert image_count(registry) == 1
    with registry.session() as session:
        session.query(Collection).filter_by(name="lab").one().private = False
        session.commit()
    public_delete = bob("delete", "--force", "lab/img:v1")
    assert "403" in output(public_delete)
    assert image_count(registry) == 1
    assert registry.client().get("/api/container/lab/img:v1").status_code == 200
