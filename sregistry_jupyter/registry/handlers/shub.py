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
from collections.abc import Awaitable, Iterable
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session, contains_eager, joinedload

from .. import signing
from ..access import ANONYMOUS, Principal, visible_collections
from ..errors import Forbidden, InvalidInput, NotFound, RegistryError, TooLarge, Unauthorized
from ..names import is_digest, validate_digest
from ..orm import Collection, Container, Image, Tag
from ..services import collections, hmac_auth, images, users
from ..services.collections import require_user
from .base import BaseHandler
from .multipart_form import FORM_OVERHEAD, MultipartReader, Part, boundary_of
from .serialize import when
from .streaming import OffloadedWrites
from .transfer import DownloadHandler, commit_blob

DEFAULT_TAG = "latest"
DOWNLOAD_LIFETIME = 600
MAX_FIELD = 4096
MAX_FIELDS = 16


def image_path(collection: str, container: str, digest: str) -> str:
    return f"{collection}/{container}@{digest}"


# Queries for listings and searches: only tags in collections the caller may see.


def visible_tags(session: Session, principal: Principal, *conditions: ColumnElement[bool]) -> list[Tag]:
    query = (
        select(Tag)
        .join(Tag.container)
        .join(Container.collection)
        .where(visible_collections(principal), *conditions)
        .options(contains_eager(Tag.container).contains_eager(Container.collection), joinedload(Tag.image))
        .order_by(Collection.name, Container.name, Tag.name, Tag.arch)
    )
    return list(session.scalars(query).unique())


