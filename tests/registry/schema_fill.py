"""Fill a database at any schema revision with a registry's worth of data, and read it back.

The rows are written as SQL valid for the revision the database is at: the schema is reflected from the
database itself, columns that revision does not have are left out, and a column it has that the rows
below do not name gets a value made from its type. A table the rows below do not know (one a later
migration adds) gets a row of such values, its foreign keys pointing at rows already there. So every
table of every revision holds data before an upgrade, with no change here when a migration is added.

Ids are assigned by the database, as in real use, so that sequences stay where the rows left them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import secrets
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Engine, Integer, MetaData, String, Table, Text, select
from sqlalchemy import types as sqltypes

from sregistry_jupyter.registry import tokens
from sregistry_jupyter.registry.auth import passwords
from sregistry_jupyter.registry.services.search import is_search_table
from tests.conftest import SECRET

CREATED = dt.datetime(2026, 1, 5, 12, 0, 0)
FAR = dt.datetime(2100, 1, 1)
PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Ref:
    """The id of a row inserted earlier, by its table and label."""

    table: str
    label: str


@dataclass
class Filled:
    """What was written: each row as read back after inserting it, and the secrets that go with it."""

    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    ids: dict[tuple[str, str], Any] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    share: str | None = None
    invitation: str | None = None

    def has(self, table: str) -> bool:
        return bool(self.rows.get(table))


def known_rows(image: bytes) -> list[tuple[str, str, dict[str, Any]]]:
    """``(table, label, values)`` for the newest schema this file knows, parents before children."""
    digest = "sha256." + hashlib.sha256(image).hexdigest()
    sif = {"partitions": [{"arch": "amd64", "parttype": "Primary System"}], "labels": {"maintainer": "Ada"}}
    rows: list[tuple[str, str, dict[str, Any]]] = []

    def person(label: str, **flags: Any) -> None:
        rows.append(
            (
                "users",
                label,
                {
                    "name": label,
                    "is_admin": flags.get("admin", False),
                    "is_staff": False,
                    "is_robot": flags.get("robot", False),
                    "password_hash": None if flags.get("robot") else passwords.hash_password(PASSWORD),
                    "email": f"{label}@example.org",
                    "session_epoch": 0,
                    "terms_accepted_at": None if flags.get("robot") else CREATED,
                    "created_at": CREATED,
                },
            )
        )

    person("alice")
    person("bob")
    person("root", admin=True)
    person("ci-bot", robot=True)
    rows.append(
        (
            "user_identities",
            "alice-github",
            {"user_id": Ref("users", "alice"), "provider": "github", "subject": "583231", "created_at": CREATED},
        )
    )

    def token(label: str, user: str, scope: str, **when: Any) -> None:
        key_id, salt, value = tokens.generate(SECRET)
        rows.append(
            (
                "api_tokens",
                label,
                {
                    "user_id": Ref("users", user),
                    "name": label,
                    "key_id": key_id,
                    "salt": salt,
                    "hashed": tokens.hash_token(value),
                    "scope": scope,
                    "created_at": CREATED,
                    "expires_at": when.get("expires_at"),
                    "last_used_at": CREATED,
                    "revoked_at": when.get("revoked_at"),
                    "_secret": value,
                },
            )
        )

    token("alice-write", "alice", "write")
    token("robot-write", "ci-bot", "write")
    token("bob-revoked", "bob", "write", revoked_at=CREATED)
    token("bob-expired", "bob", "read", expires_at=CREATED)
    token("bob-read", "bob", "read", expires_at=FAR)

    rows.append(("teams", "group", {"name": "group", "description": "Our group", "open": False, "created_at": CREATED}))
    rows.append(
        (
            "team_members",
            "group-alice",
            {"team_id": Ref("teams", "group"), "user_id": Ref("users", "alice"), "role": "owner"},
        )
    )
    rows.append(
        (
            "team_members",
            "group-bob",
            {"team_id": Ref("teams", "group"), "user_id": Ref("users", "bob"), "role": "member"},
        )
    )
    invitation_secret = secrets.token_urlsafe(32)
    rows.append(
        (
            "invitations",
            "group-invite",
            {
                "team_id": Ref("teams", "group"),
                "code_hash": tokens.hash_token(invitation_secret),
                "created_by_id": Ref("users", "alice"),
                "created_at": CREATED,
                "expires_at": FAR,
                "used_at": None,
                "used_by_id": None,
                "_secret": invitation_secret,
            },
        )
    )

    for name, private in (("lab", False), ("vault", True)):
        rows.append(
            (
                "collections",
                name,
                {
                    "name": name,
                    "description": f"the {name}",
                    "private": private,
                    "created_at": CREATED,
                    "updated_at": CREATED,
                },
            )
        )
    for collection, user, role in (
        ("lab", "alice", "owner"),
        ("lab", "bob", "contributor"),
        ("vault", "alice", "owner"),
    ):
        rows.append(
            (
                "collection_members",
                f"{collection}-{user}",
                {"collection_id": Ref("collections", collection), "user_id": Ref("users", user), "role": role},
            )
        )
    for collection, name in (("lab", "tools"), ("vault", "hidden")):
        rows.append(
            (
                "containers",
                name,
                {
                    "collection_id": Ref("collections", collection),
                    "name": name,
                    "description": f"{name} for the {collection}",
                    "created_at": CREATED,
                    "updated_at": CREATED,
                },
            )
        )
    rows.append(("blobs", "image", {"digest": digest, "size": len(image), "created_at": CREATED}))
    for container in ("tools", "hidden"):
        rows.append(
            (
                "images",
                container,
                {
                    "container_id": Ref("containers", container),
                    "digest": digest,
                    "size": len(image),
                    "arch": "amd64",
                    "description": "an image",
                    "uploaded": True,
                    "signed": False,
                    "sif": sif,
                    "downloads": 3,
                    "created_at": CREATED,
                    "uploaded_at": CREATED,
                    "uploaded_by_id": Ref("users", "alice"),
                },
            )
        )
    for container, tag, frozen in (("tools", "latest", False), ("tools", "v1", True), ("hidden", "latest", False)):
        rows.append(
            (
                "tags",
                f"{container}-{tag}",
                {
                    "container_id": Ref("containers", container),
                    "image_id": Ref("images", container),
                    "name": tag,
                    "arch": "amd64",
                    "frozen": frozen,
                    "updated_at": CREATED,
                },
            )
        )
    rows.append(
        (
            "stars",
            "bob-lab",
            {"user_id": Ref("users", "bob"), "collection_id": Ref("collections", "lab"), "created_at": CREATED},
        )
    )
    share_key = tokens.new_key_id()
    share = f"shr_{share_key}_{secrets.token_urlsafe(32)}"
    rows.append(
        (
            "shares",
            "tools",
            {
                "image_id": Ref("images", "tools"),
                "key_id": share_key,
                "hashed": tokens.hash_token(share),
                "created_by_id": Ref("users", "alice"),
                "created_at": CREATED,
                "expires_at": FAR,
                "downloads": 1,
                "_secret": share,
            },
        )
    )
    rows.append(
        (
            "upload_sessions",
            "open",
            {
                "id": "f" * 32,
                "user_id": Ref("users", "alice"),
                "image_id": Ref("images", "tools"),
                "kind": "multipart",
                "declared_size": len(image),
                "declared_digest": digest,
                "state": "open",
                "parts": {"1": "etag"},
                "created_at": CREATED,
                "expires_at": FAR,
            },
        )
    )
    rows.append(
        (
            "events",
            "push",
            {
                "at": CREATED,
                "action": "push",
                "user_id": Ref("users", "alice"),
                "username": "alice",
                "collection": "lab",
                "container": "tools",
                "tag": "latest",
                "digest": digest,
                "size": len(image),
                "remote_addr": "192.0.2.7",
                "detail": {"via": "library"},
            },
        )
    )
    rows.append(
        (
            "events",
            "sign-in",
            {
                "at": CREATED,
                "action": "user.sign-in",
                "user_id": Ref("users", "bob"),
                "username": "bob",
                "remote_addr": "192.0.2.8",
            },
        )
    )
    rows.append(("counters", "requests", {"key": "requests:token:1", "window": 29473920, "count": 17}))
    return rows


_sequence = itertools.count(1)
# Tables whose rows the database derives from others (by triggers): they fill themselves.
DERIVED = {"collection_usage", "image_labels"}


def made_up(table: Table, column: Any) -> Any:
    """A value of ``column``'s type for a row the known rows do not describe."""
    n = next(_sequence)
    kind = column.type
    if isinstance(kind, Boolean):
        return False
    if isinstance(kind, Integer):
        return n
    if isinstance(kind, DateTime):
        return CREATED
    if isinstance(kind, JSON):
        return {"filled": n}
    if isinstance(kind, String | Text):
        value = f"{table.name[:8]}-{column.name[:8]}-{n}"
        return value[: kind.length] if getattr(kind, "length", None) else value
    if isinstance(kind, sqltypes.Numeric):
        return n
    raise TypeError(f"no made-up value for {table.name}.{column.name} of type {kind!r}: teach schema_fill.made_up")


