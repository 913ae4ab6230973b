"""Push and pull as plans (see ``steps``): resumable, verified, streamed from and to disk.

Push hashes the file first, then asks the registry to link bytes it already has (the dedup check),
and otherwise uploads through the registry's tus 1.0 endpoint (``/api/v1/uploads``), resuming from the
offset the registry reports after a cut connection. A registry without that endpoint gets the native
single-request upload, retried from the start. A push that fails or is cancelled terminates its upload
session, so the registry keeps nothing half-sent.

Pull downloads into a hidden partial file beside the target (``.<name>.<digest prefix>.part``), resumes
with a ``Range`` request (``If-Range`` on the digest, so changed bytes restart the download), checks the
sha256 of the whole file and only then renames it into place. A later pull of the same image resumes a
partial file left by an earlier one that lost its connection; a cancelled pull removes its partial file.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .errors import Conflict, IntegrityError, InvalidInput, RegistryUnavailable
from .refs import ImageRef
from .results import Image
from .steps import Call, Digest, Durable, Fetch, Pause, Plan, Send

TUS_VERSION = "1.0.0"
TUS_HEADERS = {"Tus-Resumable": TUS_VERSION}
UPLOADS = "/api/v1/uploads"
RETRIES = 6
COMPLETION_POLLS = 600

Progress = Callable[[int, int], None]


def backoff(failures: int) -> float:
    return min(0.25 * 2 ** (failures - 1), 5.0)


def tus_metadata(values: dict[str, str]) -> str:
    """``Upload-Metadata``: comma-separated ``key base64(value)`` pairs, empty values left out."""
    return ",".join(f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in values.items() if value)


def unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


@dataclass
class Meter:
    """Bytes done out of a total, told to an optional callback."""

    total: int
    callback: Progress | None = None
    done: int = 0

    def set(self, done: int) -> None:
        self.done = done
        if self.callback is not None:
            self.callback(done, self.total)

    def add(self, count: int) -> None:
        self.set(self.done + count)


@dataclass
class Push:
    """One push of ``file`` to ``ref`` (plus ``tags``); ``abort_calls`` undo what a stopped push began."""

    file: Path
    ref: ImageRef
    tags: list[str] = field(default_factory=list)
    description: str = ""
    progress: Progress | None = None
    upload_url: str | None = None
    finished: bool = False
    deduplicated: bool = False

    def abort_calls(self, error: BaseException) -> list[Call]:
        """The termination of the upload session, whatever stopped the push: nothing half-sent stays."""
        if self.upload_url is None or self.finished:
            return []
        return [Call("DELETE", self.upload_url, headers=dict(TUS_HEADERS), allow=frozenset({404, 410}))]

    def plan(self) -> Plan[Image]:
        if self.ref.digest:
            raise InvalidInput("push to a tag (collection/container:tag), not to a digest")
        if not self.file.is_file():
            raise InvalidInput(f"{self.file} is not a file")
        size = self.file.stat().st_size
        meter = Meter(size, self.progress)
        hasher = yield Digest(self.file)
        digest = f"sha256.{hasher.hexdigest()}"
        tags = unique([self.ref.tag or "", *self.tags])
        meter.set(0)
        linked = yield Call(
            "POST",
            f"{self.ref.container_path}/images",
            json={"digest": digest, "size": size, "tags": tags},
            allow=frozenset({400, 404, 405, 411, 415}),
        )
        if linked.status_code in (200, 201):
            self.finished = self.deduplicated = True
            meter.set(size)
            return Image.model_validate(linked.json())
        created = yield Call(
            "POST",
            UPLOADS,
            headers={
                **TUS_HEADERS,
                "Upload-Length": str(size),
                "Upload-Metadata": tus_metadata(
                    {
                        "collection": self.ref.collection,
                        "container": self.ref.container,
                        "tags": ",".join(tags),
                        "digest": digest,
                        "filename": self.file.name,
                        "description": self.description,
                    }
                ),
            },
            allow=frozenset({404, 405}),
        )
        if created.status_code in (404, 405):
            return (yield from self.single_request(meter, digest, tags))
        self.upload_url = created.headers["Location"]
        yield from self.send_resumably(meter, size)
        return (yield from self.finished_image())

    def finished_image(self) -> Plan[Image]:
        """The image the upload became, once the registry has verified and recorded it."""
        for _ in range(COMPLETION_POLLS):
            status = (yield Call("GET", self.upload_url, headers=dict(TUS_HEADERS))).json()
            if status.get("state") == "failed":
                self.finished = True
                raise InvalidInput(status.get("error") or "the registry refused the upload", code="UPLOAD_FAILED")
            if status.get("image"):
                self.finished = True
                return Image.model_validate(status["image"])
            yield Pause(0.2)
        raise RegistryUnavailable("the registry did not finish recording the upload")

    def send_resumably(self, meter: Meter, size: int) -> Plan[None]:
        """PATCH until the registry holds every byte, asking it for the offset after each failure."""
        assert self.upload_url is not None
        offset, failures = 0, 0
        while offset < size or size == 0:
            try:
                answer = yield Send(
                    "PATCH",
                    self.upload_url,
                    self.file,
                    offset,
                    size - offset,
                    meter.add,
                    headers={
                        **TUS_HEADERS,
                        "Upload-Offset": str(offset),
                        "Content-Type": "application/offset+octet-stream",
                    },
                )
                offset = int(answer.headers.get("Upload-Offset", offset))
                if size == 0:
                    return
            except (RegistryUnavailable, Conflict):
                failures += 1
                if failures > RETRIES:
                    raise
                yield Pause(backoff(failures))
                try:
                    head = yield Call("HEAD", self.upload_url, headers=dict(TUS_HEADERS))
                except RegistryUnavailable:
                    continue
                offset = int(head.headers["Upload-Offset"])
            meter.set(offset)

    def single_request(self, meter: Meter, digest: str, tags: list[str]) -> Plan[Image]:
        """The native upload: one request with the whole file, started again after a cut."""
        params: list[tuple[str, Any]] = [("digest", digest), *(("tag", t) for t in tags)]
        if self.description:
            params.append(("description", self.description))
        failures = 0
        while True:
            meter.set(0)
            try:
                answer = yield Send(
                    "POST",
                    f"{self.ref.container_path}/images",
                    self.file,
                    0,
                    meter.total,
                    meter.add,
                    params=params,
                    headers={"Content-Type": "application/octet-stream"},
                )
            except RegistryUnavailable:
                failures += 1
                if failures > RETRIES:
                    raise
                yield Pause(backoff(failures))
                continue
            self.finished = True
            return Image.model_validate(answer.json())


def default_filename(ref: ImageRef, image: Image) -> str:
    return f"{image.container}_{ref.tag or image.digest[7:19]}.sif"


@dataclass
class Pull:
    """One pull of ``ref`` to ``destination`` (a file, or a folder to put ``<container>_<tag>.sif`` in)."""

    ref: ImageRef
    destination: Path
    progress: Progress | None = None
    target: Path | None = None
    partial: Path | None = None
    image: Image | None = None
    _hasher: Any = None
    _handle: Any = None
    _meter: Meter | None = None

    def abandon(self, error: BaseException) -> list[Call]:
        """After a lost connection the partial file stays, for a later pull to resume; after anything
        else (a cancellation, a refusal) it is removed. Nothing needs saying to the registry."""
        if not isinstance(error, RegistryUnavailable):
            if self._handle is not None:
                self._handle.close()
            if self.partial is not None:
                self.partial.unlink(missing_ok=True)
        return []

    def resolve_target(self, image: Image) -> Path:
        destination = self.destination
        if destination.is_dir():
            return destination / default_filename(self.ref, image)
        if not destination.parent.is_dir():
            raise InvalidInput(f"the folder {destination.parent} does not exist")
        return destination

    def opened(self, response: httpx.Response) -> None:
        """A 200 to a ranged request means the registry sends everything again: start the file over."""
        if response.status_code == 200 and self._handle.tell() > 0:
            self._handle.seek(0)
            self._handle.truncate()
            self._hasher = hashlib.sha256()
            self._meter.set(0)

    def sink(self, chunk: bytes) -> None:
        self._handle.write(chunk)
        self._hasher.update(chunk)
        self._meter.add(len(chunk))

    def plan(self) -> Plan[Path]:
        found = yield Call("GET", self.ref.image_path)
        image = self.image = Image.model_validate(found.json())
        target = self.target = self.resolve_target(image)
        self.partial = target.parent / f".{target.name}.{image.digest[7:23]}.part"
        have = self.partial.stat().st_size if self.partial.exists() else 0
        if have > image.size:
            self.partial.unlink()
            have = 0
        self._hasher = (yield Digest(self.partial, have)) if have else hashlib.sha256()
        self._meter = Meter(image.size, self.progress)
        self._meter.set(have)
        self._handle = self.partial.open("ab")
        try:
            yield from self.download(image)
            yield Durable(self._handle)
        finally:
            self._handle.close()
        if f"sha256.{self._hasher.hexdigest()}" != image.digest:
            self.partial.unlink(missing_ok=True)
            raise IntegrityError(f"the bytes received for {self.ref} do not match its digest {image.digest}; removed")
        os.replace(self.partial, target)
        return target

    def download(self, image: Image) -> Plan[None]:
        path = f"{self.ref.container_path}/images/{image.digest}/file"
        failures = 0
        while self._handle.tell() < image.size:
            offset = self._handle.tell()
            headers = {"Range": f"bytes={offset}-", "If-Range": f'"{image.digest}"'} if offset else {}
            try:
                yield Fetch(path, headers, self.opened, self.sink)
                if self._handle.tell() > offset:
                    continue
                stalled = RegistryUnavailable(f"the registry stopped sending {self.ref}")
            except RegistryUnavailable as error:
                stalled = error
            failures += 1
            if failures > RETRIES:
                raise stalled
            self._handle.flush()
            yield Pause(backoff(failures))
