"""Garbage collection of blobs that no image references any more.

It runs while the registry serves: a blob is removed only if no image row names its digest and its file
is older than the grace period. A push that re-uses an existing blob touches the file before recording
the image, so an upload in flight is never collected.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..orm import Blob, Image, utcnow
from ..storage import BlobStore
from . import audit

DEFAULT_GRACE = dt.timedelta(hours=1)
UPLOAD_TTL = dt.timedelta(days=1)


@dataclass
class GcReport:
    removed: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    kept_in_grace: int = 0
    uploads_reaped: int = 0


def collect(
    session: Session,
    store: BlobStore,
    *,
    grace: dt.timedelta = DEFAULT_GRACE,
    dry_run: bool = False,
    upload_ttl: dt.timedelta = UPLOAD_TTL,
) -> GcReport:
    report = GcReport()
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
    if not dry_run:
        report.uploads_reaped = store.reap_uploads(upload_ttl)
        audit.record(session, "gc", None, detail={"removed": len(report.removed), "freed": report.freed_bytes})
        session.commit()
    return report
