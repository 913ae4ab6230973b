"""The Sylabs library API as the apptainer/singularity library client speaks it.

Every status code here is the one the client accepts (see the protocol notes in the docs): 404 (never
403) for anything missing so that a push can create it, exactly 200 for tags, 303 to a signed absolute
URL for downloads. Errors use the library envelope ``{"error": {"code": <status>, "message": ...}}``,
which the client prints as "request did not succeed: <message>". JSON bodies arrive without a
Content-Type and are parsed regardless.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ... import __version__
from ..access import Action, Principal
from ..errors import CredentialRequired, InvalidInput, NotFound, TooLarge
from ..names import validate_digest, validate_name
from ..orm import Collection, Container, Image, Tag, UploadSession
from ..services import collections, images, library, uploads
from ..services import search as search_service
from ..signing import sign, verify
from ..storage import BlobInfo
from .base import BaseHandler
from .serialize import when
from .streaming import ReceivesBlob, declared_size
from .transfer import Download, commit_blob, missing_blob, publish_completion, send_blob, storage_errors

log = logging.getLogger("sregistry_jupyter")

API_VERSION = "2.0.0-alpha.2"
DOWNLOAD_TTL = 300
UPLOAD_TTL = 3600
NO_DATE = "0001-01-01T00:00:00Z"


class LibraryHandler(BaseHandler):
    def error_body(self, status: int, code: str, message: str) -> dict[str, Any]:
        return {"error": {"code": status, "message": message}}

    def data(self, value: Any) -> None:
        self.write_json({"data": value})

    def signed_url(self, method: str, path: str, ttl: int) -> str:
        return f"{self.base_url()}{path}?{sign(self.registry.secret_key, method, path, ttl)}"

    def check_signature(self, method: str) -> None:
        verify(
            self.registry.secret_key,
            method,
            self.request.path,
            self.get_query_argument("expires", None),
            self.get_query_argument("signature", None),
        )

    def arch(self) -> str | None:
        return self.get_query_argument("arch", None) or None

    def credential_hint(self) -> str:
        return f"create a token at {self.base_url()}/tokens, then run 'apptainer remote login' and paste it"

    def require_user(self, message: str = "pushing needs a token") -> None:
        """Refuse a caller without a token; the library calls that need one are steps of a push (or its tags)
        unless they say otherwise."""
        if not self.principal.authenticated:
            raise CredentialRequired(message)


def required_strings(body: dict[str, Any], *names: str) -> tuple[str, ...]:
    values = tuple(body.get(name) for name in names)
    if not all(isinstance(value, str) for value in values):
        raise InvalidInput(" and ".join(repr(name) for name in names) + " are required strings")
    return values  # type: ignore[return-value]


def description_of(body: dict[str, Any]) -> str:
    """The description a client gave; the library client sends "No description" when its user gave none."""
    value = body.get("description")
    return value if isinstance(value, str) and value != "No description" else ""


def base_model(created: Any = None) -> dict[str, Any]:
    return {
        "deleted": False,
        "createdBy": "",
        "createdAt": when(created) or NO_DATE,
        "updatedBy": "",
        "updatedAt": NO_DATE,
        "deletedAt": NO_DATE,
        "customData": "",
    }


def entity_name(collection: Collection) -> str:
    owners = sorted(m.user.name for m in collection.members if m.role == "owner")
    return owners[0] if owners else library.DEFAULT_COLLECTION


def entity_json(name: str) -> dict[str, Any]:
    return {
        **base_model(),
        "id": name,
        "name": name,
        "description": name,
        "collections": [],
        "size": 0,
        "quota": 0,
        "defaultPrivate": False,
    }


def collection_json(collection: Collection) -> dict[str, Any]:
    entity = entity_name(collection)
    return {
        **base_model(collection.created_at),
        "id": str(collection.id),
        "name": collection.name,
        "description": collection.description,
        "entity": entity,
        "entityName": entity,
        "containers": [str(c.id) for c in collection.containers],
        "size": len(collection.containers),
        "private": collection.private,
    }


def container_json(container: Container) -> dict[str, Any]:
    collection = container.collection
    arch_tags: dict[str, dict[str, str]] = {}
    for tag in container.tags:
        arch_tags.setdefault(tag.arch, {})[tag.name] = str(tag.image_id)
    uploaded = [i for i in container.images if i.uploaded]
    entity = entity_name(collection)
    return {
        **base_model(container.created_at),
        "id": str(container.id),
        "name": container.name,
        "description": container.description,
        "fullDescription": container.description,
        "collection": str(collection.id),
        "collectionName": collection.name,
        "entity": entity,
        "entityName": entity,
        "images": [str(i.id) for i in uploaded],
        "imageTags": arch_tags.get(images.DEFAULT_ARCH, {}),
        "archTags": arch_tags,
        "size": sum(i.size for i in uploaded),
        "downloadCount": sum(i.downloads for i in uploaded),
        "stars": 0,
        "private": collection.private,
        "readOnly": False,
    }


def image_json(image: Image) -> dict[str, Any]:
    container = image.container
    collection = container.collection
    entity = entity_name(collection)
    return {
        **base_model(image.created_at),
        "id": str(image.id),
        "hash": image.digest,
        "description": image.description,
        "container": str(container.id),
        "containerName": container.name,
        "collection": str(collection.id),
        "collectionName": collection.name,
        "entity": entity,
        "entityName": entity,
        "blob": "",
        "size": image.size,
        "uploaded": image.uploaded,
        "signed": image.signed,
        "arch": image.arch,
        "fingerprints": [],
        "encrypted": False,
        "tags": sorted({t.name for t in image.tags}),
        "containerDescription": container.description,
        "containerStars": 0,
        "containerDownloads": image.downloads,
    }


class ConfigHandler(LibraryHandler):
    """Service discovery for ``apptainer remote add``: every service lives at this registry's URL."""

    def get(self) -> None:
        uri = {"uri": self.base_url()}
        self.write_json(
            {
                "libraryAPI": uri,
                "tokenAPI": uri,
                "keystoreAPI": uri,
                "builderAPI": uri,
                "consentAPI": uri,
                "auth": {"issuer": self.base_url(), "requireHttps": False},
            }
        )


