#!/usr/bin/env python
"""Real-data benchmark on the Dubai aerial imagery set (MBRSC, read in place from ../shared).

Two protocols:

* ``tiles`` (default): train on Tiles 1-6 (``image_part_005`` of each held out for validation and
  model selection), test on Tiles 7-8 at full resolution (tiled, blended prediction through
  ``terraseg.evaluate.evaluate``). Places never seen in training: the honest measure.
* ``patches``: the random-patch protocol of the published Dubai results (MNET 79.4 %, U-Net 75.1 %
  mIoU, Engineering Proceedings 2022): every image cut into 256 x 256 patches (``terraseg data chip``),
  patches shuffled (seed 0) into 75 % train / 5 % validation / 20 % test. Test patches come from the
  same places as training patches, so this protocol scores far higher than ``tiles``.

Compute is fixed by ``--steps N`` (optimizer steps of ``--batch`` crops of ``--crop`` pixels; results
do not depend on machine load) or by a wall-clock budget ``--minutes M``. The training recipe is the
config defaults (``terraseg train --print-config``) plus ``--set section.key=value`` overrides, so an
ablation changes one override at a time::

    python benchmarks/dubai.py --steps 400
    python benchmarks/dubai.py --steps 400 --set data.sampling.class_balance=0
    python benchmarks/dubai.py --minutes 20
    python benchmarks/dubai.py --protocol patches --steps 2000

Prints one JSON object: protocol, model, options, overrides, steps, crops_seen, train_minutes,
load_average (before/after), miou (every class of the dataset YAML), miou_real (classes other than
``--not-real``, default Unlabeled), pixel_accuracy, per_class_iou, test_class_share, eval_seconds,
run_dir, bundle.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATASET_YAML = ROOT / "examples" / "dubai.yaml"
TRAIN_TILES = [f"Tile {i}" for i in range(1, 7)]
TEST_TILES = ["Tile 7", "Tile 8"]
VAL_IMAGE = "image_part_005"  # held out of each training tile for validation
PATCH = 256


def tile_split(spec, out: Path, train_tiles=tuple(TRAIN_TILES)) -> Path:
    """train / val from ``train_tiles`` (Tiles 1-6), test = Tiles 7-8, as a split JSON (``terraseg data
    split`` format)."""
    from terraseg._io import write_json_atomic

    split: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for s in spec.labelled():
        tile = s.key.split("/")[0]
        if tile in TEST_TILES:
            split["test"].append(s.key)
        elif tile in train_tiles:
            split["val" if Path(s.key).stem == VAL_IMAGE else "train"].append(s.key)
    if not split["train"] or not split["test"]:
        raise SystemExit(f"unexpected layout of {spec.root}: no Tile 1-6 / Tile 7-8 images found")
    return write_json_atomic(out, split)


def parse_tiles(text: str) -> list[str]:
    """``"1-4"`` or ``"5,6"`` as tile names; test tiles are never training tiles."""
    numbers: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        numbers += range(int(lo), int(hi or lo) + 1)
    tiles = [f"Tile {n}" for n in numbers]
    if set(tiles) & set(TEST_TILES):
        raise SystemExit(f"--train-tiles {text}: Tiles 7-8 are the test tiles")
    return tiles


def patch_split(spec, out: Path) -> tuple[Path, Path]:
    """Cut every image into 256 x 256 patches (once, cached in ``out/patches``) and split them at
    random. Returns ``(patch dataset YAML, split JSON)``."""
    from terraseg._io import write_json_atomic
    from terraseg.data.chip import chip_dataset
    from terraseg.data.spec import load_spec

    chips = out / f"patches-{PATCH}"
    if not (chips / "dataset.yaml").is_file():
        chip_dataset(spec, chips, size=PATCH, stride=PATCH, min_valid=0.5, fmt="png")
    yaml_path = chips / "dataset.yaml"
    keys = sorted(s.key for s in load_spec(yaml_path).labelled())
    random.Random(0).shuffle(keys)
    n_test, n_val = round(0.2 * len(keys)), round(0.05 * len(keys))
    split = {"test": keys[:n_test], "val": keys[n_test:n_test + n_val], "train": keys[n_test + n_val:]}
    return yaml_path, write_json_atomic(out / "patches-split.json", split)


def real_class_miou(metrics: dict, names: list[str], not_real: set[str]) -> float | None:
    import math

    ious = [metrics["per_class"][n]["iou"] for n in names if n not in not_real]
    ious = [v for v in ious if v is not None and math.isfinite(v)]
    return sum(ious) / len(ious) if ious else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--protocol", choices=("tiles", "patches"), default="tiles")
    budget = ap.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, help="fixed compute: optimizer steps (default 400)")
    budget.add_argument("--minutes", type=float, help="wall-clock training budget instead of --steps")
    ap.add_argument("--model", default="smp:Unet")
    ap.add_argument("--options", default="{encoder_name: resnet18, encoder_weights: null}",
                    help="model options (YAML mapping)")
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--validations", type=int, default=1, help="validations during a --steps run (the last "
                                                                   "one at the end; the best is kept)")
    ap.add_argument("--val-every", type=int, default=100,
                    help="steps between validations in a --minutes run (the epoch length); with one crop per "
                         "image an epoch of the Dubai training set is 6 steps, and validating that often took "
                         "a third of a 20-minute budget")
    ap.add_argument("--val-crop", type=int, default=512, help="validation crop (one per held-out image); 0: whole")
    ap.add_argument("--set", action="append", default=[], help="training config override (repeatable)")
    ap.add_argument("--dataset", default=str(DATASET_YAML), help="dataset description YAML")
    ap.add_argument("--train-tiles", default="1-6", help="tiles to train on (tiles protocol), e.g. 1-4 or 5,6")
    ap.add_argument("--not-real", default="Unlabeled", help="comma-separated classes left out of miou_real")
    ap.add_argument("--eval-tile", type=int, default=1024, help="tile size of the full-resolution evaluation")
    ap.add_argument("--eval-overlap", type=int, default=64, help="tile overlap (pixels), cosine-blended")
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench"), help="folder for the run directory")
    ap.add_argument("--name", help="run directory name (default: protocol, model and time)")
    ap.add_argument("--skip-train", metavar="BUNDLE", help="only evaluate an existing bundle")
    ap.add_argument("--limit-test", type=int, default=0, help="evaluate only the first N test images (smoke runs)")
    args = ap.parse_args(argv)
    if args.steps is None and args.minutes is None:
        args.steps = 400

    import torch
    import yaml

    from terraseg.data.spec import load_spec
    from terraseg.metrics import jsonable

    spec = load_spec(args.dataset)
    if not Path(spec.root).is_dir():
        print(json.dumps({"error": f"data set not found at {spec.root}"}))
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = args.name or f"dubai-{args.protocol}-{args.model.replace(':', '-')}-{time.strftime('%Y%m%d-%H%M%S')}"
    if args.protocol == "tiles":
        data_yaml, split_path = Path(args.dataset), tile_split(spec, out / f"{name}-split.json",
                                                               parse_tiles(args.train_tiles))
        eval_tile, eval_overlap = args.eval_tile, args.eval_overlap
    else:
        data_yaml, split_path = patch_split(spec, out)
        eval_tile, eval_overlap = PATCH, 0  # each test patch predicted whole
    split = json.loads(split_path.read_text())
    device = "cuda" if torch.cuda.is_available() else "cpu"
    result: dict = {"protocol": args.protocol, "model": args.model, "options": yaml.safe_load(args.options) or {},
                    "overrides": args.set, "steps_asked": args.steps, "minutes_asked": args.minutes,
                    "device": device if device == "cpu" else torch.cuda.get_device_name(0),
                    "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
                    "train_images": len(split["train"]), "val_images": len(split["val"]),
                    "test_images": len(split["test"]), "crop": args.crop, "batch": args.batch,
                    "load_average_before": [round(v, 2) for v in os.getloadavg()]}
    t0 = time.time()
    if args.skip_train:
        bundle = Path(args.skip_train)
    else:
        from terraseg.train.run import train

        overrides = [f"data.dataset={data_yaml}", f"data.split={split_path}", f"data.crop_size={args.crop}",
                     f"data.batch_size={args.batch}", f"model.name={args.model}", f"model.options={args.options}",
                     f"data.val_crop_size={args.val_crop or 'null'}", "trainer.max_epochs=null",
                     f"output.dir={out}", f"output.name={name}"]
        if args.steps is not None:
            per_epoch = max(1, args.steps // max(1, args.validations))
            overrides += [f"trainer.max_steps={args.steps}", f"data.samples_per_epoch={per_epoch * args.batch}"]
        else:
            overrides += [f"trainer.max_time={args.minutes}", f"data.samples_per_epoch={args.val_every * args.batch}"]
        res = train(None, overrides + list(args.set))
        if res.bundle_path is None:
            print(json.dumps({**result, "error": "training produced no bundle"}))
            return 1
        bundle = res.bundle_path
        result.update({"train_minutes": round((time.time() - t0) / 60, 2), "epochs": res.epochs,
                       "steps": res.global_step, "crops_seen": res.global_step * args.batch,
                       "best_val_miou": res.metrics.get("miou"), "best_val_step": res.metrics.get("global_step"),
                       "run_dir": str(res.run_dir)})
    if args.limit_test:
        from terraseg._io import write_json_atomic

        split["test"] = split["test"][: args.limit_test]
        split_path = write_json_atomic(out / f"{name}-split-limited.json", split)
        result["test_images"] = len(split["test"])
    from terraseg.evaluate import evaluate

    t1 = time.time()
    eval_dir = Path(bundle).resolve().parent / "evaluation"  # RUN_DIR/evaluation
    metrics = evaluate(bundle, data_yaml, split="test", split_file=split_path, out_dir=eval_dir,
                       tile_size=eval_tile, overlap=eval_overlap, batch_size=1)
    names = list(metrics["class_names"])
    support = {n: metrics["per_class"][n]["support"] for n in names}
    total = sum(support.values())
    not_real = {n.strip() for n in args.not_real.split(",") if n.strip()}
    result.update({
        "miou": metrics["miou"], "miou_real": real_class_miou(metrics, names, not_real),
        "real_classes": [n for n in names if n not in not_real], "pixel_accuracy": metrics["pixel_accuracy"],
        "mean_class_accuracy": metrics["mean_class_accuracy"],
        "per_class_iou": {n: metrics["per_class"][n]["iou"] for n in names},
        "test_class_share": {n: round(v / total, 4) for n, v in support.items()},
        "evaluation": str(eval_dir), "eval_seconds": round(time.time() - t1, 1), "eval_tile": eval_tile,
        "eval_overlap": eval_overlap, "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "bundle": str(bundle),
    })
    print(json.dumps(jsonable(result), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
