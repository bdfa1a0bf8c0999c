"""The load harness: hatchway against uvicorn, hypercorn, granian and a bare uvloop protocol, in one command.

    python benchmarks/run.py [--quick] [--rounds N] [--duration S] [--workers-scaling] [--python 3.11,3.13]

It creates ``benchmarks/.venv`` (with ``--python X.Y``: ``benchmarks/.venv-X.Y``, from that Python) with the
pinned ``requirements.txt`` plus hatchway from this repository, built as users get it, on first use and
re-executes itself inside it. With several Pythons it runs once per Python, one after the other, each
writing ``results/OUTPUT-pyX.Y.*``. Each round starts every server once per app, measures
every scenario of that app with wrk, and stops it; servers are interleaved (A B C A B C ...) and their order
rotates each round, so a neighbour's load on this shared machine spreads over all of them. Every figure is
also reported as a ratio to uvicorn (httptools + uvloop) measured in the same round. The server is pinned to
CPU 0 and wrk to CPU 1. Results: ``benchmarks/results/latest.{md,json,png}``.

The ``h2-*`` scenarios load cleartext HTTP/2 with prior knowledge (h2c) with ``h2load`` instead of wrk, many
streams per connection, against the servers that speak it; their ratios are to uvicorn with ``--http zttp
--http2``. A server that does not start, does not answer HTTP/2, or whose load fails is reported as failed for
that scenario and round, and the run goes on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VENV = HERE / ".venv"
RESULTS = HERE / "results"
BASELINE = "uvicorn-httptools"
#: The reference of the HTTP/2 scenarios: uvicorn cannot serve HTTP/2 with httptools.
H2_BASELINE = "uvicorn-zttp-h2"
H1 = "http/1.1"
H2C = "h2c"
SERVER_CPU = "0"
CLIENT_CPU = "1"
HOST = "127.0.0.1"
CHART_CAP = 7.0


# -- the bench virtualenv ----------------------------------------------------------------------------------
def venv_dir(python: str | None) -> Path:
    return VENV if python is None else HERE / f".venv-{python}"


def find_python(version: str) -> str | None:
    """``pythonX.Y`` on PATH, else under pyenv's versions (as .ci/run finds them)."""
    for candidate in [
        shutil.which(f"python{version}"),
        *sorted(Path.home().glob(f".pyenv/versions/{version}*/bin/python{version}")),
    ]:
        if candidate and subprocess.run([str(candidate), "-c", ""], capture_output=True).returncode == 0:
            return str(candidate)
    return None


