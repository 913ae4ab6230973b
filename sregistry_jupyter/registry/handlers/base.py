"""What every handler shares: a database session per request, the caller's identity, bounded
request bodies, and errors rendered in the surface's own envelope (never a stack trace).
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

from sqlalchemy.orm import Session
from tornado import web

from .. import logs, tokens
from ..access import ANONYMOUS, Principal
from ..auth import sessions
from ..context import Registry
from ..errors import Forbidden, InvalidInput, NotFound, RegistryError, TooLarge, Unauthorized
from ..services import users

TOKEN_SCHEMES = ("bearer", "token")
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
    ``data_received`` to stream into blob storage instead.
    """

    streams_body = False
    rate_limited = True
    _db: Session | None = None
    _principal: Principal | None = None
    _counted = False

    @property
    def registry(self) -> Registry:
        return self.settings["registry"]

    @property
    def db(self) -> Session:
        if self._db is None:
            self._db = self.registry.session_factory()
        return self._db

    def set_default_headers(self) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "no-store")

    async def prepare(self) -> None:
        self.registry.in_flight.count += 1
        self._counted = True
        self._body = bytearray()
        if not self.streams_body and self.request.method in ("POST", "PUT", "PATCH", "DELETE"):
            self.limit_body(self.registry.max_json_body)
        try:
            self._principal = self.authenticate()  # a bad token is refused everywhere, not only where a user is needed
        except Unauthorized:
            self.count_request(ANONYMOUS)  # failed credentials spend the address's budget: guessing is slowed
            raise
        if not self.counts_request_later():
            self.count_request(self._principal)

    def count_request(self, principal: Principal) -> None:
        """Spend one request of the caller's budget (its token or user; its address only if anonymous).

        Capability URLs set ``rate_limited`` false: the request that issued the link was counted, and
        the link itself carries no identity, so counting it would charge a user's push to their address.
        """
        if self.rate_limited:
            self.registry.limiter.check_request(self.db, principal, self.remote_addr)

    def counts_request_later(self) -> bool:
        """True where the caller is identified only later (by a signature over fields of the request)."""
        return False

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
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
            raise InvalidInput(f"the body is not valid JSON: {error}") from None
        if not isinstance(value, dict):
            raise InvalidInput("the body must be a JSON object")
        if not storable(value):
            raise InvalidInput("strings in the body may not contain NUL characters or unpaired surrogates")
        return value

    @property
    def principal(self) -> Principal:
        if self._principal is None:
            self._principal = self.authenticate()
        return self._principal

    def authenticate(self) -> Principal:
        """Who is asking: a registry token, a credential the authenticator knows, a session, or nobody."""
        principal = self.credential_principal() or self.session_principal() or ANONYMOUS
        if principal.user is not None:
            self.check_terms(principal)
        return principal

    def credential_principal(self) -> Principal | None:
        header = self.request.headers.get("Authorization")
        if not header:
            return None
        scheme, _, credential = header.strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() not in TOKEN_SCHEMES:
            return None
        authenticator = self.registry.authenticator
        if tokens.key_id_of(credential) is None and authenticator is not None:
            outside = authenticator.authenticate_bearer(self, credential)
            if outside is not None:
                return replace(outside, policy=self.registry.policy)
        return replace(users.authenticate_token(self.db, credential), policy=self.registry.policy)

    def session_principal(self) -> Principal | None:
        user = sessions.session_user(self)
        if user is None:
            return None
        if self.request.method in sessions.UNSAFE_METHODS and not self.checks_xsrf_in_form:
            sessions.check_xsrf(self, self.request.headers.get(sessions.XSRF_HEADER))
        return Principal(user, "admin", policy=self.registry.policy, via="session")

    checks_xsrf_in_form = False
    allowed_before_terms = False

    def check_terms(self, principal: Principal) -> None:
        """Until a person has accepted the terms of service, nothing works for them but the terms page."""
        user = principal.user
        if not self.registry.terms_of_service or user is None or user.is_robot or user.terms_accepted_at:
            return
        if not self.allowed_before_terms:
            raise Forbidden("accept the terms of service first: sign in to the registry's web pages at /terms")

    def base_url(self) -> str:
        """The registry's address as clients reach it: ``public_url`` if set, else this request's host."""
        return self.registry.public_url or f"{self.request.protocol}://{self.request.host}"

    @property
    def remote_addr(self) -> str:
        return self.request.remote_ip or ""

    def write_json(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(value, default=str))

    def error_body(self, status: int, code: str, message: str) -> dict[str, Any]:
        """The error envelope of this surface; overridden by each protocol adapter."""
        return {"code": code, "message": message}

    def log_exception(self, typ, value, tb) -> None:  # type: ignore[no-untyped-def]
        logs.log_handler_exception(self, (typ, value, tb))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None, None))[1]
        status, code, message = status_code, "HTTP_ERROR", self._reason
        if isinstance(error, RegistryError):
            status, code, message = error.status, error.code, error.message
            self.set_status(status)
            for name, value in error.headers.items():
                self.set_header(name, value)
            if status == 401:
                self.set_header("WWW-Authenticate", 'Bearer realm="sregistry"')
        elif isinstance(error, web.HTTPError):
            message = error.log_message or self._reason
        elif status_code >= 500:
            code, message = "INTERNAL", "internal error; the registry log has details"
        if self._db is not None:
            self._db.rollback()
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
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._counted:
            self.registry.in_flight.count -= 1
            self._counted = False

    def on_connection_close(self) -> None:
        body = getattr(self.request, "_body_future", None)
        if body is not None and not body.done():
            self.on_finish()
        super().on_connection_close()


class NotFoundHandler(BaseHandler):
    """Unknown paths: a JSON 404 rather than Tornado's HTML page."""

    async def prepare(self) -> None:
        await super().prepare()
        raise NotFound("no such endpoint")
