"""The draft dataset YAML that ``terraseg data inspect`` writes from what it found."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from terraseg.data.palette import to_hex

if TYPE_CHECKING:
    from terraseg.data.inspect import InspectReport


def draft_spec(report: InspectReport) -> dict[str, Any]:
    """The draft dataset mapping (root is filled in relative to the YAML when written)."""
    def one_or_list(patterns):
        return patterns[0] if len(patterns) == 1 else list(patterns)

    d: dict[str, Any] = {"name": report.root.name, "root": str(report.root),
                         "images": one_or_list(report.images_patterns), "masks": one_or_list(report.masks_patterns),
                         "bands": report.bands or 3}
    classes = [e for e in report.palette if e.name is not None]
    if report.mask_type == "rgb":
        d["classes"] = [{"name": e.name, "color": to_hex(e.named_color or e.color)} for e in classes]
        ignored = [e.label for e in report.palette if e.name is None]
    else:
        d["classes"] = [{"name": e.name, "value": int(e.color[0])} for e in classes]
        ignored = [int(e.color[0]) for e in report.palette if e.name is None]
    if ignored:
        d["ignore"] = ignored
    d["ignore_index"] = 255
    if report.mask_channel is not None:
        d["mask_channel"] = report.mask_channel
    if report.tolerance:
        d["color_tolerance"] = report.tolerance
    if report.group:
        d["group"] = report.group
    return d


def write_draft(report: InspectReport, out_yaml: str | Path) -> Path:
    """Write the draft YAML (root relative to the YAML's folder), with the pixel shares as comments."""
    from terraseg._io import write_text_atomic
    from terraseg.data.spec import _relpath, dump_yaml, spec_from_dict

    out = Path(out_yaml)
    d = dict(report.draft)
    d["root"] = _relpath(report.root, out.parent.resolve())
    spec_from_dict(dict(d, root=str(report.root)), base_dir=report.root)  # the draft must be valid
    lines = dump_yaml(d).splitlines()
    shares = {to_hex(e.named_color) if e.named_color else e.label: e for e in report.palette}
    out_lines = [f"# Draft dataset description written by `terraseg data inspect` from {report.root}.",
                 "# Check the class names: colours not named by dataset.yaml, classes.json or class_dict.csv are "
                 "called class_N.",
                 f"# {report.n_pairs} image/mask pairs; shares are of all mask pixels."]
    for line in lines:
        m = re.search(r"(?:color|value): '?(#[0-9A-F]{6}|\d+)'?", line) if "name:" in line else None
        if m and m.group(1) in shares:
            e = shares[m.group(1)]
            line = f"{line}  # {100 * e.share:.2f} % ({e.pixels} px)" + (
                f", {e.colors} colours within {e.spread}" if e.colors > 1 else "")
        out_lines.append(line)
    return write_text_atomic(out, "\n".join(out_lines) + "\n")


__all__ = ["draft_spec", "write_draft"]
