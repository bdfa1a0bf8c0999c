"""The PROXY protocol, v1 and v2, sans-I/O: bytes in, a header (or "need more") out, or an error.

A load balancer that forwards TCP (HAProxy ``send-proxy``/``send-proxy-v2``, AWS NLB, ingress controllers)
writes one header before the client's first byte, naming the connection's real ends. The specification is
HAProxy's "The PROXY protocol" (versions 1 and 2). ``parse(data, mode)`` reads the start of a connection's
bytes: it returns None while the header is incomplete, a ``ProxyHeader`` once it is complete (``length`` says
how many bytes it took; the rest is the client's), and raises ``ProxyProtocolError`` as soon as the bytes
cannot be a valid header, without waiting for more.

Limits: a v1 line is at most 107 bytes with its CRLF (spec 2.1); a v2 header at most ``V2_MAX_LENGTH`` bytes
after its 16-byte fixed part (the spec allows 65535; real ones carry addresses and a few TLVs). TLVs are
skipped unread.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

V1_PREFIX = b"PROXY "
V1_MAX = 107  # "PROXY TCP6 " + two full IPv6 addresses + two ports + spaces + CRLF
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_MAX_LENGTH = 4096
MODES = ("v1", "v2", "auto")

_Address = tuple[str, int]
# v2 address families (high nibble of byte 14) and the size of their address block.
_V2_INET, _V2_INET6, _V2_UNIX = 0x1, 0x2, 0x3
_V2_BLOCK = {_V2_INET: 12, _V2_INET6: 36, _V2_UNIX: 216}
_V2_STREAM = 0x1


class ProxyProtocolError(ValueError):
    """The bytes at the start of a connection are not a valid PROXY protocol header (internal: the
    connection is closed and the reason logged; it never reaches an app or a caller)."""


@dataclass(frozen=True)
class ProxyHeader:
    """A complete header. ``local``: keep the connection's own addresses (v2 LOCAL, v1 UNKNOWN, AF_UNSPEC)."""

    version: int
    length: int
    local: bool
    client: _Address | None = None
    server: _Address | None = None


def parse(data: bytes, mode: str = "auto") -> ProxyHeader | None:
    """The header at the start of ``data``; None if more bytes are needed. ``mode``: v1, v2 or auto."""
    if not data:
        return None
    if mode != "v2" and data[0] == V1_PREFIX[0]:
        return _parse_v1(data)
    if mode != "v1" and data[0] == V2_SIGNATURE[0]:
        return _parse_v2(data)
    expected = {"v1": "a PROXY protocol v1 line", "v2": "a PROXY protocol v2 header"}.get(
        mode, "a PROXY protocol header"
    )
    got = "a v2 signature" if data[0] == V2_SIGNATURE[0] else "a v1 line" if data[0] == 0x50 else None
    raise ProxyProtocolError(f"expected {expected}, got {got or _show(data[:16])}")


def _show(data: bytes) -> str:
    return repr(data)[1:] if data[:1].isalpha() else repr(data)


# -- version 1: one text line -------------------------------------------------------------------------------
def _parse_v1(data: bytes) -> ProxyHeader | None:
    head = data[: len(V1_PREFIX)]
    if head != V1_PREFIX[: len(head)]:
        raise ProxyProtocolError(f"expected a PROXY protocol header, got {_show(data[:16])}")
    end = data.find(b"\r\n", 0, V1_MAX)
    if end == -1:
        window = data[:V1_MAX]
        if b"\n" in window or (b"\r" in window[:-1]):
            raise ProxyProtocolError("the PROXY v1 line has a stray CR or LF")
        if len(data) >= V1_MAX:
            raise ProxyProtocolError(f"the PROXY v1 line has no CRLF within {V1_MAX} bytes")
        return None
    line = data[:end]
    if b"\r" in line or b"\n" in line:
        raise ProxyProtocolError("the PROXY v1 line has a stray CR or LF")
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        raise ProxyProtocolError("the PROXY v1 line is not ASCII") from None
    if not text.isprintable():
        raise ProxyProtocolError("the PROXY v1 line has control characters")
    parts = text.split(" ")
    length = end + 2
    if len(parts) >= 2 and parts[1] == "UNKNOWN":
        # The proxy does not know the addresses (spec 2.1): use the connection's own; the rest is ignored.
        return ProxyHeader(1, length, local=True)
    if len(parts) != 6 or parts[1] not in ("TCP4", "TCP6"):
        raise ProxyProtocolError(
            f"expected 'PROXY TCP4|TCP6 SRC DST SPORT DPORT' or 'PROXY UNKNOWN', got {text[:V1_MAX]!r}"
        )
    family = ipaddress.IPv4Address if parts[1] == "TCP4" else ipaddress.IPv6Address
    addresses = []
    for raw in parts[2:4]:
        try:
            addresses.append(str(family(raw)))
        except ValueError:
            raise ProxyProtocolError(
                f"expected an IPv{parts[1][3]} address for {parts[1]}, got {raw!r}"
            ) from None
    ports = [_v1_port(raw) for raw in parts[4:6]]
    return ProxyHeader(
        1, length, local=False, client=(addresses[0], ports[0]), server=(addresses[1], ports[1])
    )


