"""Slow registry calls off the kernel's main thread, with their errors shown in the widget.

ipywidgets may be updated from any thread, so a call's result is applied where it finishes; the kernel
stays free to run cells (and the widget to respond) while a request or a transfer is under way.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

import ipywidgets as w

from ..client.errors import RegistryError


def message_html(text: str, kind: str = "info") -> str:
    colours = {"info": "#374151", "error": "#b91c1c", "ok": "#15803d"}
    return f'<span style="color:{colours[kind]}">{html.escape(text)}</span>'


class Background:
    """Runs calls on a small thread pool; ``wait()`` lets tests and scripts join them."""

    def __init__(self, status: w.HTML) -> None:
        self.status = status
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sregistry-widget")
        self._futures: list[Future] = []

    def run(self, call: Callable[[], Any], done: Callable[[Any], None], busy: str = "") -> Future:
        if busy:
            self.status.value = message_html(busy)

        def work() -> None:
            try:
                result = call()
            except RegistryError as error:
                self.status.value = message_html(error.message, "error")
                return
            except Exception as error:  # shown in the widget, which is where the person looks
                self.status.value = message_html(f"{type(error).__name__}: {error}", "error")
                return
            if busy:
                self.status.value = ""
            done(result)

        future = self._pool.submit(work)
        self._futures = [f for f in self._futures if not f.done()] + [future]
        return future

    def wait(self, timeout: float = 60) -> None:
        """Wait for every call started so far, and for the calls those started in turn."""
        while pending := [f for f in self._futures if not f.done()]:
            wait(pending, timeout)


def default_client(client: Any) -> Any:
    """The client given, else one configured from the environment (``SREGISTRY_URL``, tokens...)."""
    if client is not None:
        return client
    from ..client import RegistryClient

    return RegistryClient()
