"""In-process micro-benchmark of hatchway's HTTP hot path: no sockets, no wrk, no kernel.

Feeds requests to ``HttpProtocol`` through a recording transport on a uvloop loop and reports the CPU time
per request. Far less noisy than the load run on a shared machine, so it is the tool for before/after
comparisons of a hot-path change:

    python benchmarks/hotpath.py                         # this tree
    python benchmarks/hotpath.py --compare /tmp/old/src  # interleaved: this tree vs another src/ directory
    python benchmarks/hotpath.py --compare a=/tmp/a/src,b=/tmp/b/src  # several, each as a ratio to this tree
    python benchmarks/hotpath.py --options '{"request_id": true}'     # Config options for every tree
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REQUEST = b"GET /bench?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"
POST_64K = (
    b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Type: application/octet-stream\r\n"
    b"Content-Length: 65536\r\n\r\n" + b"a" * 65536
)


class Transport(asyncio.Transport):
    """Counts responses (by status line) and never pushes back."""

    def __init__(self) -> None:
        super().__init__()
        self.responses = 0
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.responses += bytes(data).count(b"HTTP/1.1 200")

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def drive(app_name: str, requests: int, depth: int, http: str, options: dict[str, Any]) -> float:
    sys.path.insert(0, str(HERE))
    import apps

    from hatchway._config import Config
    from hatchway._http.protocol import HttpProtocol, make_codec_factory
    from hatchway._proxy import TrustedProxies
    from hatchway._state import ServerState

    if app_name == "fastapi":
        import apps_fastapi

        app = apps_fastapi.app
    else:
        app = getattr(apps, app_name)
    config = Config(app=app, **{"http": http, "access_log": False, "log_level": "warning", **options})
    loop = asyncio.get_running_loop()
    state = ServerState(config)
    if options.get("log_level", "warning") != "warning":
        # Logging on, as the server configures it, writing to /dev/null: the cost of formatting the lines.
        from hatchway._logs import configure_logging

        streams = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - open while the handlers write
        try:
            configure_logging(config)
        finally:
            sys.stdout, sys.stderr = streams
    if set(options) - {"access_log", "log_level"}:
        # What Server._startup does for the observing options (request ids, access format, metrics).
        from hatchway._observe import start_observing

        start_observing(config, state, endpoint=False)
    trusted = TrustedProxies(config.trusted_proxies) if config.proxy_headers else None
    proto = HttpProtocol(config, state, app, make_codec_factory(config), trusted, loop)
    transport = Transport()
    proto.connection_made(transport)
    payload = (POST_64K if app_name == "echo" else REQUEST) * depth
    done = 0
    start = time.process_time()
    while done < requests:
        target = transport.responses + depth
        proto.data_received(payload)
        while transport.responses < target:
            await asyncio.sleep(0)
        done += depth
    elapsed = time.process_time() - start
    proto.connection_lost(None)
    return elapsed / done * 1e6


def child(args: argparse.Namespace) -> None:
    import uvloop

    out = {}
    for case in args.cases.split(","):
        app, _, depth = case.partition("x")
        options = json.loads(args.options)
        uvloop.run(drive(app, args.requests // 10, int(depth or 1), args.http, options))  # warm-up
        out[case] = uvloop.run(drive(app, args.requests, int(depth or 1), args.http, options))
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--compare",
        default="",
        help="other hatchway src/ directories ([NAME=]PATH, comma-separated) to run interleaved",
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--http", default="httptools")
    parser.add_argument(
        "--options",
        default="{}",
        help="Config options as JSON, for every tree (access_log is off unless given)",
    )
    parser.add_argument("--cases", default="plain,json,plainx16,stream,echo,fastapi")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    trees = {"this tree": ""}
    for item in filter(None, args.compare.split(",")):
        name, _, path = item.rpartition("=")
        trees[name or "compare"] = str(Path(path).resolve())
    results: dict[str, dict[str, list[float]]] = {t: {} for t in trees}
    for _ in range(args.rounds):
        for tree, src in trees.items():
            env = {**os.environ, **({"PYTHONPATH": src} if src else {})}
            argv = [
                sys.executable,
                __file__,
                "--child",
                "--requests",
                str(args.requests),
                "--http",
                args.http,
                "--options",
                args.options,
            ]
            out = subprocess.run([*argv, "--cases", args.cases], env=env, capture_output=True, text=True)
            if out.returncode:
                sys.exit(out.stderr)
            for case, us in json.loads(out.stdout).items():
                results[tree].setdefault(case, []).append(us)
    # Minimum, not median: on a shared machine the noise only ever adds time.
    print(f"CPU µs per request (min of {args.rounds} interleaved runs), --http {args.http}")
    # ratio > 1: the other tree needs more CPU per request than this one.
    print(
        f"{'case':<14}"
        + "".join(f"{t:>14}" for t in trees)
        + "".join(f"{'ratio ' + t:>16}" for t in list(trees)[1:])
    )
    for case in args.cases.split(","):
        meds = [min(results[t][case]) for t in trees]
        ratio = "".join(f"{m / meds[0]:15.2f}x" for m in meds[1:])
        print(f"{case:<14}" + "".join(f"{m:14.2f}" for m in meds) + ratio)


if __name__ == "__main__":
    main()
