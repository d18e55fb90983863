"""``terraseg data ...``: data preparation commands (thin layer over ``terraseg.data``)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from terraseg.cli import app

data_app = typer.Typer(help="Prepare data sets: inspect, convert masks, statistics, splits, chips, samples.",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")
console = Console()


def _swatch(color) -> Text:
    if len(color) == 3:
        return Text("      ", style=f"on rgb({color[0]},{color[1]},{color[2]})")
    return Text("")


def _warn(lines) -> None:
    for w in lines:
        console.print(Text("warning: ", style="bold yellow") + Text(w), soft_wrap=True)


@data_app.command("inspect")
def inspect_cmd(
    directory: Path = typer.Argument(..., help="Folder holding the images and masks."),
    out: Optional[Path] = typer.Option(None, "--out", "-o",
                                       help="Draft dataset YAML to write [default: ./<folder name>.yaml]."),
    no_yaml: bool = typer.Option(False, "--no-yaml", help="Do not write a draft YAML."),
    force: bool = typer.Option(False, "--force", "-f", help="Overwrite an existing YAML."),
    images: Optional[str] = typer.Option(None, help="Image folder or glob (relative to DIRECTORY)."),
    masks: Optional[str] = typer.Option(None, help="Mask folder or glob (relative to DIRECTORY)."),
    tolerance: Optional[int] = typer.Option(None, help="Group mask colours within this many levels per channel "
                                                       "[default: 0 for clean masks, the largest that keeps the "
                                                       "class colours apart for JPEG/anti-aliased ones]."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the full report as JSON."),
) -> None:
    """Find the images and masks, discover the mask palette, list unpaired/mismatched/unreadable files, draft a YAML."""
    from terraseg._io import check_output, write_json_atomic
    from terraseg.data.inspect import inspect_dataset

    yaml_path = None if no_yaml else (out or Path(f"{directory.resolve().name}.yaml"))
    for path in (yaml_path, json_out):
        if path is not None:
            check_output(path, "file")
    report = inspect_dataset(directory, yaml_path, images=images, masks=masks, tolerance=tolerance, overwrite=force)
    kind = f"index masks in channel {report.mask_channel}" if report.mask_channel is not None else \
        f"{report.mask_type} masks"
    console.print(f"[bold]{report.root}[/]: {report.n_images} images, {report.n_masks} masks, "
                  f"{report.n_pairs} pairs, {report.bands} band(s), {kind}", highlight=False)
    console.print(f"images: {report.images_pattern}   masks: {report.masks_pattern}"
                  + (f"   group: {report.group}" if report.group else "") + f"   ({report.layout})", highlight=False)
    noisy = report.tolerance > 0
    rgb = report.mask_type == "rgb"
    title = (f"palette: {len(report.palette)} class colours from {report.distinct_colors:,} distinct colours "
             f"(tolerance {report.tolerance})" if noisy else
             f"palette: {len(report.palette)} distinct {'colours' if rgb else 'values'}")
    table = Table(title=title)
    columns = [("", {}), ("colour" if rgb else "value", {}), ("RGB", {}), ("pixels", {"justify": "right"}),
               ("share", {"justify": "right"})]
    if noisy:
        columns += [("colours", {"justify": "right"}), ("spread", {"justify": "right"})]
    for col, kw in columns + [("draft class", {})]:
        table.add_column(col, **kw)
    for e in report.palette:
        name = e.name if e.name is not None else "(ignored)"
        if e.source and e.source not in ("generated", "ignored"):
            name += f"  [dim](from {e.source}" + (f" as {_hex(e.named_color)}" if e.named_color else "") + ")[/]"
        row = [_swatch(e.color), e.label, str(e.color) if len(e.color) == 3 else "", f"{e.pixels:,}",
               f"{100 * e.share:.2f} %"]
        if noisy:
            row += [f"{e.colors:,}", str(e.spread)]
        table.add_row(*row, name)
    console.print(table)
    _warn(report.warnings)
    if json_out is not None:
        write_json_atomic(json_out, report.to_dict())
    if report.yaml_path:
        console.print(f"draft dataset YAML written to [bold]{report.yaml_path}[/] (check the class names)")


def _hex(color) -> str:
    from terraseg.data.palette import to_hex

    return to_hex(color)


@data_app.command("convert-masks")
def convert_masks_cmd(
    dataset: Path = typer.Argument(..., help="Dataset YAML describing RGB colour masks."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder for the class-index masks."),
    fmt: Optional[str] = typer.Option(None, "--format", help="png or tif [default: tif for TIFF masks, else png]."),
    strict: bool = typer.Option(False, "--strict", help="Fail on mask colours no class owns (default: ignore index)."),
) -> None:
    """RGB colour masks -> single-band class-index masks (PNG/GeoTIFF) + a dataset YAML for them."""
    from terraseg._io import check_output
    from terraseg.data.convert import convert_masks

    check_output(out, "folder")
    report = convert_masks(dataset, out, fmt, strict=strict)
    console.print(f"{len(report.written)} index masks written to [bold]{report.out_dir}[/]; "
                  f"dataset YAML: {report.yaml_path}")
    if report.unknown:
        share = 100 * report.unknown_pixels / max(report.pixels, 1)
        _warn([f"{report.unknown_pixels} pixel(s) ({share:.3f} %) in {len(report.files_with_unknown)} mask(s) have "
               f"colours no class owns, written as the ignore index: {report.describe_unknown()}"])
    else:
        console.print("every mask colour belongs to a class or to 'ignore'")


@data_app.command("colorize")
def colorize_cmd(
    dataset: Path = typer.Argument(..., help="Dataset YAML giving the class colours."),
    inputs: Optional[list[Path]] = typer.Argument(None, help="Index-mask files or folders [default: the "
                                                             "data set's own masks, when they are index masks]."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder for the colour masks."),
) -> None:
    """Class-index masks -> RGB colour masks for viewing (the reverse of convert-masks)."""
    from terraseg._io import check_output
    from terraseg.data.convert import colorize_masks

    check_output(out, "folder")
    report = colorize_masks(dataset, inputs or None, out)
    console.print(f"{len(report.written)} colour masks written to [bold]{report.out_dir}[/]")
    if report.unknown:
        _warn([f"{report.unknown_pixels} pixel(s) have values without a class (drawn as the ignore colour): "
               f"{report.describe_unknown()}"])


@data_app.command("stats")
def stats_cmd(
    dataset: Path = typer.Argument(..., help="Dataset YAML."),
    split: Optional[Path] = typer.Option(None, "--split", help="Split JSON: compute on one of its lists."),
    subset: str = typer.Option("train", "--subset", help="Which list of --split to use."),
    write: bool = typer.Option(False, "--write", help="Write mean/std into the dataset YAML."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the statistics as JSON."),
) -> None:
    """Exact per-band mean/std (one streaming pass), class pixel frequencies, median-frequency weights."""
    from terraseg._io import check_output, write_json_atomic
    from terraseg.data.spec import load_spec
    from terraseg.data.stats import compute_stats, write_stats_to_yaml

    spec = load_spec(dataset)
    if json_out is not None:
        check_output(json_out, "file")
    if write:
        check_output(spec.path or dataset, "file")
    samples = spec.split_samples(subset, split) if split is not None else None
    st = compute_stats(spec, samples)
    table = Table(title=f"{st.images} image(s), {st.pixels:,} valid pixels")
    for col in ("band", "mean", "std", "min", "max"):
        table.add_column(col, justify="right")
    for b in range(st.bands):
        table.add_row(str(b + 1), f"{st.mean[b]:.4f}", f"{st.std[b]:.4f}", f"{st.min[b]:g}", f"{st.max[b]:g}")
    console.print(table)
    if st.class_names:
        ct = Table(title=f"classes ({st.ignored_pixels:,} ignored pixels)")
        for col, j in (("class", "left"), ("pixels", "right"), ("frequency", "right"), ("weight (median freq.)", "right")):
            ct.add_column(col, justify=j)
        for n, p, f, w in zip(st.class_names, st.class_pixels, st.class_frequency, st.class_weights):
            ct.add_row(n, f"{p:,}", f"{100 * f:.2f} %", f"{w:.4f}")
        console.print(ct)
    if json_out is not None:
        write_json_atomic(json_out, st.to_dict())
        console.print(f"statistics written to {json_out}")
    if write:
        path = write_stats_to_yaml(spec.path or dataset, st)
        console.print(f"mean/std written to [bold]{path}[/]")


@data_app.command("split")
def split_cmd(
    dataset: Path = typer.Argument(..., help="Dataset YAML."),
    out: Path = typer.Option(..., "--out", "-o", help="Split JSON to write."),
    val: float = typer.Option(0.15, help="Fraction of images for validation."),
    test: float = typer.Option(0.15, help="Fraction of images for testing."),
    holdout: int = typer.Option(0, help="Images set apart for visual checks (taken from the test groups)."),
    seed: int = typer.Option(0, help="Random seed (the same seed gives the same split)."),
    by: Optional[str] = typer.Option(None, help="group or file [default: group when the YAML has a group rule]."),
) -> None:
    """Deterministic train/val/test(/holdout) lists, by group so neighbouring pixels do not leak."""
    from terraseg.data.spec import load_spec
    from terraseg._io import check_output
    from terraseg.data.split import make_split, write_split

    check_output(out, "file")
    spec = load_spec(dataset)
    split = make_split(spec, val=val, test=test, holdout=holdout, seed=seed, by=by)
    by_used = by or ("group" if spec.group else "file")
    write_split(split, out, {"dataset": str(dataset), "seed": seed, "by": by_used, "val": val, "test": test})
    for name, keys in split.items():
        groups = sorted({s.group for s in spec.select(keys)}) if by_used == "group" and keys else []
        console.print(f"{name:8s} {len(keys):5d} images" + (f"   groups: {', '.join(groups)}" if groups else ""))
    console.print(f"split written to [bold]{out}[/]")


@data_app.command("chip")
def chip_cmd(
    dataset: Path = typer.Argument(..., help="Dataset YAML."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder for the chips."),
    size: int = typer.Option(512, help="Chip size in pixels."),
    stride: Optional[int] = typer.Option(None, help="Step between chips [default: size, no overlap]."),
    min_valid: float = typer.Option(0.5, help="Skip chips with less than this share of labelled, non-nodata pixels."),
    fmt: Optional[str] = typer.Option(None, "--format", help="tif or png [default: tif for TIFF images, else png]."),
) -> None:
    """Cut images and masks into fixed-size chips (GeoTIFF chips keep their georeference)."""
    from terraseg._io import check_output
    from terraseg.data.chip import chip_dataset

    check_output(out, "folder")
    r = chip_dataset(dataset, out, size, stride, min_valid=min_valid, fmt=fmt)
    console.print(f"{r.chips} chips from {r.images} image(s) written to [bold]{r.out_dir}[/] "
                  f"({r.skipped} skipped as mostly ignore/nodata); dataset YAML: {r.yaml_path}")


@data_app.command("sample")
def sample_cmd(
    out: Path = typer.Argument(..., help="Output folder."),
    n_images: int = typer.Option(8, "--n-images", "-n", help="Number of scenes."),
    size: int = typer.Option(256, help="Scene size in pixels."),
    seed: int = typer.Option(0, help="Random seed."),
    fmt: str = typer.Option("png", "--format", help="png or tif (georeferenced GeoTIFF)."),
) -> None:
    """Generate a small labelled sample procedurally (water, roads, buildings, vegetation, bare land)."""
    from terraseg._io import check_output, removed_on_failure
    from terraseg.data.sample import generate_sample

    check_output(out, "folder")
    with removed_on_failure(out):
        path = generate_sample(out, n_images=n_images, size=size, seed=seed, fmt=fmt)
    console.print(f"{n_images} scenes written to [bold]{out}[/]; dataset YAML: {path}")