class VersionHandler(LibraryHandler):
    def get(self) -> None:
        self.data({"version": __version__, "apiVersion": API_VERSION})


class TokenStatusHandler(LibraryHandler):
    """``apptainer remote login`` checks a token here: 200 if it is valid, 401 otherwise. A person who has
    not yet accepted the terms still has a good token: the refusal comes when it is used, saying why."""

    allowed_before_terms = True

    def get(self) -> None:
        self.require_user("no token was sent")
        self.data({"status": "valid", "user": self.principal.name})


class EntityHandler(LibraryHandler):
    """Entities are labels in refs; every valid name answers, since collections are the namespace."""

    def get(self, name: str) -> None:
        self.data(entity_json(validate_name(name, "entity name")))


class EntitiesHandler(LibraryHandler):
    def post(self) -> None:
        self.require_user()
        name = self.json_body().get("name")
        self.data(entity_json(validate_name(name if isinstance(name, str) else "", "entity name")))


def visible_collection(session: Session, principal: Principal, name: str) -> dict[str, Any]:
    return collection_json(collections.get_visible(session, principal, name))


def ensure_collection(session: Session, principal: Principal, name: str, private: bool | None, description: str) -> Any:
    """The collection a push goes into: an existing one the caller may push to, or a new one of theirs."""
    collections.require(principal, Action.PUSH)
    existing = collections.find_collection(session, name)
    if existing is not None:
        collections.check_push_into(session, principal, existing)
        return collection_json(existing)
    created = collections.create_collection(session, principal, name, private=private, description=description)
    return collection_json(created)


class CollectionHandler(LibraryHandler):
    async def get(self, _entity: str, name: str) -> None:
        self.data(await self.read_db(visible_collection, self.principal, name))


class CollectionsHandler(LibraryHandler):
    async def post(self) -> None:
        self.require_user()
        body = self.json_body()
        name = body.get("name")
        name = validate_name(name if isinstance(name, str) else "", "collection name")
        private = True if body.get("private") is True else None  # the client always sends false
        self.data(await self.write_db(ensure_collection, self.principal, name, private, description_of(body)))


