"""Files of an assessment: ``assessment.json``, ``assessment.csv`` (per class), ``error_matrix.csv`` and a
markdown report (``assessment.md``) readable on its own: inputs, method and formulas' reference, the
error matrix in sample counts and in estimated area proportions, accuracies and areas with 95 %
confidence intervals, and every warning met on the way. Each file is written atomically.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

CLASS_COLUMNS = ("index", "name", "map_pixels", "map_area_ha", "sample_points", "area_ha", "area_ci95_ha",
                 "users_accuracy", "users_accuracy_ci95", "producers_accuracy", "producers_accuracy_ci95",
                 "map_area_m2", "area_m2", "area_ci95_m2", "area_pixels", "area_ci95_pixels")


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1e6 else f"{value:.2f}"
    return str(value)


def assessment_csv(result: dict) -> str:
    """One row per class with the figures of :data:`CLASS_COLUMNS` present in ``result``."""
    present = [c for c in CLASS_COLUMNS if any(c in row for row in result["classes"])]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(present)
    for row in result["classes"]:
        w.writerow([_cell(row.get(c)) for c in present])
    return buf.getvalue()


def error_matrix_csv(result: dict) -> str:
    """The error matrix twice: sample counts (pixels for a census), then estimated area proportions."""
    m = result["error_matrix"]
    names = m["classes"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    for table, label in ((m["counts"], "counts"), (m["proportions"], "proportions")):
        w.writerow([f"{label}: map \\ reference", *names, "total"])
        for name, row in zip(names, table):
            w.writerow([name, *[_cell(v) for v in row], _cell(sum(row))])
        w.writerow(["total", *[_cell(sum(col)) for col in zip(*table)], _cell(sum(map(sum, table)))])
        w.writerow([])
    return buf.getvalue()


def _pct(v, ci=None) -> str:
    if v is None:
        return "–"
    return f"{100 * v:.1f} %" + (f" ± {100 * ci:.1f}" if ci is not None else "")


def _ha(v, ci=None) -> str:
    if v is None:
        return "–"
    return f"{v:,.1f}" + (f" ± {ci:,.1f}" if ci is not None else "")


def _md_escape(text) -> str:
    return str(text).replace("|", "\\|")


def assessment_markdown(result: dict) -> str:
    """The report as markdown (see the module docstring)."""
    census = result["method"] == "census"
    georef = result["area_unit"] == "m2"
    m = result["error_matrix"]
    names = [_md_escape(n) for n in m["classes"]]
    unit = "ha" if georef else "pixels"
    lines = ["# Accuracy assessment and area estimate", ""]
    lines.append(f"- Map: `{result['map']}`")
    if census:
        lines.append(f"- Reference: full-coverage raster `{result['reference_raster']}` "
                     f"({result['pixels_compared']:,} pixels compared"
                     + ("; resampled onto the map's grid with nearest neighbour" if result.get("resampled") else "")
                     + ")")
    else:
        s = result["points_skipped"]
        skipped = ", ".join(f"{v:,} {k.replace('_', ' ')}" for k, v in s.items() if v) or "none"
        lines.append(f"- Reference: sample points `{result['points']}`, field `{result['reference_field']}`: "
                     f"{result['points_read']:,} read, {result['points_used']:,} used (skipped: {skipped})")
    lines.append(f"- CRS: {result['crs'] or 'none (pixel units)'}; ground area: "
                 + ({"planar": "planar (projected CRS of constant scale)",
                     "geodesic": "geodesic, on the CRS's ellipsoid"}.get(result["area_method"], "not available")))
    if georef:
        lines.append(f"- Total mapped area: {result['total_area_ha']:,.1f} ha")
    lines += ["", "## Method", ""]
    if census:
        lines.append("The reference covers the whole map, so the error matrix is known exactly (a census): "
                     "accuracies and areas below have no sampling error and no confidence intervals.")
    else:
        lines.append("Stratified random sample, strata = map classes. Estimators of Olofsson et al. (2014): "
                     "error matrix in estimated area proportions p_ij = W_i n_ij / n_i. (eq. 4); overall accuracy "
                     "(eq. 1, variance eq. 5), user's accuracy (eq. 2, eq. 6), producer's accuracy (eq. 3, eq. 7); "
                     "error-adjusted area A p_.k with standard error from eq. 10-11. W_i is the mapped area "
                     "share of class i (ground area). Intervals are 95 % confidence intervals, ± 1.96 x SE.")
    lines += ["", f"Overall accuracy: **{_pct(result['overall_accuracy'], result['overall_accuracy_ci95'])}**", ""]
    lines += ["## Classes", ""]
    head = ["class", f"map area ({unit})"]
    if not census:
        head.append("points")
    head += [f"error-adjusted area ({unit})" if not census else f"reference area ({unit})", "user's accuracy",
             "producer's accuracy"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
    for row in result["classes"]:
        if georef:
            map_area, area, ci = row["map_area_ha"], row["area_ha"], row.get("area_ci95_ha")
        else:
            map_area, area, ci = float(row["map_pixels"]), row["area_pixels"], row.get("area_ci95_pixels")
        cells = [_md_escape(row["name"]), _ha(map_area)]
        if not census:
            cells.append(f"{row['sample_points']:,}")
        cells += [_ha(area, ci), _pct(row["users_accuracy"], row.get("users_accuracy_ci95")),
                  _pct(row["producers_accuracy"], row.get("producers_accuracy_ci95"))]
        lines.append("| " + " | ".join(cells) + " |")
    for title, table, fmt in ((("Error matrix, pixels" if census else "Error matrix, sample counts"), m["counts"],
                               lambda v: f"{int(v):,}"),
                              ("Error matrix, estimated area proportions", m["proportions"], lambda v: f"{v:.4f}")):
        lines += ["", f"## {title}", "", "Rows: map class; columns: reference class.", ""]
        lines.append("| map \\ reference | " + " | ".join(names) + " | total |")
        lines.append("|---|" + "---:|" * (len(names) + 1))
        for name, row in zip(names, table):
            lines.append(f"| {name} | " + " | ".join(fmt(v) for v in row) + f" | {fmt(sum(row))} |")
        lines.append("| total | " + " | ".join(fmt(sum(c)) for c in zip(*table)) + f" | {fmt(sum(map(sum, table)))} |")
    if result.get("notes"):
        lines += ["", "## Warnings", ""] + [f"- {_md_escape(n)}" for n in result["notes"]]
    lines += ["", "## Reference", "", result["citation"], ""]
    return "\n".join(lines)


def write_assessment(result: dict, out_dir: str | Path) -> dict[str, Path]:
    """Write the four files of an assessment into ``out_dir``; returns their paths by kind."""
    from terraseg._io import write_json_atomic, write_text_atomic

    out = Path(out_dir)
    paths = {"json": out / "assessment.json", "csv": out / "assessment.csv", "matrix": out / "error_matrix.csv",
             "markdown": out / "assessment.md"}
    write_json_atomic(paths["json"], result)
    write_text_atomic(paths["csv"], assessment_csv(result))
    write_text_atomic(paths["matrix"], error_matrix_csv(result))
    write_text_atomic(paths["markdown"], assessment_markdown(result))
    return paths
