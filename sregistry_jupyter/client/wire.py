"""What both clients share about HTTP: headers, timeouts and turning answers into results or errors."""

from __future__ import annotations

import httpx

from .. import __version__
from .config import Settings
from .errors import RegistryUnavailable, error_for, unreachable
from .steps import Call

USER_AGENT = f"sregistry-jupyter-client/{__version__}"
TIMEOUT = httpx.Timeout(120.0, connect=15.0)


def client_options(settings: Settings, timeout: httpx.Timeout | float | None) -> dict:
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if settings.token:
        headers["Authorization"] = f"Bearer {settings.token}"
    return {
        "base_url": settings.url,
        "headers": headers,
        "timeout": TIMEOUT if timeout is None else timeout,
        "follow_redirects": False,
    }


def checked(response: httpx.Response, allow: frozenset[int] = frozenset()) -> httpx.Response:
    """The response if it is a success (or an allowed status); else the matching ``RegistryError``.

    The body must have been read already.
    """
    if response.is_success or response.status_code in allow:
        return response
    raise error_for(response)


def request_kwargs(call: Call) -> dict:
    return {"params": call.params, "json": call.json, "headers": call.headers}


def transport_failure(settings: Settings, error: httpx.TransportError) -> RegistryUnavailable:
    failure = unreachable(settings.url, error)
    failure.__cause__ = error
    return failure
