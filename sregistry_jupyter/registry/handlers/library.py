"""The Sylabs library API as the apptainer/singularity library client speaks it.

Every status code here is the one the client accepts (see the protocol notes in the docs): 404 (never
403) for anything missing so that a push can create it, exactly 200 for tags, 303 to a signed absolute
URL for downloads. Errors use the library envelope ``{"error": {"code": <status>, "message": ...}}``,
which the client prints as "request did not succeed: <message>". JSON bodies arrive without a
Content-Type and are parsed regardless.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select

from ... import __version__
from ..access import Action, Principal, can, visible_collections
from ..errors import Conflict, InvalidInput, NotFound, TooLarge, Unauthorized
from ..names import validate_name
from ..orm import Collection, Container, Image, Tag, UploadSession, User
from ..ranges import parse_range
from ..services import collections, images, library
from ..signing import sign, verify
from ..storage import BlobInfo
from .base import BaseHandler
from .serialize import when
from .streaming import ReceivesBlob, declared_size
from .transfer import commit_blob, sif_metadata, stream_blob

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

    def resolve_ref(self, raw_ref: str) -> Image:
        """The uploaded image a library ref names, for ``?arch=`` if given, if the caller may pull it."""
        ref = library.parse_ref(raw_ref)
        arch = self.get_query_argument("arch", None) or None
        return images.resolve(self.db, self.principal, ref.collection, ref.container, ref.tag, arch)

    def require_user(self) -> None:
        if not self.principal.authenticated:
            raise Unauthorized("this needs a token: apptainer remote login")


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
    return {
        **base_model(collection.created_at),
        "id": str(collection.id),
        "name": collection.name,
        "description": collection.description,
        "entity": entity_name(collection),
        "entityName": entity_name(collection),
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
    return {
        **base_model(container.created_at),
        "id": str(container.id),
        "name": container.name,
        "description": container.description,
        "fullDescription": container.description,
        "collection": str(collection.id),
        "collectionName": collection.name,
        "entity": entity_name(collection),
        "entityName": entity_name(collection),
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
    return {
        **base_model(image.created_at),
        "id": str(image.id),
        "hash": image.digest,
        "description": image.description,
        "container": str(container.id),
        "containerName": container.name,
        "collection": str(collection.id),
        "collectionName": collection.name,
        "entity": entity_name(collection),
        "entityName": entity_name(collection),
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
    """``apptainer remote login`` checks a token here: 200 if it is valid, 401 otherwise. A good token of
    someone who has not accepted the terms yet is still good: the refusal comes when it is used."""

    allowed_before_terms = True

    def get(self) -> None:
        self.require_user()
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


class CollectionHandler(LibraryHandler):
    def get(self, _entity: str, name: str) -> None:
        self.data(collection_json(collections.get_visible(self.db, self.principal, name)))


class CollectionsHandler(LibraryHandler):
    def post(self) -> None:
        self.require_user()
        body = self.json_body()
        name = body.get("name")
        name = validate_name(name if isinstance(name, str) else "", "collection name")
        existing = collections.find_collection(self.db, name)
        if existing is not None:
            if not can(self.db, self.principal, Action.PUSH, existing):
                raise Conflict(f"collection {name!r} exists and you may not push to it")
            self.data(collection_json(existing))
            return
        created = collections.create_collection(
            self.db,
            self.principal,
            name,
            private=True if body.get("private") is True else None,  # the client always sends false
            description=description_of(body),
        )
        self.db.commit()
        self.data(collection_json(created))


class ContainerHandler(LibraryHandler):
    def get(self, _entity: str, collection: str, name: str) -> None:
        self.data(container_json(library.find_container(self.db, self.principal, collection, name)))


class ContainersHandler(LibraryHandler):
    def post(self) -> None:
        self.require_user()
        body = self.json_body()
        name, collection_id = required_strings(body, "name", "collection")
        container = library.create_container(self.db, self.principal, collection_id, name, description_of(body))
        self.data(container_json(container))


class ImageHandler(LibraryHandler):
    def get(self, raw_ref: str) -> None:
        self.data(image_json(self.resolve_ref(raw_ref)))

    def delete(self, raw_ref: str) -> None:
        ref = library.parse_ref(raw_ref)
        images.delete_ref(
            self.db,
            self.principal,
            ref.collection,
            ref.container,
            ref.tag,
            self.get_query_argument("arch", None) or None,
        )
        self.db.commit()
        self.data({})


class ImagesHandler(LibraryHandler):
    def post(self) -> None:
        self.require_user()
        body = self.json_body()
        digest, container_id = required_strings(body, "hash", "container")
        image = library.create_image(self.db, self.principal, container_id, digest, description_of(body))
        self.data(image_json(image))


class ReceivesImage(ReceivesBlob, LibraryHandler):
    """A handler whose body is a whole image, streamed into a blob writer and published once it has arrived."""

    def receive_image(self, digest: str, size: int) -> None:
        """Stream the body into a new blob writer; the transaction ends first, so that no database
        connection or snapshot is held for the length of the upload."""
        self.digest, self.size = digest, size
        self.db.rollback()
        self.writer = self.registry.store.writer()
        self.receive_into(self.writer, size)

    async def received_image(self) -> tuple[BlobInfo, dict[str, Any] | None]:
        """The published blob and its SIF metadata, once every byte of the body is stored."""
        await self.received()
        return await commit_blob(self.registry.store, self.writer.commit, self.digest, self.size)


class ImageFileHandler(ReceivesImage):
    """``GET``: 303 to a signed download URL. ``POST``: the legacy (v1) upload of the whole file."""

    async def prepare(self) -> None:
        await super().prepare()
        if self.request.method != "POST":
            return
        self.require_user()
        image = library.get_image_by_id(self.db, self.principal, self.path_args[0], Action.PUSH)
        size = declared_size(self.request.headers.get("Content-Length"))
        if size > self.registry.max_upload_size:
            raise TooLarge(f"images may be at most {self.registry.max_upload_size} bytes")
        self.image_id = image.id
        self.receive_image(image.digest, size)

    async def post(self, _image_id: str) -> None:
        blob, sif = await self.received_image()
        library.record_upload(self.db, self.principal, self.image_id, blob, sif, self.remote_addr)
        self.data({})

    async def get(self, raw_ref: str) -> None:
        image = self.resolve_ref(raw_ref)
        images.record_pull(self.db, self.principal, image, self.remote_addr, self.registry.limiter)
        if not self.registry.library_redirect:
            await self.send_bytes(image.digest, image.size)
            return
        location = self.registry.store.redirect_url(image.digest, DOWNLOAD_TTL)
        if location is None:
            location = self.signed_url("GET", f"/v1/blobs/{image.digest}", DOWNLOAD_TTL)
        self.redirect(location, status=303)

    async def send_bytes(self, digest: str, size: int) -> None:
        """The whole image in the response; the library client then reads it as a single stream."""
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("Content-Length", str(size))
        self.set_header("ETag", f'"{digest}"')
        self.db.close()
        await stream_blob(self, self.registry.store, digest, 0, size)


class SignedBlobHandler(LibraryHandler):
    """The target of download redirects: a capability URL, so no Authorization header is needed."""

    rate_limited = False

    def prepare_blob(self, digest: str) -> tuple[int, int] | None:
        self.check_signature("GET")
        info = self.registry.store.stat(digest)
        if info is None:
            raise NotFound("no such blob")
        self.set_header("Accept-Ranges", "bytes")
        self.set_header("ETag", f'"{digest}"')
        self.set_header("Content-Type", "application/octet-stream")
        span = parse_range(self.request.headers.get("Range"), info.size)
        if span is None:
            self.set_header("Content-Length", str(info.size))
            return 0, info.size - 1
        self.set_status(206)
        self.set_header("Content-Range", f"bytes {span[0]}-{span[1]}/{info.size}")
        self.set_header("Content-Length", str(span[1] - span[0] + 1))
        return span

    def head(self, digest: str) -> None:
        self.prepare_blob(digest)
        self.finish()

    async def get(self, digest: str) -> None:
        first, last = self.prepare_blob(digest)
        self.db.close()
        await stream_blob(self, self.registry.store, digest, first, last - first + 1)


class UploadStartHandler(LibraryHandler):
    """``POST v2/imagefile/{id}``: hand out a signed URL the client PUTs the whole file to."""

    def post(self, image_id: str) -> None:
        self.require_user()
        image = library.get_image_by_id(self.db, self.principal, image_id, Action.PUSH)
        body = self.json_body()
        size, sha256 = body.get("filesize"), body.get("sha256sum")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidInput("'filesize' must be a non-negative integer")
        if size > self.registry.max_upload_size:
            raise TooLarge(f"images may be at most {self.registry.max_upload_size} bytes")
        if sha256 is not None and f"sha256.{sha256}" != image.digest:
            raise InvalidInput("'sha256sum' does not match the image's hash")
        upload = library.open_upload(self.db, self.principal, image, "single", size)
        self.data({"uploadURL": self.signed_url("PUT", f"/v2/uploads/{upload.id}", UPLOAD_TTL)})


class UploadCompleteHandler(LibraryHandler):
    def put(self, image_id: str) -> None:
        self.require_user()
        image = library.get_image_by_id(self.db, self.principal, image_id, Action.PUSH)
        if not image.uploaded:
            raise InvalidInput("the image's bytes have not arrived")
        self.data({"quota": {"quotaTotal": 0, "quotaUsage": 0}, "containerUrl": self.container_url(image)})

    def container_url(self, image: Image) -> str:
        container = image.container
        return f"{self.base_url()}/api/v1/collections/{container.collection.name}/containers/{container.name}"


class SignedUploadHandler(ReceivesImage):
    """``PUT`` of a whole file to the URL from ``POST v2/imagefile/{id}``; no Authorization header."""

    rate_limited = False

    async def prepare(self) -> None:
        await super().prepare()
        self.check_signature("PUT")
        upload = library.get_upload(self.db, self.path_args[0], "single")
        size = declared_size(self.request.headers.get("Content-Length"))
        if size != upload.declared_size:
            raise InvalidInput(f"the upload was announced as {upload.declared_size} bytes, not {size}")
        self.upload_id, self.image_id = upload.id, upload.image_id
        self.receive_image(upload.declared_digest, size)

    async def put(self, _upload_id: str) -> None:
        blob, sif = await self.received_image()
        finish_upload(self, self.upload_id, self.image_id, blob, sif)
        self.data({})


def finish_upload(handler: LibraryHandler, upload_id: str, image_id: int, blob: Any, sif: Any) -> None:
    """Record the image as uploaded, on behalf of the user who started the upload."""
    upload = handler.db.get(UploadSession, upload_id)
    user = handler.db.get(User, upload.user_id) if upload and upload.user_id else None
    library.record_upload(handler.db, Principal(user, "write"), image_id, blob, sif, handler.remote_addr)
    if upload is not None:
        upload.state = "done"
        handler.db.commit()


class MultipartHandler(LibraryHandler):
    """``POST``: start a multipart upload. ``PUT``: a signed URL for one part."""

    def post(self, image_id: str) -> None:
        self.require_user()
        image = library.get_image_by_id(self.db, self.principal, image_id, Action.PUSH)
        size = self.json_body().get("filesize")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidInput("'filesize' must be a non-negative integer")
        if size > self.registry.max_upload_size:
            raise TooLarge(f"images may be at most {self.registry.max_upload_size} bytes")
        layout = library.multipart_layout(size, self.registry.multipart_part_size)
        upload = library.open_upload(self.db, self.principal, image, "multipart", size, layout)
        self.registry.store.start_assembly(upload.id, size)
        self.data({"uploadID": upload.id, **layout, "options": {"s3compliant": "false"}})

    def put(self, image_id: str) -> None:
        self.require_user()
        image = library.get_image_by_id(self.db, self.principal, image_id, Action.PUSH)
        body = self.json_body()
        upload = library.get_upload(self.db, str(body.get("uploadID", "")), "multipart")
        number, length = body.get("partNumber"), body.get("partSize")
        if upload.image_id != image.id:
            raise NotFound("no such upload in progress")
        _, expected = part_span(upload, number)
        if length != expected:
            raise InvalidInput(f"part {number} is {expected} bytes, not {length}")
        path = f"/v2/uploads/{upload.id}/parts/{number}"
        self.data({"presignedURL": self.signed_url("PUT", path, UPLOAD_TTL)})


def part_span(upload: UploadSession, number: Any) -> tuple[int, int]:
    """Offset and length of part ``number`` (1-based) of a multipart upload."""
    parts = upload.parts or {}
    part_size, total = parts.get("partSize", 0), parts.get("totalParts", 0)
    if not isinstance(number, int) or isinstance(number, bool) or not 1 <= number <= total:
        raise InvalidInput(f"part numbers run from 1 to {total}")
    offset = (number - 1) * part_size
    return offset, min(part_size, upload.declared_size - offset)


class SignedPartHandler(ReceivesBlob, LibraryHandler):
    """``PUT`` of one part to its signed URL; answers 200 with the part's sha256 as its ETag."""

    rate_limited = False

    async def prepare(self) -> None:
        await super().prepare()
        self.check_signature("PUT")
        upload_id, number = self.path_args
        upload = library.get_upload(self.db, upload_id, "multipart")
        offset, length = part_span(upload, int(number))
        size = declared_size(self.request.headers.get("Content-Length"))
        if size != length:
            raise InvalidInput(f"part {number} is {length} bytes, not {size}")
        self.db.rollback()
        self.part = self.registry.store.part_writer(upload_id, offset, length)
        self.receive_into(self.part, size)

    async def put(self, _upload_id: str, _number: str) -> None:
        await self.received()
        etag = self.part.finish()
        self.set_header("ETag", f'"{etag}"')
        self.finish()


