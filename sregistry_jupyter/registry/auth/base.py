"""The Authenticator interface.

An authenticator contributes the handlers of its sign-in flow (a password form, an OAuth redirect and
callback, ...) and may recognise credentials other than the registry's own tokens, such as JupyterHub
API tokens. Whatever the flow, it ends in ``sessions.sign_in``, which links the outside identity to a
registry user and starts a browser session; from there on every surface sees the same user and the
same access policy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from traitlets import Unicode
from traitlets.config import LoggingConfigurable

if TYPE_CHECKING:
    from ..access import Principal
    from ..handlers.base import BaseHandler


class Authenticator(LoggingConfigurable):
    """Base class: no sign-in flow of its own (tokens only)."""

    login_service = Unicode("", config=True, help="Shown on the sign-in button, e.g. 'GitHub'.")

    def routes(self) -> list[tuple[Any, ...]]:
        """Handlers of the sign-in flow, added to the registry's routes."""
        return []

    def login_url(self, next_url: str = "/") -> str:
        return "/login?" + urlencode({"next": next_url})

    async def authenticate_bearer(self, handler: BaseHandler, credential: str) -> Principal | None:
        """A principal for a credential that is not a registry token, or None if this authenticator does
        not know it (it is then checked as a registry token)."""
        return None
