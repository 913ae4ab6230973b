"""``pip install sregistry-jupyter`` is all it takes: the wheel enables the extension in a fresh environment.

The wheel is built from this checkout and installed, without dependencies, into a new venv; the
dependencies come from the test environment's site-packages through a path entry, so that the test needs
no downloads. ``jupyter server extension list`` run from that venv must find the extension enabled and loadable.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_wheel_enables_the_extension_in_a_fresh_venv(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(REPO)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "dist").glob("sregistry_jupyter-*.whl"))

    fresh = tmp_path / "fresh"
    venv.create(fresh, with_pip=False)
    python = fresh / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (site / "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr
    assert (fresh / "etc" / "jupyter" / "jupyter_server_config.d" / "sregistry_jupyter.json").is_file()

    where = subprocess.run(
        [python, "-c", "import sregistry_jupyter; print(sregistry_jupyter.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert where.stdout.strip().startswith(str(fresh))  # the wheel's copy, not this checkout

    listed = subprocess.run(
        [python, "-m", "jupyter_server.extension.serverextension", "list"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    report = listed.stdout + listed.stderr
    assert f"{fresh}/etc/jupyter" in report
    assert any("sregistry_jupyter" in row and "enabled" in row for row in report.splitlines()), report
    assert "sregistry_jupyter 0.1.0 \x1b[32mOK\x1b[0m" in report or "sregistry_jupyter 0.1.0 OK" in report, report
