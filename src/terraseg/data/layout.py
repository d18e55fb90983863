"""Layout discovery: where the images and masks of a folder are, as ``images``/``masks`` glob patterns.

Recognised, in this order:

1. a ``dataset.yaml`` in the folder: its ``images``/``masks`` (and ``group``) are used as they are;
2. an image folder beside a mask folder (``images/`` + ``masks/``, ``img/`` + ``gt/`` ...), at the top or
   one pair per sub-folder (``Tile 1/images`` + ``Tile 1/masks``, then a ``group`` rule is suggested);
3. two sibling trees holding the same relative paths (``sat/a/b.tif`` + ``labels/a/b.tif``);
4. one flat folder of pairs told apart by an affix: ``N_sat.jpg`` + ``N_mask.png``,
   ``N_image.tif`` + ``N_label.tif``, ``N_RGB.tif`` + ``N_label.tif``, ``img_N.png`` + ``gt_N.png``,
   ``N.jpg`` + ``N.png`` ...

Files are paired by a "core" name: the stem without one affix (a leading word such as ``img``/``gt``,
or a trailing ``_word``/``-word``). Every way of splitting names is scored by how many cores an image
set shares with a mask set; the best wins, and its side is told by the words (``mask``, ``label``, ``gt``
... mark masks) or, failing that, by the file type (JPEG is never a mask).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from terraseg.data.raster import list_rasters
from terraseg.errors import DataError

IMAGE_DIR_NAMES = ("images", "image", "imgs", "img", "rgb", "scenes", "sat", "img_dir")
MASK_DIR_NAMES = ("masks", "mask", "labels", "label", "gt", "ground_truth", "annotations", "annotation", "targets",
                  "ann_dir")
#: words that mark a file or folder as holding masks / images
MASK_WORDS = {"mask", "masks", "label", "labels", "lbl", "gt", "groundtruth", "ground_truth", "seg", "segmentation",
              "annotation", "annotations", "ann", "target", "targets", "class", "classes", "cls", "y"}
IMAGE_WORDS = {"sat", "image", "images", "img", "imgs", "im", "rgb", "ortho", "tile", "scene", "photo", "x", "input",
               "rgbir", "irrg", "rgbn", "ms", "s2"}
_JPEG = {".jpg", ".jpeg"}


@dataclass
class Layout:
    """Patterns (relative to ``root``) found by :func:`find_layout`, and how they were found."""

    root: Path
    images: list[str]
    masks: list[str]
    group: str | None = None
    how: str = ""


@dataclass(frozen=True)
class _Group:
    """Files of one folder (or tree) that share one affix and one file type."""

    prefix: str
    suffix: str
    ext: str
    folder: str  # glob of the folder, relative to the root ("" for the root itself)
    recursive: bool

    def pattern(self) -> str:
        name = f"{_glob_escape(self.prefix)}*{_glob_escape(self.suffix)}{_glob_escape(self.ext)}"
        parts = [p for p in (self.folder, "**" if self.recursive else "", name) if p]
        return "/".join(parts)

    @property
    def words(self) -> set[str]:
        text = f"{self.prefix} {self.suffix} {Path(self.folder).name if self.folder else ''}".lower()
        return set(re.split(r"[^a-z0-9]+", text)) - {""}


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def _raster_files(folder: Path, recursive: bool = False) -> list[Path]:
    return list_rasters(folder, recursive=recursive)


def _affixes(stem: str) -> list[tuple[str, str, str]]:
    """``(prefix, suffix, core)`` ways of reading a file stem; the whole stem is always one of them."""
    out = [("", "", stem)]
    m = re.fullmatch(r"(.+?)([_\-. ][A-Za-z][A-Za-z0-9]*)", stem)  # N_sat, N-label, N_RGB
    if m:
        out.append(("", m.group(2), m.group(1)))
    m = re.fullmatch(r"([A-Za-z][A-Za-z0-9]*[_\-. ])(.+)", stem)  # img_N, gt-N
    if m:
        out.append((m.group(1), "", m.group(2)))
    m = re.fullmatch(r"([A-Za-z]+)(\d.*)", stem)  # img001, gt001
    if m:
        out.append((m.group(1), "", m.group(2)))
    return out


def _groups(folder: Path, folder_glob: str, recursive: bool) -> dict[_Group, dict[str, Path]]:
    """``{group: {pairing key: file}}`` of the raster files in ``folder``."""
    out: dict[_Group, dict[str, Path]] = {}
    files = _raster_files(folder, recursive)
    nested = any(f.parent != folder for f in files)  # "**/" only where files lie below the folder
    for f in files:
        sub = f.parent.relative_to(folder).as_posix()
        for prefix, suffix, core in _affixes(f.stem):
            g = _Group(prefix, suffix, f.suffix, folder_glob, nested)
            key = core if sub == "." else f"{sub}/{core}"
            out.setdefault(g, {})[key] = f
    return out


def _best_pair(groups_a: dict[_Group, dict[str, Path]], groups_b: dict[_Group, dict[str, Path]]
               ) -> tuple[int, _Group, _Group] | None:
    """The two groups (one per side) sharing most pairing keys, with disjoint files; ``None`` if none share."""
    best = None
    for ga, fa in groups_a.items():
        for gb, fb in groups_b.items():
            if ga == gb:
                continue
            shared = fa.keys() & fb.keys()
            if not shared or any(fa[k] == fb[k] for k in shared):
                continue
            # more pairs first, then the plainer split, then affixes made of known words
            known = len((ga.words | gb.words) & (MASK_WORDS | IMAGE_WORDS))
            score = (len(shared), -len(ga.prefix + ga.suffix + gb.prefix + gb.suffix), known)
            if best is None or score > best[0]:
                best = (score, ga, gb)
    return None if best is None else (best[0][0], best[1], best[2])


def _orient(a: _Group, b: _Group) -> tuple[_Group, _Group] | None:
    """``(image group, mask group)``, or ``None`` when nothing tells which side holds the masks."""
    a_mask, b_mask = bool(a.words & MASK_WORDS), bool(b.words & MASK_WORDS)
    if a_mask != b_mask:
        return (b, a) if a_mask else (a, b)
    a_img, b_img = bool(a.words & IMAGE_WORDS), bool(b.words & IMAGE_WORDS)
    if a_img != b_img:
        return (a, b) if a_img else (b, a)
    a_jpg, b_jpg = a.ext.lower() in _JPEG, b.ext.lower() in _JPEG
    if a_jpg != b_jpg:
        return (a, b) if a_jpg else (b, a)
    return None


# ---------------------------------------------------------------------------- the layouts
def _from_dataset_yaml(root: Path) -> Layout | None:
    path = root / "dataset.yaml"
    if not path.is_file():
        return None
    from terraseg.errors import ConfigError
    from terraseg.schemas._validate import parse_yaml

    try:
        data = parse_yaml(path.read_text(encoding="utf-8"), path)
    except (ConfigError, OSError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or not data.get("images") or not data.get("masks"):
        return None
    base = (root / data["root"]).resolve() if isinstance(data.get("root"), str) else root
    group = data.get("group") if isinstance(data.get("group"), str) else None
    return Layout(base, _as_list(data["images"]), _as_list(data["masks"]), group, how=f"patterns from {path.name}")


def _as_list(value) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _folder_pairs(root: Path) -> Layout | None:
    """Image folder beside a mask folder, at the top or one pair per sub-folder."""
    pairs: list[tuple[str, str, str]] = []  # (parent rel path, image dir name, mask dir name)
    for dirpath, dirnames, _ in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        lower = {d.lower(): d for d in dirnames}
        img = next((lower[n] for n in IMAGE_DIR_NAMES if n in lower), None)
        msk = next((lower[n] for n in MASK_DIR_NAMES if n in lower), None)
        if img and msk:
            rel = Path(dirpath).relative_to(root).as_posix()
            pairs.append(("" if rel == "." else rel, img, msk))
    if not pairs:
        return None
    top = [p for p in pairs if p[0] == ""]
    if top:
        _, img, msk = top[0]
        return _affixed(root, root / img, root / msk, img, msk, None, how=f"folders {img}/ and {msk}/")
    depth = {p[0].count("/") for p in pairs}
    if len(depth) != 1:
        raise DataError("image/mask folders lie at different depths (" + ", ".join(
            f"{p[0]}/{p[1]}" for p in pairs[:3]) + "); pass --images and --masks patterns", root)
    img_name = Counter(p[1] for p in pairs).most_common(1)[0][0]
    msk_name = Counter(p[2] for p in pairs).most_common(1)[0][0]
    pairs = [p for p in pairs if p[1] == img_name and p[2] == msk_name]
    parents = [p[0] for p in pairs]
    d = depth.pop()
    last = [Path(p).name for p in parents]
    prefix = os.path.commonprefix(last)
    if d == 0 and prefix and all(re.fullmatch(r"\d+", n[len(prefix):] or "x") for n in last):
        parent_glob = _glob_escape(prefix) + "*"
        group = re.escape(prefix).replace("\\ ", " ") + r"\d+"
    else:
        parent_glob = "/".join(["*"] * (d + 1))
        group = "^(" + "/".join(["[^/]+"] * (d + 1)) + ")/"
    first = root / parents[0]
    return _affixed(root, first / img_name, first / msk_name, f"{parent_glob}/{img_name}",
                    f"{parent_glob}/{msk_name}", group if len(pairs) > 1 else None,
                    how=f"{len(pairs)} folder pair(s) {parent_glob}/{img_name} + {parent_glob}/{msk_name}")


def _affixed(root: Path, img_dir: Path, msk_dir: Path, img_glob: str, msk_glob: str, group: str | None,
             how: str) -> Layout:
    """Patterns for an image folder and a mask folder, pairing names that differ by an affix too."""
    gi = _groups(img_dir, img_glob, True)
    gm = _groups(msk_dir, msk_glob, True)
    if not gi:
        raise DataError(f"empty folder: no images in {img_dir.name}/", img_dir)
    best = _best_pair(gi, gm)
    if best is None:  # no pair at all: keep the plain patterns so that inspect lists the unpaired files
        return Layout(root, [f"{img_glob}/{_ext_glob(gi)}"], [f"{msk_glob}/{_ext_glob(gm)}"], group, how)
    _, a, b = best
    same = (a.prefix, a.suffix) == (b.prefix, b.suffix)
    if same and not re.search(r"[*?\[]", img_glob):  # one folder each, identical names: the folders themselves
        return Layout(root, [img_glob], [msk_glob], group, how)
    if same:  # identical names: every file type of each folder takes part
        return Layout(root, [f"{img_glob}/{_ext_glob(gi)}"], [f"{msk_glob}/{_ext_glob(gm)}"], group, how)
    return Layout(root, [a.pattern()], [b.pattern()], group, how + f", names {a.pattern()} ~ {b.pattern()}")


def _ext_glob(groups: dict[_Group, dict[str, Path]]) -> str:
    exts = {g.ext for g in groups}
    name = f"*{exts.pop()}" if len(exts) == 1 else "*"
    return f"**/{name}" if any(g.recursive for g in groups) else name


def _sibling_trees(root: Path) -> Layout | None:
    """Two sub-folders of ``root`` holding files at the same relative paths (any depth)."""
    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if len(subdirs) < 2 or len(subdirs) > 20:
        return None
    groups = {d: _groups(d, _glob_escape(d.name), True) for d in subdirs}
    best = None
    for i, a in enumerate(subdirs):
        for b in subdirs[i + 1:]:
            found = _best_pair(groups[a], groups[b])
            if found is None:
                continue
            n = found[0]
            smaller = min(len(_raster_files(a, True)), len(_raster_files(b, True)))
            if n * 2 >= smaller and (best is None or n > best[0]):
                best = found
    if best is None:
        return None
    oriented = _orient(best[1], best[2])
    if oriented is None:
        raise DataError(f"folders {best[1].folder}/ and {best[2].folder}/ hold files with the same names but nothing "
                        "tells which holds the masks; pass --images and --masks", root)
    gi, gm = oriented
    return Layout(root, [gi.pattern()], [gm.pattern()], None, how=f"trees {gi.folder}/ and {gm.folder}/")


def _flat(root: Path) -> Layout | None:
    """A folder whose files pair by an affix (``N_sat.jpg`` + ``N_mask.png``); the folder with most pairs."""
    best = None
    for dirpath, dirnames, _ in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        folder = Path(dirpath)
        rel = folder.relative_to(root).as_posix()
        groups = _groups(folder, "" if rel == "." else _glob_escape(rel), False)
        found = _best_pair(groups, groups)
        if found is not None and _orient(found[1], found[2]) is not None and (best is None or found[0] > best[0]):
            best = found
        if rel.count("/") >= 2:
            dirnames[:] = []
    if best is None:
        return None
    gi, gm = _orient(best[1], best[2])  # type: ignore[misc]
    where = f"{gi.folder}/" if gi.folder else "the folder itself"
    return Layout(root, [gi.pattern()], [gm.pattern()], None, how=f"pairs {gi.pattern()} + {gm.pattern()} in {where}")


def find_layout(root: str | Path) -> Layout:
    """Where the images and masks of ``root`` are; a :class:`DataError` saying what to pass when unsure."""
    root = Path(root)
    for finder in (_from_dataset_yaml, _folder_pairs, _sibling_trees, _flat):
        layout = finder(root)
        if layout is not None:
            return layout
    files = list_rasters(root)
    if not files:
        raise DataError("empty folder: no images found (looked for .jpg, .png, .tif, ...)", root)
    raise no_pairs_error(root, files)


def no_pairs_error(root: Path, files: list[Path]) -> DataError:
    """The error for a folder where nothing pairs: a few of the names seen and the flags to pass."""
    shown = ", ".join(p.relative_to(root).as_posix() for p in files[:4])
    more = f" and {len(files) - 4} more" if len(files) > 4 else ""
    return DataError(f"no image/mask pairs found among {len(files)} file(s) ({shown}{more}); say where they are "
                     f"with --images and --masks, e.g. `terraseg data inspect {root} --images 'images/*.jpg' "
                     "--masks 'labels/*.png'` (globs relative to the folder; the wildcards pair the files)", root)


__all__ = ["Layout", "find_layout", "no_pairs_error", "IMAGE_DIR_NAMES", "MASK_DIR_NAMES"]
