"""The long-lived objects a running registry shares between requests."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from .access import DEFAULT_POLICY, Policy
from .bookkeeping import FLUSH_INTERVAL, Bookkeeping
from .catalogue_cache import ReadsInFlight, catalogue_cache
from .connections import ConnectionLimits
from .credential_cache import credential_cache
from .database import Database
from .generation_cache import GenerationCache, read_generations
from .proxies import TrustedProxies
from .services.limits import Limiter
from .services.uploads import RunningHashes, UploadLimits
from .storage import BlobStore

if TYPE_CHECKING:
    from .auth import Authenticator

T = TypeVar("T")
log = logging.getLogger("sregistry_jupyter")
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
HEAVY_WORKERS = 2


@dataclass
class InFlight:
    """Counts requests being served, so that shutdown can wait for them to finish."""

    count: int = 0


@dataclass
class Registry:
    engine: Engine
    session_factory: sessionmaker[Session]
    store: BlobStore
    secret_key: bytes
    name: str = "Singularity Registry"
    public_url: str = ""
    max_upload_size: int = 64 << 30
    multipart_part_size: int = 64 << 20
    max_json_body: int = 1 << 20
    default_page_size: int = 20
    max_page_size: int = 100
    policy: Policy = DEFAULT_POLICY
    invitation_days: float = 7.0
    max_share_days: int = 30
    library_redirect: bool = True
    terms_of_service: str = ""
    authenticator: Authenticator | None = None
    limiter: Limiter = field(default_factory=Limiter)
    connection_limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    flush_interval: float = FLUSH_INTERVAL
    trusted_proxies: TrustedProxies = field(default_factory=TrustedProxies)
    in_flight: InFlight = field(default_factory=InFlight)
    allowed_hosts: frozenset[str] = frozenset(LOCAL_HOSTS)
    upload_limits: UploadLimits = field(default_factory=UploadLimits)
    heavy_workers: int = HEAVY_WORKERS
    hashes: RunningHashes = field(default_factory=RunningHashes)
    heavy: ThreadPoolExecutor = field(init=False)
    database: Database = field(init=False)
    bookkeeping: Bookkeeping = field(init=False)
    credentials: GenerationCache = field(init=False)
    catalogue: GenerationCache = field(init=False)
    catalogue_reads: ReadsInFlight = field(init=False, default_factory=ReadsInFlight)
    loop: asyncio.AbstractEventLoop | None = field(init=False, default=None)
    _generation_check: asyncio.Task[None] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.database = Database(self.session_factory)
        self.bookkeeping = Bookkeeping(self.database, interval=self.flush_interval)
        self.limiter.bind(self.bookkeeping)
        # Another process's revocation (or catalogue change) takes effect here within one flush interval, like
        # its limit counts.
        self.credentials = credential_cache(max_age=self.flush_interval)
        self.catalogue = catalogue_cache(max_age=self.flush_interval)
        for cache in self.caches:
            cache.watch(self.session_factory)
        # Verifying and assembling whole uploads (reading gigabytes back) runs on a pool of its own, so
        # that however many large completions are queued, the shared executor that stores small
        # uploads' bytes and serves downloads is never starved.
        self.heavy = ThreadPoolExecutor(self.heavy_workers, thread_name_prefix="heavy")

    async def run_heavy(self, work: Callable[..., T], *args: Any) -> T:
        """Run blocking storage work that may read a whole upload back, on the bounded heavy pool."""
        return await asyncio.get_running_loop().run_in_executor(self.heavy, work, *args)

    async def start(self) -> None:
        """Start the background work of a serving registry (on the loop that serves it)."""
        self.loop = asyncio.get_running_loop()
        self.bookkeeping.start()
        self._generation_check = asyncio.create_task(self._check_generation())

    @property
    def caches(self) -> tuple[GenerationCache, ...]:
        return (self.credentials, self.catalogue)

    async def _check_generation(self) -> None:
        """Read the generations twice per flush interval, so that the caches learn of other processes' changes
        (and stay confirmed while nothing changes)."""
        while True:
            started = time.monotonic()
            try:
                generations = await self.database.read(read_generations)
            except Exception:  # a database hiccup: the caches go unconfirmed and requests use the database
                log.warning("could not read the generations", exc_info=True)
            else:
                for cache in self.caches:
                    cache.observe(generations.get(cache.name, 0), started)
            await asyncio.sleep(self.flush_interval / 2)

    async def stop(self) -> None:
        """Write what is pending and stop the background work; then release the database."""
        if self._generation_check is not None:
            self._generation_check.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._generation_check
        await self.bookkeeping.stop()
        self.database.close()
        self.heavy.shutdown(wait=True)
        self.engine.dispose()
