"""The Singularity Registry Server API that sregistry-cli and ``pull shub://`` speak.

Manifests, listings and searches under ``/api``, HMAC-signed push (``/api/upload/chunked_upload`` then a
streamed ``multipart/form-data`` POST to ``/upload``) and delete. Errors are ``{"detail": ...}``, the
field the client prints. Every decision goes through the services and ``access``; sregistry's defects are
not reproduced: deletes need ownership, searches and listings show only what the caller may see,
``@version`` is honoured, nothing answers 500, and download links are short-lived capabilities served by
the registry itself, so they work for every storage back end and answer ``HEAD`` with 200 as the client
requires (a redirect there would make it give up).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.orm import Session

from .. import credentials, signing
from ..access import ANONYMOUS, Action, Principal
from ..errors import CredentialRequired, Forbidden, InvalidInput, NotFound, RegistryError, TooLarge, Unauthorized
from ..names import is_digest, validate_digest
from ..orm import Image
from ..services import collections, hmac_auth, images, search
from .base import BaseHandler
from .multipart_form import FORM_OVERHEAD, MultipartReader, Part, boundary_of
from .serialize import when
from .streaming import OffloadedWrites, storage_errors
from .transfer import DownloadHandler, commit_blob, record_push

DEFAULT_TAG = "latest"
DOWNLOAD_LIFETIME = 600
MAX_FIELD = 4096
MAX_FIELDS = 16
SIGNED_KINDS = {"GET": "pull", "DELETE": "delete"}


def image_path(collection: str, container: str, digest: str) -> str:
    return f"{collection}/{container}@{digest}"


def metadata_json(image: Image) -> dict[str, Any]:
    sif = image.sif or {}
    return {
        "size": image.size,
        "arch": image.arch,
        "signed": image.signed,
        "sif_version": sif.get("sif_version"),
        "labels": sif.get("labels"),
        "deffile": sif.get("deffile"),
        "partitions": sif.get("partitions", []),
    }


def manifest_json(image: Image, tag: str | None, url: str) -> dict[str, Any]:
    """The shub manifest; ``Commit`` is required by Apptainer's shub client."""
    container = image.container
    named = [t for t in image.tags if tag is None or t.name == tag]
    return {
        "id": image.id,
        "name": container.name,
        "tag": tag,
        "version": image.digest,
        "image": url,
        "collection": container.collection.name,
        "Commit": image.digest.removeprefix("sha256."),
        "metadata": metadata_json(image),
        "frozen": any(t.frozen for t in named),
        "add_date": when(image.uploaded_at),
    }


def container_ref(tag: search.TagRef, base: str) -> dict[str, Any]:
    uri = tag.uri
    return {
        "id": tag.image_id,
        "name": tag.container,
        "tag": tag.tag,
        "uri": uri,
        "detail": f"{base}/api/container/{uri}",
    }


def search_json(tag: search.TagRow, base: str) -> dict[str, Any]:
    uri = tag.uri
    return {
        "id": tag.image_id,
        "name": tag.container,
        "tag": tag.tag,
        "uri": uri,
        "detail": f"{base}/api/container/{uri}",
        "collection": tag.collection,
        "version": tag.digest,
        "add_date": when(tag.uploaded_at),
    }


def collection_listing(session: Session, principal: Principal, base: str) -> dict[str, Any]:
    """The first ``COLLECTIONS_LIMIT`` visible collections by name, each with its first ``LISTED_TAGS``
    tags (``search.listed_collections`` says which); ``next`` is null because the client re-fetches it."""
    results = [
        {
            "id": c.id,
            "name": c.name,
            "add_date": when(c.created_at),
            "modify_date": when(c.updated_at),
            "containers": [container_ref(t, base) for t in c.tags],
        }
        for c in search.listed_collections(session, principal)
    ]
    return {"count": len(results), "next": None, "previous": None, "results": results}


def collection_detail(session: Session, principal: Principal, name: str, base: str) -> dict[str, Any]:
    """One visible collection with its first ``TAGS_LIMIT`` tags."""
    collection = collections.get_visible(session, principal, name)
    tags = search.collection_tags(session, collection.id)
    return {
        "id": collection.id,
        "name": collection.name,
        "add_date": when(collection.created_at),
        "modify_date": when(collection.updated_at),
        "containers": [container_ref(t, base) for t in tags],
    }


def container_search(
    session: Session, principal: Principal, base: str, collection: str | None, name: str, tag: str | None
) -> list[dict[str, Any]]:
    """Containers whose collection and name contain the query, in visible collections only."""
    return [search_json(t, base) for t in search.shub_container_search(session, principal, collection, name, tag)]


