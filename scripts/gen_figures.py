"""Render every benchmark figure the README and the docs quote from the harness's results, so they cannot disagree.

Sources (each records the command, date, machine and versions it came from):

- ``benchmarks/results/latest.json``            ``python benchmarks/run.py --workers-scaling``
- ``benchmarks/results/background_cycle.json``  ``python benchmarks/background_cycle.py -n 200 --json``
- ``benchmarks/results/reload_latency.json``    ``python benchmarks/reload_latency.py --edits 15 --json``
- ``benchmarks/results/pythons-py3.11.json``, ``pythons-py3.12.json``, ``pythons-py3.13.json``
                                                ``python benchmarks/run.py --python 3.11,3.13 ...`` (the same
                                                scenarios on two Pythons, each against uvicorn on that Python)
- ``benchmarks/results/http2.json``             ``python benchmarks/run.py --scenarios h2-plain,h2-json,h2-post``
- ``benchmarks/results/recorded.json``          figures of scripts that do not write JSON yet, with their
                                                command, date and where they were copied from

Outputs: the README's blocks between ``<!-- comparison:start -->``/``<!-- comparison:end -->`` and
``<!-- benchmarks:start -->``/``<!-- benchmarks:end -->``, and ``docs/benchmarks.md``. Other pages that state
a figure (benchmarks/README.md, docs/testing.md, docs/reload-and-workers.md) must contain the exact phrase
:func:`phrases` renders; ``--check`` verifies that too.

Usage: ``python scripts/gen_figures.py`` rewrites the outputs; ``--check`` exits 1 when any is stale (the test
suite runs it).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
PAGE = ROOT / "docs" / "benchmarks.md"
#: Pages that quote a figure in their own words; each must contain the phrase rendered for it.
QUOTING = {
    "benchmarks/README.md": ("background_targets", "reload_targets"),
    "docs/testing.md": ("background_short",),
    "docs/reload-and-workers.md": ("reload_short",),
}

SCENARIOS = {
    "plain": "plain text, 64 connections",
    "plain-1conn": "plain text, 1 connection",
    "plain-pipelined": "plain text, pipelined x16",
    "json": "JSON ~100 B",
    "fastapi": "FastAPI + pydantic",
    "echo64k": "64 KiB POST echo",
    "stream": "streaming, 100 x 64 B chunks",
}
WITH_RATE = ("plain", "fastapi")  # rows that also show absolute requests/s
HATCHWAY, UVICORN = "hatchway-httptools", "uvicorn-httptools"
BG_AUTO, BG_ASYNCIO = "hatchway.background (loop=auto)", "hatchway.background (loop=asyncio)"
BG_UVICORN = "uvicorn blog recipe (loop=auto)"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((RESULTS / f"{name}.json").read_text())
    return data


def _kilo(rps: float) -> str:
    return f"{rps / 1000:.1f}k/s"


def _x(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}x"


def _machine(meta: dict[str, Any]) -> str:
    m = meta["machine"]
    kernel = ".".join(m["kernel"].split(".")[:2])
    return f"{m['nproc']}-core {m['cpu']}, Linux {kernel}, Python {m['python']}"


def _source(meta: dict[str, Any]) -> str:
    """`command`, date, machine: the provenance every figure carries."""
    return f"`{meta['command']}`, {meta['date'][:10]}, {_machine(meta)}"


def main_table(latest: dict[str, Any]) -> str:
    summary = latest["summary"]
    lines = [
        "| scenario | hatchway | uvicorn | granian | hypercorn | hatchway p99 vs uvicorn "
        "| server CPU µs/request (hatchway / uvicorn) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key, label in SCENARIOS.items():
        row = summary[key]
        ours, theirs = row[HATCHWAY], row[UVICORN]
        hatchway = f"**{_x(ours['ratio_rps'])}**"
        uvicorn = "1.00x"
        if key in WITH_RATE:
            hatchway += f" ({_kilo(ours['rps'])})"
            uvicorn += f" ({_kilo(theirs['rps'])})"
        p99 = _x(ours.get("ratio_p99")) if ours.get("p99_ms") is not None else "-"
        cells = [
            label,
            hatchway,
            uvicorn,
            _x(row["granian"]["ratio_rps"]),
            _x(row["hypercorn"]["ratio_rps"]),
            p99,
            f"{ours['cpu_us_per_req']:.1f} / {theirs['cpu_us_per_req']:.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def comparison_table(latest: dict[str, Any], background: dict[str, Any]) -> str:
    """The README's opening table: only what hatchway's tests and benchmarks show about each server."""
    s = latest["summary"]
    servers = (HATCHWAY, UVICORN, "granian", "hypercorn")

    def row(label: str, cells: list[str]) -> str:
        return "| " + " | ".join([label, *cells]) + " |"

    rps = [_x(s["plain"][n]["ratio_rps"]) for n in servers]
    fastapi = [_x(s["fastapi"][n]["ratio_rps"]) for n in servers]
    p99 = [f"{s['plain-1conn'][n]['p99_ms']:.2f} ms" for n in servers]
    rss = [f"{s['plain'][n]['rss_idle_mib']:.0f} MiB" for n in servers]
    bg = background["figures"]
    untested = "not tested"
    return "\n".join(
        [
            "| | hatchway | uvicorn | granian | hypercorn |",
            "|---|---|---|---|---|",
            row("requests/s, plain text, 64 connections (ratio to uvicorn)", rps),
            row("requests/s, FastAPI + pydantic (ratio to uvicorn)", fastapi),
            row("p99 latency, 1 connection", p99),
            row("memory of one idle worker", rss),
            row(
                "uvicorn's flags, `run()`/`Config`/`Server` parameters and defaults",
                [
                    "same names and defaults, differences listed (`tests/test_compat.py`)",
                    "-",
                    untested,
                    untested,
                ],
            ),
            row(
                "start a server in a thread, one request, stop (median)",
                [
                    f"{bg[BG_AUTO]['total_median_ms']:.2f} ms (`hatchway.background`)",
                    f"{bg[BG_UVICORN]['total_median_ms']:.0f} ms (thread recipe, `should_exit` poll)",
                    untested,
                    untested,
                ],
            ),
            row(
                "`--reload` with an app object, `workers` with an app object",
                [
                    "yes (`tests/test_reload.py`, `tests/test_workers.py`)",
                    "no: exits with status 3 (`tests/test_comparison.py`)",
                    untested,
                    untested,
                ],
            ),
        ]
    )


def phrases() -> dict[str, str]:
    """The exact words other pages use for a figure; ``--check`` finds each on its page."""
    bg, reload = load("background_cycle"), load("reload_latency")
    b, r = bg["figures"], reload["figures"]
    auto, asyncio_, uv = b[BG_AUTO], b[BG_ASYNCIO], b[BG_UVICORN]
    hw, uvr = r["hatchway"], r["uvicorn"]
    return {
        "background_targets": (
            f"median {auto['total_median_ms']:.2f} ms with uvloop, {asyncio_['total_median_ms']:.2f} ms with asyncio"
        ),
        "reload_targets": f"median {hw['median_ms']:.0f} ms (uvicorn {uvr['median_ms']:.0f} ms)",
        "background_short": (
            f"a median of {auto['total_median_ms']:.2f} ms for hatchway against "
            f"{uv['total_median_ms']:.0f} ms for the uvicorn recipe"
        ),
        "reload_short": (
            f"hatchway median {hw['median_ms']:.0f} ms, p90 {hw['p90_ms']:.0f} ms; `uvicorn --reload` median "
            f"{uvr['median_ms']:.0f} ms"
        ),
    }


def also_measured() -> list[str]:
    bg, reload, recorded = load("background_cycle"), load("reload_latency"), load("recorded")
    b, r = bg["figures"], reload["figures"]
    items = [
        f"A background server's start, first response and stop take a median of "
        f"{b[BG_AUTO]['total_median_ms']:.2f} ms with uvloop and {b[BG_ASYNCIO]['total_median_ms']:.2f} ms with "
        f'`loop="asyncio"` (p95 {b[BG_AUTO]["total_p95_ms"]:.2f} ms). The uvicorn recipe (`while not '
        f"server.started: sleep(0.001)`, then `should_exit`) takes {b[BG_UVICORN]['total_median_ms']:.0f} ms "
        f"({_source(bg['meta'])}; hatchway {bg['meta']['versions']['hatchway']}, "
        f"uvicorn {bg['meta']['versions']['uvicorn']}).",
        f"Under `--reload`, saved code answers after a median of {r['hatchway']['median_ms']:.0f} ms "
        f"(p90 {r['hatchway']['p90_ms']:.0f} ms), against {r['uvicorn']['median_ms']:.0f} ms for "
        f"`uvicorn --reload` ({_source(reload['meta'])}; hatchway {reload['meta']['versions']['hatchway']}, "
        f"uvicorn {reload['meta']['versions']['uvicorn']}).",
    ]
    for entry in recorded["figures"]:
        items.append(f"{entry['text']} ({_source(entry)}; {entry['provenance']}).")
    return [f"- {item}" for item in items]


def _wrap(text: str) -> str:
    """Prose and bullets wrapped at 110 columns, as the rest of the README; tables and images untouched."""
    if text.startswith("- "):
        return "\n".join(
            textwrap.fill(item, 110, subsequent_indent="  ", break_on_hyphens=False, break_long_words=False)
            for item in text.split("\n")
        )
    return textwrap.fill(text, 110, break_on_hyphens=False, break_long_words=False)


#: The Python versions the README sets side by side, and the result files of that run.
PYTHON_RUNS = {"3.11": "pythons-py3.11", "3.12": "pythons-py3.12", "3.13": "pythons-py3.13"}
PYTHON_SCENARIOS = {
    "plain": "plain text, 64 connections",
    "plain-1conn": "plain text, 1 connection",
    "json": "JSON ~100 B",
    "fastapi": "FastAPI + pydantic",
}
H2_SCENARIOS = {"h2-plain": "plain text", "h2-json": "JSON ~100 B", "h2-post": "1 KiB POST echo"}
H2_SERVERS = {
    "hatchway-h2": "hatchway `--http2` (h2)",
    "hatchway-zttp-h2": "hatchway `--http zttp --http2`",
    "uvicorn-zttp-h2": "uvicorn `--http zttp --http2`",
    "hypercorn": "hypercorn",
    "granian": "granian",
}


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def pythons_section() -> str:
    """hatchway, granian and uvicorn on each Python of PYTHON_RUNS, each against uvicorn on that Python."""
    runs = {version: load(name) for version, name in PYTHON_RUNS.items()}
    header = (
        "| scenario | "
        + " | ".join(f"hatchway, {v} | granian, {v}" for v in runs)
        + " | server CPU µs/request, hatchway / uvicorn ("
        + ", ".join(runs)
        + ") |"
    )
    lines = [header, "|---|" + "---:|" * (2 * len(runs) + 1)]
    for key, label in PYTHON_SCENARIOS.items():
        cells = [label]
        cpu = []
        for run in runs.values():
            row = run["summary"][key]
            cells += [f"**{_x(row[HATCHWAY]['ratio_rps'])}**", _x(row["granian"]["ratio_rps"])]
            cpu.append(f"{row[HATCHWAY]['cpu_us_per_req']:.1f} / {row[UVICORN]['cpu_us_per_req']:.1f}")
        cells.append("; ".join(cpu))
        lines.append("| " + " | ".join(cells) + " |")
    first = next(iter(runs.values()))["meta"]
    text = (
        "On each Python hatchway supports, the compiled build is what users get. The same scenarios on Python "
        + _and([run["meta"]["machine"]["python"] for run in runs.values()])
        + ", each a ratio to uvicorn (httptools + uvloop) on that Python in the same run "
        f"({_source(first)}; {first['rounds']} interleaved rounds):"
    )
    against = "; ".join(
        f"{label}: "
        + ", ".join(
            f"{_x(run['summary'][key][HATCHWAY]['ratio_rps'] / run['summary'][key]['granian']['ratio_rps'])} "
            f"on {version}"
            for version, run in runs.items()
        )
        for key, label in PYTHON_SCENARIOS.items()
        if key in ("plain", "json")
    )
    return (
        _wrap(text)
        + "\n\n"
        + "\n".join(lines)
        + "\n\n"
        + _wrap(f"hatchway against granian in the same runs (ratio of the two ratios above): {against}.")
    )


def http2_section() -> str:
    run = load("http2")
    meta, summary = run["meta"], run["summary"]
    names = [name for name in H2_SERVERS if all(name in summary[key] for key in H2_SCENARIOS)]
    lines = [
        "| HTTP/2, 16 connections x 32 streams | " + " | ".join(H2_SERVERS[n] for n in names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for key, label in H2_SCENARIOS.items():
        row = summary[key]
        cells = [label] + [f"{_x(row[n]['ratio_rps'])} ({row[n]['cpu_us_per_req']:.0f} µs)" for n in names]
        lines.append("| " + " | ".join(cells) + " |")
    text = (
        "HTTP/2 in clear text (h2c, prior knowledge), loaded by h2load: requests/s as a ratio to uvicorn "
        "`--http zttp --http2`, with server CPU per request in brackets "
        f"({_source(meta)}; {meta['rounds']} interleaved rounds). hatchway's default HTTP/2 backend is the h2 "
        "library, which costs most of its time; `--http zttp --http2` (uvicorn's spelling) uses zttp's native "
        "parser, with zttp's fixed limits ([docs/http2.md](docs/http2.md) says what differs):"
    )
    return _wrap(text) + "\n\n" + "\n".join(lines)


def readme_benchmarks(latest: dict[str, Any]) -> str:
    meta, s = latest["meta"], latest["summary"]
    v = meta["versions"]
    ours, gr = s["plain-1conn"][HATCHWAY], s["plain-1conn"]["granian"]
    plain = s["plain"]
    intro = (
        f"One worker pinned to one CPU, wrk on the other, loopback, {meta['rounds']} interleaved rounds; "
        f"requests/s as a ratio to uvicorn (httptools + uvloop) **measured in the same run** "
        f"({_source(meta)}; hatchway {v['hatchway']}, uvicorn {v['uvicorn']}, granian {v['granian']}, "
        f"hypercorn {v['hypercorn']}, httptools {v['httptools']}, uvloop {v['uvloop']}, "
        f"FastAPI {v['fastapi']})."
    )
    details = (
        f"The machine is shared, and the ratios move by about ±10 % between runs. With one connection, latency "
        f"is p50 {ours['p50_ms']:.2f} ms and p99 {ours['p99_ms']:.2f} ms (granian: {gr['p50_ms']:.2f} and "
        f"{gr['p99_ms']:.2f} ms). Memory is {plain[HATCHWAY]['rss_idle_mib']:.1f} MiB idle and "
        f"{plain[HATCHWAY]['rss_after_mib']:.1f} MiB after load, against uvicorn's "
        f"{plain[UVICORN]['rss_idle_mib']:.1f} and {plain[UVICORN]['rss_after_mib']:.1f} MiB (granian: "
        f"{plain['granian']['rss_idle_mib']:.0f} and {plain['granian']['rss_after_mib']:.0f} MiB). The h11 "
        f"fallback, two ceilings (a bare uvloop protocol: {_x(plain['ceiling']['ratio_rps'])} uvicorn; the same "
        f"protocol running the ASGI app with the least possible work: {_x(plain['asgi-ceiling']['ratio_rps'])} "
        f"plain, {_x(s['json']['asgi-ceiling']['ratio_rps'])} JSON, "
        f"{_x(s['fastapi']['asgi-ceiling']['ratio_rps'])} FastAPI) and worker scaling are in the full table, "
        f"[`benchmarks/results/latest.md`](benchmarks/results/latest.md). How everything is measured, and what "
        f"each hot-path change bought, is in [`benchmarks/README.md`](benchmarks/README.md). Compare ratios "
        f"from one run, never absolute figures across runs."
    )
    return "\n\n".join(
        [
            _wrap(intro),
            main_table(latest),
            _wrap(details),
            "![throughput relative to uvicorn](benchmarks/results/latest.png)",
            pythons_section(),
            http2_section(),
            "Also measured, each in a same-run comparison:",
            _wrap("\n".join(also_measured())),
        ]
    )


def page(latest: dict[str, Any]) -> str:
    full = (RESULTS / "latest.md").read_text()
    full = re.sub(r"\A# .*\n", "", full).strip()
    full = re.sub(r"^## ", "### ", full, flags=re.MULTILINE)
    full = full.replace("](latest.png)", "](images/benchmarks.png)")
    body = readme_benchmarks(latest)
    body = body.replace("benchmarks/results/latest.png", "images/benchmarks.png")
    body = body.replace(
        "[`benchmarks/results/latest.md`](benchmarks/results/latest.md)", "[full results](#full-results)"
    )
    body = body.replace("[`benchmarks/README.md`](benchmarks/README.md)", "`benchmarks/README.md`")
    body = body.replace("](docs/", "](")  # the README's links into docs/ are siblings on the site
    return (
        "<!-- generated by scripts/gen_figures.py from benchmarks/results/*.json; do not edit by hand -->\n"
        "# Benchmarks\n\n"
        "Every figure on this page, in the README and in the other pages that quote one comes from the files in "
        "`benchmarks/results/`, written by the benchmark scripts; `scripts/gen_figures.py` renders them and a "
        "test fails when a page disagrees.\n\n"
        f"## Summary\n\n{body}\n\n"
        "## Full results\n\n"
        f"{full}\n"
    )


def _replace_block(text: str, name: str, content: str) -> str:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start not in text or end not in text:
        raise SystemExit(f"README.md has no {start} ... {end} block")
    before, rest = text.split(start, 1)
    _, after = rest.split(end, 1)
    return f"{before}{start}\n{content}\n{end}{after}"


def render() -> dict[Path, str]:
    latest = load("latest")
    readme = README.read_text()
    readme = _replace_block(readme, "comparison", comparison_table(latest, load("background_cycle")))
    readme = _replace_block(readme, "benchmarks", readme_benchmarks(latest))
    return {README: readme, PAGE: page(latest)}


def stale_quotes() -> list[str]:
    wanted = phrases()
    problems = []
    for relative, keys in QUOTING.items():
        text = " ".join((ROOT / relative).read_text().split())  # line breaks inside a phrase do not matter
        problems += [f"{relative} lacks {wanted[key]!r}" for key in keys if wanted[key] not in text]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when an output is stale")
    args = parser.parse_args(argv)
    outputs = render()
    stale = [
        str(path.relative_to(ROOT))
        for path, text in outputs.items()
        if not path.exists() or path.read_text() != text
    ]
    if args.check:
        problems = [f"{name} is out of date" for name in stale] + stale_quotes()
        for problem in problems:
            print(f"{problem}: run python scripts/gen_figures.py (and quote its phrases)", file=sys.stderr)
        return 1 if problems else 0
    for path, text in outputs.items():
        path.write_text(text)
    for problem in stale_quotes():
        print(f"still to fix by hand: {problem}", file=sys.stderr)
    for key, phrase in phrases().items():
        print(f"{key}: {phrase}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
