"""``AsyncRegistryClient``: the same operations over ``httpx.AsyncClient``.

File reads, writes and hashing run in worker threads, so a transfer of many gigabytes never holds up
the event loop it shares with a Jupyter server or a kernel.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from . import config
from .errors import RegistryError
from .operations import Operations, collection_page_call, model, one
from .results import Collection, Page
from .steps import CHUNK, Call, Digest, Durable, Fetch, Pause, Plan, Send, Step, file_chunks, make_durable, sha256_of
from .wire import checked, client_options, request_kwargs, transport_failure


class AsyncRegistryClient(Operations):
    """The registry client for asyncio code: every operation of ``RegistryClient``, awaited."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: httpx.Timeout | float | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = config.resolve(url, token)
        self._http = httpx.AsyncClient(**client_options(self.settings, timeout), transport=transport)

    @property
    def url(self) -> str:
        return self.settings.url

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncRegistryClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def iter_collections(
        self, query: str | None = None, *, sort: str = "name", per_page: int = 100
    ) -> AsyncIterator[Collection]:
        number = 1
        while True:
            page = await self._perform(one(collection_page_call(query, sort, number, per_page), model(Page)))
            for item in page.items:
                yield item
            if number >= page.pages:
                return
            number += 1

    async def _perform(self, plan: Plan[Any], undo: Callable[[BaseException], list[Call]] | None = None) -> Any:
        try:
            return await self._drive(plan)
        except BaseException as error:
            # Also after a cancellation: the task is cancelled once, so these requests still run.
            for call in undo(error) if undo else []:
                with contextlib.suppress(RegistryError):
                    await self._step(call)
            raise

    async def _drive(self, plan: Plan[Any]) -> Any:
        outcome: Any = None
        failure: RegistryError | None = None
        while True:
            try:
                step = plan.throw(failure) if failure is not None else plan.send(outcome)
            except StopIteration as finished:
                return finished.value
            outcome, failure = None, None
            try:
                outcome = await self._step(step)
            except RegistryError as error:
                failure = error

    async def _step(self, step: Step) -> Any:
        if isinstance(step, Digest):
            return await asyncio.to_thread(sha256_of, step.file, step.length)
        if isinstance(step, Durable):
            return await asyncio.to_thread(make_durable, step.handle)
        if isinstance(step, Pause):
            return await asyncio.sleep(step.seconds)
        try:
            if isinstance(step, Call):
                response = await self._http.request(step.method, step.path, **request_kwargs(step))
                return checked(response, step.allow)
            if isinstance(step, Send):
                return await self._send(step)
            return await self._fetch(step)
        except httpx.TransportError as error:
            raise transport_failure(self.settings, error) from error

    async def _send(self, step: Send) -> httpx.Response:
        chunks = file_chunks(step.file, step.offset, step.length)

        async def body() -> AsyncIterator[bytes]:
            try:
                while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
                    yield chunk
                    step.sent(len(chunk))
            finally:
                chunks.close()

        headers = {**step.headers, "Content-Length": str(step.length)}
        response = await self._http.request(step.method, step.path, params=step.params, headers=headers, content=body())
        return checked(response)

    async def _fetch(self, step: Fetch) -> None:
        async with self._http.stream("GET", step.path, headers=step.headers) as response:
            if not response.is_success:
                await response.aread()
                checked(response)
            step.opened(response)
            async for chunk in response.aiter_bytes(CHUNK):
                await asyncio.to_thread(step.sink, chunk)
