"""The ``terraseg`` command line: a thin layer over the library.

Each sub-module registers its commands on ``app``; heavy libraries (torch, rasterio, PySide6) are
imported inside the command functions so ``terraseg --help`` and the ONNX backend stay fast and
torch-free. User mistakes (``TerrasegError``) print one line and exit with status 2.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.text import Text

from terraseg import __version__
from terraseg.errors import TerrasegError

app = typer.Typer(
    name="terraseg",
    help="Semantic segmentation of satellite and aerial imagery.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
err_console = Console(stderr=True)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"terraseg {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Semantic segmentation of satellite and aerial imagery."""


def _register() -> None:
    # Each module adds its commands to ``app``; a module that is not written yet is skipped.
    import importlib

    for name in ("data", "models", "train", "evaluate", "predict", "export", "gui"):
        try:
            importlib.import_module(f"terraseg.cli.{name}")
        except ModuleNotFoundError as exc:  # pragma: no cover - only while a stage is missing
            if exc.name != f"terraseg.cli.{name}":
                raise


_register()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        app(args=argv, standalone_mode=True)
    except TerrasegError as exc:
        err_console.print(Text("error: ", style="bold red") + Text(str(exc)), highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("[bold red]interrupted[/]")
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
