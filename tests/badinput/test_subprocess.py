"""A few cases through a real process: what reaches the terminal is one line, never a traceback."""

from __future__ import annotations

import pickle

from .helpers import listing, one_line, run_subprocess


class _Payload:
    def __reduce__(self):
        import os

        return (os.system, ("touch PAYLOAD-RAN",))


def test_real_processes_print_one_line(tmp_path, sample_dataset, tiny_bundle, readonly_dir):
    # a usage error
    code, _, err = run_subprocess(["data", "split", sample_dataset, "--no-such-option"], cwd=tmp_path)
    assert code == 2 and "No such option: --no-such-option" in one_line(err)
    # an output on a read-only file system
    code, _, err = run_subprocess(["data", "split", sample_dataset, "-o", readonly_dir / "split.json"], cwd=tmp_path)
    assert code == 2 and "read-only file system" in one_line(err)
    assert listing(readonly_dir) == []
    # a pickle posing as model weights: refused, never run
    fake = tmp_path / "fake-bundle"
    fake.mkdir()
    (fake / "bundle.json").write_text((tiny_bundle / "bundle.json").read_text())
    (fake / "model.safetensors").write_bytes(pickle.dumps(_Payload()))
    image = sorted((sample_dataset.parent / "images").iterdir())[0]
    code, _, err = run_subprocess(["predict", fake, image, "-o", tmp_path / "pred", "--backend", "torch"],
                                  cwd=tmp_path)
    assert code == 2 and "model.safetensors" in one_line(err)
    assert not (tmp_path / "PAYLOAD-RAN").exists()
    # a damaged ONNX file
    broken = tmp_path / "model.onnx"
    broken.write_bytes(b"\x08\x07garbage" * 10)
    code, _, err = run_subprocess(["evaluate", broken, "--data", sample_dataset, "--split", "all", "-o",
                                   tmp_path / "eval"], cwd=tmp_path)
    assert code == 2 and "model.onnx" in one_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake-bundle", "model.onnx", "readonly"]
