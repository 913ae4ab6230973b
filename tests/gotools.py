"""Build the Go test programs under tests/go and drive them from Python tests.

The programs link the real sylabs sif package that Debian installs under /usr/share/gocode. Debian
ships it without the ``v2`` directory its import path names, so the build runs in GOPATH mode from
inside a GOPATH ``src/`` tree below a dummy ``go.mod``: Go's minimal module compatibility then maps
``github.com/sylabs/sif/v2/...`` onto ``github.com/sylabs/sif/...`` with no network access.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

GO_ROOT = Path(__file__).resolve().parent / "go"
GO_PACKAGE = "sregtest"
SYSTEM_GOPATH = "/usr/share/gocode"


class GoBuildError(RuntimeError):
    """A Go test program could not be built; the message carries the toolchain's output."""


def _go_env(out_dir: Path) -> dict[str, str]:
    """Environment for an offline GOPATH-mode build whose caches live under ``out_dir``.

    The caches are placed there so that the build works for any user (root included) on a fresh
    machine where HOME may be unwritable or have no Go cache yet.
    """
    env = dict(os.environ)
    env.update(
        {
            "GO111MODULE": "off",
            "GOPROXY": "off",
            "GOFLAGS": "",
            "GOPATH": f"{GO_ROOT}{os.pathsep}{SYSTEM_GOPATH}",
            "GOCACHE": str(out_dir / "gocache"),
            "CGO_ENABLED": "0",
        }
    )
    return env


def build_go_program(name: str, out_dir: Path) -> Path:
    """Build ``tests/go/src/sregtest/<name>`` into ``out_dir/<name>`` and return the binary path."""
    go = shutil.which("go") or "/usr/lib/go/bin/go"
    if not Path(go).exists():
        raise GoBuildError("the Go toolchain is not installed (Debian package golang-go)")
    source_dir = GO_ROOT / "src" / GO_PACKAGE / name
    if not source_dir.is_dir():
        raise GoBuildError(f"no Go program at {source_dir}")
    out_dir.mkdir(parents=True, exist_ok=True)
    binary = out_dir / name
    result = subprocess.run(
        [go, "build", "-o", str(binary), "."],
        cwd=source_dir,
        env=_go_env(out_dir),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise GoBuildError(f"go build of {name} failed (exit {result.returncode}):\n{result.stdout}{result.stderr}")
    return binary


def make_sif(
    mksif: Path,
    path: Path,
    *,
    arch: str = "amd64",
    size: int = 4096,
    seed: int = 1,
    deffile: str | None = None,
    labels: dict[str, Any] | str | None = None,
    signed: bool = False,
) -> Path:
    """Write a real SIF at ``path`` with the ``mksif`` program and return ``path``.

    ``labels`` may be a dict (stored as JSON) or a string stored verbatim, so that tests can also
    produce images whose labels are not valid JSON.
    """
    args = [str(mksif), "-o", str(path), "-arch", arch, "-size", str(size), "-seed", str(seed)]
    if deffile is not None:
        deffile_path = path.with_name(path.name + ".def")
        deffile_path.write_text(deffile, encoding="utf-8")
        args += ["-deffile", str(deffile_path)]
    if labels is not None:
        args += ["-labels", labels if isinstance(labels, str) else json.dumps(labels)]
    if signed:
        args.append("-signed")
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"mksif failed (exit {result.returncode}): {result.stderr.strip()}")
    return path