def needs_value(column: Any) -> bool:
    """Whether an insert must name the column: NOT NULL, no server default, not a generated integer id."""
    generated_id = column.primary_key and isinstance(column.type, Integer) and len(column.table.primary_key) == 1
    return not column.nullable and column.server_default is None and not generated_id


def fill(engine: Engine, image: bytes) -> Filled:
    """Write the known rows (and made-up rows for unknown tables) into the database as it is now."""
    metadata = MetaData()
    metadata.reflect(engine)
    known: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for table_name, label, values in known_rows(image):
        known.setdefault(table_name, []).append((label, values))
    filled = Filled()
    with engine.begin() as connection:
        for table in metadata.sorted_tables:
            if table.name == "alembic_version" or table.name in DERIVED or is_search_table(table.name):
                continue
            wanted = known.get(table.name) or [("made-up", {})]
            for label, values in wanted:
                row = {}
                for column in table.columns:
                    if column.name in values:
                        value = values[column.name]
                        row[column.name] = filled.ids[(value.table, value.label)] if isinstance(value, Ref) else value
                    elif column.foreign_keys:
                        parent = next(iter(column.foreign_keys)).column.table.name
                        row[column.name] = next(v for (t, _), v in filled.ids.items() if t == parent)
                    elif needs_value(column):
                        row[column.name] = made_up(table, column)
                result = connection.execute(table.insert().values(row))
                key = result.inserted_primary_key
                where = [column == value for column, value in zip(table.primary_key.columns, key, strict=True)]
                stored = connection.execute(select(table).where(*where)).mappings().one()
                filled.rows.setdefault(table.name, []).append(dict(stored))
                filled.ids[(table.name, label)] = key[0]
                secret = values.get("_secret")
                if table.name == "api_tokens":
                    filled.tokens[label] = secret
                elif table.name == "shares":
                    filled.share = secret
                elif table.name == "invitations" and secret:
                    filled.invitation = f"{filled.ids[('teams', 'group')]}.{key[0]}.{secret}"
    return filled


def missing_or_changed(engine: Engine, filled: Filled) -> list[str]:
    """Every filled row that is gone or whose values changed (in the columns it still has)."""
    metadata = MetaData()
    metadata.reflect(engine)
    problems = []
    with engine.connect() as connection:
        for table_name, rows in filled.rows.items():
            table = metadata.tables.get(table_name)
            if table is None:
                problems.append(f"table {table_name} is gone")
                continue
            for before in rows:
                where = [column == before[column.name] for column in table.primary_key.columns]
                after = connection.execute(select(table).where(*where)).mappings().one_or_none()
                if after is None:
                    problems.append(f"{table_name} row {before} is gone")
                    continue
                changed = {
                    name: (value, after[name])
                    for name, value in before.items()
                    if name in after and after[name] != value
                }
                if changed:
                    problems.append(f"{table_name} row {before} changed: {changed}")
    return problems
