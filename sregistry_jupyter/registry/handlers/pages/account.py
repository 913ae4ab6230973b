"""Account pages: the terms of service, signing out, API tokens and the landing page of team invitations."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from ...access import Identity, Principal, team_role
from ...auth import sessions
from ...errors import Conflict, Forbidden, InvalidInput, NotFound
from ...names import row_id
from ...orm import Team, User, utcnow
from ...services import audit, teams, users
from ...tokens import SCOPES
from .base import PageHandler, remote_name, safe_next, sregistry_config


def accepted_at(session: Session, user_id: int) -> dt.datetime | None:
    user = session.get(User, user_id)
    return user.terms_accepted_at if user is not None else None


def accept_terms(session: Session, principal: Principal, remote_addr: str) -> bool:
    """Record that the person accepted the terms of service (once); True if this was the first time."""
    assert principal.user is not None
    user = session.get(User, principal.user.id)
    if user is None or user.terms_accepted_at is not None:
        return False
    user.terms_accepted_at = utcnow()
    audit.record(session, "user.accept-terms", principal, remote_addr=remote_addr)
    return True


class TermsHandler(PageHandler):
    """The terms of service, and the one form a person can use before accepting them."""

    allowed_before_terms = True

    async def get(self) -> None:
        text = self.registry.terms_of_service
        user = self.principal.user
        self.render(
            "terms.html",
            paragraphs=[part.strip() for part in text.split("\n\n") if part.strip()],
            accepted_at=await self.read_db(accepted_at, user.id) if user else None,
            next_url=safe_next(self.get_query_argument("next", None)),
        )

    async def submit(self, form: dict[str, str]) -> None:
        self.require_person()
        first = await self.write_db(accept_terms, self.principal, self.remote_addr)
        next_url = safe_next(form.get("next"))
        # A newcomer who signed in from the home page is welcomed; anyone on their way elsewhere goes on.
        self.redirect("/welcome" if first and next_url == "/" else next_url, status=303)


def sign_out(session: Session, principal: Principal, key: str | None, everywhere: bool, remote_addr: str) -> None:
    """End this browser's session on the server, or every session of the person."""
    if key is not None:
        sessions.delete_session(session, key)
    if principal.user is None:
        return
    if everywhere:
        user = session.get(User, principal.user.id)
        if user is not None:
            user.session_epoch += 1
    audit.record(session, "user.sign-out", principal, remote_addr=remote_addr, detail={"everywhere": everywhere})


class LogoutHandler(PageHandler):
    """Ends the browser's session; any authenticator's sessions end the same way."""

    allowed_before_terms = True

    def get(self) -> None:
        self.render("logout.html")

    async def submit(self, form: dict[str, str]) -> None:
        await self.write_db(sign_out, self.principal, self.session_key, bool(form.get("everywhere")), self.remote_addr)
        sessions.end_session(self)
        self.redirect("/", status=303)


class TokensHandler(PageHandler):
    """A person's API tokens: list, create (the token is shown once, on the answer to the form), revoke."""

    async def get(self) -> None:
        await self.show(self.require_person())

    async def show(
        self, user: Identity, *, token: str | None = None, error: str | None = None, status: int = 200
    ) -> None:
        base = self.base_url()
        self.set_status(status)
        self.render(
            "tokens.html",
            tokens=await self.read_db(users.list_tokens, user),
            live=users.token_is_live,
            scopes=SCOPES,
            new_token=token,
            error=error,
            base=base,
            remote=remote_name(self.registry.name),
            sregistry_json=sregistry_config(base, user.name, token),
        )

    async def submit(self, form: dict[str, str]) -> None:
        user = self.require_person()
        try:
            _, token = await self.write_db(
                users.create_token,
                user,
                self.registry.secret_key,
                name=form.get("name", ""),
                scope=form.get("scope", "read"),
                expires_in_days=expiry_days(form.get("expires_in_days", "")),
            )
        except InvalidInput as error:
            await self.show(user, error=error.message, status=400)
            return
        await self.show(user, token=token)


class RevokeTokenHandler(PageHandler):
    async def submit(self, form: dict[str, str], token_id: str) -> None:
        self.require_person()
        await self.write_db(users.revoke_token, self.principal, row_id(token_id, "token"))
        self.redirect("/tokens", status=303)


def invitation_state(session: Session, principal: Principal, code: str) -> tuple[Team, bool]:
    """The team an invitation leads to, and whether the person is already in it."""
    team = teams.invitation_preview(session, code)
    return team, team_role(session, principal.user, team) is not None


class InvitationHandler(PageHandler):
    """The landing page of an invitation link: which team it is for, and a button to join it."""

    REFUSALS = (NotFound, InvalidInput, Forbidden, Conflict)

    async def get(self, code: str) -> None:
        self.require_person()
        try:
            team, member = await self.read_db(invitation_state, self.principal, code)
        except self.REFUSALS as error:
            self.show(error=error.message, status=error.status)
            return
        self.show(team=team, member=member)

    async def submit(self, form: dict[str, str], code: str) -> None:
        self.require_person()
        try:
            team = await self.write_db(teams.accept_invitation, self.principal, code)
        except self.REFUSALS as error:
            self.show(error=error.message, status=error.status)
            return
        self.show(team=team, joined=True)

    def show(
        self,
        *,
        team: Team | None = None,
        member: bool = False,
        joined: bool = False,
        error: str | None = None,
        status: int = 200,
    ) -> None:
        self.set_status(status)
        self.render("invitation.html", team=team, member=member, joined=joined, error=error)


def expiry_days(raw: str) -> float | None:
    """Days from the form's expiry field; empty means the token never expires."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise InvalidInput(f"the expiry is a number of days, not {raw!r}") from None


def routes() -> list[tuple[str, type]]:
    return [
        (r"/terms", TermsHandler),
        (r"/logout", LogoutHandler),
        (r"/tokens", TokensHandler),
        (r"/tokens/(\d+)/revoke", RevokeTokenHandler),
        (r"/invitations/([^/]+)", InvitationHandler),
    ]
