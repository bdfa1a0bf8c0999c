"""`hatchway explain CODE`: the pages it prints, the copy of them the package ships, and the messages that name it."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hatchway import _explain
from hatchway._errors import BindError, ConfigError, Problem
from tests.conftest import child_env
from tests.utils import UNIT

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CATALOGUE_CODES = re.findall(r"^## (HW\d{3})$", (DOCS / "errors.md").read_text(), re.MULTILINE)
RULE_CODES = sorted(page.stem for page in (DOCS / "rules").glob("HW*.md"))


def hatchway(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hatchway", *args],
        cwd=cwd,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=20 * UNIT,
    )


def test_the_docs_have_codes() -> None:
    # Guards the parametrised tests below against passing vacuously.
    assert {"HW100", "HW201", "HW501"} <= set(CATALOGUE_CODES)
    assert {"HW001", "HW010"} <= set(RULE_CODES)


@pytest.mark.slow
def test_explain_prints_the_catalogue_entry(tmp_path: Path) -> None:
    done = hatchway("explain", "HW201", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("# HW201 (AppImportError: the app's module cannot be found)\n")
    entry = (DOCS / "errors.md").read_text().split("## HW201\n", 1)[1].split("\n## ", 1)[0].strip()
    assert entry in done.stdout
    assert "## HW202" not in done.stdout  # only the one entry


@pytest.mark.slow
def test_explain_prints_the_rule_page_case_insensitively(tmp_path: Path) -> None:
    done = hatchway("explain", "hw001", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (DOCS / "rules" / "HW001.md").read_text().rstrip("\n") + "\n"


@pytest.mark.slow
def test_unknown_code_is_a_usage_error(tmp_path: Path) -> None:
    done = hatchway("explain", "HW999", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert "unknown code 'HW999'" in done.stderr
    assert "hatchway explain --list" in done.stderr


@pytest.mark.slow
def test_list_names_every_code(tmp_path: Path) -> None:
    done = hatchway("explain", "--list", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    listed = [line.split()[0] for line in done.stdout.splitlines() if line.strip()]
    assert listed == [*CATALOGUE_CODES, "HW000", *RULE_CODES]


@pytest.mark.parametrize("code", CATALOGUE_CODES + RULE_CODES + ["HW000"])
def test_every_code_is_explained(code: str) -> None:
    explanation = _explain.explain(code)
    assert explanation.code == code
    assert explanation.text.startswith(f"# {code}")
    assert len(explanation.text) > 80


@pytest.mark.slow
def test_a_failing_start_says_how_to_explain_it_and_that_works(tmp_path: Path) -> None:
    started = hatchway("mian:app", "--port", "0", cwd=tmp_path)
    assert started.returncode == 3
    assert "[HW201, see docs/errors.md#hw201 or run `hatchway explain HW201`]" in started.stderr
    command = re.search(r"`hatchway (explain HW\d{3})`", started.stderr)
    assert command is not None
    explained = hatchway(*command.group(1).split(), cwd=tmp_path)
    assert explained.returncode == 0
    assert "Could not import module" in explained.stdout


@pytest.mark.parametrize(
    "error",
    [
        ConfigError([Problem("port", "expected a whole number", "HW101")]),
        ConfigError([Problem("port", "bad", "HW101"), Problem("workers", "bad", "HW101")]),
        BindError("in use", code="HW301"),
    ],
)
def test_messages_name_the_explain_command(error: Exception) -> None:
    code = getattr(error, "code", "")
    assert f"`hatchway explain {code}`" in str(error)


def test_setup_py_ships_what_explain_reads() -> None:
    tree = ast.parse((ROOT / "setup.py").read_text())
    shipped = next(
        ast.literal_eval(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "DOCS_SHIPPED" for t in node.targets)
    )
    assert tuple(shipped) == _explain.SHIPPED


def test_the_packaged_copy_equals_docs() -> None:
    """A normal install (CI's `pip install ".[test]"`) carries hatchway/_docs/: it must be docs/ as it is now."""
    if not _explain.PACKAGED_DOCS.is_dir():
        pytest.skip("editable install or checkout: explain reads docs/ itself, there is no copy")
    expected = {p.relative_to(DOCS) for pattern in _explain.SHIPPED for p in DOCS.glob(pattern)}
    copied = {p.relative_to(_explain.PACKAGED_DOCS) for p in _explain.PACKAGED_DOCS.rglob("*.md")}
    assert copied == expected
    stale = [
        str(p) for p in sorted(expected) if (_explain.PACKAGED_DOCS / p).read_text() != (DOCS / p).read_text()
    ]
    assert not stale, f"reinstall hatchway (pip install .): the installed copy of {stale} differs from docs/"
