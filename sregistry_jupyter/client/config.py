"""Where the client finds the registry and its credential.

In order: the arguments given in code; ``SREGISTRY_URL`` and ``SREGISTRY_TOKEN``; inside JupyterHub,
the hub token of the server (``JUPYTERHUB_API_TOKEN``), which the registry accepts for the hub user;
and last the file ``sregistry-jupyter login`` writes (``$SREGISTRY_CLIENT_CONFIG``, else
``$XDG_CONFIG_HOME/sregistry-jupyter/client.json``), readable by its owner only.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

URL_ENV = "SREGISTRY_URL"
TOKEN_ENV = "SREGISTRY_TOKEN"
HUB_TOKEN_ENV = "JUPYTERHUB_API_TOKEN"
CONFIG_ENV = "SREGISTRY_CLIENT_CONFIG"


@dataclass(frozen=True)
class Settings:
    """The registry's URL (no trailing slash), the credential, and where the credential came from."""

    url: str
    token: str | None
    token_source: str

    @property
    def from_hub(self) -> bool:
        return self.token_source == HUB_TOKEN_ENV


def config_path() -> Path:
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "sregistry-jupyter" / "client.json"


def read_saved() -> dict[str, str]:
    """What ``login`` saved, or nothing; a damaged file is ignored rather than fatal."""
    try:
        saved = json.loads(config_path().read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in saved.items() if isinstance(v, str)} if isinstance(saved, dict) else {}


def resolve(url: str | None = None, token: str | None = None) -> Settings:
    """The settings to use, raising ``ValueError`` when no registry URL is known at all."""
    saved = read_saved()
    found_url = url or os.environ.get(URL_ENV) or saved.get("url")
    if not found_url:
        raise ValueError(f"no registry URL: pass url=..., set ${URL_ENV}, or run `sregistry-jupyter login --url URL`")
    if token is not None:
        return Settings(found_url.rstrip("/"), token or None, "argument")
    for source in (TOKEN_ENV, HUB_TOKEN_ENV):
        if os.environ.get(source):
            return Settings(found_url.rstrip("/"), os.environ[source], source)
    if saved.get("token") and saved.get("url", "").rstrip("/") == found_url.rstrip("/"):
        return Settings(found_url.rstrip("/"), saved["token"], str(config_path()))
    return Settings(found_url.rstrip("/"), None, "none")


def save(url: str, token: str) -> Path:
    """Write the login file with mode 0600 from the start (never briefly readable by others), atomically."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".client-", suffix=".json")
    try:
        with os.fdopen(descriptor, "w") as handle:
            json.dump({"url": url.rstrip("/"), "token": token}, handle)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
