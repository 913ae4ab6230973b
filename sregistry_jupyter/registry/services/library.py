"""Operations of the Sylabs library protocol that the other surfaces do not need.

Mapping of library refs onto the registry's namespace: a ref is ``entity/collection/container``,
``collection/container`` or ``container``, followed by ``:tag`` or ``:sha256.<hex>``. The collection is
the namespace, as everywhere in this registry, so the entity segment is accepted and ignored (any
entity names the same collection), and a one-segment ref lives in the collection ``library``.
The library client creates images before uploading them; such an image stays invisible
(``uploaded`` false) until its bytes have arrived and matched its hash.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..access import Action, Identity, Principal, Via, can, refusal, role_of, see_and_can
from ..errors import Forbidden, InvalidInput, NotFound
from ..names import is_digest, validate_digest, validate_name, validate_tag
from ..orm import Blob, Collection, Container, Image, UploadSession, User, utcnow
from ..storage import BlobInfo
from . import audit
from .collections import check_push_into, get_container, get_visible, require
from .images import audit_push, ensure_blob, get_or_create_container, mark_uploaded, set_tag, with_retries

DEFAULT_COLLECTION = "library"
DEFAULT_TAG = "latest"

Row = TypeVar("Row", Collection, Container, Image)


@dataclass(frozen=True)
class LibraryRef:
    entity: str | None
    collection: str
    container: str
    tag: str

    @property
    def path(self) -> str:
        return f"{self.collection}/{self.container}:{self.tag}"


def parse_ref(raw: str) -> LibraryRef:
    """Split and validate a library ref (without the ``library://`` scheme)."""
    path, _, tag = raw.strip("/").partition(":")
    segments = path.split("/")
    if not 1 <= len(segments) <= 3 or not all(segments):
        raise InvalidInput(f"invalid image ref {raw!r}: use entity/collection/container[:tag]")
    for segment in segments:
        validate_name(segment, "name")
    tag = tag or DEFAULT_TAG
    if not is_digest(tag):
        validate_tag(tag)
    container = segments[-1]
    collection = segments[-2] if len(segments) >= 2 else DEFAULT_COLLECTION
    entity = segments[0] if len(segments) == 3 else None
    return LibraryRef(entity, collection, container, tag)


def _by_id(session: Session, model: type[Row], raw_id: str) -> Row | None:
    """The row of ``model`` with the numeric id ``raw_id``; an id taken from a URL that is not a plausible
    integer finds nothing rather than reaching the database as an error."""
    return session.get(model, int(raw_id)) if raw_id.isdigit() and len(raw_id) < 18 else None


def _check_action(
    session: Session, principal: Principal, action: Action, collection: Collection | None, what: str
) -> None:
    """Refuse ``action`` in ``collection`` (None: the row was not found) unless ``principal`` may perform it;
    something invisible is ``what`` missing, and a push into someone else's collection finds its name taken."""
    require(principal, action)
    seen, allowed = see_and_can(session, principal, action, collection)
    if not seen:
        raise NotFound(f"no {what}")
    if allowed:
        return
    if action is Action.PUSH:
        check_push_into(session, principal, collection)
    raise Forbidden(refusal(principal, action, collection.name, role_of(session, principal.user, collection)))


def get_container_by_id(session: Session, principal: Principal, raw_id: str, action: Action) -> Container:
    """A container by its numeric id, reported missing unless ``principal`` may see it."""
    container = _by_id(session, Container, raw_id)
    _check_action(session, principal, action, container.collection if container else None, f"container {raw_id}")
    return container


def get_image_by_id(session: Session, principal: Principal, raw_id: str, action: Action) -> Image:
    image = _by_id(session, Image, raw_id)
    _check_action(session, principal, action, image.container.collection if image else None, f"image {raw_id}")
    return image


def get_collection_by_id(session: Session, principal: Principal, raw_id: str) -> Collection:
    collection = _by_id(session, Collection, raw_id)
    if collection is None or not can(session, principal, Action.SEE, collection):
        raise NotFound(f"no collection {raw_id}")
    return collection


def find_container(session: Session, principal: Principal, collection: str, name: str) -> Container:
    return get_container(session, get_visible(session, principal, collection), name)


def create_container(
    session: Session, principal: Principal, collection_id: str, name: str, description: str
) -> Container:
    require(principal, Action.PUSH)
    validate_name(name, "container name")
    collection = get_collection_by_id(session, principal, collection_id)
    check_push_into(session, principal, collection)
    return with_retries(session, lambda: get_or_create_container(session, collection, name, description))


def _reusable_blob(session: Session, principal: Principal, digest: str) -> Image | None:
    """An uploaded image with these bytes that ``principal`` may already pull, if any.

    Deduplication must not become a way to read someone else's private image: the bytes are only
    re-used without an upload when the pusher could have downloaded them anyway.
    """
    for image in session.scalars(select(Image).where(Image.digest == digest, Image.uploaded.is_(True))):
        if can(session, principal, Action.PULL, image.container.collection):
            return image
    return None


def create_image(
    session: Session,
    principal: Principal,
    container_id: str,
    digest: str,
    description: str,
    stored: BlobInfo | None,
) -> Image:
    """Create (or find) the image a push is about to upload; already uploaded if its bytes are known.

    Known means: an image with that digest was verified on upload, and the store holds the blob
    (``stored``, as the store reports it now) at the size recorded then. Anything else is uploaded
    again, and the verified upload replaces whatever the store held.
    """
    validate_digest(digest)
    container = get_container_by_id(session, principal, container_id, Action.PUSH)

    def work() -> Image:
        image = session.scalar(select(Image).where(Image.container_id == container.id, Image.digest == digest))
        if image is None:
            image = Image(container_id=container.id, digest=digest, description=description)
            session.add(image)
            known = _reusable_blob(session, principal, digest)
            recorded = session.get(Blob, digest)
            if known is not None and recorded is not None and stored is not None and stored.size == recorded.size:
                mark_uploaded(image, principal, known.size, known.arch, known.sif)
                audit_push(session, principal, container, digest, known.size, detail={"deduplicated": True})
            session.flush()
        return image

    return with_retries(session, work)


def record_upload(
    session: Session,
    principal: Principal,
    image_id: int,
    blob: BlobInfo,
    sif: dict[str, Any] | None,
    remote_addr: str | None,
) -> Image:
    """Mark an image uploaded once its blob is stored and verified."""

    def work() -> Image:
        image = session.get(Image, image_id)
        if image is None:
            raise NotFound("the image was deleted during its upload")
        ensure_blob(session, blob)
        sif_arch = (sif or {}).get("arch")
        mark_uploaded(image, principal, blob.size, sif_arch if sif_arch and sif_arch != "unknown" else image.arch, sif)
        container = image.container
        container.updated_at = container.collection.updated_at = utcnow()
        audit_push(session, principal, container, blob.digest, blob.size, remote_addr=remote_addr)
        return image

    return with_retries(session, work)


def record_session_upload(
    session: Session, upload_id: str, blob: BlobInfo, sif: dict[str, Any] | None, remote_addr: str | None
) -> None:
    """Record the bytes of an upload session as its image, on behalf of the user who opened the session
    (the upload URL itself carries no identity: it is a capability issued to that user)."""
    upload = session.get(UploadSession, upload_id)
    if upload is None:
        raise NotFound("no such upload in progress")
    user = session.get(User, upload.user_id) if upload.user_id else None
    principal = Principal(Identity.of(user) if user else None, "write", via=Via.LINK)
    record_upload(session, principal, upload.image_id, blob, sif, remote_addr)
    upload.state = "done"


def get_upload(session: Session, upload_id: str, kind: str | None = None) -> UploadSession:
    upload = session.get(UploadSession, upload_id) if len(upload_id) <= 64 else None
    if upload is None or upload.state != "open" or upload.expires_at < utcnow() or (kind and upload.kind != kind):
        raise NotFound("no such upload in progress")
    return upload


def multipart_layout(size: int, part_size: int) -> dict[str, int]:
    return {"partSize": part_size, "totalParts": max(1, math.ceil(size / part_size))}


def tag_image(
    session: Session, principal: Principal, container: Container, image_id: str, tag: str, arch: str | None
) -> None:
    validate_tag(tag)
    image = _by_id(session, Image, image_id)
    if image is None or image.container_id != container.id or not image.uploaded:
        raise NotFound(f"no uploaded image {image_id} in this container")

    def work() -> None:
        set_tag(session, container, image, tag, arch or image.arch)
        audit.record(
            session,
            "tag",
            principal,
            collection=container.collection.name,
            container=container.name,
            tag=tag,
            digest=image.digest,
        )

    with_retries(session, work)
