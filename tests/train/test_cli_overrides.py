"""``terraseg train`` override forms on the real command line (no training: --print-config)."""

from __future__ import annotations

import json

import yaml

def _run(capsys, *args):

    from terraseg.cli import main

    try:
        main(["train", *map(str, args)])
        code = 0
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    assert code in (0, None, 2), out.err
    return (code or 0), out.out, out.err

def test_lightning_style_overrides_lists_and_mappings(capsys, tmp_path):
    code, out, err = _run(capsys, "--trainer.max_epochs", "5", "--trainer.accumulate_grad_batches=4",
                          "trainer.devices=[0,1]", "model.options={base_channels: 8}", "--logger=mlflow",
                          "--print-config")
    assert code == 0, err
    cfg = yaml.safe_load(out)
    assert cfg["trainer"]["max_epochs"] == 5 and cfg["trainer"]["accumulate_grad_batches"] == 4
    assert cfg["trainer"]["devices"] == [0, 1] and cfg["model"]["options"] == {"base_channels": 8}
    assert [lg["name"] for lg in cfg["logger"]] == ["mlflow"]

def test_override_mistake_names_the_override(capsys):
    code, out, err = _run(capsys, "--trainer.max_epochs=soon", "--print-config")
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and lines == ["error: override '--trainer.max_epochs=soon': key 'trainer.max_epochs': "
                                   "must be an integer, got 'soon'"]

def test_print_schema_is_the_shipped_schema(capsys):
    from terraseg.schemas import HERE

    code, out, err = _run(capsys, "--print-schema")
    assert code == 0 and json.loads(out) == json.loads((HERE / "training.schema.json").read_text())
