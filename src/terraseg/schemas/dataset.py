"""The dataset description (``dataset.yaml``) as a pydantic model: keys, types, defaults, help texts.

``terraseg.data.spec`` validates a YAML mapping with ``DatasetFile`` and builds the runtime
``DatasetSpec`` from it. Rules that involve several keys (colours vs values, ignore lists, mean/std
per band) live in ``_cross_checks`` and name the key they blame.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, WithJsonSchema, field_validator, model_validator

from terraseg.data.palette import Color, default_colors, parse_color, to_hex
from terraseg.schemas._validate import ClassName, Float, KeyProblem, Strict, _number, one_or_many

_COLOR_SCHEMA = {"anyOf": [
    {"type": "string", "pattern": r"^(#[0-9A-Fa-f]{6}|\d{1,3}\s*,\s*\d{1,3}\s*,\s*\d{1,3})$"},
    {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 255}, "minItems": 3, "maxItems": 3}],
    "description": "'#RRGGBB' or [r, g, b]"}


def _color(v: Any) -> Any:
    return parse_color(v) if v is not None else None


ColorValue = Annotated[tuple[int, int, int], BeforeValidator(_color), WithJsonSchema(_COLOR_SCHEMA)]
Patterns = Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1),
                     *one_or_many({"type": "string"}, "a folder or glob pattern (or a list of them)")]
Count = Annotated[int, Field(ge=1)]


class ClassEntry(Strict):
    """One class: a name and its mask colour (colour masks) or mask value (index masks)."""

    name: ClassName = Field(min_length=1, description="class name (one line of printable text, at most 64 "
                                                      "characters)")
    color: ColorValue | None = Field(None, description="mask colour, '#RRGGBB' or [r, g, b] (colour masks); "
                                                       "display colour for index masks")
    value: Annotated[int, Field(ge=0)] | None = Field(None, description="mask value (index masks)")

    @field_validator("name", mode="before")
    @classmethod
    def _strip(cls, v: Any) -> Any:
        return v.strip() if isinstance(v, str) else v


def _classes(v: Any) -> Any:
    """``classes: {Building: '#3C1098', Water: 3}`` is short for a list of {name, color | value}."""
    if isinstance(v, dict):
        return [{"name": k, **(b if isinstance(b, dict) else {"value": b} if isinstance(b, int) and not
                               isinstance(b, bool) else {"color": b})} for k, b in v.items()]
    return v


def _ignore(v: Any) -> Any:
    if v is None:
        return []
    if isinstance(v, list) and len(v) == 3 and all(isinstance(x, int) for x in v):
        return [v]  # ignore: [0, 0, 0] is one colour (for index masks the values are told apart later)
    return v if isinstance(v, list) else [v]


class DatasetFile(Strict):
    """A dataset description: what the classes are and where images and masks live."""

    name: str | None = Field(None, description="data set name (default: the YAML file name)")
    description: str = Field("", description="free text")
    root: str | None = Field(None, description="folder the patterns are relative to (default: the YAML's folder)")
    images: Patterns = Field(description="image folder or glob pattern (or a list of them), relative to root")
    masks: Patterns | None = Field(None, description="mask folder or glob pattern (or a list); images and masks "
                                                     "pair by what the wildcards match")
    bands: Count | list[Count] = Field(3, description="number of image bands, or a list of 1-based band indexes "
                                                      "to select (GDAL order), e.g. [4, 3, 2]")
    resolution: Annotated[Float, Field(gt=0)] | None = Field(
        None, description="ground sampling distance in metres per pixel (for images without georeferencing)")
    nodata: Annotated[float, BeforeValidator(_number)] | None = Field(
        None, description="image value that means 'no data' (such pixels are ignored)")
    classes: Annotated[list[ClassEntry], BeforeValidator(_classes), Field(min_length=1, max_length=255)] = Field(
        description="the classes, in class-index order: {name, color} (colour masks) or {name, value} (index masks)")
    mask_type: Literal["rgb", "index"] | None = Field(
        None, description="rgb (colour masks) or index (value masks); default: index when every class has a value")
    ignore: Annotated[list[Any], BeforeValidator(_ignore)] = Field(
        default_factory=list, description="mask colours (colour masks) or values (index masks) that are ignored")
    ignore_colors: list[ColorValue] = Field(default_factory=list, description="more colours to ignore")
    ignore_values: list[Annotated[int, Field(ge=0)]] = Field(default_factory=list, description="more values to ignore")
    ignore_index: Annotated[int, Field(ge=0, le=255)] = Field(255, description="class index of ignored pixels")
    unknown: Literal["ignore", "error"] = Field(
        "ignore", description="mask colours/values no class owns: ignore them, or stop with an error")
    color_tolerance: Annotated[int, Field(ge=0, le=255)] = Field(
        0, description="a mask colour within this many levels of a class colour in every channel (largest "
                       "per-channel difference) counts as that class; 0 = exact colours")
    color_snap: Annotated[Float, Field(ge=0, le=442)] | None = Field(
        None, description="snap-to-nearest mode: each mask colour takes the class of the nearest class colour "
                          "(Euclidean RGB distance) when it is at most this far; farther colours are ignored")
    mask_channel: Annotated[int, Field(ge=0, le=2)] | None = Field(
        None, description="class values are stored in this channel (0 red, 1 green, 2 blue) of an RGB mask")
    max_ignored_share: Annotated[Float, Field(ge=0, le=1)] = Field(
        0.5, description="refuse a description under which more than this share of mask pixels is ignored")
    group: str | None = Field(None, min_length=1, description="regular expression on the image path; images of "
                                                              "one group stay in one split (e.g. 'Tile \\d+')")
    split: str | None = Field(None, description="default split JSON file (`terraseg data split`)")
    mean: list[Float] | None = Field(None, description="per-band mean in raw pixel units (`terraseg data stats`)")
    std: list[Annotated[Float, Field(gt=0)]] | None = Field(None, description="per-band standard deviation (> 0)")
    augment: list[dict[str, Any]] | None = Field(
        None, description="albumentations pipeline, e.g. [{name: HorizontalFlip, p: 0.5}]")
    extra: dict[str, Any] = Field(default_factory=dict, description="free-form information kept with the data set")

    @field_validator("group")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"is not a valid regular expression ({exc})") from None
        return v

    @property
    def band_count(self) -> int:
        return len(self.bands) if isinstance(self.bands, list) else self.bands

    @model_validator(mode="after")
    def _cross_checks(self) -> "DatasetFile":
        classes = self.classes
        names = [c.name for c in classes]
        for i, n in enumerate(names):
            if n in names[:i]:
                raise KeyProblem(f"classes[{i}].name", f"class name {n!r} appears twice")
        inferred = self.mask_type is None
        if inferred:
            self.mask_type = "index" if all(c.value is not None for c in classes) else "rgb"
        own = "color" if self.mask_type == "rgb" else "value"
        for i, c in enumerate(classes):
            if getattr(c, own) is None and inferred:
                raise KeyProblem(f"classes[{i}]", "needs a 'color' (colour masks), or every class needs a 'value' "
                                                  "(index masks)")
            if getattr(c, own) is None:
                raise KeyProblem(f"classes[{i}].{own}", f"missing; mask_type {self.mask_type} needs a {own} per class")
        seen = [getattr(c, own) for c in classes]
        for i, v in enumerate(seen):
            if v in seen[:i]:
                raise KeyProblem(f"classes[{i}].{own}", f"{'colour ' + to_hex(v) if own == 'color' else f'value {v}'}"
                                                       " is used by two classes")
        if self.mask_type == "index":
            spare = iter(default_colors(len(classes)))
            for c in classes:
                if c.color is None:
                    c.color = next(spare)
        self._split_ignore()
        if self.ignore_index < len(classes):
            raise KeyProblem("ignore_index", f"{self.ignore_index} is a class index (there are {len(classes)} "
                                             "classes); use 255")
        if self.mask_channel is not None and self.mask_type != "index":
            raise KeyProblem("mask_channel", "needs index classes (a 'value' per class)")
        if self.mask_type == "index" and (self.color_tolerance or self.color_snap is not None):
            raise KeyProblem("color_tolerance" if self.color_tolerance else "color_snap",
                             "applies to colour masks only (these classes have values)")
        if isinstance(self.bands, list) and len(set(self.bands)) != len(self.bands):
            raise KeyProblem("bands", f"lists a band twice: {self.bands}")
        if (self.mean is None) != (self.std is None):
            raise KeyProblem("std" if self.std is None else "mean", "mean and std go together; give both or neither")
        for key in ("mean", "std"):
            values = getattr(self, key)
            if values is not None and len(values) != self.band_count:
                raise KeyProblem(key, f"must list {self.band_count} numbers (one per band), got {len(values)}")
        return self

    def _split_ignore(self) -> None:
        """``ignore`` holds colours for colour masks and values for index masks."""
        colors: list[Color] = [tuple(c) for c in self.ignore_colors]  # type: ignore[misc]
        values = list(self.ignore_values)
        for i, v in enumerate(self.ignore):
            if self.mask_type == "rgb":
                try:
                    colors.append(parse_color(v))
                except ValueError as exc:
                    raise KeyProblem(f"ignore[{i}]", str(exc)) from None
            elif isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise KeyProblem(f"ignore[{i}]", f"{v!r} is not a mask value (index masks ignore values, not colours)")
            else:
                values.append(v)
        class_colors = [c.color for c in self.classes]
        for c in colors:
            if self.mask_type == "rgb" and c in class_colors:
                raise KeyProblem("ignore", f"colour {to_hex(c)} belongs to class "
                                           f"{self.classes[class_colors.index(c)].name!r}")
        self.ignore_colors, self.ignore_values = colors, values


def dataset_json_schema() -> dict[str, Any]:
    schema = DatasetFile.model_json_schema()
    classes = schema["properties"]["classes"]
    body = {"anyOf": [_COLOR_SCHEMA, {"type": "integer", "minimum": 0}, {
        "type": "object", "properties": {"color": _COLOR_SCHEMA, "value": {"type": "integer", "minimum": 0}},
        "additionalProperties": False}]}
    schema["properties"]["classes"] = {
        "description": classes.get("description"),
        "anyOf": [{k: v for k, v in classes.items() if k not in ("description", "title")},
                  {"type": "object", "description": "{class name: colour, value or {color, value}}",
                   "additionalProperties": body, "minProperties": 1}]}
    schema["properties"]["ignore"] = {"description": schema["properties"]["ignore"].get("description"), "anyOf": [
        _COLOR_SCHEMA, {"type": "integer", "minimum": 0},
        {"type": "array", "items": {"anyOf": [_COLOR_SCHEMA, {"type": "integer", "minimum": 0}]}}]}
    return schema
