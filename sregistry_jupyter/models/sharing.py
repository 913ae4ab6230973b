"""Share links: download links for one image that work without signing in."""

from __future__ import annotations

from pydantic import Field

from . import rules
from .base import Answer, Timestamp
from .values import Count, Digest, Name, RowId, documented


class Share(Answer):
    """A share link; its token is shown only on creation."""

    id: RowId
    collection: Name
    container: Name
    digest: Digest
    created: Timestamp | None = None
    expires: Timestamp
    expired: bool = Field(False, description="An expired link no longer works.")
    downloads: Count = Field(0, description="Downloads through this link from the first byte.")


class NewShare(Share):
    """A share link just created: anyone with its ``url`` may download the image until it expires."""

    token: str = documented(
        "The link's secret. It is never shown again.",
        rules.SHARE_PATTERN,
        examples=["shr_" + "a" * 12 + "_" + "b" * 43],
    )
    path: str = Field(description="The download's URL path on the registry.")
    url: str = Field(description="The download's absolute URL. It is never shown again.")


class ShareList(Answer):
    items: list[Share]
