"""``--precision auto``: int8 (ONNX) or bf16 (torch) only where it keeps the fp32 class map.

Reduced precision is faster but not free: int8 activations are clipped to calibrated ranges, bf16
keeps 8 bits of mantissa. Whether that changes the class map depends on the model and the imagery,
so it is measured, once per model: the candidate and fp32 predict the same held-out tiles (cut from
other images than the int8 calibration when there are several, else from other places), and the
candidate is chosen only when its class map agrees with fp32 on >= 99.5 % of the pixels and it ran
at least 1.1x faster on those tiles. The decision is kept in the model cache (one JSON record per
model), so later runs do not measure again; delete the record to measure anew. Without imagery to
check on, fp32 runs.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

__all__ = ["AGREEMENT", "MIN_SPEEDUP", "calibration_split", "compare", "choose_onnx_precision",
           "choose_torch_precision"]

AGREEMENT = 0.995
MIN_SPEEDUP = 1.1
CALIBRATION_TILES = 16
CHECK_TILES = 8


def calibration_split(calibration, meta) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(calibration tiles, held-out check tiles)``, normalised ``(N, C, s, s)``, from ``calibration``:
    normalised tiles (split in halves), or image paths / arrays (every other image, or other places
    of a single image). ``(None, None)`` without calibration data."""
    from terraseg.export.quantize import calibration_tiles

    if calibration is None:
        return None, None
    if isinstance(calibration, np.ndarray) and calibration.ndim == 4:
        half = max(1, len(calibration) // 2)
        return calibration[:half], (calibration[half:] if len(calibration) > 1 else None)
    images = list(calibration)
    if not images:
        return None, None
    size = min(max(int(meta.tile_size), 64), 256)
    fit, held_out = (images[0::2], images[1::2]) if len(images) > 1 else (images, images)
    return (calibration_tiles(fit, meta, n=CALIBRATION_TILES, size=size, seed=0),
            calibration_tiles(held_out, meta, n=CHECK_TILES, size=size, seed=1))


def compare(reference, candidate, tiles: np.ndarray) -> tuple[float, float]:
    """``(class agreement, speed-up)`` of ``candidate`` against ``reference`` on ``tiles``, run one
    tile at a time in turn so that other load on the machine hits both alike."""
    reference(tiles[:1])
    candidate(tiles[:1])  # warm-up: first calls allocate
    same = total = 0
    t_ref = t_cand = 0.0
    for i in range(len(tiles)):
        x = tiles[i:i + 1]
        t = time.perf_counter()
        a = reference(x)
        t_ref += time.perf_counter() - t
        t = time.perf_counter()
        b = candidate(x)
        t_cand += time.perf_counter() - t
        same += int((a.argmax(axis=1) == b.argmax(axis=1)).sum())
        total += a.shape[0] * a.shape[2] * a.shape[3]
    return same / total, t_ref / max(t_cand, 1e-9)


def _record_path(cache_dir, stem: str) -> Path | None:
    from terraseg.export.cache import CacheError, cache_dir as cache_folder

    try:
        return cache_folder(cache_dir) / f"{stem}.precision.json"
    except CacheError:
        return None


def _decide(candidate_name: str, reference, make_candidate, check, record_path):
    """The backend to run and the note that says why, measuring (and recording) when needed."""
    from terraseg.export.cache import read_record, write_record

    record = read_record(record_path) if record_path is not None else None
    if record and record.get("candidate") == candidate_name:
        choice = record.get("choice")
        note = record.get("note", "")
        if choice == candidate_name:
            return make_candidate(), f"{note}; decided earlier, see {record_path}"
        if choice == "fp32":
            return reference, f"{note}; decided earlier, see {record_path}"
    if check is None:
        return reference, "precision auto: fp32 (no imagery to check reduced precision on)"
    candidate = make_candidate()
    agreement, speedup = compare(reference, candidate, check)
    good = agreement >= AGREEMENT and speedup >= MIN_SPEEDUP
    choice = candidate_name if good else "fp32"
    note = (f"precision auto: {choice} ({candidate_name} class map agreed {100 * agreement:.2f} % with fp32 "
            f"on {len(check)} held-out tiles, {speedup:.2f}x the speed; needs >= {100 * AGREEMENT:g} % "
            f"and >= {MIN_SPEEDUP:g}x)")
    if record_path is not None:
        write_record(record_path, {"candidate": candidate_name, "choice": choice, "agreement": agreement,
                                   "speedup": speedup, "check_tiles": int(len(check)), "note": note})
    return (candidate if good else reference), note


def choose_onnx_precision(onnx_path: Path, device: str, calibration, cache_dir):
    """fp32 or a calibrated int8 copy of the fp32 file ``onnx_path``, as measured (see module doc)."""
    from terraseg.export.cache import file_digest
    from terraseg.export.quantize import cached_int8
    from terraseg.predict.onnx_backend import OnnxBackend

    fp32 = OnnxBackend(onnx_path, device=device)
    fit, check = calibration_split(calibration, fp32.meta)
    record_path = _record_path(cache_dir, f"{Path(onnx_path).stem}-{file_digest(onnx_path)[:16]}")

    def make_int8():
        return OnnxBackend(cached_int8(onnx_path, calibration=fit, cache_dir=cache_dir), precision="int8",
                           device=device)

    runner, note = _decide("int8", fp32, make_int8, check, record_path)
    runner.origin = note
    return runner


def choose_torch_precision(model, device: str, calibration, cache_dir):
    """fp32 or bf16 on torch for a bundle (folder or Bundle), as measured (see module doc)."""
    from terraseg.export.cache import bundle_digest
    from terraseg.predict.backends import TorchBackend

    fp32 = TorchBackend(model, device=device)
    _, check = calibration_split(calibration, fp32.meta)
    record_path = None
    if isinstance(model, (str, Path)):
        stem = f"{Path(model).resolve().name}-{bundle_digest(model)}-torch-{str(device).split(':')[0]}"
        record_path = _record_path(cache_dir, stem)
    runner, note = _decide("bf16", fp32, lambda: TorchBackend(fp32.bundle, device=device, precision="bf16"),
                           check, record_path)
    runner.origin = note
    return runner
