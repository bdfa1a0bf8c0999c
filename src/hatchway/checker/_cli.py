"""The ``hatchway check`` command line: arguments in, a report on stdout, an exit status out."""

from __future__ import annotations

import argparse
import sys

from hatchway.checker._model import RULES, SEVERITIES
from hatchway.checker._output import FORMATS
from hatchway.checker._runner import Selection, SelectionError, check_paths

EPILOG = """\
exit status: 0 no errors (warnings are reported but do not fail the run, unless --fail-on warning),
1 errors (or warnings with --fail-on warning), 2 usage error or a file that does not parse.
Suppress one line with `# noqa: HW001` (or a bare `# noqa`). Rules: docs/checker.md.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hatchway check",
        description="Find uvicorn/hatchway run-time traps (reload with app objects, missing main guards, "
        "bad import strings, option typos, ...) before run time.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "paths", nargs="*", default=["."], metavar="PATH", help="files or directories (default: .)"
    )
    parser.add_argument(
        "--format", choices=sorted(FORMATS), default="text", help="output format (default: text)"
    )
    parser.add_argument(
        "--select", action="append", default=[], help="only these codes or prefixes: HW001,HW002"
    )
    parser.add_argument("--ignore", action="append", default=[], help="skip these codes or prefixes")
    parser.add_argument("--fix", action="store_true", help="rewrite what is safe to fix, report the rest")
    parser.add_argument(
        "--fail-on",
        choices=SEVERITIES,
        default="error",
        help="least severity that makes the exit status 1: error (default; warnings are only reported) or "
        "warning (every finding fails)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="processes to parse with (default: one per CPU for big trees)",
    )
    parser.add_argument("--list-rules", action="store_true", help="print the rules and exit")
    return parser


def _codes(values: list[str]) -> tuple[str, ...]:
    return tuple(c.strip() for v in values for c in v.split(",") if c.strip())


def main(argv: list[str] | None = None) -> int:
    """Run the checker; returns the exit status instead of exiting, so callers can embed it."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 0 for --help and 2 for usage errors
        return exc.code if isinstance(exc.code, int) else 2
    if args.list_rules:
        for code, rule in sorted(RULES.items()):
            sys.stdout.write(f"{code}  {rule.severity:8} {rule.name:32} {rule.summary}\n")
        return 0
    try:
        selection = Selection(_codes(args.select), _codes(args.ignore))
        result = check_paths(
            args.paths, selection=selection, fix=args.fix, jobs=args.jobs, fail_on=args.fail_on
        )
    except SelectionError as exc:
        sys.stderr.write(f"hatchway check: error: {exc}\n")
        return 2
    except FileNotFoundError as exc:
        sys.stderr.write(f"hatchway check: error: no such file or directory: {exc.args[0]}\n")
        return 2
    sys.stdout.write(FORMATS[args.format](result))
    return result.exit_code