def label_search(session: Session, principal: Principal, key: str | None, value: str | None) -> list[dict[str, Any]]:
    """SIF labels of visible tagged images whose key and value contain the query (case-insensitive), each
    with the tags that carry it; at most ``TAGS_LIMIT`` (label, tag) pairs are read."""
    found: dict[tuple[str, str], set[str]] = {}
    for match in search.label_search(session, principal, key, value):
        found.setdefault((match.key, match.value), set()).add(match.uri)
    return [{"key": k, "value": v, "containers": sorted(uris)} for (k, v), uris in sorted(found.items())]


# Manifests and deletes of one container.


@dataclass(frozen=True)
class DownloadLinks:
    """Signs the short-lived links to image bytes that manifests carry, on behalf of one caller."""

    secret_key: bytes
    base: str
    user: str

    def url(self, image: Image) -> str:
        """An absolute, signed, short-lived link to the bytes, usable without credentials."""
        container = image.container
        path = image_path(container.collection.name, container.name, image.digest)
        query = signing.sign(self.secret_key, "GET", path, DOWNLOAD_LIFETIME, bound=self.user)
        if self.user:
            query += "&" + urlencode({"user": self.user})
        return f"{self.base}/api/container/{path}/download?{query}"


def find_image(
    session: Session, principal: Principal, collection: str, name: str, tag: str | None, version: str | None
) -> tuple[Image, str | None]:
    """The image and the tag to report; ``@version`` must name an image the tag (if given) points at."""
    try:
        collections.get_visible(session, principal, collection)
    except NotFound:
        if principal.authenticated:
            raise
        raise Forbidden("no such public collection; sign the request to see private ones") from None
    if version is None:
        tag = tag or DEFAULT_TAG
        return images.resolve(session, principal, collection, name, tag), tag
    digest = f"sha256.{version}" if is_digest(f"sha256.{version}") else validate_digest(version)
    image = images.resolve(session, principal, collection, name, digest)
    names = sorted({t.name for t in image.tags})
    if tag is not None and tag not in names:
        raise NotFound(f"{collection}/{name}:{tag} is not version {digest}")
    return image, tag or (names[0] if names else None)


def manifest(
    session: Session,
    principal: Principal,
    collection: str,
    name: str,
    tag: str | None,
    version: str | None,
    links: DownloadLinks,
) -> dict[str, Any]:
    image, tag = find_image(session, principal, collection, name, tag, version)
    return manifest_json(image, tag, links.url(image))


def delete_container_ref(
    session: Session, principal: Principal, collection: str, name: str, tag: str | None, version: str | None
) -> None:
    """Delete by tag (the image goes with its last tag) or, with ``@version``, the image itself."""
    if version is None:
        images.delete_ref(session, principal, collection, name, tag or DEFAULT_TAG)
        return
    image, _ = find_image(session, principal, collection, name, tag, version)
    images.delete_image(session, principal, collection, name, image.digest)


def has_live_token(session: Session, username: str) -> bool:
    return bool(hmac_auth.live_tokens(session, username))


class ShubHandler(BaseHandler):
    def error_body(self, status: int, code: str, message: str) -> dict[str, Any]:
        return {"detail": message}

    def credential_hint(self) -> str:
        return (
            f"create a token at {self.base_url()}/tokens and put it, with your username, in the 'registry' "
            "section of sregistry-cli's ~/.sregistry"
        )

    @property
    def signature(self) -> str | None:
        """The request's ``SREGISTRY-HMAC-SHA256`` ``Authorization`` header, if it has one."""
        header = self.request.headers.get("Authorization", "")
        return header if hmac_auth.is_hmac(header) else None

    async def admit_signed(self, header: str, kind: str, collection: str, name: str, tag: str) -> None:
        """Let in the user whose token signed these fields, which arrive in the body (so after ``prepare``);
        a refused signature spends the address's budget, as a refused credential does in ``prepare``."""
        try:
            principal = await credentials.from_signature(self.registry, header, kind, collection, name, tag)
        except Unauthorized:
            await self.spend(ANONYMOUS)
            raise
        await self.admit(principal)


class IdentityHandler(ShubHandler):
    def get(self) -> None:
        slug = re.sub(r"[^a-z0-9]+", "-", self.registry.name.lower()).strip("-")
        self.write_json({"name": self.registry.name, "id": slug, "url": self.base_url()})


class CollectionsHandler(ShubHandler):
    async def get(self) -> None:
        await self.write_catalogue(collection_listing, self.base_url())


class CollectionHandler(ShubHandler):
    async def get(self, name: str) -> None:
        await self.write_catalogue(collection_detail, name, self.base_url())


