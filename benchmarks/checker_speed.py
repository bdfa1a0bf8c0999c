"""Time ``hatchway check`` over a large real tree (default: this interpreter's site-packages).

    python benchmarks/checker_speed.py [PATH ...] [--repeat N]

Prints files, findings, parse errors, seconds and files/s for the best of N runs.
"""

from __future__ import annotations

import argparse
import sysconfig
import time
from collections import Counter

from hatchway.checker import check_paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", default=[sysconfig.get_paths()["purelib"]])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    best = float("inf")
    for _ in range(args.repeat):
        start = time.perf_counter()
        result = check_paths(args.paths)
        best = min(best, time.perf_counter() - start)
    codes = Counter(f.code for f in result.findings)
    print(f"paths:        {', '.join(args.paths)}")
    print(f"files:        {result.files}")
    print(f"findings:     {len(result.findings)} ({', '.join(f'{c}={n}' for c, n in sorted(codes.items()))})")
    print(f"parse errors: {result.parse_errors}")
    print(f"seconds:      {best:.2f} (best of {args.repeat})")
    print(f"files/s:      {result.files / best:.0f}")


if __name__ == "__main__":
    main()
