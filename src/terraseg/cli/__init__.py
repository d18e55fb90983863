"""The ``terraseg`` command line: a thin layer over the library.

Each sub-module registers its commands on ``app``; heavy libraries (torch, rasterio, PySide6) are
imported inside the command functions so ``terraseg --help`` and the ONNX backend stay fast and
torch-free. User mistakes (``TerrasegError``) print one line and exit with status 2.
"""

from __future__ import annotations

import sys

import typer
from terraseg import __version__
from terraseg.cli._messages import err_console
from terraseg.errors import TerrasegError

app = typer.Typer(
    name="terraseg",
    help="Semantic segmentation of satellite and aerial imagery.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


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

    for name in ("data", "models", "train", "evaluate", "predict", "export", "gui", "assess", "change"):
        try:
            importlib.import_module(f"terraseg.cli.{name}")
        except ModuleNotFoundError as exc:  # pragma: no cover - only while a stage is missing
            if exc.name != f"terraseg.cli.{name}":
                raise


_register()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: every failure a user can cause ends in one line on stderr.

    ``error: FILE: problem`` with exit status 2 for user mistakes (:class:`TerrasegError`), OS errors
    such as a full disk or a read-only folder, and usage errors; warnings as ``warning:`` lines.
    """
    from terraseg._io import describe_os_error
    from terraseg.cli._messages import WarningReporter, environment_error, print_error

    code: object = 0
    with WarningReporter().active():
        try:
            code = app(args=argv, standalone_mode=False, prog_name="terraseg")
        except typer.TyperException as exc:  # click's usage errors, as typer bundles them
            kinds = {c.__name__ for c in type(exc).__mro__}
            if "NoArgsIsHelpError" in kinds:
                code = 2  # the help has been printed
            elif "UsageError" in kinds:
                ctx = getattr(exc, "ctx", None)
                where = ctx.command_path if ctx is not None else "terraseg"
                print_error(f"{where}: {exc.format_message()} (see '{where} --help')")
                code = 2
            else:
                print_error(exc.format_message())
                code = getattr(exc, "exit_code", 1)
        except typer.Abort as exc:
            if isinstance(exc.__cause__, EOFError):
                print_error("input ended unexpectedly")
                code = 2
            else:
                err_console.print("[bold red]interrupted[/]")
                code = 130
        except TerrasegError as exc:
            print_error(str(exc))
            code = 2
        except KeyboardInterrupt:
            err_console.print("[bold red]interrupted[/]")
            code = 130
        except Exception as exc:
            os_error = environment_error(exc)
            if os_error is None:
                raise  # a bug in terraseg: the traceback is what a report needs
            print_error(describe_os_error(os_error))
            code = 2
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
