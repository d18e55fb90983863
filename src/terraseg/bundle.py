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
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from terraseg import __version__
from terraseg.errors import ModelError, first_line
from terraseg.schemas._validate import ClassName, KeyProblem, parse_json, validate

WEIGHTS_NAME = "model.safetensors"
META_NAME = "bundle.json"
FORMAT = "terraseg-bundle"
FORMAT_VERSION = 1


_Finite = Annotated[float, Field(allow_inf_nan=False)]
_Level = Annotated[int, Field(ge=0, le=255)]


class BundleMeta(BaseModel):
    """Everything needed to rebuild a model and use it on new imagery (the schema of bundle.json)."""

    # unknown keys are ignored so that a bundle from a newer terraseg of the same format still loads
    model_config = ConfigDict(extra="ignore", title="terraseg bundle.json")

    architecture: str = Field(min_length=1, description="model registry name (`terraseg models list`)")
    in_channels: int = Field(ge=1, description="number of input bands")
    num_classes: int = Field(ge=1, le=255, description="number of classes")
    classes: list[ClassName] = Field(description="class names, one per class (one line of printable text, at "
                                                 "most 64 characters)")
    colors: list[Annotated[list[_Level], Field(min_length=3, max_length=3)]] = Field(
        description="RGB colour per class, [r, g, b] with 0..255")
    options: dict[str, Any] = Field(default_factory=dict, description="keyword options of the model builder")
    ignore_index: _Level = Field(255, description="class index meaning 'no class' in masks and predictions")
    mean: list[_Finite] | None = Field(None, description="per-band mean in raw pixel units (e.g. 0..255 for uint8)")
    std: list[Annotated[float, Field(gt=0, allow_inf_nan=False)]] | None = Field(
        None, description="per-band standard deviation in raw pixel units (> 0)")
    tile_size: int = Field(512, ge=1, description="training crop size, a good default prediction tile")
    band_indexes: list[Annotated[int, Field(ge=1)]] | None = Field(
        None, description="1-based band indexes the model was trained on (GDAL order); null = the first "
                          "in_channels bands")
    resolution: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = Field(
        None, description="ground sampling distance of the training imagery in metres per pixel")
    metrics: dict[str, Any] = Field(default_factory=dict, description="validation metrics of the model")
    extra: dict[str, Any] = Field(default_factory=dict, description="free-form provenance (dataset, run, ...)")
    terraseg_version: str = Field(__version__, description="terraseg version that wrote the bundle")
    created: str = Field("", description="UTC time the bundle was written (ISO 8601)")

    @model_validator(mode="after")
    def _lengths(self) -> "BundleMeta":
        n, bands = self.num_classes, self.in_channels
        for key, values, want, by in (("classes", self.classes, n, "num_classes"), ("colors", self.colors, n, "num_classes"),
                                      ("mean", self.mean, bands, "in_channels"), ("std", self.std, bands, "in_channels"),
                                      ("band_indexes", self.band_indexes, bands, "in_channels")):
            if values is not None and len(values) != want:
                raise KeyProblem(key, f"must have {want} item(s) ({by} is {want}), got {len(values)}")
        if (self.mean is None) != (self.std is None):
            raise KeyProblem("std" if self.std is None else "mean", "mean and std go together; give both or neither")
        if self.ignore_index < n:
            raise KeyProblem("ignore_index", f"{self.ignore_index} is a class index (there are {n} classes)")
        return self

    def to_json(self) -> dict[str, Any]:
        d = {"format": FORMAT, "format_version": FORMAT_VERSION, **self.model_dump()}
        if not d["created"]:
            d["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        return d

    @classmethod
    def from_json(cls, d: Any, path: str | Path | None = None) -> "BundleMeta":
        """Validate a bundle.json mapping; any problem is one ``ModelError`` naming the key."""
        if not isinstance(d, dict):
            raise ModelError("bundle metadata is not a JSON object", path)
        if d.get("format") != FORMAT:
            raise ModelError(f"not a terraseg bundle (missing \"format\": \"{FORMAT}\")", path)
        version = d.get("format_version", 0)
        if isinstance(version, bool) or not isinstance(version, int):
            raise ModelError(f"key 'format_version': must be an integer, got {version!r}", path)
        if version > FORMAT_VERSION:
            raise ModelError(f"bundle format version {version} is newer than this terraseg understands "
                             f"({FORMAT_VERSION}); upgrade terraseg", path)
        body = {k: v for k, v in d.items() if k not in ("format", "format_version")}
        return validate(_StrictMeta, body, path, error=ModelError).meta()


class _StrictMeta(BundleMeta):
    """bundle.json as read from disk: JSON types only (a string is not an integer)."""

    model_config = ConfigDict(strict=True)

    def meta(self) -> BundleMeta:
        return BundleMeta.model_construct(**{k: getattr(self, k) for k in BundleMeta.model_fields})


def bundle_json_schema() -> dict[str, Any]:
    """JSON Schema of bundle.json (``format`` and ``format_version`` included)."""
    schema = BundleMeta.model_json_schema()
    schema["properties"] = {"format": {"const": FORMAT}, "format_version": {"type": "integer", "maximum": FORMAT_VERSION},
                            **schema["properties"]}
    schema["required"] = ["format", *schema.get("required", [])]
    return schema


def is_onnx_model(path: str | Path) -> bool:
    """Whether ``path`` is an exported ONNX model (an ``.onnx`` file, or a folder holding ``model.onnx``
    and no bundle) rather than a bundle: the one place terraseg tells model kinds apart."""
    p = Path(path)
    return p.suffix.lower() == ".onnx" or (p.is_dir() and (p / "model.onnx").is_file()
                                           and not (p / META_NAME).is_file())


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
        text = meta_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"unreadable bundle metadata ({exc.__class__.__name__}: {exc})", meta_file) from None
    return BundleMeta.from_json(parse_json(text, meta_file, ModelError, "bundle metadata JSON",
                                           invalid="unreadable bundle metadata"), meta_file)


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
        raise ModelError(f"weights do not match architecture {meta.architecture!r}: {first_line(exc)}", weights) from None
    model.eval().to(device)
    return Bundle(model=model, meta=meta, path=folder)
