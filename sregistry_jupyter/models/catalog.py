"""What the registry holds: collections of containers, their tags, and images with their SIF metadata."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from .base import Answer, Timestamp
from .values import Arch, Bytes, Count, Digest, Name, TagName


class Collection(Answer):
    """A namespace of containers, public or private."""

    name: Name
    description: str = ""
    private: bool = False
    owners: list[str] = Field(default_factory=list, description="User names of the owners.")
    containers: Count = 0
    images: Count = 0
    size: Bytes = 0
    stars: Count = 0
    created: Timestamp | None = None
    updated: Timestamp | None = None


class Tag(Answer):
    """A name pointing at one image of a container, per architecture."""

    name: TagName
    arch: Arch
    digest: Digest
    frozen: bool = Field(False, description="A frozen tag cannot be moved, removed or deleted.")
    updated: Timestamp | None = None


class SifPartition(Answer):
    id: int | None = None
    name: str = ""
    fstype: str = Field("", examples=["Squashfs"])
    parttype: str = Field("", examples=["Primary System"])
    primary: bool = False
    arch: str = ""
    size: Bytes = 0


class SifMetadata(Answer):
    """What the SIF file says about itself, read from its header and descriptors."""

    partitions: list[SifPartition] = Field(default_factory=list)
    deffile: str | None = Field(None, description="The definition file the image was built from.")
    labels: dict[str, Any] | None = None


class Image(Answer):
    """One uploaded image; ``sif`` is null when the file is not a SIF."""

    collection: Name
    container: Name
    digest: Digest
    size: Bytes
    arch: Arch
    description: str = ""
    tags: list[TagName] = Field(default_factory=list, description="Tags pointing at this image, sorted.")
    signed: bool = Field(False, description="The SIF carries at least one signature.")
    downloads: Count = 0
    uploaded: Timestamp | None = None
    sif: SifMetadata | None = None


class Container(Answer):
    """A named container inside a collection, with its tags."""

    collection: Name
    name: Name
    description: str = ""
    tags: list[Tag] = Field(default_factory=list)
    created: Timestamp | None = None
    updated: Timestamp | None = None


class ContainerDetail(Container):
    """A container with its images, newest first."""

    images: list[Image] = Field(default_factory=list)


class CollectionDetail(Collection):
    """A collection with its containers."""

    containers_list: list[Container] = Field(default_factory=list)


class CollectionPage(Answer):
    """One page of collections and where it lies among all of them."""

    items: list[Collection]
    page: int = Field(ge=1)
    per_page: int = Field(ge=1)
    total: Count
    pages: Count


class CollectionList(Answer):
    items: list[Collection]


class ContainerList(Answer):
    items: list[Container]


class TagList(Answer):
    items: list[Tag]


class ImageList(Answer):
    items: list[Image]
