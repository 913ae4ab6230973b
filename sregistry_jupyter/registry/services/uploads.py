"""Upload sessions: uploads whose bytes arrive over several requests (library parts, tus PATCHes).

The state of a session is in the database and its bytes are in the blob store under the session's id,
so any registry process can take any request. Three rules keep the stored bytes honest:

- **Writers hold a lock the commit takes.** Every write claims the session first (``claim_part``,
  ``claim_append``: ``writers + 1``, only while the session is ``open``) and releases it when its bytes
  are written or abandoned. ``begin_completion`` moves the session to ``completing`` only while no
  writer is open, in one conditional update, so no write can start or still run once the blob is being
  verified and published: a late part URL finds the session closed.
- **Completion never hashes what never arrived.** Each write that arrived is recorded (part number,
  offset, size, ETag); completion refuses a session with a missing, short or unconfirmed part before
  reading a byte.
- **Each byte is hashed once where possible.** Writes that arrive in order extend a running sha256
  kept in this process (``RunningHashes``); completion reads back only what came out of order. The
  running hash is used only if the database shows that every write below its end is one it hashed
  (each write has its own ETag), so a write by another process always forces the full read.

Sessions are capped per user (open sessions and their declared bytes, ``UploadLimits``).
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from ..access import Principal, may_use_upload
from ..errors import Conflict, Forbidden, InvalidInput, NotFound
from ..orm import UploadPart, UploadSession, utcnow
from ..storage import BlobInfo, BlobStore, PartWriter, PrefixHash

UPLOAD_TTL = dt.timedelta(days=1)
LIVE_STATES = ("open", "completing")


class UploadQuota(Forbidden):
    """The caller has as many uploads open (or as many bytes declared) as one user may."""

    code = "UPLOAD_QUOTA"


@dataclass(frozen=True)
class UploadLimits:
    """Per-user caps on uploads in progress (``RegistryApp.max_open_uploads`` and ``max_open_upload_bytes``)."""

    max_open: int = 10
    max_bytes: int = 256 << 30


@dataclass
class Running:
    """A running hash of an upload and the ETags of the writes it covers."""

    prefix: PrefixHash = field(default_factory=PrefixHash)
    etags: set[str] = field(default_factory=set)


class RunningHashes:
    """This process's running hashes, one per upload, each lent to one writer at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[str, Running] = {}
        self._lent: set[str] = set()

    def lend(self, upload_id: str, offset: int) -> Running | None:
        """The running hash if it ends at ``offset`` and no writer has it (a new one at offset 0)."""
        with self._lock:
            if upload_id in self._lent:
                return None
            running = self._idle.get(upload_id)
            if running is None and offset == 0:
                running = Running()
            if running is None or running.prefix.position != offset:
                return None
            self._idle.pop(upload_id, None)
            self._lent.add(upload_id)
            return running

    def give_back(self, upload_id: str, running: Running) -> None:
        with self._lock:
            self._lent.discard(upload_id)
            self._idle[upload_id] = running

    def take(self, upload_id: str) -> Running | None:
        """The running hash for the completion (None if a writer still has it or there is none)."""
        with self._lock:
            return None if upload_id in self._lent else self._idle.pop(upload_id, None)

    def forget(self, upload_id: str) -> None:
        """Drop the upload's running hash (its writer failed halfway, or the upload ended)."""
        with self._lock:
            self._lent.discard(upload_id)
            self._idle.pop(upload_id, None)


def check_quota(session: Session, principal: Principal, size: int, limits: UploadLimits) -> None:
    """Refuse a new upload session past the caller's caps on open sessions and declared bytes."""
    if principal.user is None:
        return
    count, declared = session.execute(
        select(func.count(), func.coalesce(func.sum(UploadSession.declared_size), 0)).where(
            UploadSession.user_id == principal.user.id,
            UploadSession.state.in_(LIVE_STATES),
            UploadSession.expires_at > utcnow(),
        )
    ).one()
    if count >= limits.max_open:
        raise UploadQuota(f"you have {count} uploads in progress, the most one person may; finish or cancel one first")
    if declared + size > limits.max_bytes:
        raise UploadQuota(
            f"uploads in progress may declare at most {limits.max_bytes} bytes per person; "
            f"{declared} are declared already"
        )


