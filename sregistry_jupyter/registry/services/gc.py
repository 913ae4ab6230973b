"""Garbage collection of blobs that no image references any more, and of abandoned uploads.

It runs while the registry serves and commits each removal on its own, so a collection that stops
halfway has still done what it reported. A blob is removed only if no image row names its digest and
its file is older than the grace period; a push that re-uses an existing blob touches the file before
recording the image, so an upload in flight is never collected.

Uploads are judged by their own age and state. An upload session that is still open (or completing) is
kept until it expires, however long its client pauses; a session that ended (done, failed, aborted) or
expired loses its stored bytes at once and its row once it is ``upload_idle`` old. Bytes in the store
that no live session owns (a crashed process's half-written upload) are removed once they have not
been written to for ``upload_idle``, which protects every upload that is still receiving bytes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..orm import Blob, Image, UploadSession, utcnow
from ..storage import BlobStore
from . import audit
from .uploads import LIVE_STATES

DEFAULT_GRACE = dt.timedelta(hours=1)
DEFAULT_UPLOAD_IDLE = dt.timedelta(hours=1)


@dataclass(frozen=True)
class AbandonedUpload:
    """An upload GC removed (or would remove): its id, the bytes it held and why it counts as abandoned."""

    upload_id: str
    size: int
    reason: str


@dataclass
class GcReport:
    removed: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    kept_in_grace: int = 0
    uploads: list[AbandonedUpload] = field(default_factory=list)
    sessions_removed: int = 0
    live_uploads: int = 0

    @property
    def uploads_reaped(self) -> int:
        return len(self.uploads)


def collect(
    session: Session,
    store: BlobStore,
    *,
    grace: dt.timedelta = DEFAULT_GRACE,
    dry_run: bool = False,
    upload_idle: dt.timedelta = DEFAULT_UPLOAD_IDLE,
) -> GcReport:
    report = GcReport()
    collect_blobs(session, store, report, grace=grace, dry_run=dry_run)
    collect_uploads(session, store, report, idle=upload_idle, dry_run=dry_run)
    if not dry_run:
        detail = {"removed": len(report.removed), "freed": report.freed_bytes}
        if report.uploads:
            detail["uploads"] = len(report.uploads)
        audit.record(session, "gc", None, detail=detail)
        session.commit()
    return report


def collect_blobs(session: Session, store: BlobStore, report: GcReport, *, grace: dt.timedelta, dry_run: bool) -> None:
    cutoff = utcnow() - grace
    referenced = set(session.scalars(select(Image.digest).distinct()))
    for blob in store.list_blobs():
        if blob.digest in referenced:
            continue
        if blob.modified > cutoff:
            report.kept_in_grace += 1
            continue
        if session.scalar(select(Image.id).where(Image.digest == blob.digest).limit(1)) is not None:
            continue
        current = store.stat(blob.digest)
        if current is None or current.modified > cutoff:
            continue
        report.removed.append(blob.digest)
        report.freed_bytes += blob.size
        if not dry_run:
            store.delete(blob.digest)
            session.execute(delete(Blob).where(Blob.digest == blob.digest))
            session.commit()


def collect_uploads(session: Session, store: BlobStore, report: GcReport, *, idle: dt.timedelta, dry_run: bool) -> None:
    now = utcnow()
    cutoff = now - idle
    sessions = {u.id: u for u in session.scalars(select(UploadSession))}
    live = {i for i, u in sessions.items() if u.state in LIVE_STATES and u.expires_at > now}
    report.live_uploads = len(live)
    for leftover in store.list_uploads():
        if leftover.upload_id in live:
            continue
        owner = sessions.get(leftover.upload_id)
        if owner is not None:
            reason = "expired" if owner.state in LIVE_STATES else owner.state
        elif leftover.modified < cutoff:
            reason = "no bytes written since " + leftover.modified.strftime("%Y-%m-%d %H:%M UTC")
        else:
            continue
        report.uploads.append(AbandonedUpload(leftover.upload_id, leftover.size, reason))
        if not dry_run:
            store.discard_upload(leftover.upload_id)
    for upload in sessions.values():
        if upload.id in live or (upload.updated_at or upload.created_at) > cutoff:
            continue
        report.sessions_removed += 1
        if not dry_run:
            session.execute(delete(UploadSession).where(UploadSession.id == upload.id))
            session.commit()
