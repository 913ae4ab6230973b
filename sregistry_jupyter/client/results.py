"""Typed answers of the native API, as the client hands them to its callers: the registry's own models
(``sregistry_jupyter.models``), so the client reads exactly what the registry writes.

The models keep fields they do not declare, so a newer registry that adds one does not break an older
client (and the caller still sees it), and give defaults to fields an older registry may not send.
"""

from __future__ import annotations

from ..models import (
    Collection,
    CollectionDetail,
    Container,
    ContainerDetail,
    Image,
    Stats,
    Tag,
    Team,
    User,
)
from ..models import CollectionMember as Member
from ..models import CollectionPage as Page
from ..models import NewShare as ShareLink

__all__ = [
    "Collection",
    "CollectionDetail",
    "Container",
    "ContainerDetail",
    "Image",
    "Member",
    "Page",
    "ShareLink",
    "Stats",
    "Tag",
    "Team",
    "User",
]
