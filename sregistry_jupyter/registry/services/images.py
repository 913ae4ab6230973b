"""Images and tags: authorising a push, committing it, resolving references, tagging and deleting.

A push is authorised before any byte is read (``authorize_push``) and recorded only after the blob
store has verified the digest (``commit_push``), so a refused or failed upload changes nothing.
Concurrent pushes of the same collection, container, image or tag race on unique constraints; the
loser retries the whole transaction and finds the winner's rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from ..access import Action, Principal
from ..errors import Conflict, InvalidInput, NotFound
from ..names import is_digest, validate_arch, validate_digest, validate_name, validate_tag
from ..orm import Blob, Collection, Container, Image, Tag, utcnow
from ..storage import BlobInfo
from . import audit
from .collections import (
    check_may_create,
    check_push_into,
    find_collection,
    get_visible,
    new_collection,
    require,
)
from .limits import PullTarget

T = TypeVar("T")
RETRIES = 8
DEFAULT_ARCH = "amd64"


@dataclass(frozen=True)
class PushTarget:
    collection: str
    container: str
    tags: tuple[str, ...]
    arch: str | None


def with_retries(session: Session, work: Callable[[], T]) -> T:
    """Run ``work`` and commit; on a unique-constraint race roll back and run it again."""
    for attempt in range(RETRIES):
        try:
            result = work()
            session.commit()
            return result
        except IntegrityError:
            session.rollback()
            if attempt == RETRIES - 1:
                raise
    raise AssertionError("unreachable")


def authorize_push(
    session: Session,
    principal: Principal,
    collection: str,
    container: str,
    tags: Sequence[str] = (),
    arch: str | None = None,
) -> PushTarget:
    """Check everything about a push that can be checked before its bytes arrive."""
    require(principal, Action.PUSH)
    validate_name(collection, "collection name")
    validate_name(container, "container name")
    tags = tuple(dict.fromkeys(validate_tag(t) for t in tags))
    if arch is not None:
        validate_arch(arch)
    existing = find_collection(session, collection)
    if existing is None:
        check_may_create(session, principal)
    else:
        check_push_into(session, principal, existing)
        frozen = session.scalars(
            select(Tag.name)
            .join(Container)
            .where(
                Container.collection_id == existing.id,
                Container.name == container,
                Tag.name.in_(tags),
                Tag.frozen.is_(True),
                *([Tag.arch == arch] if arch else []),
            )
        ).all()
        if frozen:
            raise Conflict(f"tag {frozen[0]!r} of {collection}/{container} is frozen")
    return PushTarget(collection, container, tags, arch)


def _get_or_create_collection(session: Session, principal: Principal, name: str) -> Collection:
    collection = find_collection(session, name)
    if collection is None:
        collection = new_collection(session, principal, name)
    else:
        check_push_into(session, principal, collection)
    return collection


def get_or_create_container(session: Session, collection: Collection, name: str, description: str = "") -> Container:
    """The container ``name`` of ``collection``, made if missing; an existing one keeps its description."""
    container = session.scalar(
        select(Container).where(Container.collection_id == collection.id, Container.name == name)
    )
    if container is None:
        container = Container(collection_id=collection.id, name=name, description=description)
        session.add(container)
        session.flush()
    return container


def ensure_blob(session: Session, blob: BlobInfo) -> None:
    if session.get(Blob, blob.digest) is None:
        session.add(Blob(digest=blob.digest, size=blob.size))
        session.flush()


def audit_push(
    session: Session, principal: Principal, container: Container, digest: str, size: int, **extra: Any
) -> None:
    """The audit record of a push, alike whichever surface received the bytes (or found them already stored)."""
    audit.record(
        session,
        "push",
        principal,
        collection=container.collection.name,
        container=container.name,
        digest=digest,
        size=size,
        **extra,
    )


def mark_uploaded(image: Image, principal: Principal, size: int, arch: str, sif: dict[str, Any] | None) -> None:
    """Make ``image`` visible as uploaded, with what its bytes say about it and who pushed them, whichever
    surface received the bytes (or found them already stored)."""
    image.size, image.arch, image.sif, image.signed = size, arch, sif, bool((sif or {}).get("signed"))
    image.uploaded, image.uploaded_at = True, utcnow()
    image.uploaded_by_id = principal.user.id if principal.user else None


def set_tag(session: Session, container: Container, image: Image, name: str, arch: str) -> Tag:
    tag = session.scalar(select(Tag).where(Tag.container_id == container.id, Tag.name == name, Tag.arch == arch))
    if tag is None:
        tag = Tag(container_id=container.id, image_id=image.id, name=name, arch=arch)
        session.add(tag)
    elif tag.image_id != image.id:
        if tag.frozen:
            raise Conflict(f"tag {name!r} is frozen")
        tag.image_id = image.id
    tag.updated_at = utcnow()
    session.flush()
    return tag


def commit_push(
    session: Session,
    principal: Principal,
    target: PushTarget,
    blob: BlobInfo,
    *,
    sif: dict[str, Any] | None = None,
    description: str = "",
    remote_addr: str | None = None,
) -> Image:
    """Record a verified blob as an image of ``target`` and point its tags at it."""
    sif_arch = (sif or {}).get("arch")
    if target.arch and sif_arch not in (None, "unknown", target.arch):
        raise InvalidInput(f"the image is built for {sif_arch}, not {target.arch}")
    arch = target.arch or (sif_arch if sif_arch not in (None, "unknown") else DEFAULT_ARCH)

    def work() -> Image:
        collection = _get_or_create_collection(session, principal, target.collection)
        container = get_or_create_container(session, collection, target.container)
        ensure_blob(session, blob)
        image = session.scalar(select(Image).where(Image.container_id == container.id, Image.digest == blob.digest))
        if image is None:
            image = Image(container_id=container.id, digest=blob.digest)
            session.add(image)
        mark_uploaded(image, principal, blob.size, arch, sif)
        if description:
            image.description = description
        session.flush()
        for name in target.tags:
            set_tag(session, container, image, name, arch)
        container.updated_at = collection.updated_at = utcnow()
        audit_push(
            session,
            principal,
            container,
            blob.digest,
            blob.size,
            tag=",".join(target.tags) or None,
            remote_addr=remote_addr,
        )
        return image

    return with_retries(session, work)


def resolve(
    session: Session,
    principal: Principal,
    collection_name: str,
    container_name: str,
    ref: str,
    arch: str | None = None,
    action: Action = Action.PULL,
) -> Image:
    """The uploaded image that ``ref`` (a tag or ``sha256.<hex>``) names, if ``principal`` may see it and
    perform ``action`` on it.

    The image comes with the container and collection that were loaded to check access attached, so that
    ``image.container.collection`` (every pull reads it) costs no more statements: the session's identity map
    holds them only weakly, and they would be gone, and selected again, once this returns."""
    collection = get_visible(session, principal, collection_name, action)
    container = find_container(session, collection, container_name)
    if arch is not None:
        validate_arch(arch)
    if is_digest(ref):
        query = select(Image).where(Image.container_id == container.id, Image.digest == ref)
        if arch:
            query = query.where(Image.arch == arch)
        image = session.scalar(query.where(Image.uploaded.is_(True)))
    else:
        validate_tag(ref)
        query = select(Tag).where(Tag.container_id == container.id, Tag.name == ref).options(joinedload(Tag.image))
        if arch:
            query = query.where(Tag.arch == arch)
        candidates = session.scalars(query).all()
        tag = next((t for t in candidates if t.arch == DEFAULT_ARCH), candidates[0] if candidates else None)
        image = tag.image if tag else None
    if image is None:
        raise NotFound(f"no image {collection_name}/{container_name}:{ref}" + (f" for {arch}" if arch else ""))
    set_committed_value(image, "container", container)
    set_committed_value(container, "collection", collection)
    return image


def find_container(session: Session, collection: Collection, name: str) -> Container:
    """The container ``name`` of ``collection``, as ``get_container`` finds it but without loading its tags:
    resolving one ref (every pull does) needs the container's row alone, and a container may hold
    thousands of tags."""
    validate_name(name, "container name")
    container = session.scalar(
        select(Container).where(Container.collection_id == collection.id, Container.name == name)
    )
    if container is None:
        raise NotFound(f"no container {collection.name}/{name}")
    return container


def list_images(session: Session, container: Container) -> list[Image]:
    """A container's uploaded images, newest first, with their tags loaded in one more query."""
    return list(
        session.scalars(
            select(Image)
            .where(Image.container_id == container.id, Image.uploaded.is_(True))
            .order_by(Image.uploaded_at.desc(), Image.id.desc())
            .options(selectinload(Image.tags))
        )
    )


