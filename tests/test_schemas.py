"""The shipped JSON Schemas: generated from the models, current, and they accept real files."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from terraseg.schemas import HERE, NAMES, schema_text

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _validator(name):
    schema = json.loads((HERE / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("name", NAMES)
def test_shipped_schemas_are_up_to_date(name):
    assert (HERE / f"{name}.schema.json").read_text() == schema_text(name), \
        "regenerate with: python -m terraseg.schemas"


def test_examples_validate_and_carry_the_editor_comment():
    for path in sorted(EXAMPLES.glob("*.yaml")):
        text = path.read_text()
        name = "training" if path.name.startswith("train-") else "dataset"
        assert text.startswith(f"# yaml-language-server: $schema=../src/terraseg/schemas/{name}.schema.json\n")
        assert (path.parent / f"../src/terraseg/schemas/{name}.schema.json").resolve().is_file()
        errors = list(_validator(name).iter_errors(yaml.safe_load(text)))
        assert errors == [], (path.name, [e.message for e in errors])


def test_generated_files_validate(sample_dataset, tiny_bundle):
    from terraseg.train.config import default_config, dump_config

    assert list(_validator("dataset").iter_errors(yaml.safe_load(sample_dataset.read_text()))) == []
    assert list(_validator("bundle").iter_errors(json.loads((tiny_bundle / "bundle.json").read_text()))) == []
    printed = yaml.safe_load(dump_config(default_config(), comments=True))
    assert list(_validator("training").iter_errors(printed)) == []


@pytest.mark.parametrize("name, document", [
    ("training", {"trainer": {"accumulate_grad_batches": 4, "gradient_clip_algorithm": "value"},
                  "logger": "mlflow", "callbacks": ["LearningRateMonitor"]}),
    ("dataset", {"images": "img/*.tif", "bands": [4, 3, 2], "resolution": 0.5,
                 "classes": {"Water": "#0000FF", "Land": [0, 255, 0]}}),
])
def test_schemas_accept_short_forms(name, document):
    assert list(_validator(name).iter_errors(document)) == []


@pytest.mark.parametrize("name, document", [
    ("training", {"trainer": {"max_epoks": 4}}),
    ("training", {"data": {"batch_size": 0}}),
    ("dataset", {"images": "x", "classes": [{"name": "a", "color": "#00"}]}),
    ("dataset", {"images": "x", "classes": [{"name": "a", "color": "#000000"}], "max_ignored_share": 2}),
    ("bundle", {"format": "terraseg-bundle", "architecture": "unet", "in_channels": 3, "num_classes": 1,
                "classes": ["a"], "colors": [[0, 0, 0]], "tile_size": "512"}),
])
def test_schemas_refuse_mistakes(name, document):
    assert list(_validator(name).iter_errors(document)) != []
