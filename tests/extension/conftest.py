"""A real Jupyter server (pytest-jupyter) with the extension, in front of a live registry."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pytest_jupyter.jupyter_server import *  # noqa: F403 (the jp_* fixtures and their async test hooks)

from tests.conftest import free_port
from tests.jupyter_support import CuttingProxy, cutting_proxy, mksif, sif  # noqa: F401


@pytest.fixture
def credential(registry) -> str:
    """The registry token the extension acts with; a test may override it."""
    return registry.add_user("alice")


@pytest.fixture
def registry_url(request: pytest.FixtureRequest, registry) -> str:
    """The registry the extension is configured with; ``"unreachable"`` (indirect) is a closed port."""
    if getattr(request, "param", None) == "unreachable":
        return f"http://127.0.0.1:{free_port()}"
    return registry.url


@pytest.fixture
def jp_server_config(registry_url: str, credential: str) -> dict[str, Any]:
    return {
        "ServerApp": {"jpserver_extensions": {"sregistry_jupyter": True}, "allow_unauthenticated_access": False},
        "SregistryExtension": {"registry_url": registry_url, "token": credential},
    }


@pytest.fixture
def api(jp_fetch) -> Callable[..., Any]:
    """``await api("collections", method=..., body=...)``: the extension's JSON answer and status; errors too."""
    from tornado.httpclient import HTTPClientError

    async def call(path: str, *, method: str = "GET", body: Any = None, **params: Any) -> tuple[int, Any]:
        kwargs: dict[str, Any] = {"method": method, "params": params}
        if body is not None:
            kwargs["body"] = json.dumps(body)
        elif method in ("POST", "PUT", "PATCH"):
            kwargs["body"] = "{}"
        try:
            response = await jp_fetch("sregistry", "api", *path.split("/"), **kwargs)
        except HTTPClientError as error:
            response = error.response
        text = response.body.decode() if response.body else ""
        return response.code, (json.loads(text) if text and not text.startswith("data:") else text)

    return call


@pytest.fixture
def wait_transfer(api) -> Callable[..., Any]:
    async def wait(transfer_id: str, seconds: float = 60) -> dict[str, Any]:
        for _ in range(int(seconds * 20)):
            status, transfer = await api(f"transfers/{transfer_id}")
            assert status == 200
            if transfer["state"] in ("done", "failed", "cancelled"):
                return transfer
            await asyncio.sleep(0.05)
        raise AssertionError(f"transfer {transfer_id} did not finish: {transfer}")

    return wait


@pytest.fixture
def workspace(jp_root_dir: Path) -> Path:
    return jp_root_dir
