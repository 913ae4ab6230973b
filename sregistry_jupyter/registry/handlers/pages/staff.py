"""The staff pages: the audit trail (filtered by user, collection and kind of event) and the users page
(disable, enable, robot accounts and their tokens; administrators also make or unmake staff).

Whether the viewer may see or do any of it is ``access.decide_staff``'s answer, which the services ask
again for every change; the pages only show the controls that answer allows.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from ...access import Identity, Principal, StaffAction, decide_staff
from ...errors import Conflict, Forbidden, InvalidInput, NotFound
from ...orm import Event
from ...services import audit, staff
from ...services.browse import Page
from ...tokens import SCOPES
from .base import PageHandler
from .listing import page_links

EVENTS_PER_PAGE = 50
USERS_PER_PAGE = 50
REFUSALS = (Conflict, Forbidden, InvalidInput, NotFound)


@dataclass(frozen=True)
class EventPage:
    events: list[Event]
    page: Page


def event_page(session: Session, principal: Principal, wanted: audit.EventFilter, at: Page) -> EventPage:
    events, total = audit.list_events(session, principal, wanted, offset=at.offset, limit=at.size)
    return EventPage(events, Page(at.number, at.size, total))


class AuditPage(PageHandler):
    async def get(self) -> None:
        self.require_person()
        arguments = {name: self.get_query_argument(name, "").strip() for name in ("user", "collection", "kind")}
        wanted = audit.EventFilter(**arguments)
        found = await self.read_db(event_page, self.principal, wanted, Page(self.page_number(), EVENTS_PER_PAGE, 0))
        self.render(
            "staff_audit.html",
            found=found,
            wanted=wanted,
            arguments=arguments,
            kinds=list(audit.KINDS),
            page=found.page,
            links=page_links("/staff/audit", arguments, found.page),
            noun="event",
        )


@dataclass(frozen=True)
class AccountPage:
    """One page of accounts, and which of them the viewer may disable and make staff (by user id)."""

    accounts: list[staff.Account]
    page: Page
    may_disable: frozenset[int]
    may_grant_staff: frozenset[int]


def account_page(session: Session, principal: Principal, query: str, at: Page) -> AccountPage:
    accounts, total = staff.list_accounts(session, principal, query=query, offset=at.offset, limit=at.size)

    def allowed(action: StaffAction) -> frozenset[int]:
        return frozenset(a.user.id for a in accounts if decide_staff(principal, action, Identity.of(a.user)))

    return AccountPage(
        accounts, Page(at.number, at.size, total), allowed(StaffAction.DISABLE_USER), allowed(StaffAction.GRANT_STAFF)
    )


class UsersShowing(PageHandler):
    """Shows the users page, with the outcome of a form when there is one."""

    async def show(
        self, *, notice: str | None = None, error: str | None = None, token: str | None = None, status: int = 200
    ) -> None:
        self.require_person()
        query = self.get_query_argument("q", "").strip()
        found = await self.read_db(account_page, self.principal, query, Page(self.page_number(), USERS_PER_PAGE, 0))
        self.set_status(status)
        self.render(
            "staff_users.html",
            found=found,
            query=query,
            notice=notice,
            error=error,
            token=token,
            scopes=SCOPES,
            may_create_robot=decide_staff(self.principal, StaffAction.CREATE_ROBOT),
            page=found.page,
            links=page_links("/staff/users", {"q": query}, found.page),
            noun="account",
        )


class UsersPage(UsersShowing):
    async def get(self) -> None:
        await self.show()


class UserFormPage(UsersShowing):
    """A form of the users page: one service call, then the users page again with its outcome."""

    async def submit(self, form: dict[str, str], *args: str) -> None:
        self.require_person()
        try:
            notice, token = await self.change(form, *args)
        except REFUSALS as error:
            await self.show(error=error.message, status=error.status)
            return
        await self.show(notice=notice, token=token)

    async def change(self, form: dict[str, str], *args: str) -> tuple[str, str | None]:
        raise NotImplementedError


class DisableUser(UserFormPage):
    async def change(self, form: dict[str, str], name: str) -> tuple[str, str | None]:
        disabled = form.get("disabled") == "1"
        await self.write_db(staff.set_disabled, self.principal, name, disabled, self.remote_addr)
        return (
            f"{name} is disabled: their sessions and tokens no longer work." if disabled else f"{name} is enabled."
        ), None


class GrantStaff(UserFormPage):
    async def change(self, form: dict[str, str], name: str) -> tuple[str, str | None]:
        grant = form.get("staff") == "1"
        await self.write_db(staff.set_staff, self.principal, name, grant, self.remote_addr)
        return (f"{name} is now staff." if grant else f"{name} is no longer staff."), None


class CreateRobot(UserFormPage):
    async def change(self, form: dict[str, str]) -> tuple[str, str | None]:
        name = form.get("name", "").strip()
        await self.write_db(staff.create_robot, self.principal, name, self.remote_addr)
        return f"Robot account {name} created. Make it a token below, then give it a role in a collection.", None


class RobotToken(UserFormPage):
    async def change(self, form: dict[str, str], name: str) -> tuple[str, str | None]:
        token = await self.write_db(
            staff.robot_token,
            self.principal,
            name,
            self.registry.secret_key,
            form.get("scope", "read"),
            self.remote_addr,
        )
        return f"A new token for {name}; copy it now, it is not shown again.", token


def routes() -> list[tuple[str, type]]:
    user = r"/staff/users/([^/]+)"
    return [
        (r"/staff/audit", AuditPage),
        (r"/staff/users", UsersPage),
        (r"/staff/robots", CreateRobot),
        (rf"{user}/disabled", DisableUser),
        (rf"{user}/staff", GrantStaff),
        (rf"{user}/tokens", RobotToken),
    ]
