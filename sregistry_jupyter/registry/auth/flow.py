"""The browser's side of an authorization-code sign-in, shared by the OAuth/OIDC and the JupyterHub flows.

``/login`` starts a flow with a random ``state``, a PKCE verifier, an OpenID Connect nonce and the page to
return to, and keeps it in a short-lived signed cookie of that browser rather than in process memory, so that
the callback may reach another registry process behind the same proxy. The callback accepts a code only
together with the state of that cookie, so another site cannot sign a browser in to the attacker's account.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import SignInFailed
from ..handlers.pages.base import safe_next

if TYPE_CHECKING:
    from ..handlers.base import BaseHandler

FLOW_MINUTES = 10
MAX_NEXT = 2000


def return_path(value: str) -> str:
    """A path on this registry to return to after signing in, short enough to keep in the flow cookie."""
    return safe_next(value) if len(value) <= MAX_NEXT else "/"


@dataclass(frozen=True)
class Flow:
    """What the login handler remembers for the callback, in the browser's signed flow cookie."""

    state: str
    verifier: str
    nonce: str
    next_url: str

    @classmethod
    def start(cls, next_url: str) -> Flow:
        return cls(secrets.token_urlsafe(32), secrets.token_urlsafe(48), secrets.token_urlsafe(24), next_url)

    @property
    def challenge(self) -> str:
        """The PKCE S256 challenge: base64url of the verifier's SHA-256, without padding."""
        digest = hashlib.sha256(self.verifier.encode("ascii")).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def dump(self) -> str:
        return json.dumps([self.state, self.verifier, self.nonce, self.next_url], separators=(",", ":"))

    @classmethod
    def load(cls, raw: bytes) -> Flow | None:
        try:
            state, verifier, nonce, next_url = json.loads(raw)
        except (ValueError, TypeError):
            return None
        return cls(str(state), str(verifier), str(nonce), return_path(str(next_url)))


def remember_flow(handler: BaseHandler, cookie: str, flow: Flow) -> None:
    """Keep ``flow`` in the browser for the callback: signed, unreadable to scripts, gone after a while."""
    handler.set_signed_cookie(
        cookie,
        flow.dump(),
        expires_days=FLOW_MINUTES / (24 * 60),
        httponly=True,
        secure=handler.request.protocol == "https",
        samesite="Lax",
    )


def take_flow(handler: BaseHandler, cookie: str, mismatch: str) -> Flow:
    """This browser's pending sign-in, if the callback carries its state; it is used up by the check.

    A callback with another state (refused with ``mismatch``) leaves the pending sign-in alone, so a forged
    callback cannot break one in progress.
    """
    raw = handler.get_signed_cookie(cookie, max_age_days=FLOW_MINUTES / (24 * 60))
    flow = Flow.load(raw) if raw else None
    if flow is None:
        raise SignInFailed(
            f"no sign-in is in progress in this browser (or it took longer than {FLOW_MINUTES} minutes); "
            "sign in again from /login"
        )
    if not hmac.compare_digest(flow.state.encode(), handler.get_argument("state", "").encode()):
        raise SignInFailed(mismatch)
    handler.clear_cookie(cookie)
    return flow
