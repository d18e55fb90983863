"""``terraseg change``: transitions, gains and losses between two class maps, and a change raster."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from terraseg.cli import app


@app.command("change")
def change_command(
    map_a: Path = typer.Argument(..., metavar="MAP_A", help="Class map at the earlier date."),
    map_b: Path = typer.Argument(..., metavar="MAP_B", help="Class map at the later date (resampled onto MAP_A's "
                                                            "grid with nearest neighbour when it differs)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    vector: Optional[str] = typer.Option(None, "--vector", help="Also write polygons of the changes: gpkg or geojson."),
    min_area: float = typer.Option(0.0, "--min-area", min=0.0,
                                   help="With --vector: merge/drop change regions smaller than this (m² of ground)."),
) -> None:
    """Compare two class maps: transition matrix in pixels and ground area, gains, losses and net change per class.

    Writes change.tif (COG with colour table, category names like 'vegetation → building' and a QGIS .qml), change.json, transitions.csv, classes.csv and change.md into --out, and with --vector the change polygons. The change raster can be assessed like any class map with `terraseg assess`.
    """  # noqa: E501
    from rich.console import Console
    from rich.table import Table

    from terraseg._io import check_output, removed_on_failure
    from terraseg.change.compare import compare_maps

    check_output(out, "folder")
    if vector is not None and vector not in ("gpkg", "geojson"):
        from terraseg.errors import ConfigError

        raise ConfigError(f"--vector {vector!r}: choose gpkg or geojson")
    with removed_on_failure(out):
        report = compare_maps(map_a, map_b, out, vector=vector, min_area=min_area, progress=True)
    console = Console()
    if report["resampled"]:
        Console(stderr=True).print(f"[yellow]note:[/] {map_b} is on another grid; it was resampled onto {map_a}'s "
                                   "grid with nearest neighbour", highlight=False, soft_wrap=True)
    georef = report["area_unit"] == "m2"
    unit = "ha" if georef else "px"
    table = Table(title="change per class", title_justify="left")
    for head in ("class", f"A ({unit})", f"B ({unit})", "gain", "loss", "net"):
        table.add_column(head, justify="left" if head == "class" else "right")
    for row in report["per_class"]:
        if georef:
            vals = [row["area_a_ha"], row["area_b_ha"], row["gain_ha"], row["loss_ha"], row["net_ha"]]
            table.add_row(row["name"], *[f"{v:,.2f}" for v in vals])
        else:
            table.add_row(row["name"], *[f"{v:,}" for v in (row["pixels_a"], row["pixels_b"], row["gain_pixels"],
                                                             row["loss_pixels"],
                                                             row["gain_pixels"] - row["loss_pixels"])])
    console.print(table)
    console.print(f"change.tif, change.json, transitions.csv, classes.csv and change.md written to {out}",
                  highlight=False, soft_wrap=True)
