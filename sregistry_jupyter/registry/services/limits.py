"""Request and pull limits, counted where every registry process sees the same numbers.

sregistry kept its counters in each process's memory (four processes, four budgets, all forgotten on a
restart) and counted authenticated library pushes as anonymous, so CI pipelines hit 429 after a dozen
pushes. Here the counts live in the database (the ``counters`` table, written behind by the registry's
bookkeeping so that no request waits for a counter write) or in Redis when one is configured; an
authenticated request counts against its token (or its user, for sessions and outside credentials) and
only a request without identity counts against its address.

Windows are fixed: a minute for requests, a week from Monday 00:00 UTC for pulls. A count is keyed by
what it counts (``rate:token:<id>``, ``rate:user:<id>``, ``rate:addr:<ip or IPv6 /64>``, ``pull:collection:<id>``,
``pull:container:<id>``) and the epoch second its window ends, which is also what ``Retry-After`` counts
down to and when the row may be pruned. A fixed window lets a caller spend two budgets around a window's
end; that is acceptable for a guard against runaway clients and guessing, which is what these are.

When Redis fails, the limiter neither opens the gates nor closes the registry: it logs the failure and
counts in the database until Redis has had a few seconds to recover. Failing open would lift the limits
that slow down token and password guessing for as long as Redis is down; failing closed would turn a
cache outage into a registry outage, pulls included. Counting in the database keeps every limit in force
(a window that straddles the switch may allow up to twice its budget) and every request served.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..access import Principal
from ..bookkeeping import Bookkeeping
from ..errors import TooManyRequests

log = logging.getLogger("sregistry_jupyter")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MINUTE = 60
WEEK = 7 * 86400
MONDAY = 4 * 86400  # the Unix epoch fell on a Thursday
REDIS_RETRY = 10.0
REDIS_TIMEOUT = 0.5


@dataclass(frozen=True)
class Limits:
    """The configured budgets (``RegistryApp`` traits of the same names); 0 switches a limit off."""

    rate_limit: int = 0
    anonymous_rate_limit: int = 0
    weekly_pull_limit_collection: int = 0
    weekly_pull_limit_container: int = 0
    exempt_users: frozenset[str] = frozenset()
    exempt_networks: tuple[IPNetwork, ...] = ()

    def exempt(self, principal: Principal, address: str) -> bool:
        """CI robots and trusted networks are never limited, whatever they do."""
        if principal.name is not None and principal.name in self.exempt_users:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.exempt_networks)


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDRs such as ``10.0.0.0/8`` or single addresses; ValueError names the first one that is not."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not a network (CIDR) or an address") from None
    return tuple(networks)


def address_key(address: str) -> str:
    """What an anonymous budget belongs to: an IPv4 address, or the /64 an IPv6 address is in, since
    every IPv6 host has a /64 of addresses to rotate through."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        return str(ipaddress.ip_network((ip, 64), strict=False))
    return str(ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else ip)