class MultipartCompleteHandler(LibraryHandler):
    async def put(self, image_id: str) -> None:
        self.require_user()
        image = library.get_image_by_id(self.db, self.principal, image_id, Action.PUSH)
        body = self.json_body()
        upload = library.get_upload(self.db, str(body.get("uploadID", "")), "multipart")
        if upload.image_id != image.id:
            raise NotFound("no such upload in progress")
        completed = body.get("completedParts")
        total = (upload.parts or {}).get("totalParts", 0)
        numbers = (
            sorted(p.get("partNumber") for p in completed if isinstance(p, dict)) if isinstance(completed, list) else []
        )
        if numbers != list(range(1, total + 1)):
            raise InvalidInput(f"completedParts must list parts 1 to {total} once each")
        upload_id, digest, size = upload.id, upload.declared_digest, upload.declared_size
        store = self.registry.store
        loop = asyncio.get_running_loop()
        upload.state = "committing"
        self.db.commit()
        try:
            blob = await loop.run_in_executor(None, store.commit_assembly, upload_id, digest, size)
        except Exception:
            upload.state = "failed"
            self.db.commit()
            raise
        sif = await loop.run_in_executor(None, sif_metadata, store, blob)
        finish_upload(self, upload_id, image.id, blob, sif)
        self.data({"quota": {"quotaTotal": 0, "quotaUsage": 0}, "containerUrl": ""})