def visible_container(session: Session, principal: Principal, collection: str, name: str) -> dict[str, Any]:
    return container_json(library.find_container(session, principal, collection, name))


def new_container(session: Session, principal: Principal, collection_id: str, name: str, description: str) -> Any:
    return container_json(library.create_container(session, principal, collection_id, name, description))


class ContainerHandler(LibraryHandler):
    async def get(self, _entity: str, collection: str, name: str) -> None:
        self.data(await self.read_db(visible_container, self.principal, collection, name))


class ContainersHandler(LibraryHandler):
    async def post(self) -> None:
        self.require_user()
        body = self.json_body()
        name, collection_id = required_strings(body, "name", "collection")
        self.data(await self.write_db(new_container, self.principal, collection_id, name, description_of(body)))


def resolve_ref(session: Session, principal: Principal, raw_ref: str, arch: str | None) -> Image:
    """The uploaded image a library ref names, for ``arch`` if given, if the caller may pull it."""
    ref = library.parse_ref(raw_ref)
    return images.resolve(session, principal, ref.collection, ref.container, ref.tag, arch)


def ref_image(session: Session, principal: Principal, raw_ref: str, arch: str | None) -> dict[str, Any]:
    return image_json(resolve_ref(session, principal, raw_ref, arch))


def delete_ref(session: Session, principal: Principal, raw_ref: str, arch: str | None) -> None:
    ref = library.parse_ref(raw_ref)
    images.delete_ref(session, principal, ref.collection, ref.container, ref.tag, arch)


def new_image(
    session: Session, principal: Principal, container_id: str, digest: str, description: str, stored: BlobInfo | None
) -> Any:
    return image_json(library.create_image(session, principal, container_id, digest, description, stored))


class ImageHandler(LibraryHandler):
    async def get(self, raw_ref: str) -> None:
        self.data(await self.read_db(ref_image, self.principal, raw_ref, self.arch()))

    async def delete(self, raw_ref: str) -> None:
        await self.write_db(delete_ref, self.principal, raw_ref, self.arch())
        self.data({})


class ImagesHandler(LibraryHandler):
    async def post(self) -> None:
        self.require_user()
        body = self.json_body()
        digest, container_id = required_strings(body, "hash", "container")
        validate_digest(digest)
        stored = await asyncio.get_running_loop().run_in_executor(None, self.registry.store.stat, digest)
        self.data(await self.write_db(new_image, self.principal, container_id, digest, description_of(body), stored))


class ReceivesImage(ReceivesBlob, LibraryHandler):
    """A handler whose body is a whole image, streamed into a blob writer and published once it has arrived."""

    def receive_image(self, digest: str, size: int) -> None:
        """Stream the body into a new blob writer (no database session is held while it arrives)."""
        self.digest, self.size = digest, size
        self.writer = self.registry.store.writer(digest)
        self.receive_into(self.writer, size)

    async def received_image(self) -> tuple[BlobInfo, dict[str, Any] | None]:
        """The published blob and its SIF metadata, once every byte of the body is stored."""
        await self.received()
        return await commit_blob(self.registry.store, self.writer.commit, self.digest, self.size)


@dataclass(frozen=True)
class UploadTarget:
    """The image an upload is for, as the push checks left it."""

    image_id: int
    digest: str


def push_target(session: Session, principal: Principal, image_id: str) -> UploadTarget:
    image = library.get_image_by_id(session, principal, image_id, Action.PUSH)
    return UploadTarget(image.id, image.digest)


def ref_download(session: Session, principal: Principal, raw_ref: str, arch: str | None) -> Download:
    return Download.of(resolve_ref(session, principal, raw_ref, arch))


