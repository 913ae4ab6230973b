"""Image references as people type them: ``collection/container:tag`` or ``collection/container@sha256.<hex>``.

They are checked here, before any request, so that a typo is an ``InvalidInput`` with a sentence rather
than a 404 from a URL that was never meant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from .errors import InvalidInput

NAME = r"[a-z0-9]+(?:[._-][a-z0-9]+)*"
TAG = r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}"
DIGEST_RE = re.compile(r"sha256[.:]([0-9a-f]{64})")
REF_RE = re.compile(rf"(?P<collection>{NAME})/(?P<container>{NAME})(?::(?P<tag>{TAG}))?(?:@(?P<digest>\S+))?")
DEFAULT_TAG = "latest"


def normal_digest(value: str) -> str:
    """``sha256.<hex>`` (the registry's spelling), accepting ``sha256:<hex>`` too."""
    match = DIGEST_RE.fullmatch(value.strip().lower())
    if not match:
        raise InvalidInput(f"{value!r} is not a digest: expected sha256.<64 hex digits>")
    return f"sha256.{match.group(1)}"


@dataclass(frozen=True)
class ImageRef:
    collection: str
    container: str
    tag: str | None = DEFAULT_TAG
    digest: str | None = None

    @property
    def ref(self) -> str:
        """What the registry's URLs take as ``<ref>``: the digest when known, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    @property
    def container_path(self) -> str:
        return f"/api/v1/collections/{quote(self.collection)}/containers/{quote(self.container)}"

    @property
    def image_path(self) -> str:
        return f"{self.container_path}/images/{quote(self.ref)}"

    def __str__(self) -> str:
        text = f"{self.collection}/{self.container}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_ref(value: str, *, default_tag: str | None = DEFAULT_TAG) -> ImageRef:
    """Read ``collection/container[:tag][@digest]``; a missing tag means ``default_tag``."""
    if not isinstance(value, str):
        raise InvalidInput("an image reference is a string like collection/container:tag")
    match = REF_RE.fullmatch(value.strip())
    if not match:
        raise InvalidInput(
            f"{value!r} is not an image reference: expected collection/container:tag "
            "(lower-case names of letters, digits, '.', '_' or '-')"
        )
    digest = normal_digest(match["digest"]) if match["digest"] else None
    tag = match["tag"] or (None if digest else default_tag)
    return ImageRef(match["collection"], match["container"], tag, digest)


def collection_path(name: str) -> str:
    if not re.fullmatch(NAME, name or ""):
        raise InvalidInput(f"{name!r} is not a collection name")
    return f"/api/v1/collections/{quote(name)}"
