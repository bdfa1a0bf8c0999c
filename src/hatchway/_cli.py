"""The command line, derived from Config's declarations; the only place errors become exit codes."""

from __future__ import annotations

import platform
import sys
from typing import TYPE_CHECKING, Any

import click

from hatchway import _run  # the module: tests replace _run.run to see what the command line passes
from hatchway._config import OPTIONS
from hatchway._errors import AppImportError, ConfigError, HatchwayError, StartupError
from hatchway._options import OptionInfo
from hatchway._version import __version__

STARTUP_FAILURE = 3
USAGE_ERROR = 2


def _version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(
        f"Running hatchway {__version__} with {platform.python_implementation()} "
        f"{platform.python_version()} on {platform.system()}"
    )
    ctx.exit()


if TYPE_CHECKING:
    # click 8.2+ makes ParamType generic; older releases (still supported) cannot be subscripted at run time.
    _NumberParamType = click.ParamType[float | int | None, Any]
    _TextParamType = click.ParamType[Any, Any]
else:
    _NumberParamType = _TextParamType = click.ParamType


class NumberOrNone(_NumberParamType):
    """A number, or ``none`` for options where None means "no limit" (``--timeout-graceful-shutdown none``)."""

    def __init__(self, number: type[float] | type[int]) -> None:
        self.number = number
        self.name = f"{number.__name__.upper()}|none"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float | int | None:
        if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
            return None
        try:
            return self.number(value)
        except (TypeError, ValueError):
            self.fail(f"expected a number or 'none', got {value!r}", param, ctx)


class HeaderLine(_TextParamType):
    """``Name: value``. In ``HATCHWAY_HEADERS`` one header per line: values may hold spaces and commas."""

    name = "NAME:VALUE"
    envvar_list_splitter = "\n"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        if ":" not in value:
            self.fail(f"expected 'Name: value', got {value!r}", param, ctx)
        return value.strip()

    def split_envvar_value(self, rv: str) -> Any:
        return [line for line in rv.splitlines() if line.strip()]


def _click_option(info: OptionInfo) -> click.Option:
    cli = info.cli
    assert cli.flag is not None
    name = info.name
    kwargs: dict[str, Any] = {"help": info.help, "envvar": info.envvar, "show_envvar": False}
    decls = [cli.flag] if cli.secondary is None else [f"{cli.flag}/{cli.secondary}"]
    if cli.is_flag:
        kwargs["is_flag"] = True
        kwargs["default"] = cli.default
    else:
        if cli.none_allowed:
            kwargs["type"] = NumberOrNone(
                float if cli.type is float or isinstance(info.default, float) else int
            )
        elif cli.choices:
            kwargs["type"] = click.Choice(cli.choices, case_sensitive=False)
        elif cli.type == "header":
            kwargs["type"] = HeaderLine()
        elif cli.type == "path":
            # As uvicorn: a missing --env-file, --log-config or --reload-dir is a usage error (exit 2).
            kwargs["type"] = click.Path(exists=True)
        elif cli.type is bool:
            kwargs["type"] = click.BOOL
        elif cli.type is not None:
            kwargs["type"] = cli.type
        elif isinstance(info.default, bool):
            kwargs["type"] = click.BOOL
        elif isinstance(info.default, (int, float, str)):
            kwargs["type"] = type(info.default)
        kwargs["multiple"] = cli.multiple
        if cli.metavar is not None:  # what the value is (SECONDS, MIB), where the type alone says FLOAT
            kwargs["metavar"] = cli.metavar
        if not cli.multiple:
            # Rich defaults (the logging dict) are not shown or passed: absent means Config's own default.
            simple = isinstance(cli.default, (int, float, str))
            kwargs["default"] = cli.default if simple else None
            kwargs["show_default"] = simple
    if info.differs:
        kwargs["help"] = f"{info.help} (differs from uvicorn: {info.differs})"
    return click.Option([*decls, name], **kwargs)