class MultipartAbortHandler(LibraryHandler):
    def put(self, image_id: str) -> None:
        self.require_user()
        image = library.get_image_by_id(self.db, self.principal, image_id, Action.PUSH)
        upload = library.get_upload(self.db, str(self.json_body().get("uploadID", "")), "multipart")
        if upload.image_id != image.id:
            raise NotFound("no such upload in progress")
        upload.state = "aborted"
        self.db.commit()
        self.registry.store.abort_assembly(upload.id)
        self.data({})


class TagsHandler(LibraryHandler):
    """v1 tags (``{tag: imageID}``, default architecture) and v2 tags (``{arch: {tag: imageID}}``)."""

    def get(self, version: str, container_id: str) -> None:
        container = library.get_container_by_id(self.db, self.principal, container_id, Action.SEE)
        tags: dict[str, dict[str, str]] = {}
        for tag in self.db.scalars(select(Tag).where(Tag.container_id == container.id)):
            tags.setdefault(tag.arch, {})[tag.name] = str(tag.image_id)
        self.data(tags if version == "v2" else tags.get(images.DEFAULT_ARCH, {}))

    def post(self, version: str, container_id: str) -> None:
        self.require_user()
        container = library.get_container_by_id(self.db, self.principal, container_id, Action.TAG)
        body = self.json_body()
        tag, image_id = required_strings(body, "Tag", "ImageID")
        arch = body.get("Arch") if version == "v2" else None
        library.tag_image(self.db, self.principal, container, image_id, tag, arch if isinstance(arch, str) else None)
        self.data({"Tag": tag, "ImageID": image_id})


