"""The permission policy: every decision about who may do what goes through this module.

Handlers and services never compare roles themselves. ``decide`` is a pure function of the principal,
the action, the collection and the principal's role in it, so the whole policy can be read (and tested
as a table) in one place. A token's scope caps what the user behind it may do: a read token can never
push, whatever the user's role.

The same module says why a refusal happened, so that every surface words it alike: ``missing_identity``
(nobody is asking, and the action needs someone), ``scope_refusal`` (the credential's scope rules the
action out, whatever it is done to; the message names the scope needed) and ``role_refusal`` (the
caller's role in the collection does not allow it). The first two depend on nothing but the principal and
the action, so services check them before looking anything up, and their answer reveals nothing about
whether, or what, the target is.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Row, bindparam, false, func, or_, select, true
from sqlalchemy.orm import Session

from .orm import Collection, CollectionMember, Team, TeamMember, User


class Action(enum.StrEnum):
    SEE = "see"
    PULL = "pull"
    CREATE_COLLECTION = "create_collection"
    PUSH = "push"
    TAG = "tag"
    UPDATE = "update"
    DELETE_IMAGE = "delete_image"
    DELETE_COLLECTION = "delete_collection"
    MANAGE_MEMBERS = "manage_members"
    CHANGE_PRIVACY = "change_privacy"
    FREEZE = "freeze"
    SHARE = "share"
    STAR = "star"
    CREATE_TEAM = "create_team"
    ADMIN = "admin"


class Role(enum.StrEnum):
    OWNER = "owner"
    CONTRIBUTOR = "contributor"


class TeamRole(enum.StrEnum):
    OWNER = "owner"
    MEMBER = "member"


class TeamAction(enum.StrEnum):
    SEE = "see"
    JOIN = "join"
    ACCEPT = "accept"
    LEAVE = "leave"
    MANAGE = "manage"


SCOPE_ALLOWS: dict[str, frozenset[Action]] = {
    "read": frozenset({Action.SEE, Action.PULL}),
    "write": frozenset(
        {
            Action.SEE,
            Action.PULL,
            Action.CREATE_COLLECTION,
            Action.PUSH,
            Action.TAG,
            Action.UPDATE,
            Action.DELETE_IMAGE,
            Action.STAR,
            Action.SHARE,
        }
    ),
    "admin": frozenset(Action),
}

DOING: dict[Action, str] = {
    Action.SEE: "seeing collections",
    Action.PULL: "pulling",
    Action.CREATE_COLLECTION: "creating collections",
    Action.PUSH: "pushing",
    Action.TAG: "tagging",
    Action.UPDATE: "changing a collection's description",
    Action.DELETE_IMAGE: "deleting images",
    Action.DELETE_COLLECTION: "deleting a collection",
    Action.MANAGE_MEMBERS: "managing a collection's members",
    Action.CHANGE_PRIVACY: "changing a collection's privacy",
    Action.FREEZE: "freezing tags",
    Action.SHARE: "sharing images",
    Action.STAR: "starring collections",
    Action.CREATE_TEAM: "creating teams",
    Action.ADMIN: "administering the registry",
}

GLOBAL_ACTIONS = frozenset({Action.ADMIN, Action.CREATE_COLLECTION, Action.CREATE_TEAM})
OWNER_ACTIONS = frozenset(Action) - GLOBAL_ACTIONS
CONTRIBUTOR_ACTIONS = frozenset({Action.SEE, Action.PULL, Action.STAR})
PUBLIC_ACTIONS = frozenset({Action.SEE, Action.PULL})


@dataclass(frozen=True)
class Policy:
    """The registry's configurable rules (``RegistryApp`` traits of the same names)."""

    users_create_collections: bool = True
    users_create_teams: bool = False
    collection_limit: int = 0
    private_by_default: bool = False
    private_only: bool = False

    def default_privacy(self, requested: bool | None) -> bool:
        """The privacy a new collection gets: private when the rules say so, whatever was asked."""
        if self.private_only:
            return True
        return self.private_by_default if requested is None else requested


DEFAULT_POLICY = Policy()


