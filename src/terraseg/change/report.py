"""Files of a change comparison: ``change.json``, ``transitions.csv`` (one row per transition),
``classes.csv`` (gains, losses and net change per class) and ``change.md`` (readable on its own).
Each file is written atomically."""

from __future__ import annotations

import csv
import io
from pathlib import Path


def transitions_csv(report: dict) -> str:
    """``from, to, pixels, m2, ha`` for every transition that occurs (persistence included)."""
    names = report["classes"]
    t = report["transitions"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["value", "from", "to", "pixels", "m2", "ha"])
    k = len(names)
    for i in range(k):
        for j in range(k):
            px = t["pixels"][i][j]
            if px:
                m2 = t["m2"][i][j] if t["m2"] is not None else None
                w.writerow([i * k + j, names[i], names[j], px, "" if m2 is None else f"{m2:.2f}",
                            "" if m2 is None else f"{m2 / 1e4:.4f}"])
    return buf.getvalue()


CLASS_COLUMNS = ("index", "name", "pixels_a", "pixels_b", "gain_pixels", "loss_pixels", "area_a_ha", "area_b_ha",
                 "gain_ha", "loss_ha", "net_ha", "net_percent_of_a", "area_a_m2", "area_b_m2", "gain_m2", "loss_m2",
                 "net_m2", "persistence_m2")


def classes_csv(report: dict) -> str:
    present = [c for c in CLASS_COLUMNS if any(c in row for row in report["per_class"])]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(present)
    for row in report["per_class"]:
        w.writerow(["" if row.get(c) is None else (f"{row[c]:.4f}" if isinstance(row[c], float) else row[c])
                    for c in present])
    return buf.getvalue()


def _esc(text) -> str:
    return str(text).replace("|", "\\|")


def change_markdown(report: dict) -> str:
    georef = report["area_unit"] == "m2"
    unit = "ha" if georef else "pixels"
    names = [_esc(n) for n in report["classes"]]
    matrix = report["transitions"]["ha"] if georef else report["transitions"]["pixels"]
    fmt = (lambda v: f"{v:,.2f}") if georef else (lambda v: f"{int(v):,}")
    lines = ["# Change between two class maps", "",
             f"- Date A: `{report['map_a']}`", f"- Date B: `{report['map_b']}`",
             f"- Grid: map A's, {report['width']:,} x {report['height']:,} pixels, CRS {report['crs'] or 'none'}"]
    if report["resampled"]:
        lines.append("- Map B is on another grid: it was resampled onto map A's grid with nearest neighbour "
                     "(GDAL WarpedVRT), which keeps class values but moves class edges by up to half a pixel.")
    lines.append("- Ground area: " + {"planar": "planar (projected CRS of constant scale)",
                                       "geodesic": "geodesic, on the CRS's ellipsoid"}.get(report["area_method"],
                                                                                       "not available (pixels)"))
    total = report["compared_m2"] / 1e4 if georef else report["compared_pixels"]
    changed = report["changed_m2"] / 1e4 if georef else report["changed_pixels"]
    lines.append(f"- Compared: {fmt(total)} {unit}; changed: {fmt(changed)} {unit}"
                 + (f" ({100 * changed / total:.2f} %)" if total else ""))
    lines += ["", "Areas are pixel counts of the maps (not error-adjusted): for areas with confidence intervals, "
              "sample the change map with `terraseg assess design` and estimate with `terraseg assess areas`.", "",
              "## Gains, losses and net change", "",
              f"| class | date A ({unit}) | date B ({unit}) | gain | loss | net | net (% of A) |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for row in report["per_class"]:
        if georef:
            vals = [row["area_a_ha"], row["area_b_ha"], row["gain_ha"], row["loss_ha"], row["net_ha"]]
        else:
            vals = [row["pixels_a"], row["pixels_b"], row["gain_pixels"], row["loss_pixels"],
                    row["gain_pixels"] - row["loss_pixels"]]
        pct = row["net_percent_of_a"]
        lines.append(f"| {_esc(row['name'])} | " + " | ".join(fmt(v) for v in vals)
                     + f" | {'–' if pct is None else f'{pct:+.1f} %'} |")
    lines += ["", f"## Transition matrix ({unit})", "", "Rows: class at date A; columns: class at date B.", "",
              "| A \\ B | " + " | ".join(names) + " | total |", "|---|" + "---:|" * (len(names) + 1)]
    for name, row in zip(names, matrix):
        lines.append(f"| {name} | " + " | ".join(fmt(v) for v in row) + f" | {fmt(sum(row))} |")
    lines.append("| total | " + " | ".join(fmt(sum(c)) for c in zip(*matrix)) + f" | {fmt(sum(map(sum, matrix)))} |")
    lines += ["", "## Files", ""] + [f"- {k}: `{Path(v).name}`" for k, v in report["outputs"].items()] + [""]
    return "\n".join(lines)


def write_change_report(report: dict, out_dir: str | Path) -> dict[str, Path]:
    """Write ``change.json``, ``transitions.csv``, ``classes.csv`` and ``change.md`` into ``out_dir``."""
    from terraseg._io import write_json_atomic, write_text_atomic

    out = Path(out_dir)
    paths = {"json": out / "change.json", "transitions": out / "transitions.csv", "classes": out / "classes.csv",
             "markdown": out / "change.md"}
    report["outputs"].update({k: str(v) for k, v in paths.items()})
    write_text_atomic(paths["transitions"], transitions_csv(report))
    write_text_atomic(paths["classes"], classes_csv(report))
    write_text_atomic(paths["markdown"], change_markdown(report))
    write_json_atomic(paths["json"], report)
    return paths