class ImageFileHandler(ReceivesImage):
    """``GET``: 303 to a signed download URL. ``POST``: the legacy (v1) upload of the whole file."""

    async def prepare(self) -> None:
        await super().prepare()
        if self.request.method != "POST":
            return
        self.require_user()
        target = await self.read_db(push_target, self.principal, self.path_args[0])
        size = declared_size(self.request.headers.get("Content-Length"))
        if size > self.registry.max_upload_size:
            raise TooLarge(f"images may be at most {self.registry.max_upload_size} bytes")
        self.image_id = target.image_id
        self.receive_image(target.digest, size)

    async def post(self, _image_id: str) -> None:
        blob, sif = await self.received_image()
        await self.write_db(library.record_upload, self.principal, self.image_id, blob, sif, self.remote_addr)
        self.data({})

    async def get(self, raw_ref: str) -> None:
        download = await self.read_db(ref_download, self.principal, raw_ref, self.arch())
        await self.count_pull(download.pull)
        if not self.registry.library_redirect:
            await self.send_bytes(download.digest, download.size)
            return
        location = self.registry.store.redirect_url(download.digest, DOWNLOAD_TTL)
        if location is None:
            location = self.signed_url("GET", f"/v1/blobs/{download.digest}", DOWNLOAD_TTL)
        self.redirect(location, status=303)

    async def send_bytes(self, digest: str, size: int) -> None:
        """The whole image in the response; the library client then reads it as a single stream."""
        await send_blob(self, digest, size)


class SignedBlobHandler(LibraryHandler):
    """The target of download redirects: a capability URL, so no Authorization header is needed. It serves
    through the one download path, so ranges, ``If-Range``, ``If-None-Match`` and ``HEAD`` work as on
    every other surface."""

    rate_limited = False

    async def blob(self, digest: str) -> BlobInfo:
        self.check_signature("GET")
        info = await asyncio.get_running_loop().run_in_executor(None, self.registry.store.stat, digest)
        if info is None:
            raise missing_blob(digest)
        return info

    async def head(self, digest: str) -> None:
        await send_blob(self, digest, (await self.blob(digest)).size)

    async def get(self, digest: str) -> None:
        await send_blob(self, digest, (await self.blob(digest)).size)


def start_single_upload(
    session: Session, principal: Principal, image_id: str, size: int, sha256: Any, limits: uploads.UploadLimits
) -> str:
    """Open a single-part upload of the image's bytes; returns the upload's id."""
    image = library.get_image_by_id(session, principal, image_id, Action.PUSH)
    if sha256 is not None and f"sha256.{sha256}" != image.digest:
        raise InvalidInput("'sha256sum' does not match the image's hash")
    return uploads.open_session(session, principal, "single", size, image.digest, limits, image_id=image.id).id


def file_size(body: dict[str, Any], max_size: int) -> int:
    size = body.get("filesize")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidInput("'filesize' must be a non-negative integer")
    if size > max_size:
        raise TooLarge(f"images may be at most {max_size} bytes")
    return size


class UploadStartHandler(LibraryHandler):
    """``POST v2/imagefile/{id}``: hand out a signed URL the client PUTs the whole file to."""

    async def post(self, image_id: str) -> None:
        self.require_user()
        body = self.json_body()
        size = file_size(body, self.registry.max_upload_size)
        upload_id = await self.write_db(
            start_single_upload, self.principal, image_id, size, body.get("sha256sum"), self.registry.upload_limits
        )
        self.data({"uploadURL": self.signed_url("PUT", f"/v2/uploads/{upload_id}", UPLOAD_TTL)})


def uploaded_container(session: Session, principal: Principal, image_id: str) -> tuple[str, str]:
    """The collection and container of an image whose bytes have arrived."""
    image = library.get_image_by_id(session, principal, image_id, Action.PUSH)
    if not image.uploaded:
        raise InvalidInput("the image's bytes have not arrived")
    return image.container.collection.name, image.container.name


class UploadCompleteHandler(LibraryHandler):
    async def put(self, image_id: str) -> None:
        self.require_user()
        collection, container = await self.read_db(uploaded_container, self.principal, image_id)
        url = f"{self.base_url()}/api/v1/collections/{collection}/containers/{container}"
        self.data({"quota": {"quotaTotal": 0, "quotaUsage": 0}, "containerUrl": url})


