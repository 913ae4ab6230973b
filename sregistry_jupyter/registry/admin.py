"""``sregistry-jupyter admin ...``: staff commands that work on the same database and storage as a
running server (SQLite in WAL mode lets both write)."""

from __future__ import annotations

import datetime as dt
import getpass
import logging
import sys

from sqlalchemy import select
from sqlalchemy.orm import Session
from traitlets import Bool, Enum, Float, Unicode, default

from .access import Principal, Role, TeamRole, Via
from .app import RegistryApp, RegistryUnavailable, common_aliases
from .auth import passwords
from .errors import InvalidInput, NotFound, RegistryError
from .orm import Collection, Team, User, utcnow
from .services import audit, collections, gc, members, teams, users

ADMIN = Principal(None, "admin", via=Via.CLI)


class AdminSubcommand(RegistryApp):
    """Base of the admin commands: each works on an existing registry and says in one line what it did.

    They never create a registry, or upgrade one: pointed at the wrong folder they say so, rather than
    leave an empty registry behind and then fail to find anyone in it.
    """

    aliases = common_aliases
    subcommands = {}

    @default("log_level")
    def _log_level_default(self) -> int:
        return logging.WARNING

    def start(self) -> None:
        try:
            registry = self.open_registry(create=False)
        except RegistryUnavailable as error:
            self.fail(str(error))
        session = registry.session_factory()
        try:
            self.run(registry, session)
            session.commit()
        except RegistryError as error:
            session.rollback()
            self.fail(error.message)
        finally:
            session.close()
            registry.engine.dispose()

    def positional(self, what: str) -> str:
        if len(self.extra_args) != 1:
            self.fail(f"give exactly one {what} (see --help)", 2)
        return self.extra_args[0]

    def positionals(self, *what: str) -> list[str]:
        if len(self.extra_args) != len(what):
            self.fail(f"give {' and '.join(what)} (see --help)", 2)
        return list(self.extra_args)

    def required(self, value: str, option: str) -> str:
        if not value:
            self.fail(f"--{option} is required", 2)
        return value


class CreateUserCommand(AdminSubcommand):
    """Create a user: ``admin create-user NAME [--admin] [--staff] [--robot] [--require-terms]``; the
    operator accepts the terms of service on a person's behalf, so their tokens work at once, unless
    ``--require-terms`` leaves that to the person (robots never need to)."""

    description = __doc__
    admin = Bool(False, config=True, help="Make the user an administrator.")
    staff = Bool(False, config=True, help="Make the user registry staff.")
    robot = Bool(False, config=True, help="A robot account: tokens only, no sign-in.")
    require_terms = Bool(
        False,
        config=True,
        help="The person must accept the terms of service on the web pages before their tokens work "
        "(else the operator accepts them on the person's behalf).",
    )
    flags = {
        "admin": ({"CreateUserCommand": {"admin": True}}, "Make the user an administrator."),
        "staff": ({"CreateUserCommand": {"staff": True}}, "Make the user registry staff."),
        "robot": ({"CreateUserCommand": {"robot": True}}, "A robot account (tokens only)."),
        "require-terms": (
            {"CreateUserCommand": {"require_terms": True}},
            "The person must accept the terms of service at /terms before their tokens work.",
        ),
        "terms-accepted": (
            {"CreateUserCommand": {"require_terms": False}},
            "Record the terms of service as accepted on the person's behalf (the default).",
        ),
    }

    def run(self, registry, session) -> None:  # type: ignore[no-untyped-def]
        name = self.positional("user name")
        user = users.create_user(session, name, admin=self.admin, staff=self.staff, robot=self.robot)
        kind = " (robot: tokens only)" if self.robot else " (admin)" if self.admin else " (staff)" if self.staff else ""
        detail: dict[str, object] = {"user": name, "admin": self.admin}
        if self.robot or not registry.terms_of_service:
            note = ""
        elif self.require_terms:
            note = "; they must sign in and accept the terms of service at /terms before their tokens work"
        else:
            user.terms_accepted_at = utcnow()
            detail["terms"] = "accepted by the operator"
            note = "; the terms of service are recorded as accepted on their behalf (--require-terms leaves it to them)"
        audit.record(session, "admin.create-user", ADMIN, detail=detail)
        print(f"created user {user.name}{kind}{note}")