class SearchHandler(LibraryHandler):
    def get(self) -> None:
        value = (self.get_query_argument("value", "") or "").strip().lower()
        if not value:
            raise InvalidInput("search needs ?value=")
        arch = self.get_query_argument("arch", None) or None
        signed = self.get_query_argument("signed", None)
        self.data(search(self, value, arch, signed))


def search(handler: LibraryHandler, value: str, arch: str | None, signed: str | None) -> dict[str, list]:
    """Entities are not listed; collections, containers and images only where the caller may see them."""
    pattern = "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    visible = visible_collections(handler.principal)
    found_collections = handler.db.scalars(
        select(Collection)
        .where(visible, Collection.name.like(pattern, escape="\\"))
        .order_by(Collection.name)
        .limit(100)
    ).all()
    found_containers = handler.db.scalars(
        select(Container)
        .join(Collection)
        .where(visible, Container.name.like(pattern, escape="\\"))
        .order_by(Collection.name, Container.name)
        .limit(100)
    ).all()
    query = (
        select(Image)
        .join(Container)
        .join(Collection)
        .where(
            visible,
            Image.uploaded.is_(True),
            Container.name.like(pattern, escape="\\") | Collection.name.like(pattern, escape="\\"),
        )
        .order_by(Collection.name, Container.name, Image.id)
        .limit(200)
    )
    if arch:
        query = query.where(Image.arch == arch)
    if signed == "true":
        query = query.where(Image.signed.is_(True))
    found_images = handler.db.scalars(query).all()
    return {
        "entity": [],
        "collection": [collection_json(c) for c in found_collections],
        "container": [container_json(c) for c in found_containers],
        "image": [image_json(i) for i in found_images],
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
