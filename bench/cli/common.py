"""Options and the console shared by the ``bench`` commands."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

console = Console(soft_wrap=True)

# the exit status of a command stopped by Ctrl-C (128 + SIGINT, as shells report it)
INTERRUPTED = 130


def os_error_text(error: OSError) -> str:
    """An OS error as one line naming its file: ``/x/gate.md: Read-only file system``."""
    if error.filename is None:
        return " ".join(str(error).splitlines())
    return f"{error.filename}: {error.strerror or error}"


def one_line_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """A command whose disk errors (read-only folder, full disk, permissions) end in one line
    naming the file and exit 2, and whose Ctrl-C ends in one line and exit 130, never in a
    traceback. Every ``bench`` command is registered through it (:class:`Typer`)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except OSError as error:
            console.print(f"[red]error:[/] {escape(os_error_text(error))}", highlight=False)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            console.print("[red]interrupted[/] (Ctrl-C)")
            raise typer.Exit(INTERRUPTED) from None

    return wrapper


class Typer(typer.Typer):
    """``typer.Typer`` whose commands all go through :func:`one_line_errors`."""

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
        register = super().command(*args, **kwargs)

        def decorator(function: Callable[..., Any]) -> Callable[..., Any]:
            register(one_line_errors(function))
            return function

        return decorator


# options shared by the commands that read a split and write results
DataOption = Annotated[
    Path | None,
    typer.Option(help="Dataset folder (train/dev/test lists) or database.yml; default: demo."),
]
ProtocolOption = Annotated[
    str | None, typer.Option(help="pyannote.database protocol name (with a database.yml).")
]
ResultsOption = Annotated[Path, typer.Option(help="Folder for result JSON files.")]
CacheOption = Annotated[
    Path | None, typer.Option(help="Cache folder (demo data, decoded audio); $BENCH_CACHE.")
]