class CreateTokenCommand(AdminSubcommand):
    """Create an API token for a user and print it (the last line is the token)."""

    description = __doc__
    scope = Enum(["read", "write", "admin"], "write", config=True, help="What the token may do.")
    expires_in = Float(None, allow_none=True, config=True, help="Days until the token expires.")
    token_name = Unicode("cli", config=True, help="A name to recognise the token by.")
    aliases = {
        **common_aliases,
        "scope": "CreateTokenCommand.scope",
        "expires-in": "CreateTokenCommand.expires_in",
        "name": "CreateTokenCommand.token_name",
    }

    def run(self, registry, session) -> None:  # type: ignore[no-untyped-def]
        user = users.get_user(session, self.positional("user name"))
        row, token = users.create_token(
            session,
            user,
            registry.secret_key,
            name=self.token_name,
            scope=self.scope,
            expires_in_days=self.expires_in,
        )
        expiry = f", expires {row.expires_at:%Y-%m-%d %H:%M} UTC" if row.expires_at else ""
        print(f"token {row.name!r} for {user.name} (scope {row.scope}{expiry}); it is shown only once:")
        print(token)


class GcCommand(AdminSubcommand):
    """Remove blobs no image references, once they are older than the grace period, and abandoned uploads
    (sessions that ended or expired, and stored bytes no live upload owns that were not written to for
    the upload idle time)."""

    description = __doc__
    dry_run = Bool(False, config=True, help="Only report what would be removed.")
    grace_hours = Float(
        gc.DEFAULT_GRACE.total_seconds() / 3600,
        config=True,
        help="Keep unreferenced blobs younger than this, so uploads in flight survive.",
    )
    upload_idle_hours = Float(
        gc.DEFAULT_UPLOAD_IDLE.total_seconds() / 3600,
        config=True,
        help="Remove stored bytes of unfinished uploads that no open session owns once unwritten this long.",
    )
    flags = {"dry-run": ({"GcCommand": {"dry_run": True}}, "Only report what would be removed.")}
    aliases = {
        **common_aliases,
        "grace-hours": "GcCommand.grace_hours",
        "upload-idle-hours": "GcCommand.upload_idle_hours",
    }

    def run(self, registry, session) -> None:  # type: ignore[no-untyped-def]
        report = gc.collect(
            session,
            registry.store,
            grace=dt.timedelta(hours=self.grace_hours),
            dry_run=self.dry_run,
            upload_idle=dt.timedelta(hours=self.upload_idle_hours),
        )
        verb = "would remove" if self.dry_run else "removed"
        print(
            f"{verb} {len(report.removed)} blobs ({report.freed_bytes} bytes); "
            f"{report.kept_in_grace} unreferenced blobs kept within the grace period"
        )
        for digest in report.removed:
            print(f"  {digest}")
        held = sum(u.size for u in report.uploads)
        print(
            f"{verb} {len(report.uploads)} abandoned uploads ({held} bytes) and {report.sessions_removed} "
            f"finished upload sessions; {report.live_uploads} uploads in progress kept"
        )
        for upload in report.uploads:
            print(f"  upload {upload.upload_id}: {upload.size} bytes, {upload.reason}")


class SetPasswordCommand(AdminSubcommand):
    """Set a user's password for signing in to the web pages; it is read from standard input, never from the
    command line (where other users of the machine could see it): ``echo "$PW" | admin set-password NAME``."""

    description = __doc__

    def run(self, registry, session) -> None:  # type: ignore[no-untyped-def]
        user = users.get_user(session, self.positional("user name"))
        if user.is_robot:
            raise InvalidInput(f"{user.name} is a robot account: robots use tokens and never sign in")
        password = read_new_password()
        problem = passwords.password_problem(password)
        if problem:
            raise InvalidInput(problem)
        user.password_hash = passwords.hash_password(password)
        user.session_epoch += 1
        audit.record(session, "admin.set-password", ADMIN, detail={"user": user.name})
        print(f"set the password of {user.name}; their browser sessions have ended")


