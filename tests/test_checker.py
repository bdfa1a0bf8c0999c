"""The checker on its annotated samples: every ``# error: HWxxx`` marker is reported, nothing else is."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hatchway.checker import RULES, check_paths

SAMPLES = Path(__file__).parent / "checker_samples"
_MARKER = re.compile(r"#\s*error:\s*(HW\d{3}(?:\s*,\s*HW\d{3})*)")


def _sample_files() -> list[Path]:
    return sorted(SAMPLES.rglob("*.py"))


def _expected(path: Path) -> set[tuple[int, str]]:
    out = set()
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        match = _MARKER.search(line)
        if match:
            out.update((lineno, code.strip()) for code in match.group(1).split(","))
    return out


@pytest.mark.parametrize("path", _sample_files(), ids=lambda p: str(p.relative_to(SAMPLES)))
def test_sample_flags_exactly_the_marked_lines(path: Path) -> None:
    result = check_paths([path])
    found = {(f.line, f.code) for f in result.findings}
    assert found == _expected(path)


def test_every_rule_has_a_sample_and_a_docs_page() -> None:
    marked = {code for path in _sample_files() for _, code in _expected(path)}
    assert marked == set(RULES)
    docs = Path(__file__).parent.parent / "docs" / "rules"
    for code in RULES:
        page = docs / f"{code}.md"
        assert page.is_file(), page
        text = page.read_text()
        assert "Noncompliant" in text
        assert "Compliant" in text


def test_whole_sample_tree_at_once_matches_file_by_file() -> None:
    # One Project cache across files must not change any answer.
    together = {(f.path, f.line, f.code) for f in check_paths([SAMPLES]).findings}
    apart = {(f.path, f.line, f.code) for p in _sample_files() for f in check_paths([p]).findings}
    assert {(Path(p).resolve(), li, c) for p, li, c in together} == {
        (Path(p).resolve(), li, c) for p, li, c in apart
    }
