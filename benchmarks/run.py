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

    def command(self, app: str, port: int) -> list[str]:
        return [a.format(app=app, port=port) for a in self.argv]


def py(*args: str) -> tuple[str, ...]:
    # The servers run only after ensure_venv() has re-executed this script in the bench venv.
    return (sys.executable, *args)


QUIET = ("--no-access-log", "--log-level", "warning", "--loop", "uvloop", "--host", HOST, "--port", "{port}")
SERVERS = [
    Server("hatchway-httptools", "hatchway (httptools)", py("-m", "hatchway", "{app}", "--http", "httptools", *QUIET)),
    Server("hatchway-h11", "hatchway (h11)", py("-m", "hatchway", "{app}", "--http", "h11", *QUIET)),
    Server("uvicorn-httptools", "uvicorn (httptools+uvloop)", py("-m", "uvicorn", "{app}", "--http", "httptools", *QUIET)),
    Server("uvicorn-h11", "uvicorn (h11+uvloop)", py("-m", "uvicorn", "{app}", "--http", "h11", *QUIET)),
    Server(
        "hypercorn",
        "hypercorn (uvloop)",
        py("-m", "hypercorn", "{app}", "-k", "uvloop", "-w", "1", "-b", f"{HOST}:{{port}}", "--log-level", "WARNING"),
    ),
    Server(
        "granian",
        "granian (asgi)",
        py(
            "-m", "granian", "--interface", "asgi", "--host", HOST, "--port", "{port}", "--workers", "1",
            "--loop", "uvloop", "--no-ws", "--log-level", "warning", "{app}",
        ),
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
]


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


class Running:
    """One server process: spawned pinned to the server CPU, up when it answers 200."""

    def __init__(self, server: Server, app: str, cpus: str = SERVER_CPU, extra: tuple[str, ...] = ()) -> None:
        self.server = server
        self.port = free_port()
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **dict(server.env)}
        argv = ["taskset", "-c", cpus, *server.command(app, self.port), *extra]
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            argv, cwd=HERE, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        deadline = started + 30
        while not http_get_ok(self.port):
            if self.proc.poll() is not None or time.perf_counter() > deadline:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                self.stop()
                raise RuntimeError(f"{server.name} did not start: {err[-2000:]}")
            time.sleep(0.005)
        self.startup = time.perf_counter() - started
        time.sleep(0.2)
        self.rss_idle = rss_kib(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGINT)
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        if self.proc.stderr:
            self.proc.stderr.close()


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
    running = Running(server, scenarios[0].app)
    try:
        for sc in scenarios:
            if warmup:
                wrk(running.port, sc, warmup)
            rss_warm = rss_kib(running.proc.pid)
            cpu0 = cpu_seconds(running.proc.pid)
            res = wrk(running.port, sc, duration)
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
                {"rss_warm_kib": rss_warm},
            )
    finally:
        running.stop()


def rotated(items: list[Any], k: int) -> list[Any]:
    k %= len(items) or 1
    return items[k:] + items[:k]


def runs(server: Server, scenario: Scenario) -> bool:
    if server.name == "ceiling":
        return scenario.ceiling
    if server.name == "asgi-ceiling":
        return scenario.asgi_ceiling
    return True


def run_rounds(
    servers: list[Server], scenarios: list[Scenario], rounds: int, duration: float, warmup: float
) -> list[Sample]:
    samples: list[Sample] = []
    apps: dict[str, list[Scenario]] = {}
    for sc in scenarios:
        apps.setdefault(sc.app, []).append(sc)
    for rnd in range(rounds):
        for app, group in apps.items():
            for server in rotated(servers, rnd):
                todo = [sc for sc in group if runs(server, sc)]
                if not todo:
                    continue
                t0 = time.perf_counter()
                try:
                    for sample in measure_app(server, todo, rnd, duration, warmup):
                        samples.append(sample)
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    print(f"  ! {server.name} {app}: {exc}", file=sys.stderr, flush=True)
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
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "wrk": wrk_version,
    }


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarise(samples: list[Sample]) -> dict[str, dict[str, dict[str, Any]]]:
    """scenario -> server -> medians, spread and same-round ratios to the baseline."""
    table: dict[str, dict[str, dict[str, Any]]] = {}
    by_key: dict[tuple[str, str], list[Sample]] = {}
    for s in samples:
        by_key.setdefault((s.scenario, s.server), []).append(s)
    base_by_round = {(s.scenario, s.round): s for s in samples if s.server == BASELINE}
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
    for sc in SCENARIOS:
        rows = table.get(sc.name)
        if not rows:
            continue
        lines += [
            f"## {sc.label}",
            "",
            "| server | req/s (median) | spread | vs uvicorn | p50 ms | p99 ms | p99 vs uvicorn | CPU µs/req "
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
    ax.set_ylabel("requests/s relative to uvicorn (httptools+uvloop), same round")
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
    if BASELINE not in [s.name for s in servers]:
        servers.insert(0, next(s for s in SERVERS if s.name == BASELINE))
    scenarios = [s for s in SCENARIOS if not args.scenarios or s.name in args.scenarios.split(",")]
    t0 = time.perf_counter()
    samples = run_rounds(servers, scenarios, rounds, duration, warmup)
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
