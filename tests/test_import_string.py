"""Finding the import string of an app object, and the errors when none exists or an import fails."""

from __future__ import annotations

import importlib
import os
import shutil
import sys
import textwrap
import types
from pathlib import Path

import pytest

import hatchway
from hatchway import AppImportError, ConfigError
from hatchway._importer import explain_import_string, find_import_string, import_from_string, importing_app
from hatchway._supervisors._spec import build_spec
from tests.fixtures.supervisors import plain_app
from tests.fixtures.supervisors.proc import HERE, PYTHON, UNIT, Proc, get_text, running


async def module_level_app(scope: object, receive: object, send: object) -> None:
    pass


class AsgiApp:
    async def __call__(self, scope: object, receive: object, send: object) -> None:
        pass


instance_app = AsgiApp()


def test_function_and_factory_in_a_module() -> None:
    assert find_import_string(module_level_app) == f"{__name__}:module_level_app"
    assert find_import_string(plain_app.create_app) == "tests.fixtures.supervisors.plain_app:create_app"


def test_instance_whose_class_lives_elsewhere_is_found_in_the_calling_module() -> None:
    # A FastAPI() instance's __module__ is "fastapi.applications"; the caller's module globals hold it.
    assert find_import_string(instance_app) == f"{__name__}:instance_app"


def test_imported_name_prefers_the_defining_module() -> None:
    app = plain_app.app
    assert find_import_string(app) == "tests.fixtures.supervisors.plain_app:app"


def test_strings_pass_through() -> None:
    assert find_import_string("main:app") == "main:app"


def _fake_main(
    monkeypatch: pytest.MonkeyPatch, file: str | None, spec_name: str | None = None
) -> types.ModuleType:
    main = types.ModuleType("__main__")
    if file is not None:
        main.__file__ = file
    main.__spec__ = types.SimpleNamespace(name=spec_name) if spec_name else None  # type: ignore[assignment]

    async def app(scope: object, receive: object, send: object) -> None:
        pass

    app.__module__ = "__main__"
    main.app = app  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "__main__", main)
    return main


def test_script_run_as_main_uses_its_file_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "main.py").write_text("")
    main = _fake_main(monkeypatch, str(tmp_path / "main.py"))
    found = explain_import_string(main.app)
    assert found.import_string == "main:app"
    assert found.path == str(tmp_path)


def test_script_inside_a_package_gets_its_dotted_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    for init in ("pkg/__init__.py", "pkg/sub/__init__.py"):
        (tmp_path / init).write_text("")
    main = _fake_main(monkeypatch, str(tmp_path / "pkg" / "sub" / "server.py"))
    found = explain_import_string(main.app)
    assert found.import_string == "pkg.sub.server:app"
    assert found.path == str(tmp_path)


def test_python_dash_m_uses_the_spec_name(monkeypatch: pytest.MonkeyPatch) -> None:
    main = _fake_main(monkeypatch, "/somewhere/pkg/mod.py", spec_name="pkg.mod")
    assert find_import_string(main.app) == "pkg.mod:app"


def test_python_dash_c_has_no_import_string(monkeypatch: pytest.MonkeyPatch) -> None:
    main = _fake_main(monkeypatch, None)
    found = explain_import_string(main.app)
    assert found.import_string is None
    assert found.reason is not None
    assert "python -c" in found.reason
    assert found.suggestion is not None
    assert 'hatchway.run("main:app"' in found.suggestion


def test_a_script_shadowing_a_module_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    main = _fake_main(monkeypatch, str(tmp_path / "json.py"))
    found = explain_import_string(main.app)
    assert found.import_string is None
    assert found.reason is not None
    assert "'json'" in found.reason


def test_app_built_in_a_function_names_the_line_to_move() -> None:
    def make() -> object:
        return AsgiApp()

    app = make()
    found = explain_import_string(app, example="reload=True")
    assert found.import_string is None
    assert found.reason is not None
    assert "inside the function" in found.reason
    assert found.suggestion == (
        "move `app = make()` to module level in test_import_string.py and call "
        'hatchway.run("test_import_string:app", reload=True)'
    )


def test_lambda_has_no_import_string() -> None:
    found = explain_import_string(lambda scope, receive, send: None)
    assert found.import_string is None
    assert found.reason is not None
    assert "lambda" in found.reason


@pytest.mark.parametrize("options", [{"reload": True}, {"workers": 2}])
def test_run_raises_config_error_hw106_before_binding(options: dict[str, object]) -> None:
    def build() -> object:
        return AsgiApp()

    app = build()
    with pytest.raises(ConfigError) as info:
        hatchway.run(app, port=0, log_config=None, **options)
    assert info.value.code == "HW106"
    assert "move `app = build()` to module level" in str(info.value)


