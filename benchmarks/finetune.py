#!/usr/bin/env python
"""Few-label gain of fine-tuning (``model.init_from``) over training from scratch, on the Dubai set.

Pretrains on Tiles 1-4 only, then trains on Tiles 5-6 for the same fixed step count twice: once
starting from the pretrained bundle (``--set model.init_from=BUNDLE``), once from random weights.
Both are scored on the 18 held-out images of Tiles 7-8 at full resolution (``benchmarks/dubai.py``:
mIoU over the 5 real classes), so the difference is what starting from a pretrained model is worth
when only a few labelled images of the new place exist::

    python benchmarks/finetune.py --pretrain-steps 400 --steps 150

Steps are fixed, so machine load changes the time, not the figures. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def dubai(args, tiles: str, steps: int, name: str, extra: list[str]) -> dict:
    cmd = [sys.executable, str(HERE / "dubai.py"), "--train-tiles", tiles, "--steps", str(steps),
           "--batch", str(args.batch), "--model", args.model, "--options", args.options, "--name", name,
           "--out", args.out] + extra
    return json.loads(subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pretrain-steps", type=int, default=400)
    ap.add_argument("--steps", type=int, default=150, help="fine-tuning / from-scratch steps on Tiles 5-6")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--model", default="unet")
    ap.add_argument("--options", default="{base_channels: 16, depth: 4}")
    ap.add_argument("--pretrained", help="skip pretraining: this bundle (trained on Tiles 1-4 only)")
    ap.add_argument("--out", default=str(HERE.parent / "runs" / "bench"))
    args = ap.parse_args(argv)

    stamp = time.strftime("%Y%m%d-%H%M%S")
    result: dict = {"load_average_before": [round(v, 2) for v in os.getloadavg()], "model": args.model,
                    "options": args.options, "batch": args.batch, "steps": args.steps}
    if args.pretrained:
        bundle = args.pretrained
    else:
        pre = dubai(args, "1-4", args.pretrain_steps, f"ft-pretrain-{stamp}", ["--limit-test", "1"])
        bundle = pre["bundle"]
        result["pretrain"] = {"tiles": "1-4", "steps": pre.get("steps"), "minutes": pre.get("train_minutes")}
    result["pretrained_bundle"] = bundle
    rows = {}
    for label, extra in (("fine_tuned", ["--set", f"model.init_from={bundle}"]), ("from_scratch", [])):
        r = dubai(args, "5,6", args.steps, f"ft-{label}-{stamp}", extra)
        rows[label] = {k: r.get(k) for k in ("miou_real", "pixel_accuracy", "per_class_iou", "steps",
                                              "train_minutes", "train_images", "load_average_before",
                                              "load_average_after")}
    result.update(rows)
    result["gain_points"] = round(100 * (rows["fine_tuned"]["miou_real"] - rows["from_scratch"]["miou_real"]), 2)
    result["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
