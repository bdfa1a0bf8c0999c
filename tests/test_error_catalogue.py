"""Every error code hatchway raises has an entry in docs/errors.md, and messages point to it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import hatchway
from hatchway._errors import BindError, ConfigError, Problem, ServerStateError, StartupError

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "hatchway"
CATALOGUE = (ROOT / "docs" / "errors.md").read_text()


def codes_in_source() -> set[str]:
    codes: set[str] = set()
    for path in SRC.rglob("*.py"):
        if "checker" in path.parts:  # the checker's rule codes (HW0xx) have their own pages in docs/rules
            continue
        codes.update(re.findall(r'"(HW[1-5]\d\d)"', path.read_text()))
    return codes


def test_the_source_uses_codes() -> None:
    # Guards the scan below: if the pattern stopped matching, the next test would pass vacuously.
    assert {"HW100", "HW201", "HW301", "HW400", "HW500"} <= codes_in_source()


@pytest.mark.parametrize("code", sorted(codes_in_source()))
def test_every_code_has_an_entry(code: str) -> None:
    assert f"\n## {code}\n" in CATALOGUE
    assert f"[{code}](#{code.lower()})" in CATALOGUE  # and a row in the table at the top


@pytest.mark.parametrize(
    "error",
    [
        ConfigError([Problem("port", "expected a whole number", "HW101")]),
        StartupError("could not start", code="HW305"),
        BindError("in use", code="HW301"),
        ServerStateError("already running"),
    ],
)
def test_messages_point_to_their_entry(error: hatchway.HatchwayError) -> None:
    assert f"see docs/errors.md#{error.code.lower()}" in str(error)
