"""A Python client of the registry's native API, for scripts, notebooks and the Jupyter extension.

``RegistryClient`` blocks; ``AsyncRegistryClient`` is awaited; both perform the same operations (see
``operations``). Neither imports the registry server, Tornado or SQLAlchemy.
"""

from .aio import AsyncRegistryClient
from .errors import (
    Conflict,
    Forbidden,
    IntegrityError,
    InvalidInput,
    NotFound,
    RateLimited,
    RegistryError,
    RegistryUnavailable,
    Unauthorized,
)
from .refs import ImageRef, parse_ref
from .results import (
    Collection,
    CollectionDetail,
    Container,
    ContainerDetail,
    Image,
    Member,
    Page,
    ShareLink,
    Stats,
    Tag,
    Team,
    User,
)
from .sync import RegistryClient

__all__ = [
    "AsyncRegistryClient",
    "Collection",
    "CollectionDetail",
    "Conflict",
    "Container",
    "ContainerDetail",
    "Forbidden",
    "Image",
    "ImageRef",
    "IntegrityError",
    "InvalidInput",
    "Member",
    "NotFound",
    "Page",
    "RateLimited",
    "RegistryClient",
    "RegistryError",
    "RegistryUnavailable",
    "ShareLink",
    "Stats",
    "Tag",
    "Team",
    "Unauthorized",
    "User",
    "parse_ref",
]