@dataclass(frozen=True)
class OpenUpload:
    """An upload session in progress, as its part and file handlers need it."""

    id: str
    image_id: int
    declared_size: int
    declared_digest: str
    part_size: int
    total_parts: int

    @classmethod
    def of(cls, upload: UploadSession) -> OpenUpload:
        parts = upload.parts or {}
        return cls(
            upload.id,
            upload.image_id,
            upload.declared_size,
            upload.declared_digest,
            parts.get("partSize", 0),
            parts.get("totalParts", 0),
        )


def open_session(session: Session, upload_id: str, kind: str) -> OpenUpload:
    return OpenUpload.of(library.get_upload(session, upload_id, kind))


class SignedUploadHandler(ReceivesImage):
    """``PUT`` of a whole file to the URL from ``POST v2/imagefile/{id}``; no Authorization header."""

    rate_limited = False

    async def prepare(self) -> None:
        await super().prepare()
        self.check_signature("PUT")
        upload = await self.read_db(open_session, self.path_args[0], "single")
        size = declared_size(self.request.headers.get("Content-Length"))
        if size != upload.declared_size:
            raise InvalidInput(f"the upload was announced as {upload.declared_size} bytes, not {size}")
        self.upload_id = upload.id
        self.receive_image(upload.declared_digest, size)

    async def put(self, _upload_id: str) -> None:
        blob, sif = await self.received_image()
        await self.write_db(library.record_session_upload, self.upload_id, blob, sif, self.remote_addr)
        self.data({})


def start_multipart(
    session: Session, principal: Principal, image_id: str, size: int, part_size: int, limits: uploads.UploadLimits
) -> tuple[str, dict[str, int], str]:
    """Open the session; returns its id, its layout and the image's digest (which lets a store place the
    parts at the blob's address as they arrive)."""
    image = library.get_image_by_id(session, principal, image_id, Action.PUSH)
    layout = library.multipart_layout(size, part_size)
    upload = uploads.open_session(
        session, principal, "multipart", size, image.digest, limits, image_id=image.id, parts=layout
    )
    return upload.id, layout, image.digest


def image_upload(session: Session, principal: Principal, image_id: str, upload_id: Any) -> OpenUpload:
    """An open multipart upload of the image, if the caller may push it."""
    image = library.get_image_by_id(session, principal, image_id, Action.PUSH)
    upload = library.get_upload(session, str(upload_id or ""), "multipart")
    if upload.image_id != image.id:
        raise NotFound("no such upload in progress")
    return OpenUpload.of(upload)


class MultipartHandler(LibraryHandler):
    """``POST``: start a multipart upload. ``PUT``: a signed URL for one part (only while the upload is open)."""

    async def post(self, image_id: str) -> None:
        self.require_user()
        size = file_size(self.json_body(), self.registry.max_upload_size)
        upload_id, layout, digest = await self.write_db(
            start_multipart,
            self.principal,
            image_id,
            size,
            self.registry.multipart_part_size,
            self.registry.upload_limits,
        )
        with storage_errors():
            await asyncio.get_running_loop().run_in_executor(
                None, self.registry.store.start_assembly, upload_id, size, digest
            )
        self.data({"uploadID": upload_id, **layout, "options": {"s3compliant": "false"}})

    async def put(self, image_id: str) -> None:
        self.require_user()
        body = self.json_body()
        upload = await self.read_db(image_upload, self.principal, image_id, body.get("uploadID"))
        number, length = body.get("partNumber"), body.get("partSize")
        _, expected = part_span(upload, number)
        if length != expected:
            raise InvalidInput(f"part {number} is {expected} bytes, not {length}")
        path = f"/v2/uploads/{upload.id}/parts/{number}"
        self.data({"presignedURL": self.signed_url("PUT", path, UPLOAD_TTL)})


def part_span(upload: OpenUpload, number: Any) -> tuple[int, int]:
    """Offset and length of part ``number`` (1-based) of a multipart upload."""
    total = upload.total_parts
    if not isinstance(number, int) or isinstance(number, bool) or not 1 <= number <= total:
        raise InvalidInput(f"part numbers run from 1 to {total}")
    offset = (number - 1) * upload.part_size
    return offset, min(upload.part_size, upload.declared_size - offset)


