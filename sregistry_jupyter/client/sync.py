"""``RegistryClient``: the registry's native API over a blocking ``httpx.Client``."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from . import config
from .errors import RegistryError
from .operations import Operations, collection_page_call, model, one
from .results import Collection, Page
from .steps import CHUNK, Call, Digest, Durable, Fetch, Pause, Plan, Send, Step, file_chunks, make_durable, sha256_of
from .wire import checked, client_options, request_kwargs, transport_failure


class RegistryClient(Operations):
    """A registry client for scripts, notebooks and terminals.

    ``url`` and ``token`` default to ``$SREGISTRY_URL`` and ``$SREGISTRY_TOKEN`` (inside JupyterHub,
    ``$JUPYTERHUB_API_TOKEN``), then to what ``sregistry-jupyter login`` saved.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: httpx.Timeout | float | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = config.resolve(url, token)
        self._http = httpx.Client(**client_options(self.settings, timeout), transport=transport)

    @property
    def url(self) -> str:
        return self.settings.url

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def iter_collections(
        self, query: str | None = None, *, sort: str = "name", per_page: int = 100
    ) -> Iterator[Collection]:
        """Every collection the caller may see, fetched a page at a time as the iteration needs them."""
        number = 1
        while True:
            page = self._perform(one(collection_page_call(query, sort, number, per_page), model(Page)))
            yield from page.items
            if number >= page.pages:
                return
            number += 1

    def _perform(self, plan: Plan[Any], undo: Callable[[BaseException], list[Call]] | None = None) -> Any:
        try:
            return self._drive(plan)
        except BaseException as error:
            for call in undo(error) if undo else []:
                with contextlib.suppress(RegistryError):
                    self._step(call)
            raise

    def _drive(self, plan: Plan[Any]) -> Any:
        outcome: Any = None
        failure: RegistryError | None = None
        while True:
            try:
                step = plan.throw(failure) if failure is not None else plan.send(outcome)
            except StopIteration as finished:
                return finished.value
            outcome, failure = None, None
            try:
                outcome = self._step(step)
            except RegistryError as error:
                failure = error

    def _step(self, step: Step) -> Any:
        if isinstance(step, Digest):
            return sha256_of(step.file, step.length)
        if isinstance(step, Durable):
            return make_durable(step.handle)
        if isinstance(step, Pause):
            return time.sleep(step.seconds)
        try:
            if isinstance(step, Call):
                return checked(self._http.request(step.method, step.path, **request_kwargs(step)), step.allow)
            if isinstance(step, Send):
                return self._send(step)
            return self._fetch(step)
        except httpx.TransportError as error:
            raise transport_failure(self.settings, error) from error

    def _send(self, step: Send) -> httpx.Response:
        def body() -> Iterator[bytes]:
            for chunk in file_chunks(step.file, step.offset, step.length):
                yield chunk
                step.sent(len(chunk))

        headers = {**step.headers, "Content-Length": str(step.length)}
        response = self._http.request(step.method, step.path, params=step.params, headers=headers, content=body())
        return checked(response)

    def _fetch(self, step: Fetch) -> None:
        with self._http.stream("GET", step.path, headers=step.headers) as response:
            if not response.is_success:
                response.read()
                checked(response)
            step.opened(response)
            for chunk in response.iter_bytes(CHUNK):
                step.sink(chunk)