def read_new_password() -> str:
    """The password from a prompt (asked twice) on a terminal, else the first line of standard input."""
    if sys.stdin.isatty():
        first = getpass.getpass("New password: ")
        if getpass.getpass("Again: ") != first:
            raise InvalidInput("the two passwords are not the same")
        return first
    return sys.stdin.readline().removesuffix("\n").removesuffix("\r")


def find_collection(session: Session, name: str) -> Collection:
    collection = collections.find_collection(session, name)
    if collection is None:
        raise NotFound(f"no collection {name!r}")
    return collection


def find_team(session: Session, name: str) -> Team:
    team = teams.find_team(session, name)
    if team is None:
        raise NotFound(f"no team {name!r}")
    return team


class CreateCollectionCommand(AdminSubcommand):
    """Create a collection owned by a user, whatever the rules on who may create collections:
    ``admin create-collection NAME --owner USER [--private]``."""

    description = __doc__
    owner = Unicode("", config=True, help="The user who owns the new collection.")
    private = Bool(False, config=True, help="Make the collection private (else the registry's default).")
    aliases = {**common_aliases, "owner": "CreateCollectionCommand.owner"}
    flags = {"private": ({"CreateCollectionCommand": {"private": True}}, "Make the collection private.")}

    def run(self, registry, session) -> None:  # type: ignore[no-untyped-def]
        name = self.positional("collection name")
        owner = users.get_user(session, self.required(self.owner, "owner"))
        collection = members.create_owned_collection(
            session, name, owner, private=True if self.private else None, policy=registry.policy
        )
        detail = {"owner": owner.name, "private": collection.private}
        audit.record(session, "admin.create-collection", ADMIN, collection=name, detail=detail)
        print(f"created {'private' if collection.private else 'public'} collection {name}, owned by {owner.name}")


class CollectionRoleCommand(AdminSubcommand):
    """Give a user a role in a collection, whether or not they share a team with its owners."""

    role = Role.OWNER

    def run(self, registry, session) -> None:  # type: ignore[no-untyped-def]
        collection_name, username = self.positionals("a collection", "a user")
        collection = find_collection(session, collection_name)
        user = users.get_user(session, username)
        if not members.assign(session, collection, user, self.role):
            print(f"{user.name} is already {self.role.value} of {collection.name}")
            return
        detail = {"user": user.name, "role": self.role.value}
        audit.record(session, "admin.set-role", ADMIN, collection=collection.name, detail=detail)
        print(f"{user.name} is now {self.role.value} of {collection.name}")


class AddOwnerCommand(CollectionRoleCommand):
    """Make a user an owner of a collection: ``admin add-owner COLLECTION USER``."""

    description = __doc__
    role = Role.OWNER


class AddContributorCommand(CollectionRoleCommand):
    """Make a user a contributor (pull, private included) of a collection: ``admin add-contributor COLLECTION USER``."""

    description = __doc__
    role = Role.CONTRIBUTOR


class RemoveMemberCommand(AdminSubcommand):
    """Take a user's role in a collection away (a collection keeps its last owner):
    ``admin remove-member COLLECTION USER``."""

    description = __doc__

    def run(self, registry, session) -> None:  # type: ignore[no-untyped-def]
        collection_name, username = self.positionals("a collection", "a user")
        collection = find_collection(session, collection_name)
        user = users.get_user(session, username)
        members.revoke(session, collection, user)
        audit.record(session, "admin.remove-member", ADMIN, collection=collection.name, detail={"user": user.name})
        print(f"{user.name} no longer has a role in {collection.name}")


class CreateTeamCommand(AdminSubcommand):
    """Create a team owned by a user: ``admin create-team NAME --owner USER [--open]``."""

    description = __doc__
    owner = Unicode("", config=True, help="The user who owns the new team.")
    open_team = Bool(False, config=True, help="Let anyone join the team (else invitations only).")
    aliases = {**common_aliases, "owner": "CreateTeamCommand.owner"}
    flags = {"open": ({"CreateTeamCommand": {"open_team": True}}, "Let anyone join the team.")}

    def run(self, registry, session) -> None:  # type: ignore[no-untyped-def]
        name = self.positional("team name")
        owner = users.get_user(session, self.required(self.owner, "owner"))
        team = teams.insert_team(session, name, owner, open_=self.open_team)
        audit.record(session, "admin.create-team", ADMIN, detail={"team": name, "owner": owner.name, "open": team.open})
        print(f"created {'open' if team.open else 'invite-only'} team {name}, owned by {owner.name}")


