"""The long-lived objects a running registry shares between requests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from .access import DEFAULT_POLICY, Policy
from .proxies import TrustedProxies
from .services.limits import Limiter
from .storage import BlobStore

if TYPE_CHECKING:
    from .auth import Authenticator


@dataclass
class InFlight:
    """Counts requests being served, so that shutdown can wait for them to finish."""

    count: int = 0


@dataclass
class Registry:
    engine: Engine
    session_factory: sessionmaker[Session]
    store: BlobStore
    secret_key: bytes
    name: str = "Singularity Registry"
    public_url: str = ""
    max_upload_size: int = 64 << 30
    multipart_part_size: int = 64 << 20
    max_json_body: int = 1 << 20
    default_page_size: int = 20
    max_page_size: int = 100
    policy: Policy = DEFAULT_POLICY
    invitation_days: float = 7.0
    max_share_days: int = 30
    library_redirect: bool = True
    terms_of_service: str = ""
    authenticator: Authenticator | None = None
    limiter: Limiter = field(default_factory=Limiter)
    trusted_proxies: TrustedProxies = field(default_factory=TrustedProxies)
    in_flight: InFlight = field(default_factory=InFlight)