class SignedPartHandler(ReceivesBlob, LibraryHandler):
    """``PUT`` of one part to its signed URL; answers 200 with the part's ETag (the token for completion).

    The part claims the upload session before its first byte is stored and releases it once its file
    is closed, so a completion can never run while the part is being written, and a part URL used after
    completion finds no upload in progress (see ``services.uploads``).
    """

    rate_limited = False
    claimed: uploads.ClaimedWriter | None = None
    release: asyncio.Future[None] | None = None

    async def prepare(self) -> None:
        await super().prepare()
        self.check_signature("PUT")
        upload_id, number = self.path_args
        upload = await self.read_db(open_session, upload_id, "multipart")
        self.number = int(number)
        self.offset, length = part_span(upload, self.number)
        size = declared_size(self.request.headers.get("Content-Length"))
        if size != length:
            raise InvalidInput(f"part {number} is {length} bytes, not {size}")
        etag = await self.write_db(uploads.claim_part, upload_id, self.number)
        try:
            with storage_errors():
                part = self.registry.store.part_writer(upload_id, self.offset, length)
        except BaseException:
            await self.write_db(uploads.release_part, upload_id, etag, self.number, self.offset, None, None)
            raise
        self.claimed = uploads.ClaimedWriter(part, self.registry.hashes, upload_id, etag, self.released)
        self.receive_into(self.claimed, size)

    def released(self, size: int, whole: bool, prefix_sha256: str | None) -> None:
        """Release the claim once the part's file is closed (on the loop: ``finish`` or a discarded body)."""
        upload_id = self.path_args[0]
        etag = self.claimed.etag if self.claimed else ""
        self.release = asyncio.ensure_future(
            self.write_db(
                uploads.release_part, upload_id, etag, self.number, self.offset, size if whole else None, prefix_sha256
            )
        )
        self.release.add_done_callback(log_release_failure)

    async def put(self, _upload_id: str, _number: str) -> None:
        await self.received()
        self.claimed.finish()
        await self.release
        self.set_header("ETag", f'"{self.claimed.etag}"')
        self.finish()


def log_release_failure(future: asyncio.Future[None]) -> None:
    """A claim that could not be released keeps its session from completing until it expires; say so."""
    if not future.cancelled() and future.exception() is not None:
        log.warning("could not release an upload claim: %s", future.exception())


def completed_tokens(completed: Any, total: int) -> dict[int, str]:
    """Part number → ETag from a ``completedParts`` list, which must name parts 1 to ``total`` once each."""
    problem = InvalidInput(f"completedParts must list parts 1 to {total} once each, with their tokens")
    if not isinstance(completed, list) or not all(isinstance(p, dict) for p in completed):
        raise problem
    tokens: dict[int, str] = {}
    for part in completed:
        number, token = part.get("partNumber"), part.get("token")
        if not isinstance(number, int) or isinstance(number, bool) or not isinstance(token, str) or number in tokens:
            raise problem
        tokens[number] = token.strip().strip('"')
    if sorted(tokens) != list(range(1, total + 1)):
        raise problem
    return tokens


class MultipartCompleteHandler(LibraryHandler):
    """Verify and publish a multipart upload: refused before any byte is read unless every part arrived
    (and no part is still being written); then its hash is finished on the heavy pool."""

    async def put(self, image_id: str) -> None:
        self.require_user()
        body = self.json_body()
        upload = await self.read_db(image_upload, self.principal, image_id, body.get("uploadID"))
        tokens = completed_tokens(body.get("completedParts"), upload.total_parts)
        completion = await self.write_db(uploads.begin_completion, upload.id, tokens)
        blob, sif = await publish_completion(self.registry, completion)
        await self.write_db(library.record_session_upload, upload.id, blob, sif, self.remote_addr)
        self.data({"quota": {"quotaTotal": 0, "quotaUsage": 0}, "containerUrl": ""})


class MultipartAbortHandler(LibraryHandler):
    async def put(self, image_id: str) -> None:
        self.require_user()
        upload = await self.read_db(image_upload, self.principal, image_id, self.json_body().get("uploadID"))
        await self.write_db(uploads.set_state, upload.id, "aborted")
        self.registry.hashes.forget(upload.id)
        await asyncio.get_running_loop().run_in_executor(None, self.registry.store.discard_upload, upload.id)
        self.data({})