class ContainerSearchHandler(ShubHandler):
    async def get(self, collection: str | None, name: str, tag: str | None) -> None:
        await self.write_catalogue(container_search, self.base_url(), collection, name, tag)


class LabelSearchHandler(ShubHandler):
    async def get(self, key: str | None, value: str | None) -> None:
        await self.write_catalogue(label_search, key, value)


class ContainerHandler(ShubHandler):
    """``GET`` the manifest of ``collection/name[:tag][@version]``; ``DELETE`` it with a signed request."""

    async def identify(self) -> Principal | None:
        """A signed request is the user whose token signed this kind of request for the container in the URL."""
        header, kind = self.signature, SIGNED_KINDS.get(self.request.method or "")
        if header is None or kind is None:
            return await super().identify()
        collection, name, tag, _ = self.path_args
        return await credentials.from_signature(self.registry, header, kind, collection, name, tag or DEFAULT_TAG)

    async def get(self, collection: str, name: str, tag: str | None, version: str | None) -> None:
        links = DownloadLinks(self.registry.secret_key, self.base_url(), self.principal.name or "")
        self.write_json(await self.read_db(manifest, self.principal, collection, name, tag, version, links))

    async def delete(self, collection: str, name: str, tag: str | None, version: str | None) -> None:
        collections.require(self.principal, Action.DELETE_IMAGE)
        await self.write_db(delete_container_ref, self.principal, collection, name, tag, version)
        self.set_status(204)
        self.finish()


class ShubDownloadHandler(ShubHandler, DownloadHandler):
    """The bytes behind a manifest's ``image`` link, on behalf of whoever the link was issued to."""

    rate_limited = False

    async def identify(self) -> Principal:
        """The link's user, once its signature over this path (and that user) has been checked."""
        collection, container, digest = self.path_args
        user = self.get_query_argument("user", "")
        try:
            signing.verify(
                self.registry.secret_key,
                "GET",
                image_path(collection, container, digest),
                self.get_query_argument("expires", None),
                self.get_query_argument("signature", None),
                bound=user,
            )
        except Forbidden as refused:
            raise Forbidden(f"{refused.message}; fetch the manifest again") from None
        return await credentials.from_link(self.registry, user)


# Pushes: the authorisation step and the streamed multipart upload.


class PushRequestHandler(ShubHandler):
    """Step 1 of a push: check that the signed caller may push, before any bytes are sent."""

    async def identify(self) -> Principal | None:
        """A signed request is identified in ``post``: its signature covers fields of the body."""
        if self.signature is not None:
            return None
        return await super().identify()

    async def post(self) -> None:
        body = self.json_body()
        collection, name, tag = body.get("collection"), body.get("name"), body.get("tag", DEFAULT_TAG)
        if not all(isinstance(v, str) for v in (collection, name, tag)):
            raise InvalidInput("send 'collection', 'name' and 'tag' as strings")
        header = self.signature
        if header is not None:
            await self.admit_signed(header, "push", collection, name, tag)
        await self.read_db(images.authorize_push, self.principal, collection, name, [tag])
        self.write_json({"cid": collection})


