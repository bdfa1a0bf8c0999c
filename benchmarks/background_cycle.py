"""Start, first response, stop: ``hatchway.background`` beside the uvicorn "server in a thread" blog recipe.

Each cycle starts a server on a free port in a thread, waits until it is ready, makes one HTTP request over
a plain socket, and stops the server (thread joined). The variants run interleaved, in a shuffled order each
round (seeded), so that machine noise and the cycle before hit them alike: a cycle that follows a uvicorn one
starts after its ~200 ms of polling idle (cold caches, idle CPUs), which costs every variant ~0.3-0.4 ms.
``--order rotate`` is the earlier fixed rotation, under which the first hatchway variant always followed a
uvicorn cycle and the second one almost never did. The uvicorn variant is the recipe from "Starting and Stopping uvicorn
in the Background": its own socket bound to port 0, ``while not server.started: time.sleep(0.001)``, then
``should_exit = True`` and ``join()``; both sides run with ``log_config=None``.

    python benchmarks/background_cycle.py              # 200 cycles per variant
    python benchmarks/background_cycle.py -n 50 --profile
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import io
import pstats
import random
import socket
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import hatchway

Phases = tuple[float, float, float]  # start, first response, stop (seconds)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


def first_response(host: str, port: int) -> bytes:
    with socket.create_connection((host, port)) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    data = b"".join(chunks)
    assert data.startswith(b"HTTP/1.1 200"), data[:100]
    return data


def hatchway_cycle(**options: Any) -> Callable[[], Phases]:
    def cycle() -> Phases:
        t0 = time.perf_counter()
        with hatchway.background(app, **options) as server:
            t1 = time.perf_counter()
            first_response(server.host, server.port)
            t2 = time.perf_counter()
        t3 = time.perf_counter()
        return t1 - t0, t2 - t1, t3 - t2

    return cycle


def uvicorn_cycle(loop: str) -> Callable[[], Phases]:
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def run_in_thread(self, sock: socket.socket) -> Iterator[None]:
            thread = threading.Thread(target=self.run, kwargs={"sockets": [sock]})
            thread.start()
            try:
                while not self.started:
                    time.sleep(0.001)
                yield
            finally:
                self.should_exit = True
                thread.join()

    def cycle() -> Phases:
        t0 = time.perf_counter()
        server = Server(uvicorn.Config(app=app, log_config=None, loop=loop))
        (sock := socket.socket()).bind(("127.0.0.1", 0))
        with server.run_in_thread(sock):
            t1 = time.perf_counter()
            address, port = sock.getsockname()
            first_response(address, port)
            t2 = time.perf_counter()
        t3 = time.perf_counter()
        sock.close()
        return t1 - t0, t2 - t1, t3 - t2

    return cycle


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def table(results: dict[str, list[Phases]]) -> str:
    header = f"{'variant':<34} {'start':>15} {'1st response':>15} {'stop':>15} {'total':>15}"
    lines = [header, f"{'':<34} {'median / p95 ms':>15} {'':>15} {'':>15} {'':>15}", "-" * len(header)]
    for name, samples in results.items():
        columns = [[s[i] for s in samples] for i in range(3)] + [[sum(s) for s in samples]]
        cells = [f"{statistics.median(c) * 1e3:6.2f} / {percentile(c, 0.95) * 1e3:6.2f}" for c in columns]
        lines.append(f"{name:<34} " + " ".join(f"{cell:>15}" for cell in cells))
    return "\n".join(lines)


def save(results: dict[str, list[Phases]]) -> None:
    """Medians and p95 of each phase, in ms, for scripts/gen_figures.py."""
    import uvicorn
    from _record import write

    figures = {}
    for name, samples in results.items():
        columns = {
            "start": [s[0] for s in samples],
            "first_response": [s[1] for s in samples],
            "stop": [s[2] for s in samples],
            "total": [sum(s) for s in samples],
        }
        figures[name] = {
            "cycles": len(samples),
            **{f"{k}_median_ms": round(statistics.median(v) * 1e3, 2) for k, v in columns.items()},
            **{f"{k}_p95_ms": round(percentile(v, 0.95) * 1e3, 2) for k, v in columns.items()},
        }
    write("background_cycle", figures, {"uvicorn": uvicorn.__version__})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--cycles", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--no-uvicorn", action="store_true", help="only the hatchway variants")
    parser.add_argument("--profile", action="store_true", help="cProfile the hatchway cycles (loop=asyncio)")
    parser.add_argument(
        "--order",
        choices=("shuffle", "rotate"),
        default="shuffle",
        help="shuffle: a seeded random order each round (default); rotate: the earlier fixed rotation",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--json",
        action="store_true",
        help="also write results/background_cycle.json (the figures the docs quote)",
    )
    args = parser.parse_args()

    variants: dict[str, Callable[[], Phases]] = {
        "hatchway.background (loop=auto)": hatchway_cycle(),
        "hatchway.background (loop=asyncio)": hatchway_cycle(loop="asyncio"),
    }
    if not args.no_uvicorn:
        variants["uvicorn blog recipe (loop=auto)"] = uvicorn_cycle("auto")
        variants["uvicorn blog recipe (loop=asyncio)"] = uvicorn_cycle("asyncio")

    for cycle in variants.values():
        for _ in range(args.warmup):
            cycle()
    results: dict[str, list[Phases]] = {name: [] for name in variants}
    names = list(variants)
    rng = random.Random(args.seed)
    gc.collect()
    for i in range(args.cycles):
        if args.order == "rotate":
            order = names[i % len(names) :] + names[: i % len(names)]
        else:
            order = rng.sample(names, len(names))
        for name in order:
            results[name].append(variants[name]())
    print(
        f"{args.cycles} cycles per variant, interleaved ({args.order}); threads now: {threading.active_count()}"
    )
    print(table(results))
    if args.json:
        save(results)

    if args.profile:
        profile_hatchway(args.cycles)


def profile_hatchway(cycles: int) -> None:
    """cProfile both sides of the hatchway cycle: the caller and the server's thread (loop=asyncio)."""
    from hatchway.testing._background import BackgroundServer

    profiles: list[cProfile.Profile] = []
    thread_main = BackgroundServer._thread_main

    def profiled(self: BackgroundServer) -> None:
        profile = cProfile.Profile()
        profile.enable()
        try:
            thread_main(self)
        finally:
            profile.disable()
            profiles.append(profile)

    BackgroundServer._thread_main = profiled  # type: ignore[method-assign]
    caller = cProfile.Profile()
    cycle = hatchway_cycle(loop="asyncio")
    try:
        caller.enable()
        for _ in range(cycles):
            cycle()
        caller.disable()
    finally:
        BackgroundServer._thread_main = thread_main  # type: ignore[method-assign]
    for title, stats in (("caller thread", [caller]), ("server threads", profiles)):
        out = io.StringIO()
        merged = pstats.Stats(stats[0], stream=out)
        for extra in stats[1:]:
            merged.add(extra)
        merged.sort_stats("cumulative").print_stats(40)
        print(f"== {title}, {cycles} cycles ==")
        print(out.getvalue())


if __name__ == "__main__":
    main()
