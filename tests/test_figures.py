"""The benchmark figures the README and the docs quote agree with benchmarks/results/*.json."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.utils import UNIT

ROOT = Path(__file__).resolve().parent.parent


def test_quoted_figures_are_current() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_figures.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=30 * UNIT,
    )
    assert done.returncode == 0, done.stderr