def open_session(
    session: Session,
    principal: Principal,
    kind: str,
    size: int,
    digest: str,
    limits: UploadLimits,
    *,
    image_id: int | None = None,
    parts: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
) -> UploadSession:
    """Record a new upload session of ``principal`` (within their quota); committed here."""
    check_quota(session, principal, size, limits)
    now = utcnow()
    upload = UploadSession(
        id=uuid.uuid4().hex,
        user_id=principal.user.id if principal.user else None,
        image_id=image_id,
        kind=kind,
        declared_size=size,
        declared_digest=digest,
        parts=parts,
        meta=meta,
        created_at=now,
        updated_at=now,
        expires_at=now + UPLOAD_TTL,
    )
    session.add(upload)
    session.commit()
    return upload


def _claim(session: Session, upload_id: str, *conditions: Any) -> str:
    """Take the writers' lock of an open session; returns the write's ETag (its generation)."""
    claimed = session.execute(
        update(UploadSession)
        .where(UploadSession.id == upload_id, UploadSession.state == "open", *conditions)
        .values(
            writers=UploadSession.writers + 1,
            generation=UploadSession.generation + 1,
            updated_at=utcnow(),
        )
    ).rowcount
    if not claimed:
        upload = session.get(UploadSession, upload_id)
        if upload is None or upload.state != "open":
            raise NotFound("no such upload in progress (it is complete, aborted or expired)")
        raise Conflict(f"the upload holds {upload.received} bytes; continue from that offset")
    return str(session.scalar(select(UploadSession.generation).where(UploadSession.id == upload_id)))


def claim_part(session: Session, upload_id: str, number: int) -> str:
    """Claim a multipart part's write; until it is released whole, the part has not arrived."""
    etag = _claim(session, upload_id)
    session.execute(delete(UploadPart).where(UploadPart.upload_id == upload_id, UploadPart.number == number))
    return etag


def release_part(
    session: Session,
    upload_id: str,
    etag: str,
    number: int,
    offset: int,
    size: int | None,
    prefix_sha256: str | None,
) -> None:
    """Release a part's claim, recording the part if it arrived whole (``size`` not None)."""
    session.execute(
        update(UploadSession)
        .where(UploadSession.id == upload_id)
        .values(writers=UploadSession.writers - 1, updated_at=utcnow())
    )
    if size is not None:
        session.execute(delete(UploadPart).where(UploadPart.upload_id == upload_id, UploadPart.number == number))
        session.add(
            UploadPart(
                upload_id=upload_id, number=number, offset=offset, size=size, etag=etag, prefix_sha256=prefix_sha256
            )
        )


def owned_upload(session: Session, principal: Principal, upload_id: str) -> UploadSession:
    """The upload session ``upload_id`` if ``principal`` may use it (its creator); else not found."""
    upload = session.get(UploadSession, upload_id) if len(upload_id) <= 64 else None
    if upload is None or not may_use_upload(principal, upload.user_id):
        raise NotFound("no such upload")
    return upload


def claim_append(session: Session, principal: Principal, upload_id: str, offset: int) -> str:
    """Claim a tus PATCH at ``offset``, which must be where the upload's bytes end (409 otherwise)."""
    owned_upload(session, principal, upload_id)
    return _claim(session, upload_id, UploadSession.received == offset)


def release_append(
    session: Session, upload_id: str, etag: str, offset: int, size: int, prefix_sha256: str | None
) -> int:
    """Release a PATCH's claim, recording the bytes it wrote; returns the upload's offset now."""
    session.execute(
        update(UploadSession)
        .where(UploadSession.id == upload_id)
        .values(writers=UploadSession.writers - 1, updated_at=utcnow())
    )
    if size:
        session.execute(
            update(UploadSession)
            .where(UploadSession.id == upload_id, UploadSession.received == offset)
            .values(received=offset + size)
        )
        session.add(
            UploadPart(
                upload_id=upload_id,
                number=int(etag),
                offset=offset,
                size=size,
                etag=etag,
                prefix_sha256=prefix_sha256,
            )
        )
    return session.scalar(select(UploadSession.received).where(UploadSession.id == upload_id)) or 0


@dataclass(frozen=True)
class Completion:
    """What verifying a session needs: its declared bytes and the writes that reached it."""

    upload_id: str
    digest: str
    size: int
    writes: tuple[tuple[int, int, str], ...]  # offset, size, etag of every recorded write


def _multipart_missing(upload: UploadSession, parts: dict[int, UploadPart], tokens: dict[int, str]) -> str | None:
    layout = upload.parts or {}
    part_size, total = layout.get("partSize", 0), layout.get("totalParts", 0)
    for number in range(1, total + 1):
        expected = min(part_size, upload.declared_size - (number - 1) * part_size)
        part = parts.get(number)
        if part is None or part.size != expected:
            return f"part {number} has not arrived"
        if tokens.get(number) != part.etag:
            return f"the token of part {number} is not the ETag its upload was answered with"
    return None


