"""The ``hyperjoule`` app: global options, command registration and ``main()``.

Each command group lives in its own module with a ``register(app)``; shared options are
in ``_options``.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated, Any

import typer

from hyperjoule.cli._options import debug_enabled, set_debug
from hyperjoule.errors import HyperjouleError

__all__ = ["app", "main", "package_version"]

logger = logging.getLogger("hyperjoule")

app = typer.Typer(
    name="hyperjoule",
    help="Run training commands under many hyperparameter variations and measure their energy.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def package_version() -> str:
    """The installed hyperjoule version (``unknown`` when run from a bare source tree)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hyperjoule")
    except PackageNotFoundError:
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"hyperjoule {package_version()}")
        raise typer.Exit(0)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show info logs.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    set_debug(debug)
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("hyperjoule: %(levelname)s: %(message)s"))
    root = logging.getLogger("hyperjoule")
    root.handlers[:] = [handler]
    root.setLevel(level)


def _register_plugins() -> None:
    """Commands that live in their own modules (each module imports its heavy parts lazily)."""
    from hyperjoule.cli import _doctor, _legacy, _report, _runs, _study

    _study.register(app)
    _runs.register(app)
    _report.register(app)
    _doctor.register(app)
    _legacy.register(app)


_register_plugins()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit status."""
    args = sys.argv[1:] if argv is None else argv
    try:
        result: Any = app(args=args, prog_name="hyperjoule", standalone_mode=False)
    except HyperjouleError as e:
        if debug_enabled() or "--debug" in args:
            logger.exception("error")
        message = " ".join(str(e).split("\n"))
        sys.stderr.write(f"hyperjoule: error: {message}\n")
        return 2
    except typer.Abort:
        sys.stderr.write("hyperjoule: interrupted\n")
        return 130
    except typer.TyperException as e:  # usage errors: bad option, missing argument
        show = getattr(e, "show", None)
        if callable(show):
            show()
        else:
            sys.stderr.write(f"hyperjoule: error: {e.format_message()}\n")
        return int(e.exit_code)
    return result if isinstance(result, int) else 0
