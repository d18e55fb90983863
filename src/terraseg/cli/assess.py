"""``terraseg assess ...``: sample design and accuracy-adjusted areas of a class map (Olofsson et al. 2014)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from terraseg.cli import app

assess_app = typer.Typer(help="Accuracy and area of a class map: sample design, error-adjusted areas with 95 % "
                              "confidence intervals (Olofsson et al. 2014).", no_args_is_help=True)
app.add_typer(assess_app, name="assess")


@assess_app.command("design")
def design_command(
    class_map: Path = typer.Argument(..., metavar="MAP", help="Class map (GeoTIFF of class indices, e.g. from "
                                                              "`terraseg predict` or `terraseg change`)."),
    out: Path = typer.Option(..., "--out", "-o", help="Points file to write: .gpkg (with a QGIS .qml beside it), "
                                                      ".geojson or .csv."),
    n: Optional[int] = typer.Option(None, "--n", min=1, help="Total sample size (default: from --target-se)."),
    target_se: Optional[float] = typer.Option(None, "--target-se",
                                              help="Target standard error of overall accuracy [default: 0.01]."),
    expected_ua: Optional[List[str]] = typer.Option(None, "--expected-ua",
                                                    help="Expected user's accuracy of a class, CLASS=0.8 (repeat); "
                                                         "others 0.8. Used by --target-se."),
    min_per_class: int = typer.Option(50, "--min-per-class", min=0, help="Fewest points per class."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same points)."),
) -> None:
    """Draw a stratified random sample of MAP (strata = map classes) for labelling.

    Points at pixel centres in the map's CRS with the fields id, map_class and an empty reference; the .qml makes reference a drop-down of the class names in QGIS. Sample size from --n, or from --target-se with the user's accuracies expected (Olofsson et al. 2014, eq. 13); allocation proportional to area with --min-per-class.
    """  # noqa: E501
    from rich.console import Console
    from rich.table import Table

    from terraseg._io import check_output, removed_on_failure
    from terraseg.assess.classmap import open_class_map
    from terraseg.assess.design import design_sample, parse_expected_ua

    check_output(out, "file")
    expected = None
    if expected_ua:
        cmap = open_class_map(class_map)
        if cmap.names is None:
            from terraseg.assess.classmap import class_areas

            cmap.names = class_areas(cmap).names
        expected = parse_expected_ua(expected_ua, cmap.names)
    with removed_on_failure(out):
        design = design_sample(class_map, out, n=n, target_se=target_se, expected_ua=expected,
                               min_per_class=min_per_class, seed=seed, progress=True)
    console = Console()
    how = (f"from a target standard error of {design['target_se']}" if design["chosen_by"] == "target_se"
           else "as asked")
    table = Table(title=f"{design['n']:,} points ({how}), seed {design['seed']}", title_justify="left")
    for head in ("class", "pixels", "area share", "expected UA", "points"):
        table.add_column(head, justify="left" if head == "class" else "right")
    for s in design["strata"]:
        if s["pixels"]:
            table.add_row(s["name"], f"{s['pixels']:,}", f"{100 * s['weight']:.2f} %",
                          f"{s['expected_users_accuracy']:.2f}", f"{s['points']:,}")
    console.print(table)
    console.print(f"points written to {out}; label the 'reference' field, then run "
                  f"terraseg assess areas {class_map} {out} --out DIR", highlight=False, soft_wrap=True)


@assess_app.command("areas")
def areas_command(
    class_map: Path = typer.Argument(..., metavar="MAP", help="The class map that was sampled."),
    reference: Path = typer.Argument(..., metavar="POINTS",
                                     help="Labelled points (.gpkg, .geojson, or .csv with x/y in the map's CRS), "
                                          "or a full-coverage reference raster (.tif) for census figures."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    reference_field: str = typer.Option("reference", "--reference-field",
                                        help="Field holding the reference labels (class names or indices)."),
    x_field: str = typer.Option("x", "--x-field", help="x column of a CSV."),
    y_field: str = typer.Option("y", "--y-field", help="y column of a CSV."),
) -> None:
    """Accuracy and error-adjusted class areas of MAP from labelled POINTS.

    Writes assessment.json, assessment.csv, error_matrix.csv and assessment.md into --out: the error matrix in sample counts and estimated area proportions, overall, user's and producer's accuracy and error-adjusted areas (geodesic m² and ha) with 95 % confidence intervals (Olofsson et al. 2014). A reference raster gives the exact (census) figures.
    """  # noqa: E501
    from rich.console import Console
    from rich.table import Table

    from terraseg._io import check_output, removed_on_failure
    from terraseg.assess.estimate import estimate_areas

    check_output(out, "folder")
    with removed_on_failure(out):
        result = estimate_areas(class_map, reference, out, reference_field=reference_field, x_field=x_field,
                                y_field=y_field, progress=True)
    console = Console()
    census = result["method"] == "census"
    georef = result["area_unit"] == "m2"
    oa = result["overall_accuracy"]
    ci = result["overall_accuracy_ci95"]
    table = Table(title=f"overall accuracy {100 * oa:.1f} %" + ("" if ci is None else f" ± {100 * ci:.1f}")
                  + (" (census)" if census else ""), title_justify="left")
    unit = "ha" if georef else "px"
    for head in ("class", f"map area ({unit})", f"area ({unit})", "user's acc.", "producer's acc."):
        table.add_column(head, justify="left" if head == "class" else "right")

    def pct(v, c):
        return "–" if v is None else f"{100 * v:.1f}" + ("" if c is None else f" ± {100 * c:.1f}")

    for row in result["classes"]:
        map_area = row["map_area_ha"] if georef else row["map_pixels"]
        area = row["area_ha"] if georef else row["area_pixels"]
        half = row.get("area_ci95_ha" if georef else "area_ci95_pixels")
        table.add_row(row["name"], f"{map_area:,.1f}", "–" if area is None else
                      f"{area:,.1f}" + ("" if half is None else f" ± {half:,.1f}"),
                      pct(row["users_accuracy"], row.get("users_accuracy_ci95")),
                      pct(row["producers_accuracy"], row.get("producers_accuracy_ci95")))
    console.print(table)
    console.print(f"assessment.json, assessment.csv, error_matrix.csv and assessment.md written to {out}",
                  highlight=False, soft_wrap=True)