class UploadHandler(ShubHandler):
    """Step 2 of a push: a ``multipart/form-data`` body streamed into blob storage as it arrives.

    The ``upload`` credential in ``Authorization`` is checked before the body is read (form, kind,
    timestamp and a live token of its user); its signature covers the ``collection``, ``name`` and
    ``tag`` fields, so it is verified, the caller let in and the push authorised when the ``file1`` part
    begins, which the client sends after those fields. Not a byte of the file is stored before that.
    """

    streams_body = True
    credential = ""
    writes: OffloadedWrites | None = None
    field: str | None = None
    signed_fields: tuple[str, str, str] | None = None
    received = 0

    async def identify(self) -> None:
        """Nobody yet: the credential is checked as far as it can be without the fields it signs."""
        header = self.signature
        if header is None:
            raise CredentialRequired(f"pushing needs a token, which signs the upload ({hmac_auth.SCHEME})")
        credential = hmac_auth.parse(header)
        hmac_auth.check_fresh(credential, "upload")
        if not await self.read_db(has_live_token, credential.username):
            raise Unauthorized(hmac_auth.INVALID)
        self.credential = header

    async def prepare(self) -> None:
        await super().prepare()
        self.parser = MultipartReader(boundary_of(self.request.headers.get("Content-Type", "")), self)
        self.limit_body(self.registry.max_upload_size + FORM_OVERHEAD)
        self.fields: dict[str, str] = {}
        self.value = bytearray()
        self.file_chunks: list[bytes] = []

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        if self._finished:
            return None
        try:
            self.parser.feed(chunk)
        except RegistryError as error:
            self.send_error(error.status, exc_info=sys.exc_info())
            return None
        fields = self.signed_fields
        if fields is None:
            return None
        return self.take_file(*fields)

    async def take_file(self, collection: str, name: str, tag: str) -> None:
        """Let the push in once ``file1`` has begun, then hand its bytes to storage, waiting (so Tornado
        stops reading) while storage is behind."""
        writes = self.writes
        if writes is None:
            try:
                writes = self.writes = await self.start_file(collection, name, tag)
            except RegistryError as error:
                self.send_error(error.status, exc_info=sys.exc_info())
                return
        chunks, self.file_chunks = self.file_chunks, []
        for chunk in chunks:
            waiting = writes.add(chunk)
            if waiting is not None:
                await waiting

    async def start_file(self, collection: str, name: str, tag: str) -> OffloadedWrites:
        """Verify the signature over the fields, admit its user and authorise the push; then open the writer."""
        await self.admit_signed(self.credential, "upload", collection, name, tag)
        self.target = await self.read_db(images.authorize_push, self.principal, collection, name, [tag])
        return OffloadedWrites(self.registry.store.writer())

    def begin_part(self, part: Part) -> None:
        if part.name == "file1":
            if self.signed_fields is not None:
                raise InvalidInput("the form has more than one file1 part")
            self.signed_fields = self.fields_before_file()
            return
        if part.name in self.fields or len(self.fields) >= MAX_FIELDS:
            raise InvalidInput(f"the form repeats {part.name!r} or has more than {MAX_FIELDS} fields")
        self.field = part.name
        self.value.clear()

    def fields_before_file(self) -> tuple[str, str, str]:
        """The collection, name and tag the signature covers, which the client sends before ``file1``."""
        collection, name = self.fields.get("collection"), self.fields.get("name")
        if collection is None or name is None:
            raise InvalidInput("send the collection, name and tag fields before file1")
        return collection, name, self.fields.get("tag", DEFAULT_TAG)

    def part_data(self, data: bytes) -> None:
        if self.field is not None:
            if len(self.value) + len(data) > MAX_FIELD:
                raise InvalidInput(f"form field {self.field!r} is larger than {MAX_FIELD} bytes")
            self.value += data
            return
        self.received += len(data)
        if self.received > self.registry.max_upload_size:
            raise TooLarge(f"images may be at most {self.registry.max_upload_size} bytes")
        self.file_chunks.append(data)

    def end_part(self) -> None:
        if self.field is None:
            return
        try:
            self.fields[self.field] = self.value.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(f"form field {self.field!r} is not UTF-8 text") from None
        self.field = None

    async def post(self) -> None:
        self.parser.close()
        if self.writes is None:
            raise InvalidInput("the form has no file1 part")
        if not self.received:
            raise InvalidInput("file1 is empty")
        with storage_errors():
            await self.writes.drain()
        writer = self.writes.writer
        blob, sif = await commit_blob(self.registry.store, writer.commit, writer.digest, writer.size)
        await self.write_db(record_push, self.principal, self.target, blob, sif=sif, remote_addr=self.remote_addr)
        self.write_json({"message": "Upload Complete"})

    def discard(self) -> None:
        """Cancel an upload that was not committed; after a commit this does nothing."""
        if self.writes is not None:
            self.writes.cancel()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Remove the partial upload before the client hears of the failure."""
        self.discard()
        super().write_error(status_code, **kwargs)

    def on_connection_close(self) -> None:
        if not self.request._body_future.done():
            self.discard()
        super().on_connection_close()


def routes() -> list[tuple[str, type]]:
    container = r"/api/container/([^/]+)/([^/:@]+)"
    return [
        (r"/api/registry/identity/?", IdentityHandler),
        (r"/api/collections/?", CollectionsHandler),
        (r"/api/collection/([^/]+)/?", CollectionHandler),
        (r"/api/container/search(?:/collection/([^/]+))?/name/([^/]+)(?:/tag/([^/]+))?/?", ContainerSearchHandler),
        (r"/api/labels/search(?:/([^/]+)/key)?(?:/([^/]+)/value)?/?", LabelSearchHandler),
        (rf"{container}@(sha256\.[0-9a-f]{{64}})/download", ShubDownloadHandler),
        (rf"{container}(?::([^/@]+))?(?:@([^/]+))?/?", ContainerHandler),
        (r"/api/upload/chunked_upload/?", PushRequestHandler),
        (r"/upload/?", UploadHandler),
    ]