def _build_command() -> click.Command:
    params: list[click.Parameter] = [click.Argument(["app"], envvar="HATCHWAY_APP")]
    params += [_click_option(info) for info in OPTIONS if info.cli.flag]
    params.append(
        click.Option(
            ["--version"],
            is_flag=True,
            expose_value=False,
            is_eager=True,
            callback=_version,
            help="Display the hatchway version and exit.",
        )
    )
    return click.Command(
        "hatchway",
        callback=_serve,
        params=params,
        help="Serve the ASGI application APP, given as 'module:attribute'. `hatchway check` checks code instead; "
        "`hatchway explain HW201` explains an error code.",
        context_settings={"help_option_names": ["--help"], "max_content_width": 100},
    )


def _given(ctx: click.Context, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Only the options the user set (flag or environment); the rest keep Config's defaults."""
    given = {}
    for name, value in kwargs.items():
        source = ctx.get_parameter_source(name)
        if source in (click.core.ParameterSource.DEFAULT, None):
            continue
        if isinstance(value, tuple):
            value = list(value)
            if not value:
                continue
        given[name] = value
    return given


def _serve(app: str, **kwargs: Any) -> None:
    ctx = click.get_current_context()
    options = _given(ctx, kwargs)
    if options.get("app_dir") is None:
        options["app_dir"] = ""
    if "log_level" in options:
        options["log_level"] = options["log_level"].lower()
    try:
        _run.run(app, **options)
    except KeyboardInterrupt:
        pass
    except ConfigError as exc:
        click.echo(f"ERROR: {exc}", err=True)
        ctx.exit(USAGE_ERROR)
    except AppImportError as exc:
        if exc.user_traceback:
            click.echo(exc.user_traceback.rstrip(), err=True)
        click.echo(f"ERROR: {exc}", err=True)
        ctx.exit(STARTUP_FAILURE)
    except StartupError as exc:
        click.echo(f"ERROR: {exc}", err=True)
        ctx.exit(STARTUP_FAILURE)
    except HatchwayError as exc:
        click.echo(f"ERROR: {exc}", err=True)
        ctx.exit(STARTUP_FAILURE)


command = _build_command()


def _explain(code: str | None, list_codes: bool) -> None:
    # Imported only by `hatchway explain`, like the checker below: serving does not pay for them.
    from hatchway._explain import DocsMissing, UnknownCode, explain, known_codes

    ctx = click.get_current_context()
    try:
        if list_codes or code is None:
            rows = known_codes()
            width = max(len(c) for c, _ in rows)
            click.echo("\n".join(f"{c:<{width}}  {summary}" for c, summary in rows))
            if code is None and not list_codes:
                click.echo("\nRun `hatchway explain CODE` for one of them.")
            return
        click.echo(explain(code).text.rstrip("\n"))
    except UnknownCode:
        click.echo(
            f"ERROR: unknown code {code!r}: expected an error code (HW100-HW501) or a checker rule "
            "(HW000-HW010); `hatchway explain --list` lists them",
            err=True,
        )
        ctx.exit(USAGE_ERROR)
    except DocsMissing as exc:
        click.echo(f"ERROR: {exc}", err=True)
        ctx.exit(1)


explain_command = click.Command(
    "explain",
    callback=_explain,
    params=[
        click.Argument(["code"], required=False),
        click.Option(["--list", "list_codes"], is_flag=True, help="List every code with a one-line summary."),
    ],
    help="Print the documentation of an error code (HW1xx-HW5xx) or checker rule (HW0xx), e.g. HW201. "
    "The pages ship with hatchway, so this works offline.",
    context_settings={"help_option_names": ["--help"], "max_content_width": 100},
)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``hatchway`` command."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "check":
        from hatchway.checker import main as check_main

        sys.exit(check_main(args[1:]))
    if args and args[0] == "explain":
        explain_command.main(args[1:], prog_name="hatchway explain")
    command.main(args, prog_name="hatchway")
