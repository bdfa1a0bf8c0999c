"""Write a benchmark's figures to benchmarks/results/NAME.json with the command, date and machine they came from.

scripts/gen_figures.py renders every figure the README and the docs quote from these files, so the prose
cannot drift from the measurement.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, str]:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = " ".join(line.split(":", 1)[1].split()[:2])  # "AMD EPYC", as run.py reports it
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return {
        "load_average_1min": f"{load:.2f}",  # the machine may be shared: how busy it was at the end of the run
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def hatchway_build() -> str:
    import hatchway._http.protocol as protocol

    build = "pure Python" if protocol.__file__.endswith(".py") else "compiled"
    return f"{version('hatchway')} ({build})"


def write(name: str, figures: dict[str, Any], versions: dict[str, str] | None = None) -> Path:
    """Save ``figures`` as results/NAME.json beside the command line that produced them."""
    argv = [a for a in sys.argv[1:] if a != "--json"]
    record = {
        "meta": {
            "command": shlex.join(["python", f"benchmarks/{Path(sys.argv[0]).name}", *argv]),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(),
            "versions": {"hatchway": hatchway_build(), **(versions or {})},
        },
        "figures": figures,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {path}")
    return path
