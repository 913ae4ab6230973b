"""What the registry's staff do to accounts: list them, disable and re-enable them, make robot accounts,
and (administrators only) make or unmake staff. Every change is decided by ``access.decide_staff`` and
leaves an audit event, the same whether it came from a page or the API.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..access import Identity, Principal, StaffAction, decide_staff, staff_refusal
from ..errors import Forbidden, InvalidInput
from ..names import validate_username
from ..orm import ApiToken, User, utcnow
from . import audit
from .users import create_token, create_user, get_user

MAX_QUERY = 64
KINDS = ("admin", "staff", "robot", "user")


@dataclass(frozen=True)
class Account:
    """One row of the users page."""

    user: User
    tokens: int

    @property
    def kind(self) -> str:
        user = self.user
        return "admin" if user.is_admin else "staff" if user.is_staff else "robot" if user.is_robot else "user"


def _require(principal: Principal, action: StaffAction, target: User | None = None) -> None:
    if not decide_staff(principal, action, Identity.of(target) if target is not None else None):
        raise Forbidden(staff_refusal(principal, action))


def list_accounts(
    session: Session, principal: Principal, *, query: str = "", offset: int = 0, limit: int = 50
) -> tuple[list[Account], int]:
    """One page of accounts by name (those whose name contains ``query``), and how many match."""
    _require(principal, StaffAction.LIST_USERS)
    if len(query) > MAX_QUERY:
        raise InvalidInput(f"a search is at most {MAX_QUERY} characters")
    where = []
    if query:
        pattern = "%" + query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append(User.name.like(pattern, escape="\\"))
    total = session.scalar(select(func.count(User.id)).where(*where)) or 0
    live = (
        select(func.count(ApiToken.id))
        .where(ApiToken.user_id == User.id, ApiToken.revoked_at.is_(None))
        .correlate(User)
        .scalar_subquery()
    )
    rows = session.execute(select(User, live).where(*where).order_by(User.name).offset(offset).limit(limit))
    return [Account(user, count or 0) for user, count in rows], total


def get_account(session: Session, principal: Principal, name: str) -> Account:
    """One account as the list shows it (so that a change can answer with what it changed)."""
    _require(principal, StaffAction.LIST_USERS)
    user = get_user(session, validate_username(name))
    live = select(func.count(ApiToken.id)).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
    return Account(user, session.scalar(live) or 0)


def set_disabled(session: Session, principal: Principal, name: str, disabled: bool, remote_addr: str = "") -> User:
    """Disable an account (its sessions and tokens stop working at once) or enable it again."""
    user = get_user(session, validate_username(name))
    _require(principal, StaffAction.DISABLE_USER, user)
    if disabled and user.disabled_at is None:
        user.disabled_at = utcnow()
        user.session_epoch += 1
    elif not disabled:
        user.disabled_at = None
    verb = "staff.disable-user" if disabled else "staff.enable-user"
    audit.record(session, verb, principal, remote_addr=remote_addr, detail={"user": user.name})
    return user


def set_staff(session: Session, principal: Principal, name: str, staff: bool, remote_addr: str = "") -> User:
    """Make an account staff, or an ordinary account again (administrators only; robots are never staff)."""
    user = get_user(session, validate_username(name))
    _require(principal, StaffAction.GRANT_STAFF, user)
    if staff and user.is_robot:
        raise InvalidInput(f"{user.name} is a robot account: robots are never staff")
    user.is_staff = staff
    verb = "staff.grant-staff" if staff else "staff.revoke-staff"
    audit.record(session, verb, principal, remote_addr=remote_addr, detail={"user": user.name})
    return user


def create_robot(session: Session, principal: Principal, name: str, remote_addr: str = "") -> User:
    """A robot account: it never signs in, needs no terms, and works with tokens its owner's staff make."""
    _require(principal, StaffAction.CREATE_ROBOT)
    user = create_user(session, validate_username(name), robot=True)
    audit.record(session, "staff.create-robot", principal, remote_addr=remote_addr, detail={"user": user.name})
    return user


def robot_token(
    session: Session, principal: Principal, name: str, secret_key: bytes, scope: str, remote_addr: str = ""
) -> str:
    """A new token for the robot account ``name``, returned once (robots have no pages to make their own)."""
    _require(principal, StaffAction.CREATE_ROBOT)
    user = get_user(session, validate_username(name))
    if not user.is_robot:
        raise InvalidInput(f"{user.name} is not a robot account: people make their own tokens at /tokens")
    _, token = create_token(session, user, secret_key, name=f"made by {principal.name}", scope=scope)
    audit.record(session, "staff.robot-token", principal, remote_addr=remote_addr, detail={"user": user.name})
    return token