def _v1_port(raw: str) -> int:
    if not raw.isdigit() or not raw.isascii() or len(raw) > 5 or (len(raw) > 1 and raw[0] == "0"):
        raise ProxyProtocolError(f"expected a port number from 0 to 65535, got {raw!r}")
    port = int(raw)
    if port > 65535:
        raise ProxyProtocolError(f"expected a port number from 0 to 65535, got {raw!r}")
    return port


# -- version 2: binary -----------------------------------------------------------------------------------------
def _parse_v2(data: bytes) -> ProxyHeader | None:
    signature = data[: len(V2_SIGNATURE)]
    if signature != V2_SIGNATURE[: len(signature)]:
        raise ProxyProtocolError(f"expected a PROXY protocol v2 signature, got {signature!r}")
    if len(data) < 13:
        return None
    version, command = data[12] >> 4, data[12] & 0x0F
    if version != 2:
        raise ProxyProtocolError(f"expected PROXY protocol version 2, got version {version}")
    if command > 1:
        raise ProxyProtocolError(f"expected command LOCAL (0) or PROXY (1), got {command}")
    if len(data) < 16:
        return None
    family, transport = data[13] >> 4, data[13] & 0x0F
    (size,) = struct.unpack_from("!H", data, 14)
    if size > V2_MAX_LENGTH:
        raise ProxyProtocolError(f"the PROXY v2 header is {size} bytes long, more than {V2_MAX_LENGTH}")
    if family > _V2_UNIX or transport > 2:
        raise ProxyProtocolError(f"unknown address family and transport byte 0x{data[13]:02x}")
    block = _V2_BLOCK.get(family, 0)
    if size < block:
        raise ProxyProtocolError(f"the PROXY v2 address block is {size} bytes, the family needs {block}")
    length = 16 + size
    if len(data) < length:
        return None
    if command == 0 or family == 0:
        # LOCAL: the proxy's own connection (health checks); UNSPEC: addresses unknown. Either way the
        # connection's own addresses stand (spec 2.2); TLVs and any address block are skipped.
        return ProxyHeader(2, length, local=True)
    if transport != _V2_STREAM:
        raise ProxyProtocolError("the PROXY v2 header describes a datagram (or unspecified) transport")
    if family == _V2_UNIX:
        # A client on a UNIX socket has no address (ASGI's client is None); the server stays the real one.
        return ProxyHeader(2, length, local=False)
    if family == _V2_INET:
        src, dst = str(ipaddress.IPv4Address(data[16:20])), str(ipaddress.IPv4Address(data[20:24]))
        sport, dport = struct.unpack_from("!HH", data, 24)
    else:
        src, dst = str(ipaddress.IPv6Address(data[16:32])), str(ipaddress.IPv6Address(data[32:48]))
        sport, dport = struct.unpack_from("!HH", data, 48)
    return ProxyHeader(2, length, local=False, client=(src, sport), server=(dst, dport))


def build_v1(client: _Address | None, server: _Address | None) -> bytes:
    """A v1 line (tests and tools): TCP4/TCP6 for two addresses, UNKNOWN for None."""
    if client is None or server is None:
        return b"PROXY UNKNOWN\r\n"
    family = "TCP6" if ":" in client[0] else "TCP4"
    return f"PROXY {family} {client[0]} {server[0]} {client[1]} {server[1]}\r\n".encode("ascii")


def build_v2(client: _Address | None, server: _Address | None, *, tlvs: bytes = b"") -> bytes:
    """A v2 header (tests and tools): PROXY over TCP for two addresses, LOCAL for None."""
    if client is None or server is None:
        return V2_SIGNATURE + bytes([0x20, 0x00]) + struct.pack("!H", len(tlvs)) + tlvs
    if ":" in client[0]:
        fam = 0x21
        block = ipaddress.IPv6Address(client[0]).packed + ipaddress.IPv6Address(server[0]).packed
    else:
        fam = 0x11
        block = ipaddress.IPv4Address(client[0]).packed + ipaddress.IPv4Address(server[0]).packed
    block += struct.pack("!HH", client[1], server[1]) + tlvs
    return V2_SIGNATURE + bytes([0x21, fam]) + struct.pack("!H", len(block)) + block
