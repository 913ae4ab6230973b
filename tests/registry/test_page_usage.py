"""The usage instructions of a collection's page, run as written with the clients they are for: the Go
library client (apptainer's), sregistry-cli with the ``~/.sregistry`` the page shows, and the
sregistry-jupyter command line."""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gotools import make_sif
from tests.registry.test_first_steps import SREGISTRY, as_apptainer_does, run_library_client

pytestmark = pytest.mark.slow


def usage_block(page: str, key: str) -> list[str]:
    match = re.search(rf'<pre id="usage-{key}"[^>]*>(.*?)</pre>', page, re.S)
    assert match, f"no {key} instructions on the page"
    return html.unescape(match.group(1)).splitlines()


def line_starting(lines: list[str], prefix: str) -> str:
    return next(line for line in lines if line.startswith(prefix))


def test_a_collection_pages_instructions_work_with_each_client(registry, mksif, libclient_bin, tmp_path):
    token = registry.add_user("alice", scope="write")
    image = make_sif(mksif, tmp_path / "tools.sif", size=90_000, seed=31)
    data = image.read_bytes()
    pushed = registry.client(token).post(
        "/api/v1/collections/lab/containers/tools/images",
        params={"digest": "sha256." + hashlib.sha256(data).hexdigest(), "tag": "v1"},
        content=data,
    )
    assert pushed.status_code == 201, pushed.text
    page = registry.client().get("/collections/lab")
    assert page.status_code == 200, page.text

    apptainer = usage_block(page.text, "apptainer")
    assert apptainer[0] == f"apptainer remote add --no-login test-registry {registry.url}"
    pull_ref = line_starting(apptainer, "apptainer pull ").split()[-1]
    assert pull_ref == "library://alice/lab/tools:v1"
    path, tag = as_apptainer_does(pull_ref)
    out = tmp_path / "library.sif"
    pulled = run_library_client(libclient_bin, registry.url, token, "pull", "-ref", f"{path}:{tag}", "-out", str(out))
    assert pulled.returncode == 0, pulled.stderr
    assert out.read_bytes() == data
    path, tag = as_apptainer_does(line_starting(apptainer, "apptainer push ").split()[-1])
    again = make_sif(mksif, tmp_path / "again.sif", size=90_000, seed=32)
    pushed = run_library_client(
        libclient_bin, registry.url, token, "push", "-file", str(again), "-ref", path, "-tags", tag
    )
    assert pushed.returncode == 0, pushed.stderr

    sregistry = usage_block(page.text, "sregistry")
    start, end = sregistry.index("cat > ~/.sregistry <<'END'"), sregistry.index("END")
    settings = json.loads("\n".join(sregistry[start + 1 : end]))
    assert settings["SREGISTRY_CLIENT"] == "registry" and settings["registry"]["base"] == registry.url
    settings["registry"].update(username="alice", token=token)
    home = tmp_path / "home"
    home.mkdir()
    (home / ".sregistry").write_text(json.dumps(settings))
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("SREGISTRY_")},
        "HOME": str(home),
        "SREGISTRY_CLIENT_SECRETS": str(home / ".sregistry"),
        "SREGISTRY_DISABLE": "true",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    pull_args = line_starting(sregistry, "sregistry pull ").split()[1:]
    done = subprocess.run([str(SREGISTRY), *pull_args], cwd=home, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (home / "lab-tools:v1.sif").read_bytes() == again.read_bytes()

    jupyter = usage_block(page.text, "jupyter")
    pull_line = line_starting(jupyter, "sregistry-jupyter pull ").split()
    cli = Path(sys.executable).with_name("sregistry-jupyter")
    target = tmp_path / "jupyter.sif"
    env = {**os.environ, "SREGISTRY_URL": registry.url, "SREGISTRY_TOKEN": token}
    done = subprocess.run([str(cli), *pull_line[1:], str(target)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert target.read_bytes() == again.read_bytes()
