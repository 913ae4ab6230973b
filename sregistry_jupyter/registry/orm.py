"""The data model (SQLAlchemy 2, typed).

Collections are the namespace (``dinosaur``), containers live in a collection (``dinosaur/avocado``),
images are the SIF files pushed to a container (one row per container and digest), and tags point at
images per architecture. Blobs are the stored bytes, shared by every image with the same digest.
The schema itself is created and upgraded by the Alembic migrations beside this module.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """Naive UTC timestamps: SQLite has no time zones, and every column here is UTC."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def name_search_index(table: str) -> Index:
    """The index that name searches (``LIKE '%x%'``) use: trigram GIN on PostgreSQL, a B-tree elsewhere."""
    return Index(f"ix_{table}_name_trgm", "name", postgresql_using="gin", postgresql_ops={"name": "gin_trgm_ops"})


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, int: Integer}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    is_admin: Mapped[bool] = mapped_column(default=False)
    is_staff: Mapped[bool] = mapped_column(default=False)
    is_robot: Mapped[bool] = mapped_column(default=False)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(255))
    session_epoch: Mapped[int] = mapped_column(default=0, server_default="0")
    terms_accepted_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    disabled_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user", cascade="all, delete-orphan")


class BrowserSession(Base):
    """A signed-in browser. The cookie holds a random key and only its hash is stored, so signing out
    (deleting the row) ends that session on the server, whatever copies of the cookie exist; the epoch
    ties it to the user's ``session_epoch``, which "sign out everywhere" and a new password advance."""

    __tablename__ = "browser_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    epoch: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)

    user: Mapped[User] = relationship()


