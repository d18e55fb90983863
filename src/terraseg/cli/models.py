"""``terraseg models``: list architectures with parameters and GFLOPs, describe one, list encoders."""

from __future__ import annotations

from typing import List, Optional

import typer

from terraseg.cli import app
from terraseg.errors import first_line

models_app = typer.Typer(help="Model architectures: list with parameters and GFLOPs, describe, encoders.",
                         no_args_is_help=True)
app.add_typer(models_app, name="models")


def _parse_options(items: Optional[List[str]]) -> dict:
    import yaml

    from terraseg.errors import ModelError

    out = {}
    for item in items or []:
        if "=" not in item:
            raise ModelError(f"option {item!r} must look like KEY=VALUE (e.g. encoder_name=resnet18)")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError:
            out[key.strip()] = value
    return out


def _count_row(name: str, size: int, in_channels: int, num_classes: int, options: dict):
    from terraseg.errors import ModelError
    from terraseg.models.complexity import count_flops

    try:
        params, flops = count_flops(name, size=size, in_channels=in_channels, num_classes=num_classes, **options)
    except ModelError:
        raise
    except Exception as exc:  # an architecture that cannot run at this size/encoder: show why, keep going
        return None, None, f"{exc.__class__.__name__}: {first_line(exc, 80)}"
    return params, flops, ""


@models_app.command("list")
def list_command(
    size: int = typer.Option(512, "--size", min=16, help="Input height and width for the GFLOPs column."),
    in_channels: int = typer.Option(3, "--in-channels", min=1, help="Input bands."),
    num_classes: int = typer.Option(6, "--num-classes", min=1, help="Output classes."),
    smp: bool = typer.Option(True, "--smp/--no-smp", help="Also list every smp:<Arch> (default encoders)."),
    markdown: bool = typer.Option(False, "--markdown", help="Print a Markdown table instead of a rich table."),
) -> None:
    """List architectures with parameters (millions) and GFLOPs of one forward pass at SIZE x SIZE.

    FLOPs are counted with torch.utils.flop_counter (2 x multiply-adds) on the meta device, so
    nothing is computed; inputs are padded to each network's stride as in real use.
    """
    from rich.console import Console
    from rich.table import Table

    from terraseg import models

    rows = []
    names = list(models.REGISTRY) + (models.smp_architectures() if smp else [])
    for name in names:
        info = models.describe(name)
        encoder = info["backbone"]
        params, flops, note = _count_row(name, size, in_channels, num_classes, {})
        rows.append((name, encoder, params, flops, note or info["summary"]))

    def fmt(v, scale, digits):
        return "–" if v is None else f"{v / scale:.{digits}f}"

    if markdown:
        typer.echo(f"| name | encoder | params (M) | GFLOPs @ {size}² | notes |")
        typer.echo("| --- | --- | ---: | ---: | --- |")
        for name, enc, p, f, note in rows:
            typer.echo(f"| `{name}` | {enc or '–'} | {fmt(p, 1e6, 1)} | {fmt(f, 1e9, 1)} | {note} |")
        return
    table = Table(title=f"terraseg architectures ({in_channels} bands, {num_classes} classes, {size}x{size} input)")
    table.add_column("name", style="bold")
    table.add_column("encoder")
    table.add_column("params (M)", justify="right")
    table.add_column(f"GFLOPs @ {size}", justify="right")
    table.add_column("notes", overflow="fold")
    for name, enc, p, f, note in rows:
        table.add_row(name, enc, fmt(p, 1e6, 1), fmt(f, 1e9, 1), note)
    Console().print(table)


