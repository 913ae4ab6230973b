"""The prebuilt panel is installed with the package, where JupyterLab looks for it, and is the version of
this package; no JupyterLab rebuild is involved."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import sregistry_jupyter

ROOT = Path(__file__).resolve().parents[2]


def test_jupyter_labextension_list_shows_the_panel_enabled_and_ok() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "jupyterlab.labextensions", "list"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    listing = result.stdout + result.stderr
    line = next(line for line in listing.splitlines() if sregistry_jupyter.LABEXTENSION_NAME in line)
    assert f"v{sregistry_jupyter.__version__}" in line
    assert "enabled" in line and "OK" in line
    assert "(python, sregistry-jupyter)" in line


def test_the_built_extension_matches_the_source_and_the_python_version() -> None:
    source = json.loads((ROOT / "labextension" / "package.json").read_text())
    built_dir = Path(sregistry_jupyter.__file__).parent / "labextension"
    built = json.loads((built_dir / "package.json").read_text())
    assert source["name"] == built["name"] == sregistry_jupyter.LABEXTENSION_NAME
    assert source["version"] == built["version"] == sregistry_jupyter.__version__
    assert (built_dir / built["jupyterlab"]["_build"]["load"]).is_file()
    assert (built_dir / "schemas" / "sregistry-jupyter" / "panel.json").is_file()
    assert sregistry_jupyter._jupyter_labextension_paths() == [{"src": "labextension", "dest": "sregistry-jupyter"}]


def test_the_bundle_calls_nothing_but_its_own_server() -> None:
    """No CDN, no call home: the only URLs in the shipped JavaScript are in licence texts and comments."""
    static = Path(sregistry_jupyter.__file__).parent / "labextension" / "static"
    for script in static.glob("*.js"):
        text = script.read_text(encoding="utf-8")
        for marker in ("fetch('http", 'fetch("http', "cdn.", "unpkg.com", "jsdelivr"):
            assert marker not in text, f"{script.name} contains {marker}"
