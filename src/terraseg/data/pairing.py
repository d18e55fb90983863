"""Pairing images with masks: folder and glob patterns -> ``{pairing key: file}``.

Images and masks pair by what the wildcards match (``Tile 1/images/image_part_001.jpg`` and
``Tile 1/masks/image_part_001.png`` both match ``("1", "image_part_001")``); for a folder, by the
path below it without the suffix.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from terraseg.data.raster import RASTER_SUFFIXES, is_raster_file, list_rasters
from terraseg.errors import DataError

_GLOB_CHARS = re.compile(r"[*?\[]")


def relkey(p: Path, root: Path) -> str:
    try:
        return p.relative_to(root).as_posix()
    except ValueError:
        return p.as_posix()


def group_of(key: str, group_re: re.Pattern | None) -> str:
    if group_re is None:
        return key
    m = group_re.search(key)
    if m is None:
        return key
    return m.group(1) if m.groups() and m.group(1) is not None else m.group(0)


def _glob_regex(pattern: str) -> re.Pattern:
    """Translate a glob into a regex capturing each wildcard (``**`` captures whole folders)."""
    parts = pattern.split("/")
    out = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "**":
            out.append("(.*)" if last else "((?:[^/]+/)*)")
            continue
        seg, j = [], 0
        while j < len(part):
            ch = part[j]
            if ch == "*":
                seg.append("([^/]*)")
            elif ch == "?":
                seg.append("([^/])")
            elif ch == "[":
                end = part.find("]", j + 2 if j + 1 < len(part) and part[j + 1] in "!^" else j + 1)
                if end == -1:
                    seg.append(re.escape(ch))
                else:
                    body = part[j + 1:end]
                    if body.startswith("!"):
                        body = "^" + body[1:]
                    seg.append("([" + body.replace("\\", "\\\\") + "])")
                    j = end
            else:
                seg.append(re.escape(ch))
            j += 1
        out.append("".join(seg) + ("" if last else "/"))
    return re.compile("^" + "".join(out) + "$")


def _pair_key(captures: Sequence[str]) -> tuple[str, ...]:
    comps: list[str] = []
    for c in captures:
        comps.extend(x for x in c.split("/") if x)
    if comps:
        last = comps[-1]
        suffix = Path(last).suffix
        if suffix.lower() in RASTER_SUFFIXES:
            comps[-1] = last[: -len(suffix)]
    return tuple(comps)


def resolve_patterns(root: Path, patterns: list[str], what: str) -> dict[tuple[str, ...], Path]:
    """``{pairing key: file}`` for a list of folder/glob patterns relative to ``root``."""
    found: dict[tuple[str, ...], Path] = {}
    for pattern in patterns:
        pat = pattern.replace("\\", "/").rstrip("/")
        is_glob = bool(_GLOB_CHARS.search(pat))
        if not is_glob:
            target = (root / pat)
            if target.is_file():
                files = [target]
                glob_pat = None
                base = target.parent
            elif target.is_dir():
                base = target
                files = list_rasters(base)
                glob_pat = "**/*"
            else:
                raise DataError(f"{what} folder {pat!r} does not exist", target)
            regex = _glob_regex(glob_pat) if glob_pat else None
        else:
            base = root
            files = sorted(p for p in root.glob(pat) if is_raster_file(p))
            regex = _glob_regex(pat)
        for f in files:
            rel = f.relative_to(base).as_posix()
            if any(part.startswith(".") and part not in (".", "..") for part in rel.split("/")):
                continue  # hidden and temporary files
            if regex is None:
                key = _pair_key([Path(rel).name])
            else:
                m = regex.match(rel)
                key = _pair_key(m.groups()) if m else _pair_key([rel])
            if key in found and found[key] != f:
                raise DataError(f"{what} {found[key].name} and {f.name} pair to the same name "
                                f"{'/'.join(key)!r}; keep one of them", f.parent)
            found[key] = f
    return found