def tag_image(
    session: Session,
    principal: Principal,
    collection_name: str,
    container_name: str,
    tag: str,
    digest: str,
    arch: str | None = None,
) -> Tag:
    validate_tag(tag)
    validate_digest(digest)
    image = resolve(session, principal, collection_name, container_name, digest, arch, Action.TAG)

    def work() -> Tag:
        result = set_tag(session, image.container, image, tag, image.arch)
        audit.record(
            session, "tag", principal, collection=collection_name, container=container_name, tag=tag, digest=digest
        )
        return result

    return with_retries(session, work)


def untag(
    session: Session,
    principal: Principal,
    collection_name: str,
    container_name: str,
    tag: str,
    arch: str | None = None,
) -> Image:
    """Remove one tag (for one architecture); the image itself stays, reachable by digest."""
    image = resolve(session, principal, collection_name, container_name, tag, arch, Action.DELETE_IMAGE)
    row = session.scalar(select(Tag).where(Tag.image_id == image.id, Tag.name == tag, Tag.arch == image.arch))
    if row is None:
        raise NotFound(f"no tag {tag!r}")
    if row.frozen:
        raise Conflict(f"tag {tag!r} is frozen")
    session.delete(row)
    audit.record(
        session, "untag", principal, collection=collection_name, container=container_name, tag=tag, digest=image.digest
    )
    return image


