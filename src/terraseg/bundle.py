"""Model bundles: safetensors weights + JSON metadata, loaded without unpickling anything.

A bundle is a folder::

    my-model/
      model.safetensors   weights (safetensors: tensors only, no code)
      bundle.json         architecture + options, classes, colours, ignore index, band count,
                          normalisation, training crop size, validation metrics, terraseg version

``load_bundle`` accepts the folder or either file inside it. Nothing here calls ``torch.load``.
"""

from __future__ import annotations

import datetime as _dt
import json
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from terraseg import __version__
from terraseg.errors import ModelError

WEIGHTS_NAME = "model.safetensors"
META_NAME = "bundle.json"
FORMAT = "terraseg-bundle"
FORMAT_VERSION = 1


@dataclass
class BundleMeta:
    """Everything needed to rebuild a model and use it on new imagery."""

    architecture: str
    in_channels: int
    num_classes: int
    classes: list[str]
    colors: list[list[int]]
    options: dict[str, Any] = field(default_factory=dict)
    ignore_index: int = 255
    mean: list[float] | None = None  # per band, in raw pixel units (e.g. 0..255 for uint8)
    std: list[float] | None = None
    tile_size: int = 512  # training crop size, a good default prediction tile
    metrics: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    terraseg_version: str = __version__
    created: str = ""

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d = {"format": FORMAT, "format_version": FORMAT_VERSION, **d}
        if not d["created"]:
            d["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any], path: str | Path | None = None) -> "BundleMeta":
        if d.get("format") != FORMAT:
            raise ModelError(f"not a terraseg bundle (missing \"format\": \"{FORMAT}\")", path)
        if int(d.get("format_version", 0)) > FORMAT_VERSION:
            raise ModelError(
                f"bundle format version {d.get('format_version')} is newer than this terraseg "
                f"understands ({FORMAT_VERSION}); upgrade terraseg", path)
        known = {f for f in cls.__dataclass_fields__}
        missing = [k for k in ("architecture", "in_channels", "num_classes", "classes", "colors") if k not in d]
        if missing:
            raise ModelError(f"bundle metadata lacks {', '.join(missing)}", path)
        meta = cls(**{k: v for k, v in d.items() if k in known})
        if len(meta.classes) != meta.num_classes or len(meta.colors) != meta.num_classes:
            raise ModelError(
                f"bundle lists {len(meta.classes)} class names and {len(meta.colors)} colours "
                f"for {meta.num_classes} classes", path)
        return meta


def _resolve(path: str | Path) -> Path:
    """Return the bundle folder for a folder, a bundle.json or a model.safetensors path."""
    p = Path(path)
    if p.is_dir():
        return p
    if p.name in (WEIGHTS_NAME, META_NAME) and p.parent.is_dir():
        return p.parent
    if not p.exists():
        raise ModelError("model file not found", p)
    raise ModelError(f"not a terraseg bundle (expected a folder with {META_NAME} and {WEIGHTS_NAME})", p)


def read_meta(path: str | Path) -> BundleMeta:
    """Read only the metadata of a bundle (cheap; no torch import)."""
    folder = _resolve(path)
    meta_file = folder / META_NAME
    if not meta_file.is_file():
        raise ModelError(f"not a terraseg bundle: {META_NAME} is missing", folder)
    try:
        d = json.loads(meta_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"unreadable bundle metadata ({exc.__class__.__name__}: {exc})", meta_file) from None
    if not isinstance(d, dict):
        raise ModelError("bundle metadata is not a JSON object", meta_file)
    return BundleMeta.from_json(d, meta_file)


def save_bundle(path: str | Path, model, meta: BundleMeta) -> Path:
    """Write ``model``'s weights and ``meta`` into the folder ``path`` atomically.

    The folder is written under a temporary name and renamed into place, so an interrupted save
    never leaves a half-written bundle; an existing bundle at ``path`` is replaced.
    """
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent))
    try:
        state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS_NAME), metadata={"format": FORMAT})
        (tmp / META_NAME).write_text(json.dumps(meta.to_json(), indent=2) + "\n", encoding="utf-8")
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


@dataclass
class Bundle:
    model: Any  # torch.nn.Module in eval mode
    meta: BundleMeta
    path: Path


def load_bundle(path: str | Path, device: str = "cpu") -> Bundle:
    """Rebuild the model from a bundle. Uses safetensors only: a bundle cannot run code."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from terraseg import models
    from terraseg.models.finite import check_finite

    folder = _resolve(path)
    meta = read_meta(folder)
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise ModelError(f"bundle has no {WEIGHTS_NAME}", folder)
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"unreadable weights ({exc})", weights) from None
    check_finite(state, weights)  # a diverged model (NaN weights) is refused with one line
    # Pretrained weights are never fetched when rebuilding: the bundle carries all weights.
    options = {k: v for k, v in meta.options.items() if k not in ("encoder_weights", "pretrained")}
    model = models.build(meta.architecture, in_channels=meta.in_channels, num_classes=meta.num_classes, **options)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ModelError(f"weights do not match architecture {meta.architecture!r}: {first}", weights) from None
    model.eval().to(device)
    return Bundle(model=model, meta=meta, path=folder)