def container_tags(session: Session, principal: Principal, container_id: str) -> dict[str, dict[str, str]]:
    container = library.get_container_by_id(session, principal, container_id, Action.SEE)
    tags: dict[str, dict[str, str]] = {}
    for tag in session.scalars(select(Tag).where(Tag.container_id == container.id)):
        tags.setdefault(tag.arch, {})[tag.name] = str(tag.image_id)
    return tags


def set_container_tag(
    session: Session, principal: Principal, container_id: str, image_id: str, tag: str, arch: str | None
) -> None:
    container = library.get_container_by_id(session, principal, container_id, Action.TAG)
    library.tag_image(session, principal, container, image_id, tag, arch)


class TagsHandler(LibraryHandler):
    """v1 tags (``{tag: imageID}``, default architecture) and v2 tags (``{arch: {tag: imageID}}``)."""

    async def get(self, version: str, container_id: str) -> None:
        tags = await self.read_db(container_tags, self.principal, container_id)
        self.data(tags if version == "v2" else tags.get(images.DEFAULT_ARCH, {}))

    async def post(self, version: str, container_id: str) -> None:
        self.require_user()
        body = self.json_body()
        tag, image_id = required_strings(body, "Tag", "ImageID")
        arch = body.get("Arch") if version == "v2" else None
        arch = arch if isinstance(arch, str) else None
        await self.write_db(set_container_tag, self.principal, container_id, image_id, tag, arch)
        self.data({"Tag": tag, "ImageID": image_id})


class SearchHandler(LibraryHandler):
    async def get(self) -> None:
        value = (self.get_query_argument("value", "") or "").strip().lower()
        if not value:
            raise InvalidInput("search needs ?value=")
        arch = self.get_query_argument("arch", None) or None
        signed = self.get_query_argument("signed", None)
        await self.write_catalogue(search, value, arch, signed)


def search(
    session: Session, principal: Principal, value: str, arch: str | None, signed: str | None
) -> dict[str, dict[str, list]]:
    """Entities are not listed; collections, containers and images only where the caller may see them."""
    found = search_service.library_search(session, principal, value, arch, signed)
    return {
        "data": {
            "entity": [],
            "collection": [collection_json(c) for c in found.collections],
            "container": [container_json(c) for c in found.containers],
            "image": [image_json(i) for i in found.images],
        }
    }


def routes() -> list[tuple[str, type]]:
    name = r"([^/]+)"
    return [
        (r"/assets/config/config\.prod\.json", ConfigHandler),
        (r"/version", VersionHandler),
        (r"/v1/token-status", TokenStatusHandler),
        (r"/v1/entities", EntitiesHandler),
        (rf"/v1/entities/{name}", EntityHandler),
        (r"/v1/collections", CollectionsHandler),
        (rf"/v1/collections/{name}/{name}", CollectionHandler),
        (r"/v1/containers", ContainersHandler),
        (rf"/v1/containers/{name}/{name}/{name}", ContainerHandler),
        (r"/v1/images", ImagesHandler),
        (r"/v1/images/(.*)", ImageHandler),
        (r"/v1/imagefile/(.*)", ImageFileHandler),
        (r"/v1/blobs/(sha256\.[0-9a-f]{64})", SignedBlobHandler),
        (r"/v2/imagefile/(\d+)", UploadStartHandler),
        (r"/v2/imagefile/(\d+)/_complete", UploadCompleteHandler),
        (r"/v2/imagefile/(\d+)/_multipart", MultipartHandler),
        (r"/v2/imagefile/(\d+)/_multipart_complete", MultipartCompleteHandler),
        (r"/v2/imagefile/(\d+)/_multipart_abort", MultipartAbortHandler),
        (r"/v2/uploads/([0-9a-f]{32})", SignedUploadHandler),
        (r"/v2/uploads/([0-9a-f]{32})/parts/(\d{1,6})", SignedPartHandler),
        (r"/(v1|v2)/tags/(\d+)", TagsHandler),
        (r"/v1/search", SearchHandler),
    ]