class AddTeamMemberCommand(AdminSubcommand):
    """Add a user to a team as a member: ``admin add-team-member TEAM USER``."""

    description = __doc__

    def run(self, registry, session) -> None:  # type: ignore[no-untyped-def]
        team_name, username = self.positionals("a team", "a user")
        team = find_team(session, team_name)
        user = users.get_user(session, username)
        teams.grant(session, team, user, TeamRole.MEMBER)
        audit.record(session, "admin.add-team-member", ADMIN, detail={"team": team.name, "user": user.name})
        print(f"{user.name} is now a member of team {team.name}")


def table(headers: list[str], rows: list[list[str]]) -> str:
    """Rows as aligned columns under a header line."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    lines = [headers, ["-" * w for w in widths], *rows]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines)


def user_rows(session: Session) -> list[list[str]]:
    def kind(user: User) -> str:
        return "admin" if user.is_admin else "staff" if user.is_staff else "robot" if user.is_robot else "user"

    found = session.scalars(select(User).order_by(User.name))
    return [[u.name, kind(u), f"{u.created_at:%Y-%m-%d}"] for u in found]


def team_rows(session: Session) -> list[list[str]]:
    rows = []
    for team in session.scalars(select(Team).order_by(Team.name)):
        people = teams.memberships(session, team)
        owners = ",".join(m.user.name for m in people if m.role is TeamRole.OWNER)
        rows.append([team.name, "open" if team.open else "invite-only", owners, str(len(people))])
    return rows


def collection_rows(session: Session) -> list[list[str]]:
    summaries = collections.summarise_all(session)
    contributors = collections.names_with_role(session, [s.collection.id for s in summaries], Role.CONTRIBUTOR)
    return [
        [
            summary.collection.name,
            "private" if summary.collection.private else "public",
            ",".join(summary.owners),
            ",".join(contributors[summary.collection.id]),
            str(summary.containers),
            str(summary.images),
            str(summary.size),
        ]
        for summary in summaries
    ]


LISTINGS = {
    "users": (["NAME", "KIND", "CREATED"], user_rows),
    "teams": (["NAME", "JOINING", "OWNERS", "MEMBERS"], team_rows),
    "collections": (
        ["NAME", "PRIVACY", "OWNERS", "CONTRIBUTORS", "CONTAINERS", "IMAGES", "BYTES"],
        collection_rows,
    ),
}


class ListCommand(AdminSubcommand):
    """List users, teams or collections as a table: ``admin list users|teams|collections``."""

    description = __doc__

    def run(self, registry, session) -> None:  # type: ignore[no-untyped-def]
        what = self.positional("of users, teams or collections")
        if what not in LISTINGS:
            raise InvalidInput(f"list one of {', '.join(LISTINGS)}, not {what!r}")
        headers, rows = LISTINGS[what]
        print(table(headers, rows(session)))


class AdminCommand(RegistryApp):
    """Administer users, tokens, collections, teams and storage."""

    description = __doc__
    subcommands = {
        "create-user": (CreateUserCommand, CreateUserCommand.__doc__),
        "create-token": (CreateTokenCommand, CreateTokenCommand.__doc__),
        "gc": (GcCommand, GcCommand.__doc__),
        "set-password": (SetPasswordCommand, SetPasswordCommand.__doc__),
        "create-collection": (CreateCollectionCommand, CreateCollectionCommand.__doc__),
        "add-owner": (AddOwnerCommand, AddOwnerCommand.__doc__),
        "add-contributor": (AddContributorCommand, AddContributorCommand.__doc__),
        "remove-member": (RemoveMemberCommand, RemoveMemberCommand.__doc__),
        "create-team": (CreateTeamCommand, CreateTeamCommand.__doc__),
        "add-team-member": (AddTeamMemberCommand, AddTeamMemberCommand.__doc__),
        "list": (ListCommand, ListCommand.__doc__),
    }
