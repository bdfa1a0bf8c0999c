"""The checker as a library: alias resolution, the flake8 plugin, and no findings on compliant code."""

from __future__ import annotations

import ast
import textwrap

import pytest

from hatchway._config import OPTION_NAMES
from hatchway.checker import RULES, check_source
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
    assert sorted(RULES) == [f"HW{n:03}" for n in range(1, 11)]
    for rule in RULES.values():
        assert rule.summary
        assert rule.template
