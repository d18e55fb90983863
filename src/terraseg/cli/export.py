"""``terraseg export``: a bundle to a self-describing ONNX file (optionally also an int8 copy)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from terraseg.cli import app


@app.command("export")
def export_command(
    bundle: str = typer.Argument(..., help="Model bundle folder (bundle.json + model.safetensors) or a built-in "
                                           "model name (`terraseg models pretrained`)."),
    onnx: Path = typer.Option(..., "--onnx", help="ONNX file to write (dynamic batch, height, width)."),
    opset: int = typer.Option(18, "--opset", help="ONNX opset version."),
    int8: Optional[Path] = typer.Option(None, "--int8", help="Also write a statically quantised int8 copy here."),
    calibrate: Optional[List[Path]] = typer.Option(
        None, "--calibrate",
        help="Images to calibrate the int8 copy on (repeatable; default: smooth random tiles)."),
    calibration_tiles: int = typer.Option(16, "--calibration-tiles", min=1, help="Tiles cut from --calibrate images."),
    exporter: str = typer.Option("auto", "--exporter",
                                 help="auto (torch.export, falling back to the tracer), dynamo or torchscript."),
) -> None:
    """Export BUNDLE to ONNX, checked against torch on unseen tile sizes.

    The file carries the bundle metadata (classes, colours, normalisation, tile size), so
    `terraseg predict out.onnx IMAGE --backend onnx` and the desktop app need nothing else.
    """
    from terraseg._io import check_output
    from terraseg.errors import TerrasegError
    from terraseg.export import export_info, export_onnx
    from terraseg.pretrained import resolve_model

    bundle = resolve_model(bundle)

    if int8 is not None and int8.suffix.lower() != ".onnx":
        raise TerrasegError("int8 output file must end in .onnx", int8)
    if calibrate and int8 is None:
        raise TerrasegError("--calibrate only applies with --int8")
    weights = bundle / "model.safetensors"
    size = weights.stat().st_size if weights.is_file() else None  # the ONNX file is about as large
    check_output(onnx, "file", need_bytes=size and (size * 5 // 4 if int8 is not None else size))
    if int8 is not None:
        check_output(int8, "file")
    with _status(f"exporting {bundle} to ONNX"):
        out = export_onnx(bundle, onnx, opset=opset, exporter=exporter)
    info = export_info(out)
    typer.echo(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, {info['exporter']} exporter, opset {info['opset']}, "
               f"max |onnx - torch| = {info['max_abs_diff']:.2g} on sizes "
               + ", ".join("x".join(map(str, s[2:])) for s in info["checked_shapes"]) + ")")
    if int8 is not None:
        from terraseg.predict.onnx_backend import read_onnx_meta
        from terraseg.export.quantize import calibration_tiles as cut_tiles
        from terraseg.export.quantize import quantize_int8

        tiles = None
        try:
            if calibrate:
                tiles = cut_tiles(calibrate, read_onnx_meta(out), n=calibration_tiles)
            with _status("quantising to int8"):
                q = quantize_int8(out, int8, tiles)
        except BaseException:
            out.unlink(missing_ok=True)  # a failed command leaves nothing behind, not the fp32 file either
            raise
        source = f"{len(tiles)} tiles from {len(calibrate)} image(s)" if tiles is not None else "random tiles"
        typer.echo(f"wrote {q} ({q.stat().st_size / 1e6:.1f} MB, int8, calibrated on {source})")


def _status(text: str):
    from rich.console import Console

    from terraseg._progress import progress_enabled

    if progress_enabled():
        return Console(stderr=True).status(text)
    import contextlib

    return contextlib.nullcontext()
