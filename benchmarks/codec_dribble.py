"""CPU time of each codec for heads and trailers that arrive a byte per read, and a flood of empty lines.

A codec called once per read must not rescan what it has already examined, or a slow client buys seconds of
CPU with a few kilobytes. Usage: ``python benchmarks/codec_dribble.py`` (from the repository root).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hatchway import Config
from hatchway._http.events import Codec
from hatchway._http.h11_codec import H11Codec
from hatchway._http.httptools_codec import HttptoolsCodec

CONFIG = Config("tests.http_cases:echo_app")


def cpu(make: Callable[[], Codec], raw: bytes, step: int) -> float:
    codec = make()
    started = time.process_time()
    for i in range(0, len(raw), step):
        codec.feed(raw[i : i + step])
    return time.process_time() - started


def main() -> None:
    fields = b"".join(b"X-%d: %s\r\n" % (i, b"v" * 40) for i in range(330))
    trailer = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + fields + b"\r\n"
    head = b"GET / HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 600) for i in range(95))
    head += b"\r\n"
    crlf = b"\r\n" * 30000 + b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    cases = [
        ("trailer 16 KiB, 1 B/read", trailer, 1),
        ("head 57 KiB, 1 B/read", head, 1),
        ("60 KB of CRLF, one read", crlf, len(crlf)),
    ]
    for name, raw, step in cases:
        h11 = cpu(lambda: H11Codec(CONFIG), raw, step)
        httptools = cpu(lambda: HttptoolsCodec(CONFIG), raw, step)
        print(f"{name}: h11 {h11:.3f} s, httptools {httptools:.3f} s")


if __name__ == "__main__":
    main()
