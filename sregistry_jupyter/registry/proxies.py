"""Which proxy headers to believe: only those a configured, trusted proxy added.

Any client can send ``X-Forwarded-For`` or ``X-Forwarded-Proto``; believing them from anyone would let a
client pose as an address that no limit applies to, or spread its requests over invented addresses.
So the headers count only when the connection comes from a trusted proxy (``RegistryApp.trusted_proxies``),
and ``X-Forwarded-For`` is read from the right: each trusted hop vouches for the address to its left,
and the first address that is not a trusted proxy is the client. A proxy appends the address it saw to
whatever the client sent, so entries a client forged sit to the left of that address and are never reached.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from tornado.httputil import HTTPServerRequest

from .services.limits import IPNetwork, parse_networks

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
SCHEMES = frozenset({"http", "https"})


def parse_address(value: str) -> IPAddress | None:
    """An address from a header entry (``1.2.3.4``, ``1.2.3.4:5678``, ``[::1]:80``, ``::1``); None if it is none."""
    value = value.strip()
    if value.startswith("[") and "]" in value:
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class TrustedProxies:
    """The proxies whose forwarding headers are believed; none by default."""

    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_config(cls, values: Iterable[str]) -> TrustedProxies:
        return cls(parse_networks(values))

    def trusts(self, address: IPAddress | None) -> bool:
        return address is not None and any(address in network for network in self.networks)

    def client_address(self, peer: str, forwarded_for: Iterable[str]) -> str:
        """The client's address: ``peer`` unless it is a trusted proxy, then ``X-Forwarded-For`` from the right.

        If every hop is trusted, the leftmost is the client; an entry that is not an address ends the walk
        at the trusted hop that wrote it.
        """
        current = peer
        if not self.trusts(parse_address(peer)):
            return current
        hops = [entry for header in forwarded_for for entry in header.split(",") if entry.strip()]
        for entry in reversed(hops):
            address = parse_address(entry)
            if address is None:
                return current
            current = str(address)
            if not self.trusts(address):
                return current
        return current

    def scheme(self, peer: str, forwarded_proto: str | None, default: str) -> str:
        """``X-Forwarded-Proto`` (its last value) if a trusted proxy sent it, else the connection's own scheme."""
        if not forwarded_proto or not self.trusts(parse_address(peer)):
            return default
        value = forwarded_proto.split(",")[-1].strip().lower()
        return value if value in SCHEMES else default

    def apply(self, request: HTTPServerRequest) -> None:
        """Set the request's ``remote_ip`` and ``protocol`` to the client's, as far as trusted proxies tell."""
        if not self.networks or request.remote_ip is None:
            return
        peer = request.remote_ip
        request.protocol = self.scheme(peer, request.headers.get("X-Forwarded-Proto"), request.protocol)
        request.remote_ip = self.client_address(peer, request.headers.get_list("X-Forwarded-For"))
