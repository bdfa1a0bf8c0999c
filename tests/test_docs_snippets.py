"""Every fenced ```python block of the README and the docs is run, so a pasted example never fails.

A block runs as a script in a fresh interpreter (a temporary directory as its working directory, a timeout).
The line right above a fence may hold a marker, ``<!-- snippet: OPTION, OPTION -->``:

- ``skip (why)``   the block is a fragment or serves for ever; the reason is required;
- ``pytest``       the block is a test module: it is run with ``python -m pytest``;
- ``continues``    the block is run after the previous runnable block of the same page (in one file);
- ``needs NAME``   skipped unless NAME is an importable module or a program on PATH (``fastapi``, ``chromium``).

Checker rule pages (docs/rules/) are different: their blocks are code for ``hatchway check`` to read, not to
run (they start servers and use undefined names on purpose). Each is run through ``hatchway check``: the
*Noncompliant* block must produce the page's code on every line annotated ``# HWxxx``, the *Compliant* block
must not produce it at all.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import child_env
from tests.utils import UNIT

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RULE_PAGES = sorted((ROOT / "docs" / "rules").glob("HW*.md"))
FENCE = re.compile(r"^```python[ \t]*$")
MARKER = re.compile(r"^<!-- snippet: (.*) -->\s*$")


@dataclass
class Snippet:
    page: Path
    line: int  # of the opening fence, 1-based
    code: str
    options: list[str]
    heading: str

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    def option(self, name: str) -> str | None:
        return next((o for o in self.options if o == name or o.startswith(name + " ")), None)


def snippets(page: Path) -> list[Snippet]:
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Snippet] = []
    heading = ""
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        if FENCE.match(line):
            end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
            marker = MARKER.match(lines[index - 1]) if index else None
            options = (
                [o.strip() for o in re.findall(r"skip \([^)]*\)|[^,]+", marker.group(1))] if marker else []
            )
            code = "\n".join(lines[index + 1 : end]) + "\n"
            found.append(Snippet(page, index + 1, code, options, heading))
            index = end
        index += 1
    return found


def _all() -> list[Snippet]:
    return [s for page in PAGES for s in snippets(page)]


def _available(name: str) -> bool:
    return importlib.util.find_spec(name) is not None or shutil.which(name) is not None


def test_the_pages_have_snippets() -> None:
    # Guards the parametrised tests below against passing vacuously, and the marker syntax against typos.
    found = _all()
    assert len(found) >= 10
    for snippet in found:
        for option in snippet.options:
            assert re.fullmatch(r"skip \(.+\)|pytest|continues|needs \S+", option), (snippet.id, option)


@pytest.mark.slow
@pytest.mark.parametrize("snippet", _all(), ids=lambda s: s.id)
def test_snippet_runs(snippet: Snippet, tmp_path: Path) -> None:
    if skip := snippet.option("skip"):
        pytest.skip(skip)
    for option in snippet.options:
        if option.startswith("needs ") and not _available(name := option.split()[1]):
            pytest.skip(f"needs {name}")
    code = snippet.code
    if snippet.option("continues"):
        runnable = [s for s in snippets(snippet.page) if not s.option("skip") and s.line < snippet.line]
        assert runnable, f"{snippet.id}: 'continues' but no runnable block comes before it"
        code = runnable[-1].code + "\n\n" + code
    if snippet.option("pytest"):
        (tmp_path / "test_snippet.py").write_text(code)
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_snippet.py"]
    else:
        (tmp_path / "snippet.py").write_text(code)
        command = [sys.executable, "snippet.py"]
    done = subprocess.run(
        command, cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=60 * UNIT
    )
    assert done.returncode == 0, f"{snippet.id} failed:\n{done.stdout}\n{done.stderr}"


def _rule_blocks() -> list[tuple[str, Snippet]]:
    blocks = []
    for page in RULE_PAGES:
        for snippet in snippets(page):
            if snippet.heading in ("Noncompliant", "Compliant"):
                blocks.append((page.stem, snippet))
    return blocks


def test_every_rule_page_has_both_examples() -> None:
    for page in RULE_PAGES:
        headings = [s.heading for s in snippets(page)]
        assert "Noncompliant" in headings, page
        assert "Compliant" in headings, page


# Names the examples leave out, as documentation does; the checker only needs them imported.
_PRELUDE = "import asyncio\nimport hatchway\nimport uvicorn\nfrom fastapi import FastAPI\n"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("code", "snippet"), _rule_blocks(), ids=lambda v: v.id if isinstance(v, Snippet) else v
)
def test_rule_examples_are_what_the_checker_says(code: str, snippet: Snippet, tmp_path: Path) -> None:
    if skip := snippet.option("skip"):
        pytest.skip(skip)
    offset = _PRELUDE.count("\n")
    # The project the examples assume: main.py holds the example, src/server.py defines app (HW004's
    # app_dir example), and an installed package "somepackage" (HW004) lives outside the project.
    project, installed = tmp_path / "project", tmp_path / "installed"
    (project / "src").mkdir(parents=True)
    (project / "main.py").write_text(_PRELUDE + snippet.code)
    (project / "src" / "server.py").write_text("app = None\n")
    (installed / "somepackage").mkdir(parents=True)
    (installed / "somepackage" / "__init__.py").write_text("")
    (installed / "somepackage" / "asgi.py").write_text("application = None\n")
    done = subprocess.run(
        [sys.executable, "-m", "hatchway", "check", "--format", "json", "--select", code, "main.py"],
        cwd=project,
        env=child_env({"PYTHONPATH": str(installed)}),
        capture_output=True,
        text=True,
        timeout=30 * UNIT,
    )
    assert done.returncode in (0, 1), done.stderr
    reported = {item["location"]["row"] - offset for item in json.loads(done.stdout)}
    annotated = {
        number
        for number, line in enumerate(snippet.code.splitlines(), 1)
        if re.search(rf"#\s*{code}\b", line)
    }
    if snippet.heading == "Noncompliant":
        assert annotated, f"{snippet.id}: the noncompliant example marks no line with # {code}"
        assert reported == annotated, f"{snippet.id}: reported on lines {sorted(reported)}"
    else:
        assert not reported, f"{snippet.id}: {code} reported on lines {sorted(reported)}"


@pytest.mark.slow
def test_the_fastapi_example_suite_passes(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(ROOT / "examples" / "test_fastapi_app.py"),
        ],
        cwd=tmp_path,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60 * UNIT,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_the_screenshot_example_saves_a_png(tmp_path: Path) -> None:
    if not any(shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")):
        pytest.skip("needs chromium")
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "screenshot.py"), "out.png"],
        cwd=tmp_path,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=90 * UNIT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "out.png").read_bytes().startswith(b"\x89PNG")
