"""``terraseg gui``: start the desktop app."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from terraseg.cli import app


@app.command("gui")
def gui(
    image: Optional[Path] = typer.Argument(None, help="Image to open (JPG, PNG, TIFF, GeoTIFF)."),
    model: Optional[Path] = typer.Option(None, "--model", "-m",
                                         help="Model: bundle folder, bundle.json, model.safetensors, .onnx or a built-in "
                                                              "model name (e.g. dubai-landcover)."),
    smoke_test: bool = typer.Option(False, "--smoke-test",
                                    help="Open IMAGE and --model, predict, print the legend and exit."),
    screenshot: Optional[Path] = typer.Option(None, "--screenshot",
                                              help="With --smoke-test: save a PNG of the window after the run."),
    settings: Optional[Path] = typer.Option(None, "--settings", help="Settings file (INI) instead of the user's."),
    bands: Optional[str] = typer.Option(None, "--bands", help="Image bands fed to the model, 1-based as in GDAL, "
                                                              "e.g. 4,3,2 (default: the bands the model was trained on)."),
) -> None:
    """Open the desktop app: view an image, segment it with a model, save the results."""
    try:
        import PySide6  # noqa: F401
    except ImportError:
        from terraseg.errors import TerrasegError

        raise TerrasegError("the desktop app needs PySide6: pip install 'terraseg[gui]'") from None
    from terraseg.gui import run_app

    if smoke_test and (image is None or model is None):
        raise typer.BadParameter("--smoke-test needs an IMAGE and --model")
    from terraseg.data.source import parse_bands

    code = run_app(image, model, smoke_test=smoke_test, settings_path=settings,
                   screenshot=str(screenshot) if screenshot else None, bands=parse_bands(bands))
    raise typer.Exit(code)
