"""Class names shipped with a data set: ``dataset.yaml``, ``classes.json`` and ``class_dict.csv``.

Each file gives ``{colour: name}`` (RGB masks) or ``{(value,): name}`` (index masks). ``inspect`` names
the classes it finds from them (black included, when a file names it) and reports every file whose
colours disagree with the masks.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from terraseg.data.palette import parse_color
from terraseg.errors import DataError
from terraseg.schemas._validate import class_name_problem


@dataclass
class ClassNames:
    """Names from one file: ``{(r, g, b) or (value,): name}``, or the problem that made it unusable."""

    path: Path
    colors: dict[tuple, str] = field(default_factory=dict)
    values: dict[tuple, str] = field(default_factory=dict)
    problem: str | None = None


def _from_entries(entries, path: Path) -> ClassNames:
    out = ClassNames(path)
    if isinstance(entries, dict):  # {name: colour or value or {color:, value:}}
        entries = [{"name": k, **(v if isinstance(v, dict) else {"value": v} if isinstance(v, int) else {"color": v})}
                   for k, v in entries.items()]
    if not isinstance(entries, list):
        out.problem = f"{path.name} lists no classes"
        return out
    for e in entries:
        if not isinstance(e, dict):
            continue
        name = e.get("title") or e.get("name")
        if not name:
            continue
        problem = class_name_problem(name if isinstance(name, str) else str(name))
        if problem:
            raise DataError(problem, path)
        try:
            if e.get("color") is not None:
                out.colors[parse_color(e["color"])] = str(name)
        except (ValueError, TypeError):
            pass
        v = e.get("value")
        if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
            out.values[(v,)] = str(name)
    if not out.colors and not out.values:
        out.problem = f"{path.name} lists no classes with a name and a colour or value"
    return out


def _read_yaml(path: Path) -> ClassNames:
    from terraseg.errors import ConfigError
    from terraseg.schemas._validate import parse_yaml

    try:  # duplicate keys are refused like everywhere else
        data = parse_yaml(path.read_text(encoding="utf-8"), path)
    except (OSError, UnicodeDecodeError, ConfigError) as exc:
        return ClassNames(path, problem=f"{path.name} is not readable YAML ({' '.join(str(exc).split())[:120]})")
    if not isinstance(data, dict) or not data.get("classes"):
        return ClassNames(path, problem=f"{path.name} has no 'classes'")
    return _from_entries(data["classes"], path)


def _read_json(path: Path) -> ClassNames:
    from terraseg.schemas._validate import parse_json

    try:
        data = parse_json(path.read_text(encoding="utf-8"), error=DataError)
    except (OSError, UnicodeDecodeError, DataError) as exc:
        return ClassNames(path, problem=f"{path.name} is not readable JSON ({exc})")
    return _from_entries(data.get("classes", data) if isinstance(data, dict) else data, path)


def _read_csv(path: Path) -> ClassNames:
    """DeepGlobe-style ``name,r,g,b`` rows."""
    try:
        # a file object, not split lines: a quoted name may hold a line break (then refused, not cut)
        rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline="")))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        return ClassNames(path, problem=f"{path.name} is not readable CSV ({exc})")
    entries = []
    for row in rows:
        low = {str(k).strip().lower(): (v or "").strip() for k, v in row.items() if k}
        try:
            entries.append({"name": low.get("name"), "color": [int(low["r"]), int(low["g"]), int(low["b"])]})
        except (KeyError, ValueError):
            continue
    return _from_entries(entries, path)


SOURCES = (("dataset.yaml", _read_yaml), ("classes.json", _read_json), ("class_dict.csv", _read_csv))


def read_class_names(root: Path) -> list[ClassNames]:
    """The name files present in ``root``, in order of precedence."""
    return [reader(root / name) for name, reader in SOURCES if (root / name).is_file()]


__all__ = ["ClassNames", "read_class_names"]