def containing(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, with the wildcards in it escaped."""
    return "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def uri_of(tag: Tag) -> str:
    return f"{tag.container.collection.name}/{tag.container.name}:{tag.name}"


def unique_by_uri(tags: Iterable[Tag]) -> list[Tag]:
    """One tag per ``collection/name:tag`` (a tag may exist for several architectures)."""
    seen: dict[str, Tag] = {}
    for tag in tags:
        seen.setdefault(uri_of(tag), tag)
    return list(seen.values())


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


class ShubHandler(BaseHandler):
    verifies_signatures = False

    def error_body(self, status: int, code: str, message: str) -> dict[str, Any]:
        return {"detail": message}

    def counts_request_later(self) -> bool:
        """A signed request is counted against its token once ``signed_principal`` has verified it."""
        return self.verifies_signatures and hmac_auth.is_hmac(self.request.headers.get("Authorization"))

    def signed_principal(self, kind: str, collection: str, name: str, tag: str) -> Principal:
        """The caller: from an HMAC signature over this request if one is sent, else as usual."""
        header = self.request.headers.get("Authorization")
        if hmac_auth.is_hmac(header):
            try:
                principal = hmac_auth.authenticate(
                    self.db, self.registry.secret_key, header, kind, collection, name, tag
                )
                self._principal = replace(principal, policy=self.registry.policy)
            finally:
                self.count_request(self.principal)
        return self.principal

    def container_ref(self, tag: Tag) -> dict[str, Any]:
        container = tag.container
        path = f"{container.collection.name}/{container.name}:{tag.name}"
        return {
            "id": tag.image.id,
            "name": container.name,
            "tag": tag.name,
            "uri": path,
            "detail": f"{self.base_url()}/api/container/{path}",
        }

    def search_json(self, tag: Tag) -> dict[str, Any]:
        return {
            **self.container_ref(tag),
            "collection": tag.container.collection.name,
            "version": tag.image.digest,
            "add_date": when(tag.image.uploaded_at),
        }


class IdentityHandler(ShubHandler):
    def get(self) -> None:
        slug = re.sub(r"[^a-z0-9]+", "-", self.registry.name.lower()).strip("-")
        self.write_json({"name": self.registry.name, "id": slug, "url": self.base_url()})


class CollectionsHandler(ShubHandler):
    """Every visible collection with its containers; ``next`` is null because the client re-fetches it."""

    def get(self) -> None:
        rows = self.db.scalars(
            select(Collection).where(visible_collections(self.principal)).order_by(Collection.name)
        ).all()
        tags: dict[int, list[Tag]] = {row.id: [] for row in rows}
        for tag in unique_by_uri(visible_tags(self.db, self.principal)):
            tags[tag.container.collection_id].append(tag)
        results = [
            {
                "id": row.id,
                "name": row.name,
                "add_date": when(row.created_at),
                "modify_date": when(row.updated_at),
                "containers": [self.container_ref(t) for t in tags[row.id]],
            }
            for row in rows
        ]
        self.write_json({"count": len(results), "next": None, "previous": None, "results": results})


class CollectionHandler(ShubHandler):
    def get(self, name: str) -> None:
        collection = collections.get_visible(self.db, self.principal, name)
        tags = unique_by_uri(visible_tags(self.db, self.principal, Collection.id == collection.id))
        self.write_json(
            {
                "id": collection.id,
                "name": collection.name,
                "add_date": when(collection.created_at),
                "modify_date": when(collection.updated_at),
                "containers": [self.container_ref(t) for t in tags],
            }
        )


class ContainerSearchHandler(ShubHandler):
    """Containers whose collection and name contain the query, in visible collections only."""

    def get(self, collection: str | None, name: str, tag: str | None) -> None:
        conditions = [Container.name.like(containing(name), escape="\\")]
        if collection is not None:
            conditions.append(Collection.name.like(containing(collection), escape="\\"))
        if tag is not None:
            conditions.append(Tag.name == tag)
        tags = unique_by_uri(visible_tags(self.db, self.principal, *conditions))
        self.write_json([self.search_json(t) for t in tags])


class LabelSearchHandler(ShubHandler):
    """SIF labels of visible tagged images whose key and value contain the query (case-insensitive)."""

    def get(self, key: str | None, value: str | None) -> None:
        found: dict[tuple[str, str], set[str]] = {}
        for tag in visible_tags(self.db, self.principal):
            labels = (tag.image.sif or {}).get("labels") or {}
            for label, content in labels.items():
                text = content if isinstance(content, str) else str(content)
                if (key is None or key.lower() in label.lower()) and (value is None or value.lower() in text.lower()):
                    found.setdefault((label, text), set()).add(uri_of(tag))
        self.write_json([{"key": k, "value": v, "containers": sorted(uris)} for (k, v), uris in sorted(found.items())])


class ContainerHandler(ShubHandler):
    """``GET`` the manifest of ``collection/name[:tag][@version]``; ``DELETE`` it with a signed request."""

    verifies_signatures = True

    def get(self, collection: str, name: str, tag: str | None, version: str | None) -> None:
        principal = self.signed_principal("pull", collection, name, tag or DEFAULT_TAG)
        image, tag = self.find(principal, collection, name, tag, version)
        self.write_json(manifest_json(image, tag, self.download_url(principal, image)))

    def delete(self, collection: str, name: str, tag: str | None, version: str | None) -> None:
        principal = self.signed_principal("delete", collection, name, tag or DEFAULT_TAG)
        require_user(principal)
        if version is None:
            images.delete_ref(self.db, principal, collection, name, tag or DEFAULT_TAG)
        else:
            image, _ = self.find(principal, collection, name, tag, version)
            images.delete_image(self.db, principal, collection, name, image.digest)
        self.db.commit()
        self.set_status(204)
        self.finish()

    def find(
        self, principal: Principal, collection: str, name: str, tag: str | None, version: str | None
    ) -> tuple[Image, str | None]:
        """The image and the tag to report; ``@version`` must name an image the tag (if given) points at."""
        try:
            collections.get_visible(self.db, principal, collection)
        except NotFound:
            if principal.authenticated:
                raise
            raise Forbidden("no such public collection; sign the request to see private ones") from None
        if version is None:
            tag = tag or DEFAULT_TAG
            return images.resolve(self.db, principal, collection, name, tag), tag
        digest = f"sha256.{version}" if is_digest(f"sha256.{version}") else validate_digest(version)
        image = images.resolve(self.db, principal, collection, name, digest)
        names = sorted({t.name for t in image.tags})
        if tag is not None and tag not in names:
            raise NotFound(f"{collection}/{name}:{tag} is not version {digest}")
        return image, tag or (names[0] if names else None)

    def download_url(self, principal: Principal, image: Image) -> str:
        """An absolute, signed, short-lived link to the bytes, usable without credentials."""
        container = image.container
        path = image_path(container.collection.name, container.name, image.digest)
        user = principal.name or ""
        query = signing.sign(self.registry.secret_key, "GET", path, DOWNLOAD_LIFETIME, bound=user)
        if user:
            query += "&" + urlencode({"user": user})
        return f"{self.base_url()}/api/container/{path}/download?{query}"


class ShubDownloadHandler(ShubHandler, DownloadHandler):
    """The bytes behind a manifest's ``image`` link, on behalf of whoever the link was issued to."""

    rate_limited = False

    def authenticate(self) -> Principal:
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
        if not user:
            return ANONYMOUS
        try:
            return Principal(users.get_user(self.db, user), "read")
        except NotFound:
            raise Forbidden("this download link is no longer valid") from None


class PushRequestHandler(ShubHandler):
    """Step 1 of a push: check that the signed caller may push, before any bytes are sent."""

    verifies_signatures = True

    def post(self) -> None:
        body = self.json_body()
        collection, name, tag = body.get("collection"), body.get("name"), body.get("tag", DEFAULT_TAG)
        if not all(isinstance(v, str) for v in (collection, name, tag)):
            raise InvalidInput("send 'collection', 'name' and 'tag' as strings")
        principal = self.signed_principal("push", collection, name, tag)
        images.authorize_push(self.db, principal, collection, name, [tag])
        self.write_json({"cid": collection})


class UploadHandler(ShubHandler):
    """Step 2 of a push: a ``multipart/form-data`` body streamed into blob storage as it arrives.

    The ``upload`` credential in ``Authorization`` is checked before the body is read (form, kind,
    timestamp and a live token of its user); its signature covers the ``collection``, ``name`` and
    ``tag`` fields, so it is verified, and the push authorised, when the ``file1`` part begins, which
    the client sends after those fields. Not a byte of the file is stored before that.
    """

    writes: OffloadedWrites | None = None
    field: str | None = None
    received = 0

    async def prepare(self) -> None:
        self.registry.in_flight.count += 1
        self._counted = True
        header = self.request.headers.get("Authorization")
        if not hmac_auth.is_hmac(header):
            raise Unauthorized(f"sign the upload with an {hmac_auth.SCHEME} 'upload' credential")
        self.credential = hmac_auth.parse(header)
        hmac_auth.check_fresh(self.credential, "upload")
        if not hmac_auth.live_tokens(self.db, self.credential.username):
            raise Unauthorized(hmac_auth.INVALID)
        self.db.rollback()
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
        if not self.file_chunks:
            return None
        chunks, self.file_chunks = self.file_chunks, []
        return self.store(chunks)

    async def store(self, chunks: list[bytes]) -> None:
        """Hand file bytes to storage, waiting (so Tornado stops reading) while storage is behind."""
        assert self.writes is not None
        for chunk in chunks:
            waiting = self.writes.add(chunk)
            if waiting is not None:
                await waiting

    def begin_part(self, part: Part) -> None:
        if part.name == "file1":
            if self.writes is not None:
                raise InvalidInput("the form has more than one file1 part")
            self.start_file()
            return
        if part.name in self.fields or len(self.fields) >= MAX_FIELDS:
            raise InvalidInput(f"the form repeats {part.name!r} or has more than {MAX_FIELDS} fields")
        self.field = part.name
        self.value.clear()

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

    def start_file(self) -> None:
        """Verify the signature over the fields and authorise the push, then open the blob writer."""
        collection, name = self.fields.get("collection"), self.fields.get("name")
        tag = self.fields.get("tag", DEFAULT_TAG)
        if collection is None or name is None:
            raise InvalidInput("send the collection, name and tag fields before file1")
        try:
            principal = hmac_auth.verify(self.db, self.registry.secret_key, self.credential, collection, name, tag)
            self._principal = replace(principal, policy=self.registry.policy)
        finally:
            self.count_request(self._principal or ANONYMOUS)
        self.target = images.authorize_push(self.db, self._principal, collection, name, [tag])
        self.db.commit()
        self.writes = OffloadedWrites(self.registry.store.writer())

    async def post(self) -> None:
        self.parser.close()
        if self.writes is None:
            raise InvalidInput("the form has no file1 part")
        if not self.received:
            raise InvalidInput("file1 is empty")
        await self.writes.drain()
        writer = self.writes.writer
        blob, sif = await commit_blob(self.registry.store, writer.commit, writer.digest, writer.size)
        images.commit_push(self.db, self.principal, self.target, blob, sif=sif, remote_addr=self.remote_addr)
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
