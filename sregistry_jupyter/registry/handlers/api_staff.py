"""The native API for the registry's staff: the accounts (list them, disable or enable one, make staff,
robot accounts and their tokens) and the audit trail, as the staff pages offer them.

Every decision is the staff services' (and so ``access.decide_staff``'s); these handlers only read requests
and shape answers, built while the session is open. The paths are in ``native``'s route table.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from ... import models
from ..access import Principal
from ..orm import Event
from ..services import audit, staff
from ..services.collections import require_user
from .api import PREFIX, ApiHandler


def account_model(account: staff.Account) -> models.Account:
    user = account.user
    return models.Account.model_construct(
        name=user.name,
        admin=user.is_admin,
        staff=user.is_staff,
        robot=user.is_robot,
        created=user.created_at,
        kind=account.kind,
        disabled=user.disabled_at,
        tokens=account.tokens,
    )


def account_page(session: Session, principal: Principal, query: str, page: int, per_page: int) -> models.AccountPage:
    found, total = staff.list_accounts(session, principal, query=query, offset=(page - 1) * per_page, limit=per_page)
    return models.AccountPage.model_construct(
        items=[account_model(a) for a in found], page=page, per_page=per_page, total=total, pages=-(-total // per_page)
    )


def account_detail(session: Session, principal: Principal, name: str) -> models.Account:
    return account_model(staff.get_account(session, principal, name))


def change_account(
    session: Session, principal: Principal, name: str, body: models.UpdateAccount, remote_addr: str
) -> models.Account:
    if body.disabled is not None:
        staff.set_disabled(session, principal, name, body.disabled, remote_addr)
    if body.staff is not None:
        staff.set_staff(session, principal, name, body.staff, remote_addr)
    session.flush()
    return account_model(staff.get_account(session, principal, name))


def new_robot(session: Session, principal: Principal, name: str, remote_addr: str) -> models.Account:
    user = staff.create_robot(session, principal, name, remote_addr)
    session.flush()
    return account_model(staff.Account(user, 0))


def event_model(event: Event) -> models.AuditEvent:
    return models.AuditEvent.model_construct(
        id=event.id,
        at=event.at,
        action=event.action,
        user=event.username,
        collection=event.collection,
        container=event.container,
        tag=event.tag,
        digest=event.digest,
        size=event.size,
        remote_addr=event.remote_addr,
        detail=event.detail,
    )


def event_page(
    session: Session, principal: Principal, wanted: audit.EventFilter, page: int, per_page: int
) -> models.AuditPage:
    found, total = audit.list_events(session, principal, wanted, offset=(page - 1) * per_page, limit=per_page)
    return models.AuditPage.model_construct(
        items=[event_model(e) for e in found], page=page, per_page=per_page, total=total, pages=-(-total // per_page)
    )


class StaffHandler(ApiHandler):
    """Someone not signed in is asked to sign in (401) before any staff decision."""

    async def prepare(self) -> None:
        await super().prepare()
        if self._finished:
            return
        require_user(self.principal)


class AccountsHandler(StaffHandler):
    async def get(self) -> None:
        page, per_page = self.paging()
        query = self.get_query_argument("q", "").strip()
        self.write_json(await self.read_db(account_page, self.principal, query, page, per_page))


class AccountHandler(StaffHandler):
    async def get(self, name: str) -> None:
        self.write_json(await self.read_db(account_detail, self.principal, name))

    async def patch(self, name: str) -> None:
        body = self.body_as(models.UpdateAccount)
        self.write_json(await self.write_db(change_account, self.principal, name, body, self.remote_addr))


class RobotsHandler(StaffHandler):
    async def post(self) -> None:
        body = self.body_as(models.CreateRobot)
        created = await self.write_db(new_robot, self.principal, body.name.strip(), self.remote_addr)
        self.set_header("Location", f"{PREFIX}/staff/users/{created.name}")
        self.write_json(created, 201)


class RobotTokensHandler(StaffHandler):
    async def post(self, name: str) -> None:
        body = self.body_as(models.CreateRobotToken)
        token = await self.write_db(
            staff.robot_token, self.principal, name, self.registry.secret_key, body.scope, self.remote_addr
        )
        self.write_json(models.RobotToken.model_construct(user=name, scope=body.scope, token=token), 201)


class AuditHandler(StaffHandler):
    async def get(self) -> None:
        page, per_page = self.paging()
        wanted = audit.EventFilter(
            **{name: self.get_query_argument(name, "").strip() for name in ("user", "collection", "kind")}
        )
        self.write_json(await self.read_db(event_page, self.principal, wanted, page, per_page))
