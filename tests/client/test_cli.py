"""The terminal commands, run as a person runs them: the real ``sregistry-jupyter`` in a subprocess."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

COMMAND = [sys.executable, "-c", "from sregistry_jupyter.command import main; main()"]


@pytest.fixture
def run(tmp_path: Path):
    """``run(*args, stdin=...)`` with a private login file and no registry settings from the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SREGISTRY_", "JUPYTERHUB_"))}
    env["SREGISTRY_CLIENT_CONFIG"] = str(tmp_path / "login" / "client.json")

    def call(*args: str, stdin: str = "", cwd: Path | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*COMMAND, *args], input=stdin, capture_output=True, text=True, timeout=120, env=env, cwd=cwd or tmp_path
        )

    return call


def test_login_then_push_ls_search_pull_and_share(registry, run, sif, tmp_path: Path) -> None:
    token = registry.add_user("alice")
    registry.add_user("bob")
    admin = registry.client(registry.add_user("root", admin=True))
    admin.post("/api/v1/teams", json={"name": "lab-team"})
    for name in ("alice", "bob"):
        admin.post("/api/v1/teams/lab-team/members", json={"user": name})

    refused = run("login", "--url", registry.url, stdin="sreg_wrong\n")
    assert refused.returncode == 1 and refused.stderr.startswith("error: ")
    assert not (tmp_path / "login" / "client.json").exists()
    login = run("login", "--url", registry.url, stdin=token + "\n")
    assert login.returncode == 0 and "as alice" in login.stdout, login.stderr
    saved = tmp_path / "login" / "client.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert json.loads(saved.read_text()) == {"url": registry.url, "token": token}

    image = sif("tools", size=1 << 20)
    pushed = run("push", str(image), "lab/tools:v1", "--tag", "latest")
    assert pushed.returncode == 0, pushed.stderr
    assert "pushed lab/tools:latest,v1 sha256." in pushed.stdout and pushed.stderr == ""  # no bar without a terminal

    listed = run("ls")
    assert listed.stdout.splitlines()[1].split()[:3] == ["lab", "1", "1"]
    assert "latest, v1" in run("ls", "lab").stdout
    tags = run("ls", "lab/tools").stdout
    assert "v1" in tags and "amd64" in tags and "1.0 MiB" in tags
    assert "lab" in run("search", "la").stdout and "nothing matches" in run("search", "zzz").stdout

    pulled = run("pull", "lab/tools:v1", "back.sif")
    assert pulled.returncode == 0 and (tmp_path / "back.sif").read_bytes() == image.read_bytes()

    shared = run("share", "lab", "--with", "bob", "--role", "owner")
    assert shared.returncode == 0 and "bob is now owner of lab" in shared.stdout, shared.stderr
    link = run("share", "lab/tools:v1", "--link", "--days", "2")
    assert link.returncode == 0 and link.stdout.startswith(registry.url + "/shares/")

    missing = run("pull", "lab/tools:nope")
    assert missing.returncode == 1 and "error:" in missing.stderr and "Traceback" not in missing.stderr
    assert run("push", str(image)).returncode == 2


def test_without_a_registry_the_commands_say_what_to_do(run) -> None:
    result = run("ls")
    assert result.returncode == 1 and "SREGISTRY_URL" in result.stderr and "login" in result.stderr


def test_client_commands_do_not_import_the_server_and_serve_does_not_import_httpx(run) -> None:
    probe = (
        "import atexit, sys\n"
        "atexit.register(lambda: print(sorted({m.split('.')[0] for m in sys.modules} & {'tornado', 'sqlalchemy',"
        " 'httpx'})))\n"
        "from sregistry_jupyter.command import main\n"
        "main(sys.argv[1:])\n"
    )
    env = {**os.environ, "SREGISTRY_URL": "http://127.0.0.1:9"}
    client_side = subprocess.run(
        [sys.executable, "-c", probe, "ls"], capture_output=True, text=True, env=env, timeout=60
    )
    assert client_side.stdout.strip().splitlines()[-1] == "['httpx']"
    server_side = subprocess.run(
        [sys.executable, "-c", probe, "serve", "--help"], capture_output=True, text=True, timeout=60
    )
    assert server_side.stdout.strip().splitlines()[-1] == "['sqlalchemy', 'tornado']"