def window_end(now: float, length: int, start: int = 0) -> int:
    """The epoch second at which the fixed window of ``length`` seconds holding ``now`` ends."""
    return start + (math.floor(now - start) // length + 1) * length


class RedisCounters:
    """Counts in Redis: ``INCR`` and ``EXPIREAT`` in one transaction, under a prefix of the deployment's.

    The asynchronous client is used so that a slow or unreachable Redis delays only the requests being
    counted, never the event loop.
    """

    def __init__(self, url: str, prefix: str) -> None:
        try:
            import redis
            import redis.asyncio
        except ImportError:
            raise RuntimeError(
                "redis_url is set but redis is not installed: pip install 'sregistry-jupyter[redis]'"
            ) from None
        self.url = url
        self.clients: dict[int, Any] = {}
        self.errors: tuple[type[Exception], ...] = (redis.RedisError, OSError, TimeoutError)
        self.prefix = prefix

    def client(self) -> Any:
        """A client for the running event loop (the asynchronous client belongs to the loop it was made on)."""
        import redis.asyncio

        loop = id(asyncio.get_running_loop())
        if loop not in self.clients:
            self.clients[loop] = redis.asyncio.Redis.from_url(
                self.url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT
            )
        return self.clients[loop]

    async def add(self, key: str, end: int) -> int:
        name = f"{self.prefix}{key}:{end}"
        async with self.client().pipeline() as pipe:
            pipe.incr(name)
            pipe.expireat(name, end + MINUTE)
            count, _ = await pipe.execute()
        return int(count)


@dataclass(frozen=True)
class PullTarget:
    """What a pull is counted against: the image's container and collection."""

    collection_id: int
    collection: str
    container_id: int
    container: str


class Limiter:
    """Decides whether a request or a pull is within its budget, counting it either way.

    Counts go to Redis when one is configured, else to the registry's write-behind bookkeeping (which
    ``bind`` attaches). ``clock`` gives the epoch time that windows are cut from (``time.time``, or a
    test's clock).
    """

    def __init__(
        self,
        limits: Limits | None = None,
        redis_url: str = "",
        redis_prefix: str = "sregistry:",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.limits = limits or Limits()
        self.clock = clock
        self.bookkeeping: Bookkeeping | None = None
        self.redis = RedisCounters(redis_url, redis_prefix) if redis_url else None
        self.redis_down_until = 0.0

    def bind(self, bookkeeping: Bookkeeping) -> None:
        self.bookkeeping = bookkeeping
        bookkeeping.clock = self.clock

    async def count(self, key: str, end: int) -> int:
        """Add one to ``key`` in the window ending at ``end`` and return the count so far."""
        if self.redis is not None and time.monotonic() >= self.redis_down_until:
            try:
                return await self.redis.add(key, end)
            except self.redis.errors as error:
                self.redis_down_until = time.monotonic() + REDIS_RETRY
                log.warning("Redis failed (%s); counting limits in the database for %.0f s", error, REDIS_RETRY)
        if self.bookkeeping is None:
            raise RuntimeError("the limiter is not bound to the registry's bookkeeping")
        return self.bookkeeping.count(key, end)

    def refusal(self, message: str, end: int, now: float) -> TooManyRequests:
        retry_after = max(1, math.ceil(end - now))
        until = dt.datetime.fromtimestamp(end, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return TooManyRequests(f"{message}; try again after {until}", retry_after=retry_after)

    async def check_request(self, principal: Principal, address: str) -> None:
        """Count a request against its token, user or (anonymous only) address."""
        key, limit, whose = self.request_budget(principal, address)
        if limit <= 0 or self.limits.exempt(principal, address):
            return
        now = self.clock()
        end = window_end(now, MINUTE)
        if await self.count(key, end) > limit:
            raise self.refusal(f"more than {limit} requests a minute {whose}", end, now)

    def request_budget(self, principal: Principal, address: str) -> tuple[str, int, str]:
        """The counter a request spends from, its budget, and whose budget it is (for the message)."""
        if principal.user is None:
            return (
                f"rate:addr:{address_key(address)}",
                self.limits.anonymous_rate_limit,
                "from your address without a token",
            )
        if principal.token_id is not None:
            return f"rate:token:{principal.token_id}", self.limits.rate_limit, "with this token"
        return f"rate:user:{principal.user.id}", self.limits.rate_limit, f"for user {principal.user.name}"

    def pull_budgets(self, target: PullTarget) -> list[tuple[str, int, str]]:
        limits = self.limits
        budgets = [
            (
                f"pull:collection:{target.collection_id}",
                limits.weekly_pull_limit_collection,
                f"collection {target.collection!r}",
            ),
            (
                f"pull:container:{target.container_id}",
                limits.weekly_pull_limit_container,
                f"container {target.collection}/{target.container}",
            ),
        ]
        return [budget for budget in budgets if budget[1] > 0]

    async def check_pull(self, principal: Principal, target: PullTarget, address: str) -> None:
        """Count a pull against its collection's and its container's weekly budgets; a refused pull is
        not counted against the budgets it was within."""
        budgets = self.pull_budgets(target)
        if not budgets or self.limits.exempt(principal, address):
            return
        now = self.clock()
        end = window_end(now, WEEK, MONDAY)
        counted = []
        for key, limit, what in budgets:
            counted.append(key)
            if await self.count(key, end) > limit:
                if self.redis is None and self.bookkeeping is not None:
                    for earlier in counted:
                        self.bookkeeping.uncount(earlier, end)
                raise self.refusal(f"{what} has been pulled {limit} times this week, its limit", end, now)