class UserIdentity(Base):
    """A link from an outside identity (JupyterHub, GitHub, an OIDC provider) to a registry user."""

    __tablename__ = "user_identities"
    __table_args__ = (UniqueConstraint("provider", "subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class ApiToken(Base):
    """An API token. Only its SHA-256 is stored; ``key_id`` is the public half used to find the row."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    salt: Mapped[str] = mapped_column(String(64))
    hashed: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    user: Mapped[User] = relationship(back_populates="tokens")


class Collection(Base):
    __tablename__ = "collections"
    __table_args__ = (
        name_search_index("collections"),
        Index("ix_collections_created_at", "created_at"),
        Index("ix_collections_updated_at", "updated_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    private: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    members: Mapped[list[CollectionMember]] = relationship(back_populates="collection", cascade="all, delete-orphan")
    containers: Mapped[list[Container]] = relationship(back_populates="collection", cascade="all, delete-orphan")


class CollectionUsage(Base):
    """How many uploaded images a collection holds and their size (migration 0005), and how many containers and
    stars it has (0008), kept by database triggers whenever an image, a container or a star changes, so that
    listings read four numbers instead of counting."""

    __tablename__ = "collection_usage"

    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True)
    images: Mapped[int] = mapped_column(default=0, server_default="0")
    size: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    containers: Mapped[int] = mapped_column(default=0, server_default="0")
    stars: Mapped[int] = mapped_column(default=0, server_default="0")


class CollectionMember(Base):
    """A user's role in a collection: ``owner`` (push, manage) or ``contributor`` (pull)."""

    __tablename__ = "collection_members"
    __table_args__ = (UniqueConstraint("collection_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))

    collection: Mapped[Collection] = relationship(back_populates="members")
    user: Mapped[User] = relationship()


class Container(Base):
    __tablename__ = "containers"
    __table_args__ = (UniqueConstraint("collection_id", "name"), name_search_index("containers"))

    id: Mapped[int] = mapped_column(primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    collection: Mapped[Collection] = relationship(back_populates="containers")
    images: Mapped[list[Image]] = relationship(back_populates="container", cascade="all, delete-orphan")
    tags: Mapped[list[Tag]] = relationship(back_populates="container", cascade="all, delete-orphan")


class Blob(Base):
    """Stored bytes, addressed by digest. Any number of images may share one blob."""

    __tablename__ = "blobs"

    digest: Mapped[str] = mapped_column(String(71), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Image(Base):
    """One SIF file in a container. ``uploaded`` turns true only once its blob is committed."""

    __tablename__ = "images"
    __table_args__ = (
        UniqueConstraint("container_id", "digest"),
        Index("ix_images_container_listing", "container_id", "uploaded", "uploaded_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    container_id: Mapped[int] = mapped_column(ForeignKey("containers.id", ondelete="CASCADE"), index=True)
    digest: Mapped[str] = mapped_column(String(71), index=True)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    arch: Mapped[str] = mapped_column(String(16), default="amd64")
    description: Mapped[str] = mapped_column(Text, default="")
    uploaded: Mapped[bool] = mapped_column(default=False)
    signed: Mapped[bool] = mapped_column(default=False)
    sif: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    downloads: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    uploaded_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    container: Mapped[Container] = relationship(back_populates="images")
    tags: Mapped[list[Tag]] = relationship(back_populates="image", cascade="all, delete-orphan")


class Tag(Base):
    """A name for an image, unique per container and architecture."""

    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("container_id", "name", "arch"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    container_id: Mapped[int] = mapped_column(ForeignKey("containers.id", ondelete="CASCADE"), index=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    arch: Mapped[str] = mapped_column(String(16))
    frozen: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    container: Mapped[Container] = relationship(back_populates="tags")
    image: Mapped[Image] = relationship(back_populates="tags")


class ImageLabel(Base):
    """One SIF label of an image (non-string values as their JSON text), copied from ``images.sif`` by
    triggers (migration 0007) so that the shub label search reads an index rather than every image's JSON."""

    __tablename__ = "image_labels"
    __table_args__ = (
        Index("ix_image_labels_key_trgm", "key", postgresql_using="gin", postgresql_ops={"key": "gin_trgm_ops"}),
        Index("ix_image_labels_value_trgm", "value", postgresql_using="gin", postgresql_ops={"value": "gin_trgm_ops"}),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(Text)
    value: Mapped[str] = mapped_column(Text)


class Star(Base):
    __tablename__ = "stars"
    __table_args__ = (UniqueConstraint("user_id", "collection_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    open: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class TeamMember(Base):
    __tablename__ = "team_members"
    __table_args__ = (UniqueConstraint("team_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))


class Invitation(Base):
    """A single-use, expiring invitation into a team; only the code's hash is stored."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    used_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class UploadSession(Base):
    """An upload that spans several requests: the library client's single-part and multipart uploads,
    and tus uploads (``kind``). Its bytes live in the blob store under its id, its state here, so any
    registry process can take the next request.

    ``state`` runs ``open`` → ``completing`` → ``done`` (or ``failed``/``aborted``). ``writers`` counts
    the part writers open on it; a session moves to ``completing`` only while it is zero, and no writer
    opens once it has left ``open``: that is the lock that keeps every write away from a published blob.
    ``generation`` numbers the writes (each write's ETag), so a hash kept in memory can tell whether
    any other write touched the bytes it covers. ``received`` is how many bytes arrived (a tus
    upload's offset); ``meta`` holds what a tus upload declared (its collection, container, tags,
    description and file name).
    """

    __tablename__ = "upload_sessions"
    __table_args__ = (Index("ix_upload_sessions_state_updated_at", "state", "updated_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    image_id: Mapped[int | None] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    declared_size: Mapped[int] = mapped_column(BigInteger)
    declared_digest: Mapped[str | None] = mapped_column(String(71))
    state: Mapped[str] = mapped_column(String(16), default="open")
    parts: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    writers: Mapped[int] = mapped_column(default=0, server_default="0")
    generation: Mapped[int] = mapped_column(default=0, server_default="0")
    received: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)


class UploadPart(Base):
    """A write that reached an upload: a multipart part that arrived whole (``number`` is the part's),
    or one tus PATCH (``number`` is its generation). Its place, its ETag (the generation of the write,
    the token a library client returns at completion) and, when it was hashed in order, the sha256 of
    the upload up to its end."""

    __tablename__ = "upload_parts"

    upload_id: Mapped[str] = mapped_column(ForeignKey("upload_sessions.id", ondelete="CASCADE"), primary_key=True)
    number: Mapped[int] = mapped_column(primary_key=True)
    offset: Mapped[int] = mapped_column(BigInteger)
    size: Mapped[int] = mapped_column(BigInteger)
    etag: Mapped[str] = mapped_column(String(80))
    prefix_sha256: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Event(Base):
    """The audit trail: pushes, pulls, deletes and administrative actions."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_action_at", "action", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    action: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    username: Mapped[str | None] = mapped_column(String(64))
    collection: Mapped[str | None] = mapped_column(String(128), index=True)
    container: Mapped[str | None] = mapped_column(String(128))
    tag: Mapped[str | None] = mapped_column(String(128))
    digest: Mapped[str | None] = mapped_column(String(71))
    size: Mapped[int | None] = mapped_column(BigInteger)
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Share(Base):
    """A download link for one image that works without signing in until it expires."""

    __tablename__ = "shares"

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    hashed: Mapped[str] = mapped_column(String(64))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
    downloads: Mapped[int] = mapped_column(default=0)


class Counter(Base):
    """A count within a time window (rate and pull limits), shared by every registry process."""

    __tablename__ = "counters"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    count: Mapped[int] = mapped_column(default=0)


class Generation(Base):
    """A number that database triggers bump whenever facts of one kind change (migration 0006), so that a
    process can keep those facts in memory and notice, by reading one row, when what it keeps is stale."""

    __tablename__ = "generations"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
