"""The checker as a library: alias resolution, the flake8 plugin, and no findings on compliant code."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

from hatchway import ConfigError
from hatchway._config import OPTION_NAMES, Config
from hatchway.checker import RULES, check_paths, check_source
from hatchway.checker._imports import ImportMap
from hatchway.checker.flake8_plugin import Plugin


def codes(source: str, path: str = "main.py") -> list[str]:
    return [f.code for f in check_source(textwrap.dedent(source), path)]


@pytest.mark.parametrize(
    ("imports", "callee", "expected"),
    [
        ("import uvicorn", "uvicorn.run", ("uvicorn", "run")),
        ("import uvicorn as u", "u.run", ("uvicorn", "run")),
        ("from uvicorn import run as serve", "serve", ("uvicorn", "run")),
        ("from uvicorn.main import run", "run", ("uvicorn", "run")),
        ("import uvicorn.main", "uvicorn.main.run", ("uvicorn", "run")),
        ("from uvicorn import Config, Server", "Config", ("uvicorn", "Config")),
        ("from uvicorn import *", "Server", ("uvicorn", "Server")),
        ("import hatchway", "hatchway.run", ("hatchway", "run")),
        ("from hatchway import run", "run", ("hatchway", "run")),
        ("import hatchway as hw", "hw.Config", ("hatchway", "Config")),
    ],
)
def test_aliases_resolve(imports: str, callee: str, expected: tuple[str, str]) -> None:
    tree = ast.parse(f"{imports}\n{callee}()\n")
    call = tree.body[-1].value  # type: ignore[attr-defined]
    ref = ImportMap(tree).api(call.func)
    assert ref is not None
    assert (ref.flavor, ref.kind) == expected
    assert ref.spelled == callee


@pytest.mark.parametrize(
    "source",
    [
        "import uvicorn\nimport subprocess\nsubprocess.run(['x'])\n",
        "import uvicorn\nimport asyncio\nasyncio.run(main())\n",
        "import uvicorn\ndef run(app, reload): pass\nrun(app, reload=True)\n",
        "import uvicorn\nfrom other import run\nrun(app, reload=True, workers=4)\n",
        "import uvicorn\nclass J:\n    def run(self, **kw): pass\nJ().run(reload=True, workers=9)\n",
    ],
)
def test_unrelated_run_functions_are_not_flagged(source: str) -> None:
    assert codes(source) == []


def test_compliant_code_has_no_findings() -> None:
    assert (
        codes(
            """
            import uvicorn
            from uvicorn import Config, Server

            async def app(scope, receive, send):
                pass

            async def serve():
                await Server(Config(app)).serve()

            if __name__ == "__main__":
                uvicorn.run("main:app", reload=True, reload_dirs=["src"])
                uvicorn.run("main:app", workers=4, host="0.0.0.0", port=8000)
            """
        )
        == []
    )


def test_hatchway_allows_app_objects_and_unguarded_run() -> None:
    source = "import hatchway\napp = object()\nhatchway.run(app, reload=True)\n"
    assert codes(source) == []
    assert sorted(codes(source.replace("hatchway", "uvicorn"))) == ["HW001", "HW003"]


def test_debug_is_known_to_uvicorn_but_not_hatchway() -> None:
    assert codes('import uvicorn\nuvicorn.run("main:app", debug=True)\napp = 1\n') == ["HW003"]
    assert codes('import hatchway\nhatchway.run("main:app", debug=True)\napp = 1\n') == ["HW010"]


def test_unknown_options_come_from_hatchways_declarations() -> None:
    for name in OPTION_NAMES:
        assert "HW010" not in codes(f'import hatchway\nhatchway.run("main:app", {name}=None)\napp = 1\n')


def test_findings_carry_docs_and_severity() -> None:
    (finding,) = check_source('import hatchway\nhatchway.run("main:app", relaod=True)\napp = 1\n', "main.py")
    assert finding.code == "HW010"
    assert "did you mean 'reload'?" in finding.message
    assert RULES["HW010"].docs == "docs/rules/HW010.md"
    assert (finding.line, finding.col) == (2, 26)


def test_columns_count_characters_not_bytes() -> None:
    source = 'import uvicorn\napp = 1\nif __name__ == "__main__": é = uvicorn.run(app, reload=True)\n'
    (finding,) = check_source(source, "main.py")
    assert finding.col == source.splitlines()[2].index("app,") + 1


def test_flake8_plugin_runs_on_a_tree() -> None:
    tree = ast.parse("import uvicorn as u\napp = 1\nu.run(app, workers=2)\n")
    plugin = Plugin(tree, "main.py")
    results = list(plugin.run())
    assert sorted((line, col, msg.split()[0]) for line, col, msg, _ in results) == [
        (3, 0, "HW003"),
        (3, 6, "HW001"),
    ]
    assert all(kind is Plugin for *_, kind in results)
    assert Plugin.name == "hatchway-check"
    assert isinstance(Plugin.version, str)


def test_rules_registry_is_complete() -> None:
    assert sorted(RULES) == [f"HW{n:03}" for n in range(1, 13)]
    for rule in RULES.values():
        assert rule.summary
        assert rule.template


# -- issue 13 ------------------------------------------------------------------------------------------------


def test_app_built_inside_a_function_with_reload_is_reported_for_hatchway_and_uvicorn() -> None:
    # hatchway cannot find an import string for a function's local (ConfigError HW106 at run time).
    local = """
        import hatchway
        from starlette.applications import Starlette

        def main():
            app = Starlette()
            hatchway.run(app, reload=True)
        """
    assert codes(local) == ["HW011"]
    assert codes(local.replace("reload=True", "workers=3")) == ["HW011"]
    (finding,) = check_source(textwrap.dedent(local), "main.py")
    assert "HW106" in finding.message
    assert "built inside main() by `app = Starlette()`" in finding.message
    assert 'the import string "main:app"' in finding.message
    # Same for uvicorn, through HW001: also when the local is a def or class rather than an assignment.
    nested_def = """
        import uvicorn

        def main():
            async def app(scope, receive, send):
                pass

            uvicorn.run(app, reload=True)
        """
    assert codes(nested_def) == ["HW001"]
    assert codes(nested_def.replace("uvicorn", "hatchway")) == ["HW011"]


@pytest.mark.parametrize(
    "body",
    [
        "hatchway.run(app, reload=True)",  # the module-level app: hatchway finds "main:app"
        "web = app\n    hatchway.run(web, reload=True)",  # an alias of it
        "hatchway.run(param, reload=True)",  # a parameter may be the module-level app
        "web = Starlette()\n    hatchway.run(web)",  # no reload, no workers
        "global app\n    app = Starlette()\n    hatchway.run(app, reload=True)",
    ],
)
def test_apps_hatchway_can_find_are_not_reported(body: str) -> None:
    source = (
        "import hatchway\nfrom starlette.applications import Starlette\n\napp = Starlette()\n\n"
        f"def main(param):\n    {body}\n"
    )
    assert codes(source) == []


def _project(tmp_path: Path, main: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(
        "[project]\nname = 'demo'\ndependencies = ['Declared-Dep-13>=1']\n"
    )
    (tmp_path / "main.py").write_text(textwrap.dedent(main))
    return tmp_path / "main.py"


def test_import_string_of_a_module_neither_in_the_project_nor_installed(tmp_path: Path) -> None:
    path = _project(tmp_path, 'import hatchway\n\nhatchway.run("no_such_module_13:app")\n')
    (finding,) = check_paths([path]).findings
    assert finding.code == "HW004"
    assert "there is no module 'no_such_module_13' in the project" in finding.message
    assert "none is installed in this environment" in finding.message
    # A dotted string whose top-level package is missing: the same, and no parent package is imported.
    path.write_text('import hatchway\n\nhatchway.run("no_such_module_13.web:app")\n')
    assert [f.code for f in check_paths([path]).findings] == ["HW004"]


@pytest.mark.parametrize(
    ("main", "elsewhere"),
    [
        ('import hatchway\n\nhatchway.run("json:loads")\n', None),  # the standard library
        ('import hatchway\n\nhatchway.run("hatchway.demo:app")\n', None),  # installed
        ('import hatchway\n\nhatchway.run("web.app:app")\n', "deploy/web/app.py"),  # elsewhere in the project
        # A dependency the project declares: installed where it runs, if not where the checker runs.
        ('import hatchway\n\nhatchway.run("declared_dep_13.web:app")\n', None),
        # This environment is not the project's (its own import is missing): "not installed" proves nothing.
        ('import hatchway\nimport dependency_not_here_13\n\nhatchway.run("other_dep_13:app")\n', None),
    ],
)
def test_modules_that_may_exist_at_run_time_are_not_reported(
    tmp_path: Path, main: str, elsewhere: str | None
) -> None:
    path = _project(tmp_path, main)
    if elsewhere is not None:
        (tmp_path / elsewhere).parent.mkdir(parents=True)
        (tmp_path / elsewhere).write_text("app = object()\n")
    assert check_paths([path]).findings == []


# Values next to the option they are given to; HW012 must agree with Config on every one of them.
_VALUES = [
    ("workers", 0),
    ("workers", -1),
    ("workers", 4),
    ("port", -5),
    ("port", 70000),
    ("port", 0),
    ("port", "8000"),
    ("lifespan", "yes"),
    ("lifespan", "on"),
    ("http", "zttp"),
    ("http", "h2"),
    ("http", "h11"),
    ("http2", True),
    ("h2_max_frame_size", 1024),
    ("h2_max_frame_size", 16384),
    ("h2_initial_window_size", 2**31),
    ("log_level", "DEBUG"),
    ("log_level", "verbose"),
    ("timeout_keep_alive", -1),
    ("backlog", 0),
    ("limit_concurrency", None),
    ("limit_concurrency", 0),
    ("reload", "yes"),
    ("ws_max_size", 0),
]


@pytest.mark.parametrize(("name", "value"), _VALUES)
def test_option_values_are_judged_as_config_judges_them(name: str, value: object) -> None:
    try:
        Config("main:app", **{name: value})
    except ConfigError as exc:
        refused = any(p.option == name for p in exc.problems)
    else:
        refused = False
    direct = f"import hatchway\napp = 1\nhatchway.run('main:app', {name}={value!r})\n"
    through_dict = (
        f"import hatchway\napp = 1\noptions = {{{name!r}: {value!r}}}\nhatchway.run('main:app', **options)\n"
    )
    assert ("HW012" in codes(direct)) == refused
    assert ("HW012" in codes(through_dict)) == refused


def test_option_value_message_says_what_was_expected_and_got() -> None:
    (finding,) = check_source("import hatchway\napp = 1\nhatchway.run('main:app', workers=0)\n", "main.py")
    assert finding.code == "HW012"
    assert "workers=0" in finding.message
    assert "expected a whole number at least 1, got 0" in finding.message
    assert "ConfigError (HW101)" in finding.message


@pytest.mark.parametrize(
    "source",
    [
        # uvicorn does not check values: workers=0 runs one process.
        "import uvicorn\nuvicorn.run('main:app', workers=0)\napp = 1\n",
        # The dict may have changed before the call: not looked into.
        "import hatchway\napp = 1\nopts = {'workers': 0}\nopts['workers'] = 2\nhatchway.run('main:app', **opts)\n",
        "import hatchway\napp = 1\nopts = {'workers': 0}\nopts.update(w)\nhatchway.run('main:app', **opts)\n",
        "import hatchway\napp = 1\ndef f(opts):\n    hatchway.run('main:app', **opts)\n",
        # Not a literal; and a key file whose existence depends on where the server starts.
        "import hatchway\napp = 1\nhatchway.run('main:app', workers=n, ssl_keyfile='k.pem', ssl_certfile='c.pem')\n",
    ],
)
def test_values_that_cannot_be_known_are_not_judged(source: str) -> None:
    assert codes(source) == []


def test_literal_dict_options_reach_every_rule() -> None:
    source = """
        import uvicorn

        def main():
            options = {"reload": True, "workers": 4, "relaod": 1}
            uvicorn.run("main:app", **options)

        app = 1
        """
    found = check_source(textwrap.dedent(source), "main.py")
    assert sorted((f.line, f.code) for f in found) == [(5, "HW002"), (5, "HW010")]


def test_reload_with_workers_says_what_uvicorn_really_does() -> None:
    source = 'import uvicorn\nuvicorn.run("main:app", reload=True, workers=4)\napp = 1\n'
    (finding,) = [f for f in check_source(source, "main.py") if f.code == "HW002"]
    assert "silently" not in finding.message
    assert "runs a single process" in finding.message
    quoted = '"workers" flag is ignored when reloading is enabled.'
    assert quoted in finding.message
    uvicorn_config = pytest.importorskip("uvicorn.config")
    # The log line quoted is the one uvicorn's Config really emits.
    assert quoted in Path(uvicorn_config.__file__).read_text()


def test_docs_say_what_uvicorn_does_with_reload_and_workers() -> None:
    docs = Path(__file__).parent.parent / "docs"
    for page in ("errors.md", "reload-and-workers.md", "rules/HW002.md"):
        text = " ".join((docs / page).read_text().split())
        assert "silently ignores" not in text, page
        assert '"workers" flag is ignored when reloading is enabled.' in text, page


def test_a_project_too_big_to_walk_is_not_guessed_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A home directory under git is a "project" of a million directories: the checker does not walk it all,
    # and then cannot say a module is nowhere in it.
    from hatchway.checker import _project as project_module

    path = _project(tmp_path, 'import hatchway\n\nhatchway.run("no_such_module_13:app")\n')
    for n in range(4):
        (tmp_path / f"d{n}").mkdir()
    monkeypatch.setattr(project_module, "WALK_LIMIT", 3)
    assert check_paths([path]).findings == []
    monkeypatch.setattr(project_module, "WALK_LIMIT", 100)
    assert [f.code for f in check_paths([path]).findings] == ["HW004"]