def delete_image(
    session: Session,
    principal: Principal,
    collection_name: str,
    container_name: str,
    ref: str,
    arch: str | None = None,
) -> Image:
    """Delete an image and all its tags; its blob goes when garbage collection finds it unreferenced."""
    image = resolve(session, principal, collection_name, container_name, ref, arch, Action.DELETE_IMAGE)
    if any(tag.frozen for tag in image.tags):
        raise Conflict("the image has frozen tags; unfreeze them first")
    session.delete(image)
    audit.record(
        session,
        "delete",
        principal,
        collection=collection_name,
        container=container_name,
        digest=image.digest,
        size=image.size,
    )
    return image


def delete_ref(
    session: Session,
    principal: Principal,
    collection_name: str,
    container_name: str,
    ref: str,
    arch: str | None = None,
) -> None:
    """What the clients' delete means: by digest, the image; by tag, that tag, and the image with it once no
    other tag names it (so deleting ``:latest`` leaves ``:v1`` of the same image in place)."""
    if is_digest(ref):
        delete_image(session, principal, collection_name, container_name, ref, arch)
        return
    image = untag(session, principal, collection_name, container_name, ref, arch)
    session.flush()
    if not session.scalar(select(func.count(Tag.id)).where(Tag.image_id == image.id)):
        delete_image(session, principal, collection_name, container_name, image.digest, image.arch)


def set_frozen(
    session: Session,
    principal: Principal,
    collection_name: str,
    container_name: str,
    tag: str,
    frozen: bool,
    arch: str | None = None,
) -> Tag:
    image = resolve(session, principal, collection_name, container_name, tag, arch, Action.FREEZE)
    row = session.scalar(select(Tag).where(Tag.image_id == image.id, Tag.name == tag, Tag.arch == image.arch))
    if row is None:
        raise NotFound(f"no tag {tag!r}")
    row.frozen = frozen
    audit.record(
        session,
        "freeze" if frozen else "unfreeze",
        principal,
        collection=collection_name,
        container=container_name,
        tag=tag,
    )
    return row


@dataclass(frozen=True)
class Pull:
    """What a download of an image counts against and records (kept in memory, written behind)."""

    image_id: int
    target: PullTarget
    digest: str
    size: int

    @classmethod
    def of(cls, image: Image) -> Pull:
        container = image.container
        target = PullTarget(container.collection_id, container.collection.name, container.id, container.name)
        return cls(image.id, target, image.digest, image.size)

    def event(self, principal: Principal, remote_addr: str | None) -> dict[str, Any]:
        """The pull's audit-trail row (``Event`` columns)."""
        user = principal.user
        return {
            "user_id": user.id if user else None,
            "username": user.name if user else None,
            "collection": self.target.collection,
            "container": self.target.container,
            "tag": None,
            "digest": self.digest,
            "size": self.size,
            "remote_addr": remote_addr,
            "detail": None,
        }


def blob_references(session: Session, digest: str) -> int:
    """How many uploaded images share the blob ``digest``."""
    return session.scalar(select(func.count(Image.id)).where(Image.digest == digest, Image.uploaded.is_(True))) or 0