@models_app.command("info")
def info_command(
    name: str = typer.Argument(..., help="Architecture name (see `terraseg models list`), e.g. unet or smp:FPN."),
    option: Optional[List[str]] = typer.Option(None, "--option", "-o",
                                               help="Build option KEY=VALUE (repeatable), e.g. -o encoder_name=resnet18."),
    size: int = typer.Option(512, "--size", min=16, help="Input height and width for the GFLOPs figure."),
    in_channels: int = typer.Option(3, "--in-channels", min=1, help="Input bands."),
    num_classes: int = typer.Option(6, "--num-classes", min=1, help="Output classes."),
) -> None:
    """Describe one architecture: options and defaults, encoder group, parameters and GFLOPs."""
    from rich.console import Console
    from rich.table import Table

    from terraseg import models
    from terraseg.models.complexity import count_flops

    options = _parse_options(option)
    info = models.describe(name)
    params, flops = count_flops(name, size=size, in_channels=in_channels, num_classes=num_classes, **options)
    console = Console()
    console.print(f"[bold]{info['name']}[/]: {info['summary']}", highlight=False)
    if info["reference"]:
        console.print(f"reference: {info['reference']}", highlight=False)
    if info["backbone"]:
        console.print(f"default encoder: {info['backbone']}", highlight=False)
    console.print(f"encoder group (param_groups): {info['encoder']}", highlight=False)
    console.print(f"{params / 1e6:.2f} M parameters ({params * 4 / 2**20:.0f} MiB as float32), "
                  f"{flops / 1e9:.1f} GFLOPs at {size}x{size} ({in_channels} bands, {num_classes} classes)",
                  highlight=False)
    table = Table(title="options")
    table.add_column("option")
    table.add_column("default")
    table.add_column("given")
    for key, default in info["options"].items():
        table.add_row(key, repr(default), repr(options[key]) if key in options else "")
    console.print(table)


@models_app.command("encoders")
def encoders_command(
    contains: Optional[str] = typer.Argument(None, help="Only names containing this text."),
    timm: bool = typer.Option(False, "--timm", help="List timm models (usable as encoder_name=tu-<name>) instead."),
) -> None:
    """List encoder names usable with smp architectures (encoder_name=...)."""
    if timm:
        import timm as _timm

        names = [f"tu-{n}" for n in _timm.list_models(f"*{contains}*" if contains else "*")]
    else:
        from terraseg.models.smp_zoo import encoder_names

        names = [n for n in encoder_names() if not contains or contains.lower() in n.lower()]
    for n in names:
        typer.echo(n)


@models_app.command("pretrained")
def pretrained_command(
    name: Optional[str] = typer.Argument(None, help="Show only this built-in model's card."),
    brief: bool = typer.Option(False, "--brief", help="One line per model, no card."),
) -> None:
    """List the built-in models (shipped inside terraseg, no download) with their model cards.

    Use a name wherever a model is expected: `terraseg predict dubai-landcover IMAGE --out DIR`,
    `terraseg evaluate`, `terraseg export`, `terraseg gui --model`, `model.init_from` in a training
    config, `terraseg.load_model(name)` in Python.
    """
    from rich.console import Console
    from rich.markdown import Markdown

    from terraseg import pretrained
    from terraseg.bundle import read_meta

    console = Console()
    chosen = [pretrained.folder(name).name] if name else pretrained.names()
    for model_name in chosen:
        folder = pretrained.folder(model_name)
        meta = read_meta(folder)
        miou = meta.metrics.get("test_miou") if isinstance(meta.metrics, dict) else None
        score = f", held-out mIoU {miou:.3f}" if isinstance(miou, (int, float)) else ""
        console.print(f"[bold]{model_name}[/]: {meta.architecture}, {meta.in_channels} bands, "
                      f"{meta.num_classes} classes ({', '.join(meta.classes)}){score}", highlight=False, soft_wrap=True)
        int8 = pretrained.int8_onnx(folder)
        console.print(f"  bundle: {folder}", highlight=False, soft_wrap=True)
        if int8 is not None:
            console.print(f"  int8 ONNX (Deepness / QGIS): {int8}", highlight=False, soft_wrap=True)
        if not brief:
            console.print(Markdown(pretrained.card_text(model_name)))


@models_app.command("sample-scene")
def sample_scene_command(
    out: str = typer.Option(..., "--out", help="Folder to copy the scene into (created if missing)."),
) -> None:
    """Copy the shipped real scene (a CC0 Dubai satellite image and its colour mask) into OUT.

    Writes OUT/dubai-scene.jpg and OUT/dubai-scene-mask.png: an image the built-in model never saw in
    training, to try `terraseg predict dubai-landcover OUT/dubai-scene.jpg --out maps`.
    """
    import shutil
    from pathlib import Path

    from terraseg._io import atomic_path, check_output
    from terraseg.pretrained import sample_scene

    folder = Path(out)
    check_output(folder, "folder")
    folder.mkdir(parents=True, exist_ok=True)
    for src in sample_scene():
        with atomic_path(folder / src.name) as tmp:
            shutil.copyfile(src, tmp)
        typer.echo(f"wrote {folder / src.name}")
    typer.echo("source: Dubai aerial imagery (MBRSC, labelled by Humans in the Loop), CC0 1.0 public domain")
