"""Proxy headers: which peers are trusted, and the client/scheme they report (X-Forwarded-* or RFC 7239)."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_SCHEMES = frozenset({"http", "https", "ws", "wss"})


class TrustedProxies:
    """The set of peers whose proxy headers are believed: addresses, networks, literals, or ``*``."""

    def __init__(self, items: Iterable[str]) -> None:
        items = [i.strip() for i in items if i.strip()]
        self.always = "*" in items
        self.literals: set[str] = set()
        self.addresses: set[_Address] = set()
        self.networks: list[_Network] = []
        for item in items:
            try:
                if "/" in item and not item.startswith("/"):
                    self.networks.append(ipaddress.ip_network(item, strict=False))
                else:
                    self.addresses.add(ipaddress.ip_address(item))
            except ValueError:
                # A literal such as a UNIX socket path.
                self.literals.add(item)
        self.contains = functools.lru_cache(maxsize=4096)(self._compute)

    def __contains__(self, host: str | None) -> bool:
        if self.always:
            return True
        if not host or len(host) > 253:
            return False
        return self.contains(host)

    def _compute(self, host: str) -> bool:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return host in self.literals
        return ip in self.addresses or any(ip in net for net in self.networks)

    def client_from_chain(self, hops: list[tuple[str, int]]) -> tuple[str, int] | None:
        """The first untrusted hop counting from the proxy side: the real client."""
        for hop in reversed(hops):
            if hop[0] not in self:
                return hop
        return hops[0] if hops else None


def _host_port(value: str) -> tuple[str, int]:
    value = value.strip().strip('"')
    if value.startswith("["):
        end = value.find("]")
        if end == -1:
            return value, 0
        host, rest = value[1:end], value[end + 1 :]
        return host, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else 0
    if value.count(":") == 1:
        host, _, port = value.partition(":")
        return host, int(port) if port.isdigit() else 0
    return value, 0


def _parse_forwarded(value: str) -> list[dict[str, str]]:
    elements = []
    for element in value.split(","):
        pairs: dict[str, str] = {}
        for pair in element.split(";"):
            key, sep, val = pair.partition("=")
            if sep:
                pairs[key.strip().lower()] = val.strip().strip('"')
        elements.append(pairs)
    return elements


def _names_an_address(hop: tuple[str, int] | None) -> bool:
    # RFC 7239 6.3 obfuscated identifiers ("_hidden") and "unknown" name no address.
    return bool(hop and hop[0] and not hop[0].startswith("_") and hop[0].lower() != "unknown")


def _scheme(proto: str | None, scheme: str) -> str:
    if proto in _SCHEMES:
        return proto.replace("http", "ws") if scheme in ("ws", "wss") else proto
    return scheme


def _from_x_forwarded(
    trusted: TrustedProxies, headers: list[tuple[bytes, bytes]], scheme: str, client: tuple[str, int] | None
) -> tuple[str, tuple[str, int] | None]:
    proto: str | None = None
    chain: list[str] = []
    for name, value in headers:
        if name == b"x-forwarded-proto":
            # The last entry is the one the nearest proxy added when it appends rather than replaces.
            proto = value.decode("latin-1").split(",")[-1].strip().lower()
        elif name == b"x-forwarded-for":
            chain.extend(h.strip() for h in value.decode("latin-1").split(","))
    scheme = _scheme(proto, scheme)
    if chain:
        hop = trusted.client_from_chain([_host_port(h) for h in chain if h])
        if _names_an_address(hop):
            client = hop
    return scheme, client


def _from_forwarded(
    trusted: TrustedProxies, headers: list[tuple[bytes, bytes]], scheme: str, client: tuple[str, int] | None
) -> tuple[str, tuple[str, int] | None]:
    values = [value.decode("latin-1") for name, value in headers if name == b"forwarded"]
    if not values:
        return scheme, client
    # Each proxy appends one element describing the connection it received. Walk from our side while the
    # element's "for" is itself a trusted proxy; the first element naming an untrusted peer describes the
    # real client, and its "proto" is the scheme that client used (RFC 7239 5.4, 7.1).
    elements = [e for e in _parse_forwarded(",".join(values)) if "for" in e]
    chosen: dict[str, str] | None = None
    for element in reversed(elements):
        chosen = element
        if _host_port(element["for"])[0] not in trusted:
            break
    if chosen is None:
        return scheme, client
    scheme = _scheme(chosen.get("proto", "").lower() or None, scheme)
    hop = _host_port(chosen["for"])
    if _names_an_address(hop):
        client = hop
    return scheme, client


# The header names each family reads: a request carrying none of them skips the work entirely.
HEADER_NAMES: dict[str, frozenset[bytes]] = {
    "x-forwarded": frozenset({b"x-forwarded-for", b"x-forwarded-proto"}),
    "forwarded": frozenset({b"forwarded"}),
}
_READERS = {"x-forwarded": _from_x_forwarded, "forwarded": _from_forwarded}


def apply_proxy_headers(
    trusted: TrustedProxies,
    peer_host: str | None,
    headers: list[tuple[bytes, bytes]],
    scheme: str,
    client: tuple[str, int] | None,
    family: str = "x-forwarded",
) -> tuple[str, tuple[str, int] | None]:
    """Return (scheme, client) after applying the chosen family of headers sent by a trusted peer.

    Exactly one family is read: ``x-forwarded`` (X-Forwarded-For and X-Forwarded-Proto, what uvicorn reads)
    or ``forwarded`` (RFC 7239). The other family's headers are ignored, never merged: a proxy that sets one
    family usually passes the other through from the client untouched, so believing it would let a client
    choose its own address and scheme.
    """
    if peer_host not in trusted:
        return scheme, client
    return _READERS[family](trusted, headers, scheme, client)
