"""The ``tastespace`` command line: a thin shell over the library.

Every command turns its flags into library calls and renders the result; tastespace errors
become a one-line message and exit code 2, never a traceback. Commands live in one module per
pipeline stage (``data``, ``models``, ``evaluate``, ``viz``, ``serve``), each registering itself
on the shared :data:`app`.
"""

from __future__ import annotations

import logging
import sys
import warnings
from typing import Annotated, TextIO

import typer
from rich.markup import escape

from tastespace import __version__
from tastespace.cli.common import cli_message, console, err_console
from tastespace.errors import TastespaceError, TastespaceWarning
from tastespace.models.allocator import keep_freed_memory

app = typer.Typer(
    name="tastespace",
    help="Dense embeddings for sparse recommender data: load, fit, recommend, map, serve.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # help text is plain: `[ids or titles]` must print as written
)


def _version(value: bool) -> None:
    if value:
        console.print(f"tastespace {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")
    warnings.showwarning = _show_warning


_python_showwarning = warnings.showwarning


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """tastespace's own warnings as one ``warning: ...`` line; others as Python prints them."""
    if issubclass(category, TastespaceWarning):
        text = cli_message(message, getattr(message, "options", ()))
        err_console.print(f"[yellow]warning:[/] {escape(text)}", highlight=False, soft_wrap=True)
    else:
        _python_showwarning(message, category, filename, lineno, file, line)


def _register() -> None:
    from tastespace.cli import data, evaluate, features, insight, models, serve, viz

    for module in (data, features, models, evaluate, insight, viz, serve):
        module.register(app)


_register()


def main() -> None:
    """Console-script entry: tastespace errors → one line on stderr, exit code 2."""
    keep_freed_memory()  # this process is the CLI's own: fits and servers reuse their memory
    try:
        app()
    except TastespaceError as err:
        message = cli_message(err, err.options)
        err_console.print(f"[red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
