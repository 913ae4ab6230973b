"""``sregistry-jupyter admin ...``: staff commands that work on the same database and storage as a
running server (SQLite in WAL mode lets both write)."""

from __future__ import annotations

import datetime as dt

from traitlets import Bool, Enum, Float, Unicode

from .access import Principal
from .app import RegistryApp, common_aliases
from .errors import RegistryError
from .orm import utcnow
from .services import audit, gc, users

ADMIN = Principal(None, "admin")


class AdminSubcommand(RegistryApp):
    aliases = common_aliases
    subcommands = {}

    def start(self) -> None:
        registry = self.open_registry()
        session = registry.session_factory()
        try:
            self.run(registry, session)
            session.commit()
        except RegistryError as error:
            session.rollback()
            self.log.critical("%s", error.message)
            self.exit(1)
        finally:
            session.close()
            registry.engine.dispose()

    def positional(self, what: str) -> str:
        if len(self.extra_args) != 1:
            self.log.critical("give exactly one %s", what)
            self.exit(2)
        return self.extra_args[0]


class CreateUserCommand(AdminSubcommand):
    """Create a user: ``admin create-user NAME [--admin] [--staff] [--robot]``."""

    description = __doc__
    admin = Bool(False, config=True, help="Make the user an administrator.")
    staff = Bool(False, config=True, help="Make the user registry staff.")
    robot = Bool(False, config=True, help="A robot account: tokens only, no sign-in.")
    terms_accepted = Bool(
        False, config=True, help="The person accepted the terms of service outside the registry (e.g. on paper)."
    )
    flags = {
        "admin": ({"CreateUserCommand": {"admin": True}}, "Make the user an administrator."),
        "staff": ({"CreateUserCommand": {"staff": True}}, "Make the user registry staff."),
        "robot": ({"CreateUserCommand": {"robot": True}}, "A robot account (tokens only)."),
        "terms-accepted": (
            {"CreateUserCommand": {"terms_accepted": True}},
            "The person accepted the terms of service outside the registry.",
        ),
    }

    def run(self, registry, session) -> None:  # type: ignore[no-untyped-def]
        name = self.positional("user name")
        user = users.create_user(session, name, admin=self.admin, staff=self.staff, robot=self.robot)
        if self.terms_accepted:
            user.terms_accepted_at = utcnow()
        audit.record(session, "admin.create-user", ADMIN, detail={"user": name, "admin": self.admin})
        print(f"created user {user.name}" + (" (admin)" if self.admin else ""))


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
    """Remove blobs no image references, once they are older than the grace period."""

    description = __doc__
    dry_run = Bool(False, config=True, help="Only report what would be removed.")
    grace_hours = Float(
        gc.DEFAULT_GRACE.total_seconds() / 3600,
        config=True,
        help="Keep unreferenced blobs younger than this, so uploads in flight survive.",
    )
    flags = {"dry-run": ({"GcCommand": {"dry_run": True}}, "Only report what would be removed.")}
    aliases = {**common_aliases, "grace-hours": "GcCommand.grace_hours"}

    def run(self, registry, session) -> None:  # type: ignore[no-untyped-def]
        report = gc.collect(session, registry.store, grace=dt.timedelta(hours=self.grace_hours), dry_run=self.dry_run)
        verb = "would remove" if self.dry_run else "removed"
        print(
            f"{verb} {len(report.removed)} blobs ({report.freed_bytes} bytes); "
            f"{report.kept_in_grace} unreferenced blobs kept within the grace period"
        )
        for digest in report.removed:
            print(f"  {digest}")


class AdminCommand(RegistryApp):
    """Administer users, tokens and storage."""

    description = __doc__
    subcommands = {
        "create-user": (CreateUserCommand, CreateUserCommand.__doc__),
        "create-token": (CreateTokenCommand, CreateTokenCommand.__doc__),
        "gc": (GcCommand, GcCommand.__doc__),
    }