def begin_completion(session: Session, upload_id: str, tokens: dict[int, str] | None = None) -> Completion:
    """Take the session from ``open`` to ``completing`` if every byte arrived and no writer is open.

    ``tokens`` (part number → ETag, for the library's multipart protocol) must name the parts that
    arrived. Refusals leave the session open, and happen before any byte is read.
    """
    locked = session.execute(
        update(UploadSession)
        .where(UploadSession.id == upload_id, UploadSession.state == "open", UploadSession.writers == 0)
        .values(state="completing", updated_at=utcnow())
    ).rowcount
    upload = session.get(UploadSession, upload_id)
    if upload is None or (not locked and upload.state != "open"):
        raise NotFound("no such upload in progress")
    if not locked:
        raise Conflict("parts of this upload are still being received; complete it once they have arrived")
    writes = session.scalars(select(UploadPart).where(UploadPart.upload_id == upload_id)).all()
    if tokens is not None:
        problem = _multipart_missing(upload, {p.number: p for p in writes}, tokens)
        if problem is not None:
            raise InvalidInput(f"the upload is incomplete: {problem}")
    elif upload.received != upload.declared_size:
        raise InvalidInput(f"the upload holds {upload.received} of its {upload.declared_size} bytes")
    return Completion(
        upload.id, upload.declared_digest or "", upload.declared_size, tuple((w.offset, w.size, w.etag) for w in writes)
    )


def usable_prefix(running: Running | None, completion: Completion) -> PrefixHash | None:
    """The running hash, if every recorded write below its end is one it hashed; else None (read all)."""
    if running is None:
        return None
    end = running.prefix.position
    if end > completion.size:
        return None
    for offset, _size, etag in completion.writes:
        if offset < end and etag not in running.etags:
            return None
    return running.prefix


def verify_and_publish(store: BlobStore, hashes: RunningHashes, completion: Completion) -> BlobInfo:
    """Finish the hash (reading back only what it does not cover), verify and publish (blocking)."""
    prefix = usable_prefix(hashes.take(completion.upload_id), completion)
    return store.commit_assembly(completion.upload_id, completion.digest, completion.size, prefix)


def set_state(session: Session, upload_id: str, state: str, error: str | None = None) -> None:
    session.execute(
        update(UploadSession).where(UploadSession.id == upload_id).values(state=state, error=error, updated_at=utcnow())
    )


def reopen(session: Session, upload_id: str) -> None:
    """Back from ``completing`` to ``open`` (a refusal the client can fix, such as a conflict)."""
    session.execute(
        update(UploadSession)
        .where(UploadSession.id == upload_id, UploadSession.state == "completing")
        .values(state="open", updated_at=utcnow())
    )


class ClaimedWriter:
    """A store part writer working under a session's claim (see ``claim_part`` and ``claim_append``).

    It extends the upload's running hash when its bytes are the next ones, and calls
    ``released(size, whole, prefix_sha256)`` exactly once when it is finished or cancelled, after its
    file is closed: only then may the claim be released.
    """

    def __init__(
        self,
        part: PartWriter,
        hashes: RunningHashes,
        upload_id: str,
        etag: str,
        released: Callable[[int, bool, str | None], None],
        *,
        keep_partial: bool = False,
    ) -> None:
        self.part = part
        self.etag = etag
        self._hashes = hashes
        self._upload_id = upload_id
        self._released = released
        self.keeps_partial = keep_partial
        self._closed = False
        self._running = hashes.lend(upload_id, part.offset)
        if self._running is not None:
            part.hash_into(self._running.prefix)

    @property
    def size(self) -> int:
        return self.part.size

    def write(self, data: bytes | memoryview) -> None:
        self.part.write(data)

    def finish(self) -> None:
        try:
            self.part.finish()
        except BaseException:
            self._close(False)
            raise
        self._close(True)

    def cancel(self) -> None:
        self.part.cancel()
        self._close(False)

    def _close(self, whole: bool) -> None:
        if self._closed:
            return
        self._closed = True
        prefix_sha256 = None
        if self._running is not None:
            if whole or self.keeps_partial:
                self._running.etags.add(self.etag)
                prefix_sha256 = self._running.prefix.hexdigest()
                self._hashes.give_back(self._upload_id, self._running)
            else:
                self._hashes.forget(self._upload_id)
        self._released(self.part.size, whole, prefix_sha256)
