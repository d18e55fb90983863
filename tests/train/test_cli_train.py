"""``terraseg train`` as a user meets it: --print-config, overrides, resume, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import yaml

from terraseg.train.config import default_config


def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "terraseg", "train", *args], capture_output=True, text=True,
                          cwd=cwd, env={**__import__("os").environ, "TERRASEG_PROGRESS": "0"})


def test_print_config_is_the_full_default_and_takes_overrides(tmp_path):
    out = run_cli("--print-config")
    assert out.returncode == 0, out.stderr
    assert yaml.safe_load(out.stdout) == default_config()
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("model: {name: unet}\ntrainer: {max_epochs: 3}\n")
    out = run_cli(str(cfg_file), "optimizer.lr=0.02", "--set", "loss.terms.dice=1", "--devices", "2",
                  "--strategy", "ddp", "--num-nodes", "2", "--precision", "bf16-mixed", "--print-config")
    assert out.returncode == 0, out.stderr
    cfg = yaml.safe_load(out.stdout)
    assert cfg["trainer"]["max_epochs"] == 3 and cfg["optimizer"]["lr"] == 0.02
    assert cfg["loss"]["terms"] == {"ce": 1.0, "dice": 1.0}
    assert (cfg["trainer"]["devices"], cfg["trainer"]["strategy"], cfg["trainer"]["num_nodes"],
            cfg["trainer"]["precision"]) == (2, "ddp", 2, "bf16-mixed")


def test_bad_key_is_one_line_error_with_status_2(tmp_path, sample_dataset):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(f"data: {{dataset: {sample_dataset}}}\noptimizer: {{lr: -1}}\n")
    out = run_cli(str(cfg_file))
    assert out.returncode == 2
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "key 'optimizer.lr': must be > 0" in lines[0] and str(cfg_file) in lines[0]
    out = run_cli(str(cfg_file), "trainer.max_epoks=2")
    assert out.returncode == 2 and "trainer.max_epoks" in out.stderr and "max_epochs" in out.stderr
    assert not (tmp_path / "runs").exists()  # nothing written
    out = run_cli()
    assert out.returncode == 2 and "--resume" in out.stderr


def test_cli_trains_and_resumes(tiny_overrides, tmp_path):
    ov = [o for o in tiny_overrides if o != "trainer.max_epochs=2"] + ["trainer.max_epochs=1"]
    out = run_cli(*ov)
    assert out.returncode == 0, out.stderr[-2000:]
    run_dir = tmp_path / "runs" / "run"
    assert "best model:" in out.stdout and (run_dir / "bundle" / "bundle.json").is_file()
    # continue the finished run for one more epoch
    out = run_cli("--resume", str(run_dir), "trainer.max_epochs=2")
    assert out.returncode == 0, out.stderr[-2000:]
    ckpt = __import__("torch").load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 4
    import csv

    with open(run_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert {int(r["epoch"]) for r in rows if r["val_miou"]} == {0, 1}
    # the extended run anneals over its new length: the learning rate is not stuck at the old end (0)
    assert all(float(r["lr"]) > 0 for r in rows if r["lr"] and int(r["epoch"]) == 1)
