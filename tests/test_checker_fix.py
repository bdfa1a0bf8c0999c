"""``--fix``: safe rewrites that keep formatting and comments, parse, and then check clean."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hatchway.checker import Selection, check_paths, check_source, main
from hatchway.checker._fix import apply_fixes

SAMPLES = Path(__file__).parent / "checker_samples"
FIXED_RULES = ("HW001", "HW003")


def test_app_object_becomes_its_import_string(tmp_path: Path) -> None:
    source = (
        "import uvicorn  # server\n"
        "\n"
        "app = object()\n"
        "\n"
        'if __name__ == "__main__":\n'
        "    uvicorn.run(app,  reload=True)  # dev only\n"
    )
    (tmp_path / "main.py").write_text(source)
    assert main([str(tmp_path), "--fix"]) == 0
    assert (tmp_path / "main.py").read_text() == source.replace("(app,", '("main:app",')


def test_import_string_uses_the_package_path(tmp_path: Path) -> None:
    pkg = tmp_path / "proj" / "web"
    pkg.mkdir(parents=True)
    (tmp_path / "proj" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "serve.py").write_text(
        'import uvicorn\nfrom proj.web.api import app\n\nif __name__ == "__main__":\n    uvicorn.run(app, workers=2)\n'
    )
    (found,) = check_paths([pkg / "serve.py"]).findings
    assert 'use "proj.web.serve:app" instead of app' in found.message


def test_module_level_run_is_wrapped_in_the_main_guard(tmp_path: Path) -> None:
    source = (
        "import uvicorn\n"
        "\n"
        "\n"
        "# start it\n"
        "uvicorn.run(\n"
        '    "main:app",\n'
        "\n"
        "    reload=True,  # watch files\n"
        ")\n"
        "app = object()\n"
    )
    (tmp_path / "main.py").write_text(source)
    assert main([str(tmp_path), "--fix"]) == 0
    assert (tmp_path / "main.py").read_text() == (
        "import uvicorn\n"
        "\n"
        "\n"
        "# start it\n"
        'if __name__ == "__main__":\n'
        "    uvicorn.run(\n"
        '        "main:app",\n'
        "\n"
        "        reload=True,  # watch files\n"
        "    )\n"
        "app = object()\n"
    )


def test_unsafe_rewrites_are_left_alone(tmp_path: Path) -> None:
    source = (
        "import uvicorn\n"
        "def serve():\n"
        "    local = object()\n"
        "    uvicorn.run(local, reload=True)\n"  # no module-level name to point at
        'x = 1; uvicorn.run("main:app", reload=True)\n'  # shares its line
        'uvicorn.run("main:app", workers=2, log_config="""a\n'
        'b""")\n'  # indenting would change the string
    )
    (tmp_path / "main.py").write_text(source)
    assert main([str(tmp_path), "--fix"]) == 1
    assert (tmp_path / "main.py").read_text() == source


def test_crlf_and_tabs_are_kept(tmp_path: Path) -> None:
    source = "import uvicorn\r\napp = 1\r\nif True:\r\n\tuvicorn.run(app, reload=True)\r\n"
    (tmp_path / "main.py").write_bytes(source.encode())
    assert main([str(tmp_path), "--fix"]) == 0
    assert (tmp_path / "main.py").read_bytes() == (
        b'import uvicorn\r\napp = 1\r\nif True:\r\n\tif __name__ == "__main__":\r\n\t\tuvicorn.run("main:app", reload=True)\r\n'
    )


@pytest.mark.parametrize("name", ["hw001_app_object.py", "hw003_main_guard.py", "noqa_sample.py"])
def test_samples_round_trip(tmp_path: Path, name: str) -> None:
    copy = tmp_path / name
    shutil.copy(SAMPLES / name, copy)
    before = check_paths([copy]).findings
    check_paths([copy], fix=True)
    ast.parse(copy.read_text())
    after = check_paths([copy]).findings
    fixable_before = {(f.line, f.code) for f in before if f.fixable}
    assert fixable_before, "the sample should have something to fix"
    assert not [f for f in after if f.fixable]
    # What the fixer leaves is exactly what it could not fix with certainty.
    assert len(after) == len(before) - len(fixable_before)


def test_fix_respects_select(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text("import uvicorn\napp = 1\nuvicorn.run(app, reload=True)\n")
    result = check_paths([tmp_path], selection=Selection(select=("HW003",)), fix=True)
    assert [f.code for f in result.fixed] == ["HW003"]
    assert "uvicorn.run(app, reload=True)" in (tmp_path / "main.py").read_text()


_PIECES = [
    "import uvicorn\n",
    "from uvicorn import run as serve\n",
    "import hatchway\n",
    "app = object()\n",
    "uvicorn.run(app, reload=True)\n",
    "serve(app, workers=3)  # comment\n",
    "uvicorn.run(\n    app,\n    reload=True,\n)\n",
    "def main():\n    uvicorn.run(app, workers=2)\n",
    "main()\n",
    "if True:\n    uvicorn.run(app, reload=True)\n",
    "x = 1; uvicorn.run(app, reload=True)\n",
    'if __name__ == "__main__":\n    uvicorn.run(app, reload=True)\n',
    "async def amain():\n    uvicorn.run(app)\n",
    'uvicorn.run("main:app", log_config="""x\ny""", workers=2)\n',
    "hatchway.run(app, reload=True, workers=2, relaod=1)\n",
    "while not server.started:\n    pass\n",
]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), min_size=1, max_size=8))
def test_fix_output_always_parses_and_checks_clean(pieces: list[str]) -> None:
    source = "".join(pieces)
    found = check_source(source, "main.py")
    fixed_source, _ = apply_fixes(source, found)
    ast.parse(fixed_source)
    after = check_source(fixed_source, "main.py")
    assert not [f for f in after if f.code in FIXED_RULES and f.fixable]
    assert len(after) <= len(found)
