"""Schemas of terraseg's files: pydantic models and the JSON Schemas generated from them.

* ``training.py``: training configs (``terraseg train CONFIG.yaml``)
* ``dataset.py``: dataset descriptions (``dataset.yaml``)
* ``terraseg.bundle.BundleMeta``: ``bundle.json`` of a model bundle

The JSON Schemas ``training.schema.json``, ``dataset.schema.json`` and ``bundle.schema.json`` ship
beside this file, for editors (``# yaml-language-server: $schema=...``) and other tools. Regenerate
them after changing a model with ``python -m terraseg.schemas`` (a test checks they are current).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

NAMES = ("training", "dataset", "bundle")
HERE = Path(__file__).resolve().parent


def json_schema(name: str) -> dict[str, Any]:
    """The JSON Schema ``name`` (one of ``NAMES``) generated from the models."""
    if name == "training":
        import inspect

        from lightning.pytorch import Trainer

        from terraseg.schemas.training import training_json_schema

        args = [p for p in inspect.signature(Trainer.__init__).parameters if p != "self"]
        schema, title = training_json_schema(args), "terraseg training config"
    elif name == "dataset":
        from terraseg.schemas.dataset import dataset_json_schema

        schema, title = dataset_json_schema(), "terraseg dataset description"
    elif name == "bundle":
        from terraseg.bundle import bundle_json_schema

        schema, title = bundle_json_schema(), "terraseg bundle.json"
    else:
        raise ValueError(f"unknown schema {name!r}; schemas are {', '.join(NAMES)}")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **_bounds(schema), "title": title}


_BOUNDS = {"ge": "minimum", "gt": "exclusiveMinimum", "le": "maximum", "lt": "exclusiveMaximum"}


def _bounds(node: Any) -> Any:
    """pydantic writes bounds of validator-wrapped numbers as ge/gt/le/lt: use JSON Schema's words."""
    if isinstance(node, dict):
        typed = node.get("type") in ("number", "integer")
        return {(_BOUNDS[k] if typed and k in _BOUNDS else k): _bounds(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_bounds(v) for v in node]
    return node


def schema_text(name: str) -> str:
    return json.dumps(json_schema(name), indent=2, ensure_ascii=False) + "\n"


def write_json_schemas(folder: str | Path = HERE) -> list[Path]:
    from terraseg._io import write_text_atomic

    return [write_text_atomic(Path(folder) / f"{n}.schema.json", schema_text(n)) for n in NAMES]