class Person(Protocol):
    """Anything naming a user by id and name: an ORM ``User`` or an ``Identity``."""

    @property
    def id(self) -> int: ...

    @property
    def name(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Identity:
    """A snapshot of the user behind a request, taken when the request's credential was checked.

    Requests carry this rather than the ORM row, so that nothing about the caller needs a database
    session after ``prepare``; code that must change the user loads the row by ``id``.
    """

    id: int
    name: str
    is_admin: bool = False
    is_staff: bool = False
    is_robot: bool = False
    terms_accepted: bool = False

    @classmethod
    def of(cls, user: User | Row[Any]) -> Identity:
        """From the user's row: an ORM object, or a statement's row with the same column names."""
        return cls(
            id=user.id,
            name=user.name,
            is_admin=user.is_admin,
            is_staff=user.is_staff,
            is_robot=user.is_robot,
            terms_accepted=user.terms_accepted_at is not None,
        )


class Via(enum.StrEnum):
    """The kind of credential a principal was recognised by."""

    TOKEN = "token"
    HUB = "hub"
    SESSION = "session"
    HMAC = "hmac"
    LINK = "link"
    CLI = "cli"
    ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Principal:
    """Who is asking: a user (or nobody) and the scope of the credential they presented."""

    user: Identity | None = None
    scope: str = "admin"
    token_id: int | None = None
    policy: Policy = DEFAULT_POLICY
    via: Via = Via.TOKEN

    @property
    def authenticated(self) -> bool:
        return self.user is not None

    @property
    def name(self) -> str | None:
        return self.user.name if self.user else None


ANONYMOUS = Principal(None, "read", via=Via.ANONYMOUS)


def decide(principal: Principal, action: Action, collection: Collection | None, role: Role | None) -> bool:
    """True if ``principal`` (whose role in ``collection`` is ``role``) may perform ``action``."""
    if action not in SCOPE_ALLOWS.get(principal.scope, frozenset()):
        return False
    user = principal.user
    if user is not None and user.is_admin:
        return True
    if action is Action.ADMIN:
        return False
    if action is Action.CREATE_COLLECTION:
        return user is not None and (user.is_staff or principal.policy.users_create_collections)
    if action is Action.CREATE_TEAM:
        return user is not None and (user.is_staff or principal.policy.users_create_teams)
    if action is Action.STAR:
        return (
            user is not None
            and collection is not None
            and (not collection.private or user.is_staff or role is not None)
        )
    if collection is None:
        return False
    if user is not None and user.is_staff:
        return True
    if role is Role.OWNER:
        return action in OWNER_ACTIONS
    if role is Role.CONTRIBUTOR and action in CONTRIBUTOR_ACTIONS:
        return True
    return not collection.private and action in PUBLIC_ACTIONS


CREDENTIAL_NAMES = {
    Via.TOKEN: "token",
    Via.HMAC: "token",
    Via.HUB: "JupyterHub token",
    Via.LINK: "link",
    Via.SESSION: "session",
    Via.CLI: "command",
    Via.ANONYMOUS: "request",
}
TEAM_DOING = {
    TeamAction.SEE: "seeing teams",
    TeamAction.JOIN: "joining a team",
    TeamAction.ACCEPT: "accepting an invitation",
    TeamAction.LEAVE: "leaving a team",
    TeamAction.MANAGE: "managing a team",
}


def scope_needed(action: Action) -> str:
    """The weakest token scope that allows ``action``."""
    return next(scope for scope, allowed in SCOPE_ALLOWS.items() if action in allowed)


def missing_identity(principal: Principal, action: Action) -> str | None:
    """Why ``action`` cannot be done without a credential, or None: nobody may do more than see and pull."""
    if principal.user is not None or action in PUBLIC_ACTIONS:
        return None
    return f"{DOING[action]} needs a token"


def _scope_words(principal: Principal, doing: str, needed: str) -> str:
    article = "an" if needed[0] in "aeiou" else "a"
    credential = CREDENTIAL_NAMES[principal.via]
    words = f"this {credential} has scope {principal.scope!r}; {doing} needs {article} {needed!r} token"
    if principal.via is Via.HUB:
        words += " (the registry's staff set what JupyterHub tokens may do; a registry token of that scope works too)"
    return words


def scope_refusal(principal: Principal, action: Action) -> str | None:
    """Why the scope of ``principal``'s credential rules ``action`` out wherever it is done, or None.

    The answer depends on the principal and the action alone, which is why callers check it before looking
    up the target: then a read token hears the same thing about a private collection as about a missing one.
    """
    if principal.user is None or action in SCOPE_ALLOWS.get(principal.scope, frozenset()):
        return None
    return _scope_words(principal, DOING[action], scope_needed(action))


def team_scope_refusal(principal: Principal, action: TeamAction) -> str | None:
    """As ``scope_refusal``, for teams: anything but seeing them needs the scope that manages members."""
    allowed = SCOPE_ALLOWS.get(principal.scope, frozenset())
    needed = Action.SEE if action is TeamAction.SEE else Action.MANAGE_MEMBERS
    if principal.user is None or needed in allowed:
        return None
    return _scope_words(principal, TEAM_DOING[action], scope_needed(needed))


def role_refusal(action: Action, collection: str, role: Role | None) -> str:
    """Why a caller whose scope allows ``action``, but whose role in ``collection`` does not, is refused."""
    if role is Role.CONTRIBUTOR:
        return f"{DOING[action]} in collection {collection!r} is for its owners; contributors may pull and star"
    return f"{DOING[action]} in collection {collection!r} is for its owners"


def refusal(principal: Principal, action: Action, collection: str, role: Role | None) -> str:
    """Why ``decide`` refused ``action`` in ``collection`` to a caller who may see it."""
    return scope_refusal(principal, action) or role_refusal(action, collection, role)


def token_management_refusal(principal: Principal) -> str:
    """Why ``may_manage_tokens`` refused."""
    if principal.via is Via.HUB:
        return "JupyterHub tokens may not create or revoke registry tokens; sign in to the registry's pages instead"
    return _scope_words(principal, "creating or revoking other tokens", "admin") + " or a signed-in session"


def role_of(session: Session, user: Person | None, collection: Collection) -> Role | None:
    if user is None:
        return None
    role = session.scalar(
        select(CollectionMember.role).where(
            CollectionMember.collection_id == collection.id, CollectionMember.user_id == user.id
        )
    )
    return Role(role) if role else None


def can(session: Session, principal: Principal, action: Action, collection: Collection | None = None) -> bool:
    role = role_of(session, principal.user, collection) if collection is not None else None
    if not decide(principal, action, collection, role):
        return False
    if action is Action.CREATE_COLLECTION:
        return within_collection_limit(session, principal)
    return True


def see_and_can(
    session: Session, principal: Principal, action: Action, collection: Collection | None
) -> tuple[bool, bool]:
    """Whether ``principal`` may see ``collection`` (None: a missing one), and whether it may also perform
    ``action`` in it, with one look-up of its role (callers report an invisible collection as missing, the
    rest as forbidden)."""
    if collection is None:
        return False, False
    if action is Action.CREATE_COLLECTION:
        return can(session, principal, Action.SEE, collection), can(session, principal, action, collection)
    role = role_of(session, principal.user, collection)
    seen = decide(principal, Action.SEE, collection, role)
    return seen, seen and decide(principal, action, collection, role)


def within_collection_limit(session: Session, principal: Principal) -> bool:
    """Users own at most ``Policy.collection_limit`` collections (0: no limit); staff are not limited."""
    user, limit = principal.user, principal.policy.collection_limit
    if user is None or limit <= 0 or user.is_staff or user.is_admin:
        return True
    owned = session.scalar(
        select(func.count(CollectionMember.id)).where(
            CollectionMember.user_id == user.id, CollectionMember.role == Role.OWNER.value
        )
    )
    return (owned or 0) < limit


def share_a_team(session: Session, first: Person, second: Person) -> bool:
    mine = select(TeamMember.team_id).where(TeamMember.user_id == first.id)
    found = session.scalar(
        select(TeamMember.id).where(TeamMember.user_id == second.id, TeamMember.team_id.in_(mine)).limit(1)
    )
    return found is not None


def decide_team(principal: Principal, action: TeamAction, team: Team, role: TeamRole | None) -> bool:
    """True if ``principal`` (whose role in ``team`` is ``role``) may perform ``action`` on the team.

    Signed-in users see every team and its members, so that owners can find one another. Joining,
    accepting an invitation, leaving and managing (details, members, invitations) change whom a collection
    owner may grant roles to, so a token needs the scope that manages members. Owners manage their own
    team; staff and admins manage every team.
    """
    user = principal.user
    allowed = SCOPE_ALLOWS.get(principal.scope, frozenset())
    if user is None:
        return False
    if action is TeamAction.SEE:
        return Action.SEE in allowed
    if Action.MANAGE_MEMBERS not in allowed:
        return False
    if action is TeamAction.JOIN:
        return team.open
    if action is TeamAction.ACCEPT:
        return True
    if action is TeamAction.LEAVE:
        return role is not None
    return user.is_admin or user.is_staff or role is TeamRole.OWNER


def team_role(session: Session, user: Person | None, team: Team) -> TeamRole | None:
    if user is None:
        return None
    role = session.scalar(select(TeamMember.role).where(TeamMember.team_id == team.id, TeamMember.user_id == user.id))
    return TeamRole(role) if role else None


def can_team(session: Session, principal: Principal, action: TeamAction, team: Team) -> bool:
    # Seeing a team does not depend on one's role in it, so listing teams costs no query per team.
    role = None if action is TeamAction.SEE else team_role(session, principal.user, team)
    return decide_team(principal, action, team, role)


def may_grant_role(session: Session, principal: Principal, collection: Collection, target: Person) -> bool:
    """Owners may make someone an owner or contributor only if they share a team (admins need not)."""
    if not can(session, principal, Action.MANAGE_MEMBERS, collection):
        return False
    user = principal.user
    if user is not None and user.is_admin:
        return True
    return user is not None and (user.id == target.id or share_a_team(session, user, target))


def may_manage_tokens(principal: Principal, token_id: int | None = None) -> bool:
    """Creating or revoking tokens needs an admin-scoped credential (a signed-in session is one), so a leaked
    push token cannot mint itself successors; any token may still revoke itself. JupyterHub credentials
    never manage registry tokens: code running in a person's notebook server must not be able to mint a
    registry credential that outlives the hub's own token."""
    if principal.user is None:
        return False
    if token_id is not None and token_id == principal.token_id:
        return True
    return principal.scope == "admin" and principal.via is not Via.HUB


class Visibility(enum.StrEnum):
    """Which collections a kind of viewer sees: all of them (staff), the public ones (anonymous), or the
    public ones and those the viewer is a member of (``:viewer_id``)."""

    ALL = "all"
    PUBLIC = "public"
    MEMBER = "member"


def visibility_of(principal: Principal) -> Visibility:
    user = principal.user
    if user is None:
        return Visibility.PUBLIC
    if user.is_admin or user.is_staff:
        return Visibility.ALL
    return Visibility.MEMBER


def visibility_params(principal: Principal) -> dict[str, int]:
    """The parameters ``visible_collections_where`` needs for ``principal``."""
    return {"viewer_id": principal.user.id} if principal.user is not None else {}


def _visible(visibility: Visibility, viewer_id: Any) -> ColumnElement[bool]:
    if visibility is Visibility.ALL:
        return true()
    if visibility is Visibility.PUBLIC:
        return Collection.private == false()
    member = select(CollectionMember.collection_id).where(CollectionMember.user_id == viewer_id)
    return or_(Collection.private == false(), Collection.id.in_(member))


@functools.cache
def visible_collections_where(visibility: Visibility) -> ColumnElement[bool]:
    """A WHERE clause selecting exactly the collections a viewer of this kind may see, with the viewer as the
    parameter ``viewer_id``: one clause per kind, built once, for statements that are themselves built once."""
    return _visible(visibility, bindparam("viewer_id"))


def visible_collections(principal: Principal) -> ColumnElement[bool]:
    """A WHERE clause selecting exactly the collections ``principal`` may see (for lists and search)."""
    return _visible(visibility_of(principal), principal.user.id if principal.user is not None else None)


class StaffAction(enum.StrEnum):
    """What the registry's staff pages do, beyond any one collection or team."""

    AUDIT = "audit"
    LIST_USERS = "list_users"
    DISABLE_USER = "disable_user"
    CREATE_ROBOT = "create_robot"
    GRANT_STAFF = "grant_staff"


STAFF_ACTIONS = frozenset(
    {StaffAction.AUDIT, StaffAction.LIST_USERS, StaffAction.DISABLE_USER, StaffAction.CREATE_ROBOT}
)


def decide_staff(principal: Principal, action: StaffAction, target: Identity | None = None) -> bool:
    """True if ``principal`` may perform the staff ``action`` (on the user ``target``, when there is one).

    Staff read the audit trail, list users, make robot accounts and disable or re-enable accounts; only
    administrators make or unmake staff, and only they touch an administrator's account. Nobody disables
    themselves, so a registry cannot lose its last way in by a slip. All of it needs an admin-scoped
    credential (a signed-in session is one), so a leaked push token cannot read the trail or lock people out.
    """
    user = principal.user
    if user is None or principal.scope != "admin" or principal.via is Via.HUB:
        return False
    if target is not None and (target.id == user.id or target.is_admin) and action is not StaffAction.AUDIT:
        return user.is_admin and target.id != user.id
    if action is StaffAction.GRANT_STAFF:
        return user.is_admin
    return action in STAFF_ACTIONS and (user.is_admin or user.is_staff)


STAFF_REFUSALS = {
    StaffAction.AUDIT: "the audit trail is for the registry's staff",
    StaffAction.LIST_USERS: "the list of users is for the registry's staff",
    StaffAction.DISABLE_USER: "disabling accounts is for the registry's staff; administrators' accounts and your own "
    "are changed by another administrator",
    StaffAction.CREATE_ROBOT: "robot accounts are made by the registry's staff",
    StaffAction.GRANT_STAFF: "only administrators make or unmake staff, and never for themselves",
}


def staff_refusal(principal: Principal, action: StaffAction) -> str:
    """Why ``decide_staff`` refused ``action``."""
    if principal.user is not None and (principal.scope != "admin" or principal.via is Via.HUB):
        return _scope_words(principal, "staff work", "admin") + " or a signed-in session"
    return STAFF_REFUSALS[action]


def may_use_upload(principal: Principal, owner_id: int | None) -> bool:
    """An upload session is its creator's alone: only they may send its bytes, see it, or end it. Anyone
    else is told that no such upload exists."""
    return principal.user is not None and owner_id is not None and principal.user.id == owner_id
