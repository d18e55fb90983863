"""Training checkpoints: a full disk keeps the earlier checkpoints and ends in one line; --resume
checks the checkpoint (no pickle code runs) and offers the newest intact one; a resumed run has
each metric row once."""

from __future__ import annotations

import csv
import os
import shutil
from collections import Counter

import pytest

from terraseg.cli import app
from terraseg.train.checkpoint_io import checkpoint_problem

from .helpers import listing, one_line, run

pytest.importorskip("lightning")


def _overrides(dataset, out, name="run", epochs=1):
    return [f"data.dataset={dataset}", "data.crop_size=32", "data.batch_size=4", "data.samples_per_epoch=8",
            "data.val_crop_size=64", "data.val_fraction=0.34", "model.name=unet",
            "model.options={base_channels: 4, depth: 2}", f"trainer.max_epochs={epochs}",
            "trainer.log_every_n_steps=1", "output.plots=false", f"output.dir={out}", f"output.name={name}"]


@pytest.fixture(scope="module")
def one_epoch_run(sample_dataset, tmp_path_factory):
    from terraseg.train import train

    result = train(None, _overrides(sample_dataset, tmp_path_factory.mktemp("runs")))
    assert result.epochs == 1
    return result.run_dir


def _payload(path, marker):
    import torch

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"state_dict": {}, "epoch": 0, "global_step": 2, "hook": Evil()}, path)


@pytest.mark.parametrize("damage, problem", [
    ("truncate", "is truncated, damaged or not a checkpoint"),
    ("empty", "is empty"),
    ("flip", "is damaged (a checksum does not match)"),
    ("pickle", "holds Python objects other than tensors and plain values; refused without running them"),
    ("missing", "is missing"),
])
def test_damaged_last_checkpoint_is_one_line_offering_an_intact_one(one_epoch_run, tmp_path, capsys, damage,
                                                                      problem):
    run_dir = tmp_path / "run"
    shutil.copytree(one_epoch_run, run_dir)
    last = run_dir / "checkpoints" / "last.ckpt"
    data = last.read_bytes()
    marker = tmp_path / "PAYLOAD-RAN"
    if damage == "truncate":
        last.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        last.write_bytes(b"")
    elif damage == "flip":  # one byte changed inside the tensor data: only the checksums tell
        import zipfile

        with zipfile.ZipFile(last) as z:
            info = max(z.infolist(), key=lambda i: i.file_size)
        start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
        middle = start + info.file_size // 2
        last.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:])
    elif damage == "pickle":
        _payload(last, marker)
    else:
        last.unlink()
    before = listing(run_dir)
    code, _, err = run(["train", "--resume", run_dir], capsys)
    line = one_line(err)
    best = next((run_dir / "checkpoints").glob("best-*.ckpt"))
    assert code == 2 and f"{last}: {problem}" in line, line
    assert f"the newest intact checkpoint is {best.name}; continue from it with: terraseg train --resume {best}" in line
    assert not marker.exists()
    assert listing(run_dir) == before


def test_resume_from_the_offered_checkpoint(one_epoch_run, tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(one_epoch_run, run_dir)
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"")
    best = next((run_dir / "checkpoints").glob("best-*.ckpt"))
    code, out, err = run(["train", "--resume", best, "trainer.max_epochs=2"], capsys)
    assert code == 0, err
    assert checkpoint_problem(run_dir / "checkpoints" / "last.ckpt") is None
    import torch

    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 1


def _train_rows(path):
    with open(path, newline="") as f:
        return [(r["epoch"], r["step"]) for r in csv.DictReader(f) if r.get("train_loss_step")]


def test_full_disk_keeps_the_earlier_checkpoints_and_resumes(sample_dataset, disk_factory, capsys):
    import lightning.pytorch as pl

    from terraseg.train import train

    disk = disk_factory("48m")
    filler = disk / "filler"

    class FillDisk(pl.Callback):
        """Fills the disk while the second epoch trains, after its first step was logged."""

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if trainer.current_epoch == 1 and batch_idx == 1 and not filler.exists():
                for lg in trainer.loggers:
                    lg.save()
                with open(filler, "wb", buffering=0) as f:
                    try:
                        while True:
                            f.write(b"\0" * (1 << 20))
                    except OSError:
                        pass
                    try:
                        while True:
                            f.write(b"\0" * 4096)
                    except OSError:
                        pass

    @app.command("full-disk-train-test", hidden=True)
    def _full_disk_train() -> None:
        train(None, _overrides(sample_dataset, disk, epochs=2), callbacks=[FillDisk()])

    code, _, err = run(["full-disk-train-test"], capsys)
    assert code == 2 and "Traceback" not in err, err
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "no space left on the device" in errors[0], err
    assert all(ln.startswith(("error:", "warning:")) for ln in err.splitlines() if ln.strip()), err
    ckpts = disk / "run" / "checkpoints"
    names = sorted(p.name for p in ckpts.iterdir())
    assert "last.ckpt" in names and len(names) == 2 and not [n for n in names if n.startswith(".")], names
    for name in names:
        assert checkpoint_problem(ckpts / name) is None, name
    import torch

    assert torch.load(ckpts / "last.ckpt", weights_only=True)["epoch"] == 0

    filler.unlink()
    code, _, err = run(["train", "--resume", disk / "run"], capsys)
    assert code == 0, err
    assert torch.load(ckpts / "last.ckpt", weights_only=True)["epoch"] == 1
    rows = _train_rows(disk / "run" / "metrics.csv")
    assert {e for e, _ in rows} == {"0", "1"}
    assert [k for k, n in Counter(rows).items() if n > 1] == []
