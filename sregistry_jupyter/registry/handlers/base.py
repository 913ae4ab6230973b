"""What every handler shares: a database session per request, the caller's identity, bounded
request bodies, and errors rendered in the surface's own envelope (never a stack trace).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Hashable
from dataclasses import replace
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy.orm import Session
from tornado import web

from .. import credentials, logs
from ..access import ANONYMOUS, Principal
from ..auth import sessions
from ..catalogue_cache import encoded, read_answer
from ..context import Registry
from ..errors import CredentialRequired, Forbidden, InvalidInput, RegistryError, TooLarge, Unauthorized
from ..services.images import Pull

P = ParamSpec("P")
T = TypeVar("T")
UNSTORABLE_RE = re.compile("[\x00\ud800-\udfff]")


def storable(value: Any) -> bool:
    """True unless a string in ``value`` (keys included) holds NUL or an unpaired surrogate.

    JSON can encode both, but no database text column accepts them, so they are refused here rather
    than failing inside a query. Decoding joins surrogate pairs, so any surrogate left is unpaired.
    The walk is iterative because the nesting depth is whatever the JSON parser allowed.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and UNSTORABLE_RE.search(item):
            return False
    return True


@web.stream_request_body
class BaseHandler(web.RequestHandler):
    """Handlers receive bodies as a stream so that limits apply before anything is buffered.

    Ordinary handlers collect at most ``Registry.max_json_body`` bytes; upload handlers override
    ``data_received`` to stream into blob storage instead. ``prepare`` recognises the caller once, for
    every surface (``identify``), and ``admit`` applies the policy, the terms of service and the request
    limits to whoever it is. Database work goes through ``read`` and ``write`` (see ``database``): a
    handler never holds a session itself.
    """

    streams_body = False
    rate_limited = True
    checks_xsrf_in_form = False
    allowed_before_terms = False
    session_key: str | None = None
    _principal: Principal | None = None
    _counted = False

    @property
    def registry(self) -> Registry:
        return self.settings["registry"]

    async def read_db(self, work: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``work(session, *args)`` on the read pool; it must not write."""
        return await self.registry.database.read(work, *args, **kwargs)

    async def write_db(self, work: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``work(session, *args)`` on the write pool, committed if it returns."""
        return await self.registry.database.write(work, *args, **kwargs)

    def set_default_headers(self) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "no-store")

    async def prepare(self) -> None:
        self.registry.in_flight.count += 1
        self._counted = True
        self._body = bytearray()
        self.check_host()
        if not self.streams_body and self.request.method in ("POST", "PUT", "PATCH", "DELETE"):
            self.limit_body(self.registry.max_json_body)
        try:
            principal = await self.identify()
        except Unauthorized:
            await self.spend(ANONYMOUS)  # failed credentials spend the address's budget: guessing is slowed
            raise
        if principal is not None:
            await self.admit(principal)

    async def identify(self) -> Principal | None:
        """Who is asking, by the credentials this surface accepts: a bearer token (a registry token or
        one the authenticator recognises), else a browser session, else nobody. Surfaces override this;
        None means the caller is identified later from what the body says (``admit`` is called then)."""
        credential = credentials.bearer_credential(self.request.headers.get("Authorization"))
        if credential is not None:
            return await credentials.from_bearer(self, credential)
        return await self.session_principal() or ANONYMOUS

    async def session_principal(self) -> Principal | None:
        """The person whose live browser session came with the request; writes must prove (XSRF) that
        they come from the registry's own pages."""
        principal = await credentials.from_session(self)
        if principal is not None and self.request.method in sessions.UNSAFE_METHODS and not self.checks_xsrf_in_form:
            sessions.check_xsrf(self, self.request.headers.get(sessions.XSRF_HEADER))
        return principal

    async def admit(self, principal: Principal) -> None:
        """Let ``principal`` in under the registry's policy: the terms of service, then the request limits."""
        principal = replace(principal, policy=self.registry.policy)
        self._principal = principal
        if principal.user is not None:
            self.check_terms(principal)
        await self.spend(principal)

    async def spend(self, principal: Principal) -> None:
        """Spend one request of the caller's budget (its token or user; its address only if anonymous).

        Capability URLs set ``rate_limited`` false: the request that issued the link was counted, and
        the link itself carries no identity, so counting it would charge a user's push to their address.
        """
        if self.rate_limited:
            await self.registry.limiter.check_request(principal, self.remote_addr)

    async def count_pull(self, pull: Pull, share_id: int | None = None) -> None:
        """Count a download against the weekly pull limits (TooManyRequests past them) and note it for
        the write-behind bookkeeping: its image's (and share link's) download count and its audit event."""
        await self.registry.limiter.check_pull(self.principal, pull.target, self.remote_addr)
        self.registry.bookkeeping.note_pull(pull.image_id, pull.event(self.principal, self.remote_addr), share_id)

    def check_host(self) -> None:
        """Refuse a ``Host`` the registry does not answer to, unless its URL is configured: generated links
        (downloads, uploads, invitations) are built from the host, so a forged one must not reach them."""
        registry = self.registry
        if registry.public_url:
            return
        host = self.request.host_name.lower().strip("[]")
        if host not in registry.allowed_hosts:
            raise InvalidInput(
                f"this registry does not answer to the host {host!r}; "
                "its staff can set RegistryApp.public_url or add the name to RegistryApp.allowed_hosts"
            )

    def limit_body(self, limit: int) -> None:
        """Refuse a body larger than ``limit`` before reading it, and cap one without a length."""
        declared = self.request.headers.get("Content-Length")
        if declared is not None:
            if not declared.isdigit():
                raise InvalidInput("invalid Content-Length")
            if int(declared) > limit:
                raise TooLarge(f"the request body is larger than {limit} bytes")
        self.request.connection.set_max_body_size(limit)

    def data_received(self, chunk: bytes) -> None:
        self._body += chunk

    def json_body(self) -> dict[str, Any]:
        """The body as a JSON object, whatever the Content-Type says (the library client sends none)."""
        try:
            value = json.loads(bytes(self._body) or b"{}")
        except (UnicodeDecodeError, ValueError, RecursionError) as error:
            raise InvalidInput(f"the body is not valid JSON: {error}") from None
        if not isinstance(value, dict):
            raise InvalidInput("the body must be a JSON object")
        if not storable(value):
            raise InvalidInput("strings in the body may not contain NUL characters or unpaired surrogates")
        return value

    @property
    def principal(self) -> Principal:
        """The caller, once ``admit`` has let them in; nobody before that."""
        return self._principal or ANONYMOUS

    def check_terms(self, principal: Principal) -> None:
        """Until a person has accepted the terms of service, nothing works for them but the terms page."""
        user = principal.user
        if not self.registry.terms_of_service or user is None or user.is_robot or user.terms_accepted:
            return
        if not self.allowed_before_terms:
            raise Forbidden("accept the terms of service first: sign in to the registry's web pages at /terms")

    def base_url(self) -> str:
        """The registry's address as clients reach it: ``public_url`` if set, else this request's host."""
        return self.registry.public_url or f"{self.request.protocol}://{self.request.host}"

    @property
    def remote_addr(self) -> str:
        return self.request.remote_ip or ""

    async def write_catalogue(self, work: Callable[..., Any], *args: Any) -> None:
        """Answer ``work(session, principal, *args)``, a read of the catalogue (a model or a JSON value), from
        the catalogue cache when the same caller asked the same a moment ago and nothing has changed since
        (``catalogue_cache``). ``args`` must be all the answer depends on besides the caller."""
        principal = self.principal
        key = (work, args, principal.user, principal.scope, principal.via)
        fresh = "no-cache" in self.request.headers.get("Cache-Control", "")
        body = None if fresh else self.registry.catalogue.lookup(key)
        if body is None:
            body = await self._read_catalogue(key, work, args, shared=not fresh)
        self.set_header("Content-Type", "application/json")
        self.finish(body)

    async def _read_catalogue(
        self, key: Hashable, work: Callable[..., Any], args: tuple[Any, ...], shared: bool
    ) -> bytes:
        """Read what the cache missed, and remember it; a shared read is joined by the same misses meanwhile
        (``catalogue_cache.ReadsInFlight``), a fresh one (``no-cache``) is this request's own."""
        cache, reads = self.registry.catalogue, self.registry.catalogue_reads
        if shared and (running := reads.joinable(key, cache.generation)) is not None:
            try:
                return await asyncio.shield(running)
            except asyncio.CancelledError:
                if not running.cancelled():
                    raise  # this request itself is being cancelled
                # the read it joined failed: this request reads for itself, and meets the failure itself
        sharing = reads.begin(key, cache.generation) if shared else None
        body = None
        try:
            started = time.monotonic()
            generation, body = await self.read_db(read_answer, cache, work, self.principal, *args)
            cache.observe(generation, started)
            cache.remember(key, body, generation)
            return body
        finally:
            if sharing is not None:
                reads.end(key, sharing, body)

    def write_json(self, value: Any, status: int = 200) -> None:
        """Answer a model (by its own serialiser) or a JSON value, encoded as cached answers are."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(encoded(value))

    def error_body(self, status: int, code: str, message: str) -> dict[str, Any]:
        """The error envelope of this surface; overridden by each protocol adapter."""
        return {"code": code, "message": message}

    def credential_hint(self) -> str:
        """How a client of this surface gets a credential, added to refusals that need one."""
        return f"create a token at {self.base_url()}/tokens and send it as 'Authorization: Bearer <token>'"

    def log_exception(self, typ, value, tb) -> None:  # type: ignore[no-untyped-def]
        logs.log_handler_exception(self, (typ, value, tb))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None, None))[1]
        status, code, message = status_code, "HTTP_ERROR", self._reason
        if isinstance(error, RegistryError):
            status, code, message = error.status, error.code, error.message
            if isinstance(error, CredentialRequired):
                message = f"{message}: {self.credential_hint()}"
            self.set_status(status)
            for name, value in error.headers.items():
                self.set_header(name, value)
            if status == 401:
                self.set_header("WWW-Authenticate", 'Bearer realm="sregistry"')
        elif isinstance(error, web.HTTPError):
            message = error.log_message or self._reason
        elif status_code >= 500:
            code, message = "INTERNAL", "internal error; the registry log has details"
        body_future = getattr(self.request, "_body_future", None)
        if body_future is not None and not body_future.done():
            # Tornado drops the connection rather than read a refused body; say so, or a keep-alive
            # client reuses the connection and its next request fails with a reset.
            self.set_header("Connection", "close")
        self.send_error_body(status, code, message)

    def send_error_body(self, status: int, code: str, message: str) -> None:
        """Write the error in this surface's envelope (``error_body``); pages render HTML instead."""
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(self.error_body(status, code, message)))

    def on_finish(self) -> None:
        if self._counted:
            self.registry.in_flight.count -= 1
            self._counted = False

    def on_connection_close(self) -> None:
        body = getattr(self.request, "_body_future", None)
        if body is not None and not body.done():
            self.on_finish()
        super().on_connection_close()
