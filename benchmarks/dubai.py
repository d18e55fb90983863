#!/usr/bin/env python
"""Real-data benchmark on the Dubai aerial imagery set (MBRSC, read in place from ../shared).

Trains a model from scratch on Tiles 1-6 (one image per tile held out for validation and model
selection) within a wall-clock budget, then evaluates the best bundle at full resolution on Tiles 7-8
with ``terraseg.evaluate.evaluate`` (tiled predictor, one confusion matrix over the set; metrics.json,
table and confusion-matrix plot in RUN_DIR/evaluation) and prints one JSON object::

    python benchmarks/dubai.py --model unet --options '{base_channels: 16, depth: 4}' --minutes 20

Fields: model, options, minutes (budget), train_minutes, device, threads, load_average, epochs, steps,
crops_seen, best_val_miou, miou, pixel_accuracy, mean_class_accuracy, per_class_iou, test_class_share,
majority_class, majority_baseline_pa, eval_seconds, run_dir, bundle.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATASET_YAML = ROOT / "examples" / "dubai.yaml"
TRAIN_TILES = [f"Tile {i}" for i in range(1, 7)]
TEST_TILES = ["Tile 7", "Tile 8"]
VAL_IMAGE = "image_part_005"  # held out of each training tile for validation


def make_split(spec, out: Path) -> Path:
    """train / val from Tiles 1-6, test = Tiles 7-8, as a split JSON (``terraseg data split`` format)."""
    from terraseg._io import write_json_atomic

    split: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for s in spec.labelled():
        tile = s.key.split("/")[0]
        if tile in TEST_TILES:
            split["test"].append(s.key)
        elif tile in TRAIN_TILES:
            split["val" if Path(s.key).stem == VAL_IMAGE else "train"].append(s.key)
    if not split["train"] or not split["test"]:
        raise SystemExit(f"unexpected layout of {spec.root}: no Tile 1-6 / Tile 7-8 images found")
    return write_json_atomic(out, split)


def evaluate_bundle(bundle_path: Path, spec, split_path: Path, tile_size: int, batch_size: int,
                    overlap: int = 64, out_dir: Path | None = None) -> tuple[dict, float]:
    """Full-resolution tiled prediction of every test image, one confusion matrix over the set
    (``terraseg.evaluate.evaluate``, the same code as ``terraseg evaluate``)."""
    from terraseg.evaluate import evaluate

    t0 = time.time()
    metrics = evaluate(bundle_path, spec, split="test", split_file=split_path, out_dir=out_dir,
                       tile_size=tile_size, overlap=overlap, batch_size=batch_size)
    return metrics, time.time() - t0


def class_pixels(spec, samples):
    import numpy as np

    counts = np.zeros(spec.num_classes, np.int64)
    for s in samples:
        mask, _ = spec.read_mask(s)
        counts += np.bincount(mask[mask < spec.num_classes].ravel(), minlength=spec.num_classes)[: spec.num_classes]
    return counts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="unet")
    ap.add_argument("--options", default="{base_channels: 16, depth: 4}", help="model options (YAML mapping)")
    ap.add_argument("--minutes", type=float, default=20.0, help="training wall-clock budget")
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--samples-per-epoch", type=int, default=96, help="random crops per epoch (one validation each)")
    ap.add_argument("--loss", default="{ce: 1.0}", help="loss terms (YAML mapping)")
    ap.add_argument("--eval-tile", type=int, default=1024, help="tile size of the full-resolution evaluation")
    ap.add_argument("--eval-overlap", type=int, default=64, help="tile overlap (pixels), cosine-blended")
    ap.add_argument("--eval-batch", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench"), help="folder for the run directory")
    ap.add_argument("--dataset", default=str(DATASET_YAML), help="dataset description YAML")
    ap.add_argument("--set", action="append", default=[], help="extra training config overrides")
    ap.add_argument("--limit-test", type=int, default=0, help="evaluate only the first N test images (smoke runs)")
    ap.add_argument("--skip-train", metavar="BUNDLE", help="only evaluate an existing bundle")
    args = ap.parse_args(argv)

    import torch
    import yaml

    from terraseg.data.spec import load_spec

    spec = load_spec(args.dataset)
    if not Path(spec.root).is_dir():
        print(json.dumps({"error": f"data set not found at {spec.root}"}))
        return 2
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    name = f"dubai-{args.model.replace(':', '-')}-{stamp}"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    split_path = make_split(spec, out / f"{name}-split.json")
    split = json.loads(split_path.read_text())
    device = "cuda" if torch.cuda.is_available() else "cpu"
    load_before = os.getloadavg()

    result: dict = {"model": args.model, "options": yaml.safe_load(args.options) or {}, "minutes": args.minutes,
                    "device": device if device == "cpu" else torch.cuda.get_device_name(0),
                    "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
                    "train_images": len(split["train"]), "val_images": len(split["val"]),
                    "test_images": len(split["test"]), "crop": args.crop, "batch": args.batch, "lr": args.lr}
    t0 = time.time()
    if args.skip_train:
        bundle = Path(args.skip_train)
    else:
        from terraseg.train.run import train

        overrides = [
            f"data.dataset={args.dataset}", f"data.split={split_path}", f"data.crop_size={args.crop}",
            f"data.batch_size={args.batch}", f"data.samples_per_epoch={args.samples_per_epoch}",
            f"model.name={args.model}", f"model.options={args.options}", f"loss.terms={args.loss}",
            f"optimizer.lr={args.lr}", "optimizer.name=adamw", "schedule.name=poly", "schedule.warmup_steps=10",
            "trainer.max_epochs=null", f"trainer.max_time={args.minutes}", f"output.dir={out}",
            f"output.name={name}", *args.set,
        ]
        res = train(None, overrides)
        if res.bundle_path is None:
            print(json.dumps({**result, "error": "training produced no bundle"}))
            return 1
        bundle = res.bundle_path
        result.update({"train_minutes": round((time.time() - t0) / 60, 2), "epochs": res.epochs,
                       "steps": res.global_step, "crops_seen": res.global_step * args.batch,
                       "best_val_miou": res.metrics.get("miou"), "best_val_epoch": res.metrics.get("epoch"),
                       "run_dir": str(res.run_dir)})
    if args.limit_test:  # smoke runs: a split file with fewer test images
        from terraseg._io import write_json_atomic

        split["test"] = split["test"][: args.limit_test]
        split_path = write_json_atomic(out / f"{name}-split-limited.json", split)
        result["test_images"] = len(split["test"])
    eval_dir = Path(bundle).resolve().parent / "evaluation"  # RUN_DIR/evaluation
    metrics, eval_s = evaluate_bundle(bundle, spec, split_path, args.eval_tile, args.eval_batch, args.eval_overlap,
                                      eval_dir)
    train_counts = class_pixels(spec, spec.select(split["train"]))
    majority = int(train_counts.argmax())
    test_support = {n: metrics["per_class"][n]["support"] for n in spec.class_names}
    total = sum(test_support.values())
    result.update({
        "miou": metrics["miou"], "pixel_accuracy": metrics["pixel_accuracy"],
        "mean_class_accuracy": metrics["mean_class_accuracy"], "fwiou": metrics["fwiou"], "kappa": metrics["kappa"],
        "per_class_iou": {n: metrics["per_class"][n]["iou"] for n in spec.class_names},
        "test_class_share": {n: round(v / total, 4) for n, v in test_support.items()},
        "majority_class": spec.class_names[majority],
        "majority_baseline_pa": test_support[spec.class_names[majority]] / total,
        "evaluation": str(eval_dir), "eval_seconds": round(eval_s, 1), "eval_tile": args.eval_tile, "eval_overlap": args.eval_overlap,
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "bundle": str(bundle),
    })
    from terraseg.metrics import jsonable

    print(json.dumps(jsonable(result), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
