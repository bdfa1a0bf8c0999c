"""The checker's command line and output formats, run as a real process where the exit status matters."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hatchway.checker import RULES, main

BAD = 'import uvicorn\n\napp = object()\n\nif __name__ == "__main__":\n    uvicorn.run(app, reload=True, relaod=1)\n'
GOOD = 'import uvicorn\n\nif __name__ == "__main__":\n    uvicorn.run("main:app", reload=True)\n\napp = object()\n'


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hatchway.checker", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "main.py").write_text(BAD)
    (tmp_path / "good.py").write_text(GOOD.replace("main:app", "good:app"))
    return tmp_path


def test_exit_0_when_clean(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text(GOOD)
    done = _cli(cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All checks passed" in done.stdout


def test_exit_1_with_findings_in_ruff_style(project: Path) -> None:
    done = _cli(".", cwd=project)
    assert done.returncode == 1
    lines = [line for line in done.stdout.splitlines() if line.startswith("./main.py:")]
    assert len(lines) == 2
    assert lines[0].startswith("./main.py:6:17: HW001 ")
    assert 'use "main:app" instead of app' in lines[0]
    assert lines[1].startswith("./main.py:6:35: HW010 ")
    assert "did you mean 'reload'?" in lines[1]


@pytest.mark.parametrize(
    "args",
    [["--format", "yaml"], ["--select", "HW999"], ["--ignore", "XY"], ["does-not-exist.py"], ["--bogus"]],
)
def test_exit_2_on_usage_errors(project: Path, args: list[str]) -> None:
    done = _cli(*args, cwd=project)
    assert done.returncode == 2
    assert done.stderr


def test_help_exits_0(tmp_path: Path) -> None:
    done = _cli("--help", cwd=tmp_path)
    assert done.returncode == 0
    assert "--format" in done.stdout
    assert "noqa" in done.stdout


def test_syntax_error_is_reported_and_other_files_still_checked(project: Path) -> None:
    (project / "broken.py").write_text("import uvicorn\ndef oops(:\n    pass\n")
    done = _cli(cwd=project)
    assert done.returncode == 2
    assert "./broken.py:2:10: HW000 SyntaxError:" in done.stdout
    assert "./main.py:6:17: HW001" in done.stdout


def test_undecodable_and_nul_files_do_not_crash(tmp_path: Path) -> None:
    (tmp_path / "latin.py").write_bytes(b"x = '\xff'\n")
    (tmp_path / "nul.py").write_bytes(b"x = 1\x00\n")
    assert main([str(tmp_path)]) == 2


def test_json_format(project: Path) -> None:
    done = _cli("--format", "json", cwd=project)
    assert done.returncode == 1
    items = json.loads(done.stdout)
    assert [i["code"] for i in items] == ["HW001", "HW010"]
    first = items[0]
    assert first["filename"] == "./main.py"
    assert first["location"] == {"row": 6, "column": 17}
    assert first["end_location"] == {"row": 6, "column": 20}
    assert first["url"] == "docs/rules/HW001.md"
    assert first["fix"]["edits"][0]["content"] == '"main:app"'
    assert items[1]["fix"] is None


def test_sarif_format_has_the_2_1_0_shape(project: Path) -> None:
    done = _cli("--format", "sarif", cwd=project)
    log = json.loads(done.stdout)
    assert log["version"] == "2.1.0"
    assert log["$schema"].endswith("sarif-2.1.0.json")
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "hatchway-check"
    assert {r["id"] for r in driver["rules"]} == set(RULES)
    result = run["results"][0]
    assert result["ruleId"] == "HW001"
    assert driver["rules"][result["ruleIndex"]]["id"] == "HW001"
    assert result["level"] in ("error", "warning", "note")
    assert result["message"]["text"]
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "main.py"
    assert location["region"]["startLine"] == 6
    assert location["region"]["startColumn"] == 17


def test_github_format(project: Path) -> None:
    done = _cli("--format", "github", cwd=project)
    lines = done.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("::error file=./main.py,line=6,col=17,")
    assert "::HW001 " in lines[0]
    assert "title=HW010::HW010 " in lines[1]


def test_select_and_ignore(project: Path) -> None:
    only = _cli("--select", "HW010", "--format", "json", cwd=project)
    assert [i["code"] for i in json.loads(only.stdout)] == ["HW010"]
    prefix = _cli("--select", "HW00", "--format", "json", cwd=project)
    assert [i["code"] for i in json.loads(prefix.stdout)] == ["HW001"]
    both = _cli("--ignore", "HW001,HW010", cwd=project)
    assert both.returncode == 0


def test_noqa_suppresses(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text(BAD.replace("relaod=1)", "relaod=1)  # noqa: HW001"))
    done = _cli("--format", "json", cwd=tmp_path)
    assert [i["code"] for i in json.loads(done.stdout)] == ["HW010"]
    (tmp_path / "main.py").write_text(BAD.replace("relaod=1)", "relaod=1)  # noqa"))
    assert _cli(cwd=tmp_path).returncode == 0


def test_walk_skips_virtualenvs_and_dot_dirs_but_explicit_dirs_are_checked(tmp_path: Path) -> None:
    for where in (".venv", "venv", "env", "node_modules", ".git", "pkg/__pycache__"):
        (tmp_path / where).mkdir(parents=True)
        (tmp_path / where / "main.py").write_text(BAD)
    (tmp_path / "env" / "pyvenv.cfg").write_text("home = /usr\n")
    assert main([str(tmp_path)]) == 0
    assert main([str(tmp_path / ".venv")]) == 1


def test_list_rules(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list-rules"]) == 0
    out = capsys.readouterr().out
    assert all(code in out for code in RULES)


# HW009 (a warning) on code that works under uvicorn, as found in issue 13.
WARNING_ONLY = """import uvicorn


def port_of(server: uvicorn.Server) -> int:
    return server.servers[0].sockets[0].getsockname()[1]
"""


def test_warnings_are_reported_but_exit_0(tmp_path: Path) -> None:
    (tmp_path / "harness.py").write_text(WARNING_ONLY)
    done = _cli(cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "./harness.py:5:12: HW009 " in done.stdout
    assert "Found 1 finding (0 errors, 1 warning) in 1 file." in done.stdout
    # The docs directory is not installed: the summary names the command that shows the page offline.
    assert "Offline: hatchway explain HW009" in done.stdout
    assert "--fail-on warning" in done.stdout
    github = _cli("--format", "github", cwd=tmp_path)
    assert github.returncode == 0
    assert github.stdout.startswith("::warning file=./harness.py,line=5,")


def test_fail_on_warning_makes_warnings_fail(tmp_path: Path) -> None:
    (tmp_path / "harness.py").write_text(WARNING_ONLY)
    done = _cli("--fail-on", "warning", cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "HW009" in done.stdout
    assert "to make them fail" not in done.stdout  # the hint is for runs where warnings pass
    assert _cli("--fail-on", "warning", "--ignore", "HW009", cwd=tmp_path).returncode == 0
    assert _cli("--fail-on", "note", cwd=tmp_path).returncode == 2


def test_an_error_next_to_a_warning_fails(project: Path) -> None:
    (project / "harness.py").write_text(WARNING_ONLY)
    done = _cli(cwd=project)
    assert done.returncode == 1
    assert "(2 errors, 1 warning)" in done.stdout


def test_list_rules_shows_severities(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list-rules"]) == 0
    out = capsys.readouterr().out
    assert "HW009  warning " in out
    assert "HW001  error " in out
