"""The home page, the welcome page of a newcomer, a person's profile and the help page."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...access import Principal
from ...orm import ApiToken, CollectionMember, TeamMember
from ...services import browse, collections
from .base import PageHandler, remote_name, safe_next, sregistry_config
from .listing import page_links


def is_newcomer(session: Session, principal: Principal) -> bool:
    """True for a signed-in person with no collection role, no team and no token yet: they get the welcome."""
    user = principal.user
    if user is None:
        return False
    for column in (CollectionMember.user_id, TeamMember.user_id, ApiToken.user_id):
        if session.scalar(select(column).where(column == user.id).limit(1)) is not None:
            return False
    return True


def home_view(session: Session, principal: Principal) -> tuple[list, int, list[browse.RecentPush], bool]:
    recent, total = collections.list_collections(session, principal, sort="-updated", limit=6)
    return recent, total, browse.recent_pushes(session, principal), is_newcomer(session, principal)


class HomeHandler(PageHandler):
    async def get(self) -> None:
        recent, total, pushes, newcomer = await self.read_db(home_view, self.principal)
        self.render(
            "home.html",
            recent=recent,
            total=total,
            pushes=pushes,
            newcomer=newcomer,
            base=self.base_url(),
            remote=remote_name(self.registry.name),
        )


class WelcomeHandler(PageHandler):
    """What a person can do first, after signing in and accepting the terms."""

    async def get(self) -> None:
        self.require_person()
        self.render(
            "welcome.html",
            base=self.base_url(),
            remote=remote_name(self.registry.name),
            next_url=safe_next(self.get_query_argument("next", None), "/collections"),
        )


class HelpHandler(PageHandler):
    """How to use this registry from every client, on its real URL."""

    async def get(self) -> None:
        user = self.principal.user
        base = self.base_url()
        self.render(
            "help.html",
            base=base,
            remote=remote_name(self.registry.name),
            sregistry_json=sregistry_config(base, user.name if user else "<your user name>", None),
        )


class ProfileHandler(PageHandler):
    """``/users/<name>``: what the viewer may see of a person's collections, stars and teams."""

    async def get(self, name: str) -> None:
        view = await self.read_db(
            browse.profile_view, self.principal, name, self.page_number(), self.registry.default_page_size
        )
        deleted = self.get_query_argument("deleted", None) if view.is_self else None
        links = page_links(f"/users/{name}", {}, view.owned_page)
        self.render("profile.html", view=view, person=view.user, deleted=deleted, links=links)


class MyProfileHandler(PageHandler):
    async def get(self) -> None:
        self.redirect(f"/users/{self.require_person().name}")


def routes() -> list[tuple[str, type]]:
    return [
        (r"/", HomeHandler),
        (r"/welcome", WelcomeHandler),
        (r"/help", HelpHandler),
        (r"/profile", MyProfileHandler),
        (r"/users/([^/]+)", ProfileHandler),
    ]
