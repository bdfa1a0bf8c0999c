"""What the README's comparison table says about uvicorn that is not a benchmark figure, checked against uvicorn."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import child_env
from tests.utils import UNIT

pytest.importorskip("uvicorn")

SCRIPT = """\
import uvicorn


async def app(scope, receive, send):
    pass


if __name__ == "__main__":
    uvicorn.run(app, port=0, {option})
"""


@pytest.mark.slow
@pytest.mark.parametrize("option", ["reload=True", "workers=2"])
def test_uvicorn_refuses_an_app_object_with_reload_or_workers(option: str, tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text(SCRIPT.format(option=option))
    done = subprocess.run(
        [sys.executable, "main.py"],
        cwd=tmp_path,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=20 * UNIT,
    )
    assert done.returncode == 3  # uvicorn 0.54: sys.exit(3) after a warning
    assert "You must pass the application as an import string" in done.stderr