def source_digest() -> str:
    import hashlib

    digest = hashlib.sha256()
    for path in sorted([REPO / "setup.py", REPO / "pyproject.toml", *(REPO / "src").rglob("*.py")]):
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def ensure_venv(python: str | None = None) -> None:
    """Create/refresh the bench venv of ``python`` (X.Y; None: this interpreter) and re-exec inside it
    (stamped by the requirements' content)."""
    venv = venv_dir(python)
    venv_python = venv / "bin" / "python"
    base = sys.executable if python is None else find_python(python)
    if base is None:
        sys.exit(f"Python {python} is not on this machine.")
    requirements = (HERE / "requirements.txt").read_text()
    stamp = venv / ".requirements"
    if not (stamp.exists() and stamp.read_text() == requirements and venv_python.exists()):
        print(f"Creating {venv} ...", flush=True)
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
        pip = [str(venv_python), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "-r", str(HERE / "requirements.txt")], check=True)
        stamp.write_text(requirements)
    # hatchway is installed as users get it (compiled, see setup.py), again whenever its source changes.
    source = source_digest()
    built = venv / ".hatchway-source"
    if not (built.exists() and built.read_text() == source):
        print("Installing hatchway from this tree (compiling its hot path) ...", flush=True)
        pip = [str(venv_python), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall"]
        subprocess.run([*pip, str(REPO)], check=True)
        shutil.rmtree(REPO / "build", ignore_errors=True)
        built.write_text(source)
    if Path(sys.prefix).resolve() != venv.resolve():
        os.execv(str(venv_python), [str(venv_python), str(Path(__file__).resolve()), *sys.argv[1:]])


# -- servers and scenarios ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Server:
    name: str
    label: str
    #: argv with {app} and {port} placeholders.
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    #: The protocols whose scenarios it runs: "http/1.1" (wrk) and "h2c" (h2load, prior knowledge).
    protocols: frozenset[str] = frozenset({H1})

    def command(self, app: str, port: int) -> list[str]:
        return [a.format(app=app, port=port) for a in self.argv]


def py(*args: str) -> tuple[str, ...]:
    # The servers run only after ensure_venv() has re-executed this script in the bench venv.
    return (sys.executable, *args)


QUIET = ("--no-access-log", "--log-level", "warning", "--loop", "uvloop", "--host", HOST, "--port", "{port}")
BOTH = frozenset({H1, H2C})
SERVERS = [
    Server("hatchway-httptools", "hatchway (httptools)", py("-m", "hatchway", "{app}", "--http", "httptools", *QUIET)),
    Server("hatchway-h11", "hatchway (h11)", py("-m", "hatchway", "{app}", "--http", "h11", *QUIET)),
    Server("uvicorn-httptools", "uvicorn (httptools+uvloop)", py("-m", "uvicorn", "{app}", "--http", "httptools", *QUIET)),
    Server("uvicorn-h11", "uvicorn (h11+uvloop)", py("-m", "uvicorn", "{app}", "--http", "h11", *QUIET)),
    Server(
        "hypercorn",
        "hypercorn (uvloop)",
        py("-m", "hypercorn", "{app}", "-k", "uvloop", "-w", "1", "-b", f"{HOST}:{{port}}", "--log-level", "WARNING"),
        protocols=BOTH,  # h2c with prior knowledge on a plain port
    ),
    Server(
        "granian",
        "granian (asgi)",
        py(
            "-m", "granian", "--interface", "asgi", "--host", HOST, "--port", "{port}", "--workers", "1",
            "--loop", "uvloop", "--no-ws", "--log-level", "warning", "{app}",
        ),
        protocols=BOTH,  # --http auto (its default) takes h2c with prior knowledge as well as HTTP/1.1
    ),
    # HTTP/2 only (h2-* scenarios); both also answer HTTP/1.1 on the same port.
    Server("hatchway-h2", "hatchway (--http2)", py("-m", "hatchway", "--http2", "{app}", *QUIET), protocols=frozenset({H2C})),
    Server(
        "hatchway-zttp-h2",
        "hatchway (--http zttp --http2)",
        py("-m", "hatchway", "--http", "zttp", "--http2", "{app}", *QUIET),
        protocols=frozenset({H2C}),
    ),
    Server(
        H2_BASELINE,
        "uvicorn (zttp --http2+uvloop)",
        py("-m", "uvicorn", "{app}", "--http", "zttp", "--http2", *QUIET),
        protocols=frozenset({H2C}),
    ),
    Server("ceiling", "bare uvloop protocol (ceiling)", py(str(HERE / "ceiling.py"), "{port}")),
    Server("asgi-ceiling", "bare protocol + ASGI app (ASGI ceiling)", py(str(HERE / "asgi_ceiling.py"), "{app}", "{port}")),
]  # fmt: skip


@dataclass(frozen=True)
class Scenario:
    name: str
    label: str
    app: str
    connections: int
    script: str | None = None
    #: Which ceilings run it. Both answer every request as if it were the same GET, so only scenarios
    #: made of such requests, and (for the ASGI ceiling) with one request in flight per connection, qualify.
    ceiling: bool = False
    asgi_ceiling: bool = False
    #: "http/1.1": wrk; "h2c": h2load, cleartext HTTP/2 with prior knowledge.
    protocol: str = H1
    #: h2c: concurrent streams per connection (h2load -m).
    streams: int = 1
    #: h2c: bytes POSTed per request (h2load -d FILE); 0: GET.
    body: int = 0

    @property
    def baseline(self) -> str:
        return H2_BASELINE if self.protocol == H2C else BASELINE


#: The shape of the HTTP/2 load: 16 connections x 32 concurrent streams (512 requests in flight), one h2load
#: thread. Few connections with many streams each is what HTTP/2 is for; 32 stays under every server's
#: SETTINGS_MAX_CONCURRENT_STREAMS (hypercorn 100, granian 200).
H2_CONNECTIONS = 16
H2_REQUESTS_PER_CONNECTION = 3900
H2_STREAMS = 32


SCENARIOS = [
    Scenario("plain", "plain text, 64 conns", "apps:plain", 64, ceiling=True, asgi_ceiling=True),
    Scenario("plain-1conn", "plain text, 1 conn (latency)", "apps:plain", 1, ceiling=True),
    Scenario(
        "plain-pipelined", "plain text, 64 conns, pipelined x16", "apps:plain", 64, "pipeline.lua", True
    ),
    Scenario("json", "JSON ~100 B, 64 conns", "apps:json", 64, asgi_ceiling=True),
    Scenario("fastapi", "FastAPI + pydantic, 64 conns", "apps_fastapi:app", 64, asgi_ceiling=True),
    Scenario("echo64k", "64 KiB POST echo, 64 conns", "apps:echo", 64, "post64k.lua"),
    Scenario("stream", "streaming 100 x 64 B chunks, 64 conns", "apps:stream", 64),
    Scenario("file", "50 KB file, Starlette FileResponse, 64 conns", "apps_files:starlette", 64),
    Scenario("pathsend", "50 KB file, raw pathsend app, 64 conns", "apps_files:pathsend", 64),
    Scenario(
        "h2-plain", f"HTTP/2 plain text, {H2_CONNECTIONS} conns x {H2_STREAMS} streams", "apps:plain",
        H2_CONNECTIONS, protocol=H2C, streams=H2_STREAMS,
    ),
    Scenario(
        "h2-json", f"HTTP/2 JSON ~100 B, {H2_CONNECTIONS} conns x {H2_STREAMS} streams", "apps:json",
        H2_CONNECTIONS, protocol=H2C, streams=H2_STREAMS,
    ),
    Scenario(
        "h2-post", f"HTTP/2 1 KiB POST echo, {H2_CONNECTIONS} conns x {H2_STREAMS} streams", "apps:echo",
        H2_CONNECTIONS, protocol=H2C, streams=H2_STREAMS, body=1024,
    ),
]  # fmt: skip


# -- processes -------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def children(pid: int) -> list[int]:
    """pid and all its descendants (granian and hypercorn run the app in a child process)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(parents.get(p, ()))
    return out


def rss_kib(pid: int) -> int:
    total = 0
    for p in children(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def cpu_seconds(pid: int) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in children(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def http_get_ok(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def h2_get_ok(port: int, body: bytes | None = None) -> bool:
    """A GET (``body``: a POST of it) over cleartext HTTP/2 with prior knowledge answered 200."""
    import h2.config
    import h2.connection
    import h2.events
    import h2.exceptions

    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    method = "GET" if body is None else "POST"
    headers = [(":method", method), (":scheme", "http"), (":authority", "bench"), (":path", "/")]
    conn.send_headers(1, headers, end_stream=body is None)
    if body is not None:
        conn.send_data(1, body, end_stream=True)
    try:
        with socket.create_connection((HOST, port), timeout=0.5) as s:
            s.sendall(conn.data_to_send())
            while data := s.recv(65536):
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.ResponseReceived):
                        ok = dict(event.headers).get(b":status") == b"200"
                        conn.close_connection()
                        s.sendall(conn.data_to_send())
                        return ok
                s.sendall(conn.data_to_send())
    except (OSError, h2.exceptions.H2Error):
        pass
    return False


class Running:
    """One server process: spawned pinned to the server CPU, up when it answers 200 (over HTTP/2 for h2c)."""

    def __init__(
        self,
        server: Server,
        app: str,
        cpus: str = SERVER_CPU,
        extra: tuple[str, ...] = (),
        protocol: str = H1,
        post: bool = False,
    ) -> None:
        """``post``: an h2c probe POSTs a body (its scenario does; uvicorn's zttp never ends the body of a GET
        whose HEADERS frame ends the stream, so an app that reads it waits forever)."""
        self.server = server
        self.port = free_port()
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **dict(server.env)}
        argv = ["taskset", "-c", cpus, *server.command(app, self.port), *extra]
        started = time.perf_counter()
        # stderr to a file, not a pipe: a server that logs every probe must not block on a full pipe.
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())
        self.proc = subprocess.Popen(
            argv, cwd=HERE, env=env, stdout=subprocess.DEVNULL, stderr=self.stderr, start_new_session=True
        )
        deadline = started + 30

        def probe(port: int) -> bool:
            if protocol == H2C:
                return h2_get_ok(port, b"x" if post else None)
            return http_get_ok(port)

        while not probe(self.port):
            now = time.perf_counter()
            # A server up on HTTP/1.1 that does not answer HTTP/2 within 10 s is not going to.
            h1_only = protocol == H2C and now > started + 10 and http_get_ok(self.port)
            if self.proc.poll() is not None or now > deadline or h1_only:
                self.end()
                self.stderr.seek(0)
                err = self.stderr.read().decode(errors="replace")
                self.stop()
                why = "answers HTTP/1.1 but not h2c" if h1_only else "did not start"
                raise RuntimeError(f"{server.name} {why}: {err[-2000:]}")
            time.sleep(0.005)
        self.startup = time.perf_counter() - started
        time.sleep(0.2)
        self.rss_idle = rss_kib(self.proc.pid)

    def stop(self) -> None:
        self.end()
        self.stderr.close()

    def end(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGINT)
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass


# -- wrk -------------------------------------------------------------------------------------------------
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * _UNITS[unit]


def wrk(port: int, scenario: Scenario, duration: float) -> dict[str, Any]:
    argv = [
        "taskset",
        "-c",
        CLIENT_CPU,
        "wrk",
        "-t1",
        f"-c{scenario.connections}",
        f"-d{max(1, round(duration))}s",
    ]
    argv += ["--latency", "--timeout", "10s"]
    if scenario.script:
        argv += ["-s", str(HERE / scenario.script)]
    argv.append(f"http://{HOST}:{port}/bench")
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60).stdout
    result: dict[str, Any] = {"rps": 0.0, "p50_ms": None, "p99_ms": None, "errors": 0, "requests": 0}
    if m := re.search(r"Requests/sec:\s+([\d.]+)", out):
        result["rps"] = float(m.group(1))
    if m := re.search(r"(\d+) requests in", out):
        result["requests"] = int(m.group(1))
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        if m := re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M):
            # wrk cannot time pipelined responses after the first of a batch: it reports 0 for them.
            result[key] = _ms(m.group(1)) or None
    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(g) for g in m.groups())
    result["errors"] = errors
    return result


# -- h2load ----------------------------------------------------------------------------------------------
_BODIES: dict[int, Path] = {}


def post_body(size: int) -> Path:
    """A file of ``size`` bytes for h2load -d (made once per run, in a temporary directory)."""
    if size not in _BODIES:
        path = Path(tempfile.mkdtemp(prefix="hatchway-bench-")) / f"body-{size}"
        path.write_bytes(b"a" * size)
        _BODIES[size] = path
    return _BODIES[size]


def h2load_argv(port: int | str, scenario: Scenario, duration: float, body: str | None = None) -> list[str]:
    """The h2load command of a scenario (``body``: the path to show for the POSTed file)."""
    argv = [
        "taskset",
        "-c",
        CLIENT_CPU,
        "h2load",
        "-t1",
        f"-c{scenario.connections}",
        f"-m{scenario.streams}",
    ]
    # A fixed count, not -D: zttp (uvicorn's and hatchway's zttp backend) ends a connection after about 4000
    # streams, and h2load does not reconnect; 3900 requests per connection stay below that for every server.
    # The duration then follows each server's speed (req/s is h2load's, over its own run).
    argv += [f"-n{scenario.connections * H2_REQUESTS_PER_CONNECTION}"]
    if scenario.body:
        argv += ["-d", body or str(post_body(scenario.body)), "-H", "content-type: application/octet-stream"]
    argv.append(f"http://{HOST}:{port}/bench")
    return argv


def h2load_command(scenario: Scenario, duration: float) -> str:
    """The command as the results show it."""
    body = f"<{scenario.body} B file>" if scenario.body else None
    argv = h2load_argv("PORT", scenario, duration, body)
    return " ".join(f"'{a}'" if " " in a else a for a in argv) + " --log-file FILE"


def h2load(port: int, scenario: Scenario, duration: float) -> dict[str, Any]:
    """Run h2load; raise RuntimeError when it did not speak h2c or no request succeeded.

    Latency percentiles come from its per-request log (h2load prints only min/max/mean)."""
    with tempfile.NamedTemporaryFile(prefix="hatchway-h2load-", suffix=".log") as log:
        argv = [*h2load_argv(port, scenario, duration), "--log-file", log.name]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        times = sorted(int(line.split("\t")[2]) for line in Path(log.name).read_text().splitlines() if line)
    out = proc.stdout
    result: dict[str, Any] = {"rps": 0.0, "p50_ms": None, "p99_ms": None, "errors": 0, "requests": 0}
    m = re.search(r"Application protocol: (\S+)", out)
    result["protocol"] = m.group(1) if m else None
    if result["protocol"] != H2C:
        tail = (out + proc.stderr).strip().splitlines()[-5:]
        raise RuntimeError(f"h2load: no h2c (protocol {result['protocol']}): {' | '.join(tail)}")
    if m := re.search(r"finished in \S+, ([\d.]+) req/s", out):
        result["rps"] = float(m.group(1))
    counts = re.search(
        r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, "
        r"(\d+) timeout",
        out,
    )
    if counts is None:
        raise RuntimeError(f"h2load: no request counts in {out[-500:]!r}")
    total, started, done, succeeded, failed, errored, timeout = (int(g) for g in counts.groups())
    result["requests"] = succeeded
    result["h2load"] = {"total": total, "started": started, "done": done, "succeeded": succeeded}
    result["h2load"] |= {
        "failed": failed,
        "errored": errored,
        "timeout": timeout,
        "protocol": result["protocol"],
    }
    errors = failed  # (errored and timed out are counted in failed)
    if m := re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out):
        errors += sum(int(g) for g in m.groups()[1:])
    result["errors"] = errors
    if m := re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)", out):
        result["h2load"]["mean_ms"] = _ms(m.group(3))
    if times:
        result["p50_ms"] = times[len(times) // 2] / 1000
        result["p99_ms"] = times[min(len(times) - 1, len(times) * 99 // 100)] / 1000
    if not succeeded:
        raise RuntimeError(f"h2load: no request succeeded ({counts.group(0)})")
    return result


def load(port: int, scenario: Scenario, duration: float) -> dict[str, Any]:
    return h2load(port, scenario, duration) if scenario.protocol == H2C else wrk(port, scenario, duration)


# -- one run ---------------------------------------------------------------------------------------------
@dataclass
class Sample:
    server: str
    scenario: str
    round: int
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    errors: int
    cpu_us_per_req: float | None
    rss_idle_kib: int
    rss_after_kib: int
    startup_s: float
    extra: dict[str, Any] = field(default_factory=dict)


def measure_app(
    server: Server, scenarios: list[Scenario], rnd: int, duration: float, warmup: float
) -> Iterator[Sample]:
    running = Running(server, scenarios[0].app, protocol=scenarios[0].protocol, post=scenarios[0].body > 0)
    try:
        for sc in scenarios:
            if warmup:
                load(running.port, sc, warmup)
            rss_warm = rss_kib(running.proc.pid)
            cpu0 = cpu_seconds(running.proc.pid)
            res = load(running.port, sc, duration)
            cpu = cpu_seconds(running.proc.pid) - cpu0
            time.sleep(0.1)
            yield Sample(
                server.name,
                sc.name,
                rnd,
                res["rps"],
                res["p50_ms"],
                res["p99_ms"],
                res["errors"],
                cpu / res["requests"] * 1e6 if res["requests"] else None,
                running.rss_idle,
                rss_kib(running.proc.pid),
                running.startup,
                {"rss_warm_kib": rss_warm, **({"h2load": res["h2load"]} if "h2load" in res else {})},
            )
    finally:
        running.stop()


def rotated(items: list[Any], k: int) -> list[Any]:
    k %= len(items) or 1
    return items[k:] + items[:k]


def runs(server: Server, scenario: Scenario) -> bool:
    if scenario.protocol not in server.protocols:
        return False
    if server.name == "ceiling":
        return scenario.ceiling
    if server.name == "asgi-ceiling":
        return scenario.asgi_ceiling
    return True


def run_rounds(
    servers: list[Server],
    scenarios: list[Scenario],
    rounds: int,
    duration: float,
    warmup: float,
    failures: list[dict[str, Any]] | None = None,
) -> list[Sample]:
    samples: list[Sample] = []
    # One server start per app and protocol (an h2c start waits for an HTTP/2 answer).
    apps: dict[tuple[str, str], list[Scenario]] = {}
    for sc in scenarios:
        apps.setdefault((sc.app, sc.protocol), []).append(sc)
    for rnd in range(rounds):
        for (app, _), group in apps.items():
            for server in rotated(servers, rnd):
                todo = [sc for sc in group if runs(server, sc)]
                if not todo:
                    continue
                t0 = time.perf_counter()
                done = len(samples)
                try:
                    for sample in measure_app(server, todo, rnd, duration, warmup):
                        samples.append(sample)
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    print(f"  ! {server.name} {app}: {str(exc)[-600:]}", file=sys.stderr, flush=True)
                    measured = {s.scenario for s in samples[done:]}
                    if failures is not None:
                        failures += [
                            {
                                "server": server.name,
                                "scenario": sc.name,
                                "round": rnd,
                                "error": str(exc)[-800:],
                            }
                            for sc in todo
                            if sc.name not in measured
                        ]
                    continue
                line = ", ".join(f"{s.scenario} {s.rps:,.0f}/s" for s in samples[-len(todo) :])
                print(
                    f"round {rnd + 1}/{rounds} {server.name:<20} {line}  ({time.perf_counter() - t0:.1f}s)",
                    flush=True,
                )
    return samples


def run_scaling(duration: float, warmup: float, rounds: int) -> list[dict[str, Any]]:
    """hatchway and uvicorn with --workers 1 and 2 (plain text; both CPUs, wrk unpinned: indicative only)."""
    out: list[dict[str, Any]] = []
    sc = SCENARIOS[0]
    chosen = [s for s in SERVERS if s.name in ("hatchway-httptools", BASELINE)]
    for rnd in range(rounds):
        for workers in (1, 2):
            for server in rotated(chosen, rnd):
                running = Running(server, sc.app, cpus="0,1", extra=("--workers", str(workers)))
                try:
                    time.sleep(0.5 if workers > 1 else 0)  # let the other workers come up
                    wrk(running.port, sc, warmup)
                    res = wrk(running.port, sc, duration)
                finally:
                    running.stop()
                out.append({"server": server.name, "workers": workers, "round": rnd, "rps": res["rps"]})
                print(
                    f"scaling round {rnd + 1} {server.name} workers={workers}: {res['rps']:,.0f}/s",
                    flush=True,
                )
    return out


# -- reporting -------------------------------------------------------------------------------------------
def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in (
        "hatchway",
        "uvicorn",
        "httptools",
        "h11",
        "zttp",
        "h2",
        "uvloop",
        "hypercorn",
        "granian",
        "fastapi",
        "starlette",
        "pydantic",
    ):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "-"
    if found["hatchway"] != "-":
        from hatchway._http import protocol

        found["hatchway"] += " (pure Python)" if protocol.__file__.endswith(".py") else " (compiled)"
    return found


def machine() -> dict[str, str]:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0].strip()
    found = {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "kernel": platform.release(),
        "wrk": wrk_version,
    }
    if shutil.which("h2load"):
        h2load_version = subprocess.run(["h2load", "--version"], capture_output=True, text=True).stdout
        found["h2load"] = h2load_version.split("\n")[0].strip()
    return found


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarise(samples: list[Sample]) -> dict[str, dict[str, dict[str, Any]]]:
    """scenario -> server -> medians, spread and same-round ratios to the baseline."""
    table: dict[str, dict[str, dict[str, Any]]] = {}
    by_key: dict[tuple[str, str], list[Sample]] = {}
    for s in samples:
        by_key.setdefault((s.scenario, s.server), []).append(s)
    baselines = {sc.name: sc.baseline for sc in SCENARIOS}
    base_by_round = {
        (s.scenario, s.round): s for s in samples if s.server == baselines.get(s.scenario, BASELINE)
    }
    for (scenario, server), group in by_key.items():
        rps = [s.rps for s in group]
        ratios: dict[str, list[float]] = {"rps": [], "p50": [], "p99": [], "rss": [], "cpu": []}
        for s in group:
            b = base_by_round.get((scenario, s.round))
            if b is None:
                continue
            if b.rps:
                ratios["rps"].append(s.rps / b.rps)
            if s.p50_ms and b.p50_ms:
                ratios["p50"].append(s.p50_ms / b.p50_ms)
            if s.p99_ms and b.p99_ms:
                ratios["p99"].append(s.p99_ms / b.p99_ms)
            if b.rss_after_kib:
                ratios["rss"].append(s.rss_after_kib / b.rss_after_kib)
            if s.cpu_us_per_req and b.cpu_us_per_req:
                ratios["cpu"].append(s.cpu_us_per_req / b.cpu_us_per_req)
        table.setdefault(scenario, {})[server] = {
            "rps": median(rps),
            "rps_min": min(rps),
            "rps_max": max(rps),
            "spread_pct": (max(rps) - min(rps)) / median(rps) * 100 if median(rps) else 0.0,
            "p50_ms": median([s.p50_ms for s in group if s.p50_ms is not None]),
            "p99_ms": median([s.p99_ms for s in group if s.p99_ms is not None]),
            "cpu_us_per_req": median([s.cpu_us_per_req for s in group if s.cpu_us_per_req]),
            "rss_idle_mib": median([s.rss_idle_kib / 1024 for s in group]),
            "rss_warm_mib": median([s.extra.get("rss_warm_kib", 0) / 1024 for s in group]),
            "rss_after_mib": median([s.rss_after_kib / 1024 for s in group]),
            "startup_ms": median([s.startup_s * 1000 for s in group]),
            "errors": sum(s.errors for s in group),
            "rounds": len(group),
            **{f"ratio_{k}": median(v) for k, v in ratios.items() if v},
        }
    return table


def fmt_ratio(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    return f"{value:.2f}x" if value is not None else "-"


def fmt_ms(value: float) -> str:
    return "-" if value != value else f"{value:.2f}"  # NaN: no latency figure (pipelined)


def markdown(
    table: dict[str, dict[str, dict[str, Any]]],
    meta: dict[str, Any],
    scaling: list[dict[str, Any]],
) -> str:
    labels = {s.name: s.label for s in SERVERS}
    lines = [
        f"# hatchway benchmark results, Python {meta['machine']['python']} "
        f"(hatchway {meta['versions'].get('hatchway', '-')})",
        "",
        f"Produced by `{meta['command']}` on {meta['date']} ({meta['rounds']} rounds of {meta['duration']} s per "
        f"scenario after a {meta['warmup']} s warm-up; servers interleaved, order rotated each round).",
        "",
        f"Machine: {meta['machine']['nproc']} CPUs, {meta['machine']['cpu']}, Linux {meta['machine']['kernel']}, "
        f"Python {meta['machine']['python']}, {meta['machine']['wrk']}. Server pinned to CPU {SERVER_CPU}, "
        f"wrk (1 thread) to CPU {CLIENT_CPU}, loopback, keep-alive.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ".",
        "",
        "**Ratios are to uvicorn (httptools+uvloop) in the same round** (median of per-round ratios); "
        "req/s is the median with the min-max spread. Latency ratios below 1 are better; CPU is server CPU time "
        "(user+system, all processes of the server) per request. RSS is VmRSS summed over the server's processes: "
        "idle (after the first response) and after the load.",
        "",
    ]
    h2_commands = meta.get("load_commands", {})
    if any(sc.protocol == H2C and sc.name in table for sc in SCENARIOS):
        lines += [
            f"**HTTP/2 scenarios** (`h2-*`): cleartext HTTP/2 with prior knowledge (h2c) on loopback, loaded by "
            f"{meta['machine'].get('h2load', 'h2load')} (1 thread, pinned to CPU {CLIENT_CPU}) against servers on "
            f"Python {meta['machine']['python']} ({meta['machine'].get('python_executable', '-')}); every "
            "measurement checked that h2load negotiated h2c. **Their ratios are to uvicorn with `--http zttp "
            "--http2`** in the same round (uvicorn's httptools protocol has no HTTP/2). req/s and the request "
            "count are h2load's (succeeded requests); p50/p99 come from its per-request log; errors are failed, "
            "errored, timed-out and non-2xx requests.",
            "",
        ]
    for sc in SCENARIOS:
        rows = table.get(sc.name)
        if not rows:
            continue
        versus = "vs uvicorn h2" if sc.protocol == H2C else "vs uvicorn"
        lines += [f"## {sc.label}", ""]
        if sc.name in h2_commands:
            lines += [f"`{h2_commands[sc.name]}`", ""]
        lines += [
            f"| server | req/s (median) | spread | {versus} | p50 ms | p99 ms | p99 {versus} | CPU µs/req "
            "| RSS idle MiB | RSS after MiB | start-up ms | errors |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for server in SERVERS:
            row = rows.get(server.name)
            if row is None:
                continue
            lines.append(
                f"| {labels[server.name]} | {row['rps']:,.0f} | {row['rps_min']:,.0f} to {row['rps_max']:,.0f} "
                f"| {fmt_ratio(row, 'ratio_rps')} | {fmt_ms(row['p50_ms'])} | {fmt_ms(row['p99_ms'])} "
                f"| {fmt_ratio(row, 'ratio_p99')} | {row['cpu_us_per_req']:.1f} | {row['rss_idle_mib']:.1f} "
                f"| {row['rss_after_mib']:.1f} | {row['startup_ms']:.0f} | {row['errors']} |"
            )
        lines.append("")
    failures = meta.get("failures", [])
    if failures:
        lines += [
            "## Failed (no figure for these)",
            "",
            "| server | scenario | rounds | error |",
            "|---|---|---|---|",
        ]
        grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for f in failures:
            grouped.setdefault((f["server"], f["scenario"]), []).append(f)
        for (server_name, scenario), group in grouped.items():
            error = " ".join(group[-1]["error"].split())[:200].replace("|", "/")
            rounds = ", ".join(str(f["round"] + 1) for f in group)
            lines.append(f"| {labels.get(server_name, server_name)} | {scenario} | {rounds} | {error} |")
        lines.append("")
    if scaling:
        lines += [
            "## Worker scaling (plain text, 64 conns; both CPUs shared with wrk: indicative only)",
            "",
            "| server | 1 worker req/s | 2 workers req/s | 2 / 1 |",
            "|---|---:|---:|---:|",
        ]
        for name in ("hatchway-httptools", BASELINE):
            one = median([s["rps"] for s in scaling if s["server"] == name and s["workers"] == 1])
            two = median([s["rps"] for s in scaling if s["server"] == name and s["workers"] == 2])
            lines.append(f"| {labels[name]} | {one:,.0f} | {two:,.0f} | {two / one if one else 0:.2f}x |")
        lines.append("")
    lines += [f"![throughput relative to uvicorn]({meta['output']}.png)", ""]
    return "\n".join(lines)


def chart(table: dict[str, dict[str, dict[str, Any]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = [sc for sc in SCENARIOS if sc.name in table]
    servers = [s for s in SERVERS if any(s.name in table[sc.name] for sc in scenarios)]
    fig, ax = plt.subplots(figsize=(12, 5.5))
    width = 0.8 / max(1, len(servers))
    for i, server in enumerate(servers):
        values = [table[sc.name].get(server.name, {}).get("ratio_rps", 0.0) for sc in scenarios]
        xs = [j + (i - (len(servers) - 1) / 2) * width for j in range(len(scenarios))]
        # The ceiling's pipelined figure is tens of times the others: clip it, keep the real value as its label.
        ax.bar(xs, [min(v, CHART_CAP) for v in values], width, label=server.label)
        for x, v in zip(xs, values, strict=True):
            if v:
                ax.text(x, min(v, CHART_CAP), f"{v:.2f}", ha="center", va="bottom", fontsize=6, rotation=90)
    ax.set_ylim(0, CHART_CAP * 1.1)
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xticks(range(len(scenarios)))
    ax.set_xticklabels([sc.label.replace(", ", "\n", 1) for sc in scenarios], fontsize=8)
    ax.set_ylabel("req/s relative to uvicorn (httptools+uvloop;\nh2-*: zttp --http2), same round")
    ax.set_title("Throughput relative to uvicorn, one worker pinned to one CPU (higher is better)")
    ax.legend(fontsize=8, ncols=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# -- main ------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s per scenario (under ~3 minutes)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 3; 1 with --quick)")
    parser.add_argument(
        "--duration", type=float, default=None, help="seconds per measurement (default 4; 2 quick)"
    )
    parser.add_argument("--warmup", type=float, default=None, help="seconds of warm-up load (default 1)")
    parser.add_argument(
        "--servers", default="", help="comma-separated subset of: " + ", ".join(s.name for s in SERVERS)
    )
    parser.add_argument(
        "--scenarios", default="", help="comma-separated subset of: " + ", ".join(s.name for s in SCENARIOS)
    )
    parser.add_argument(
        "--workers-scaling", action="store_true", help="also run 1 and 2 workers of hatchway and uvicorn"
    )
    parser.add_argument(
        "--baseline-src", default="", help="also run hatchway from this src/ directory as 'hatchway-base'"
    )
    parser.add_argument(
        "--output", default="latest", help="basename of the files written to benchmarks/results/"
    )
    parser.add_argument(
        "--python",
        default="",
        help="X.Y, or a comma-separated list: run on that Python (default: the one running this script)",
    )
    parser.add_argument(
        "--replot", action="store_true", help="rewrite results/OUTPUT.md and .png from OUTPUT.json, no load"
    )
    args = parser.parse_args()
    pythons = [v.strip() for v in args.python.split(",") if v.strip()]
    if len(pythons) > 1:  # one run per Python, one after the other
        rest = _without_options(sys.argv[1:], ("--python", "--output"))
        for version in pythons:
            out = f"{args.output}-py{version}"
            subprocess.run(
                [sys.executable, __file__, *rest, "--python", version, "--output", out], check=True
            )
        return
    python = pythons[0] if pythons else None
    if args.replot:
        ensure_venv(python)
        raw = json.loads((RESULTS / f"{args.output}.json").read_text())
        (RESULTS / f"{args.output}.md").write_text(markdown(raw["summary"], raw["meta"], raw["scaling"]))
        chart(raw["summary"], RESULTS / f"{args.output}.png")
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install -y wrk")
    ensure_venv(python)
    rounds = args.rounds or (1 if args.quick else 3)
    duration = args.duration or (2.0 if args.quick else 4.0)
    warmup = args.warmup if args.warmup is not None else 1.0
    servers = [s for s in SERVERS if not args.servers or s.name in args.servers.split(",")]
    if args.baseline_src:
        base = SERVERS[0]
        src = str(Path(args.baseline_src).resolve())
        SERVERS.insert(
            1,
            Server(
                "hatchway-base",
                f"hatchway (httptools, {args.baseline_src})",
                base.argv,
                (("PYTHONPATH", src),),
            ),
        )
        servers.insert(1, SERVERS[1])
        h2 = next(s for s in SERVERS if s.name == "hatchway-h2")
        if h2 in servers:  # and its HTTP/2 from the same directory
            h2_base = Server(
                "hatchway-h2-base",
                f"hatchway (--http2, {args.baseline_src})",
                h2.argv,
                (("PYTHONPATH", src),),
                h2.protocols,
            )
            SERVERS.insert(SERVERS.index(h2) + 1, h2_base)
            servers.insert(servers.index(h2) + 1, h2_base)
    if BASELINE not in [s.name for s in servers]:
        servers.insert(0, next(s for s in SERVERS if s.name == BASELINE))
    scenarios = [s for s in SCENARIOS if not args.scenarios or s.name in args.scenarios.split(",")]
    if any(sc.protocol == H2C for sc in scenarios):
        if shutil.which("h2load") is None:
            print(
                "h2load is not installed (apt-get install -y nghttp2-client): no h2-* scenarios", flush=True
            )
            scenarios = [sc for sc in scenarios if sc.protocol != H2C]
        elif H2_BASELINE not in [s.name for s in servers]:
            servers.insert(1, next(s for s in SERVERS if s.name == H2_BASELINE))
    t0 = time.perf_counter()
    failures: list[dict[str, Any]] = []
    samples = run_rounds(servers, scenarios, rounds, duration, warmup, failures)
    scaling = run_scaling(duration, warmup, rounds) if args.workers_scaling else []
    table = summarise(samples)
    meta = {
        "command": "python benchmarks/run.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rounds": rounds,
        "duration": duration,
        "warmup": warmup,
        "machine": machine(),
        "versions": versions(),
        "elapsed_s": round(time.perf_counter() - t0, 1),
        "output": args.output,
        "load_commands": {sc.name: h2load_command(sc, duration) for sc in scenarios if sc.protocol == H2C},
        "failures": failures,
    }
    RESULTS.mkdir(exist_ok=True)
    raw = {"meta": meta, "summary": table, "samples": [s.__dict__ for s in samples], "scaling": scaling}
    (RESULTS / f"{args.output}.json").write_text(json.dumps(raw, indent=1))
    (RESULTS / f"{args.output}.md").write_text(markdown(table, meta, scaling))
    chart(table, RESULTS / f"{args.output}.png")
    print((RESULTS / f"{args.output}.md").read_text())
    print(f"elapsed {meta['elapsed_s']} s; wrote {RESULTS}/{args.output}.{{md,json,png}}")


def _without_options(argv: list[str], names: tuple[str, ...]) -> list[str]:
    """``argv`` less the options ``names`` (``--name value`` or ``--name=value``)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in names:
            skip = True
        elif not arg.startswith(tuple(f"{name}=" for name in names)):
            out.append(arg)
    return out


if __name__ == "__main__":
    main()
