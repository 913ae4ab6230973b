"""Paths people give the extension, kept inside the Jupyter server's root directory.

Everything is relative to the root; an absolute path, a ``..`` that climbs out, or a symlink whose
target lies outside is refused with the same sentence, so that nothing outside the workspace can be
read (pushed) or written (pulled) through the extension.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from ..client.errors import Conflict, InvalidInput

OUTSIDE = "path outside the workspace"


def inside(root: Path, relative: str, *, what: str = "path") -> Path:
    """The real path of ``relative`` under ``root``, which must exist and stay inside it once resolved."""
    if not isinstance(relative, str) or "\0" in relative:
        raise InvalidInput(f"'{what}' must be a path relative to the workspace")
    pure = PurePosixPath(relative)
    if pure.is_absolute() or relative.startswith("~"):
        raise InvalidInput(OUTSIDE)
    base = root.resolve(strict=True)
    try:
        found = (base / pure).resolve(strict=True)
    except FileNotFoundError:
        raise InvalidInput(f"no such {what} in the workspace: {relative or '.'}") from None
    except (OSError, RuntimeError):
        raise InvalidInput(OUTSIDE) from None
    if not found.is_relative_to(base):
        raise InvalidInput(OUTSIDE)
    return found


def file_to_push(root: Path, relative: str) -> Path:
    found = inside(root, relative)
    if not found.is_file():
        raise InvalidInput(f"{relative} is not a file")
    return found


def pull_target(root: Path, folder: str, filename: str | None, default_name: str) -> Path:
    """Where a pull writes: ``filename`` (a plain name, no folders) or ``default_name`` in ``folder``."""
    directory = inside(root, folder, what="folder")
    if not directory.is_dir():
        raise InvalidInput(f"{folder} is not a folder")
    name = filename or default_name
    if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise InvalidInput("'filename' must be a plain file name, without folders")
    target = directory / name
    if target.is_symlink() or target.exists():
        raise Conflict(f"{target.relative_to(root.resolve())} already exists in the workspace")
    return target


def relative(root: Path, path: Path) -> str:
    return str(path.relative_to(root.resolve()))