def test_spec_carries_import_string_and_object_options(tmp_path: Path) -> None:
    config = hatchway.Config(plain_app.create_app, factory=True, workers=2, loop=plain_app.create_app)
    spec = build_spec(config, "worker")
    assert spec.app == "tests.fixtures.supervisors.plain_app:create_app"
    assert spec.options["factory"] is True
    assert spec.options["workers"] == 1
    assert spec.options["reload"] is False
    assert spec.config_options()["loop"] is plain_app.create_app  # travelled as an import string


def test_unserialisable_option_is_a_clear_config_error() -> None:
    def local_factory() -> None:
        pass

    config = hatchway.Config("main:app", workers=2, loop=local_factory)
    with pytest.raises(ConfigError, match="loop") as info:
        build_spec(config, "worker")
    assert info.value.code == "HW106"


def test_import_errors_name_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "present.py").write_text("app = 1\n")
    with pytest.raises(AppImportError, match="Could not import module 'absent'") as info:
        import_from_string("absent:app")
    assert info.value.code == "HW201"
    with pytest.raises(AppImportError, match="Did you mean present:app") as info:
        import_from_string("present:ap")
    assert info.value.code == "HW202"


def test_a_package_in_the_current_directory_is_found_as_the_cli_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ``python pkg/server.py``: sys.path[0] is pkg/, and the current directory (which holds pkg/) is not on it.
    package = tmp_path / "cwd_pkg_hw13"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "server.py").write_text("app = 'found'\n")
    monkeypatch.chdir(tmp_path)
    cwd = str(tmp_path)
    kept = [p for p in sys.path if p and os.path.abspath(p) != cwd]
    monkeypatch.setattr(sys, "path", [str(package), *kept])
    monkeypatch.delitem(sys.modules, "cwd_pkg_hw13", raising=False)
    monkeypatch.delitem(sys.modules, "cwd_pkg_hw13.server", raising=False)
    with pytest.raises(AppImportError, match="Could not import module 'no_pkg_hw13'"):
        import_from_string("no_pkg_hw13.server:app")
    assert cwd not in sys.path  # not found there either: sys.path is left as it was
    try:
        assert import_from_string("cwd_pkg_hw13.server:app") == "found"
        assert sys.path[0] == cwd  # found there: it stays, as the module's own imports need it
    finally:
        sys.modules.pop("cwd_pkg_hw13.server", None)
        sys.modules.pop("cwd_pkg_hw13", None)


def test_nested_run_during_an_app_import_returns_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "unguarded_mod.py").write_text(
        textwrap.dedent(
            """
            import hatchway
            from hatchway._importer import importing_app

            seen = importing_app()

            async def app(scope, receive, send):
                pass

            hatchway.run(app, port=0)  # would block forever if it served
            """
        )
    )
    app = import_from_string("unguarded_mod:app")
    assert callable(app)
    assert importlib.import_module("unguarded_mod").seen == "unguarded_mod:app"
    assert importing_app() is None


@pytest.mark.slow
def test_python_dash_c_with_reload_fails_clearly(tmp_path: Path) -> None:
    code = "import hatchway\nasync def app(s, r, w): pass\nhatchway.run(app, reload=True, port=0)\n"
    proc = Proc([PYTHON, "-c", code], tmp_path)
    try:
        assert proc.wait(10 * UNIT) == 1
    finally:
        proc.stop()
    assert "ConfigError" in proc.output
    assert "HW106" in proc.output
    assert "python -c" in proc.output
    assert "Hatchway running" not in proc.output


@pytest.mark.slow
def test_app_made_in_a_function_fails_clearly(tmp_path: Path) -> None:
    proc = Proc([PYTHON, str(HERE / "in_function.py")], tmp_path)
    try:
        assert proc.wait(10 * UNIT) == 1
    finally:
        proc.stop()
    assert "HW106" in proc.output
    assert "move `app = make_app()` to module level in in_function.py" in proc.output
    assert 'hatchway.run("in_function:app", workers=2)' in proc.output
    assert "Hatchway running" not in proc.output


@pytest.mark.slow
def test_cli_single_process_with_an_unguarded_module(tmp_path: Path) -> None:
    shutil.copy(HERE / "app_script.py", tmp_path / "main.py")
    with running([PYTHON, "-m", "hatchway", "main:app", "--port", "0"], tmp_path) as proc:
        url = proc.url()
        assert (get_text(url) or "").startswith("v1 ")
    assert proc.output.count("Hatchway running on") == 1
    assert "this call does nothing" in proc.output
