"""Proxy headers: which peers are trusted, and the client/scheme they report (X-Forwarded-*, RFC 7239)."""

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


def apply_proxy_headers(
    trusted: TrustedProxies,
    peer_host: str | None,
    headers: list[tuple[bytes, bytes]],
    scheme: str,
    client: tuple[str, int] | None,
) -> tuple[str, tuple[str, int] | None]:
    """Return (scheme, client) after applying headers sent by a trusted peer; otherwise unchanged.

    ``Forwarded`` (RFC 7239) wins over ``X-Forwarded-*`` when both are present.
    """
    if peer_host not in trusted:
        return scheme, client
    proto: str | None = None
    chain: list[str] = []
    forwarded: list[str] = []
    for name, value in headers:
        if name == b"x-forwarded-proto":
            proto = value.decode("latin-1").strip().split(",")[-1].strip().lower()
        elif name == b"x-forwarded-for":
            chain.extend(h.strip() for h in value.decode("latin-1").split(","))
        elif name == b"forwarded":
            forwarded.append(value.decode("latin-1"))
    if forwarded:
        elements = _parse_forwarded(",".join(forwarded))
        fors = [e["for"] for e in elements if "for" in e]
        protos = [e["proto"].lower() for e in elements if "proto" in e]
        if fors:
            chain = fors
        if protos:
            proto = protos[-1]
    ws = scheme in ("ws", "wss")
    if proto in _SCHEMES:
        scheme = proto.replace("http", "ws") if ws else proto
    if chain:
        hop = trusted.client_from_chain([_host_port(h) for h in chain if h])
        # RFC 7239 obfuscated identifiers ("_hidden") and "unknown" name no address.
        if hop and hop[0] and not hop[0].startswith("_") and hop[0].lower() != "unknown":
            client = hop
    return scheme, client
