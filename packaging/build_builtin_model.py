#!/usr/bin/env python
"""Build the built-in model ``dubai-landcover`` shipped in ``src/terraseg/pretrained/``.

Reproduces, on a CPU, everything the package ships for it from the CC0 Dubai data set read in place
(``../shared/datasets/dubai-mbrsc``):

1. trains ``--model``/``--options`` from scratch on Tiles 1-6 (``image_part_005`` of each held out for
   validation) for ``--steps`` optimizer steps with the default recipe, through ``benchmarks/dubai.py``;
2. writes the bundle with fp16 weights (safetensors) and an int8 ONNX copy (calibrated on training
   images, with the Deepness plugin's metadata keys);
3. scores both files on the 18 held-out images of Tiles 7-8 at full resolution with the prediction
   defaults the bundle ships (``terraseg.evaluate.evaluate``), mIoU over the 5 real classes;
4. cuts the demo scene (a 1024 px window of a held-out image with every class) and its mask;
5. writes the model card ``card.md`` from the measured figures.

    python packaging/build_builtin_model.py --steps 2500
    python packaging/build_builtin_model.py --skip-train runs/bench/builtin-.../bundle   # re-package only
        [--train-json the-json-dubai.py-printed.json]

Prints one JSON object with every figure of the card. Files are written to a temporary folder and
moved into place at the end, so an interrupted build leaves the shipped model as it was.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATASET_YAML = ROOT / "examples" / "dubai.yaml"
TARGET = ROOT / "src" / "terraseg" / "pretrained"
NAME = "dubai-landcover"
DEFAULT_MODEL = "unet"
DEFAULT_OPTIONS = "{base_channels: 16, depth: 4}"
SHIPPED_TILE = 1024  # tile size the bundle ships for prediction (fully convolutional: more context per tile)
SCENE_SIZE = 1024
MAX_FILE_BYTES = 5_000_000


def train(args) -> tuple[Path, dict]:
    cmd = [sys.executable, str(ROOT / "benchmarks" / "dubai.py"), "--steps", str(args.steps), "--batch", str(args.batch),
           "--model", args.model, "--options", args.options, "--crop", str(args.crop), "--limit-test", "1",
           "--validations", str(args.validations), "--name", args.name, "--out", str(args.out)]
    for item in args.set:
        cmd += ["--set", item]
    done = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True)
    result = json.loads(done.stdout)
    return Path(result["bundle"]), result


def shipped_bundle(trained: Path, folder: Path):
    """The trained bundle with fp16 weights and the shipped tile size; returns ``(model, meta)``."""
    from terraseg.bundle import load_bundle, save_bundle

    b = load_bundle(trained)
    meta = b.meta.model_copy(update={"tile_size": SHIPPED_TILE})
    save_bundle(folder, b.model.half(), meta)
    return b.model, meta


def int8_copy(bundle: Path, out: Path, split: dict, dubai_root: Path) -> Path:
    from terraseg.export import export_onnx
    from terraseg.export.quantize import calibration_tiles, quantize_int8
    from terraseg.predict.onnx_backend import read_onnx_meta

    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_onnx(bundle, Path(tmp) / "model.onnx")
        images = [dubai_root / key for key in split["train"][::4]]  # a spread of training images
        tiles = calibration_tiles(images, read_onnx_meta(fp32), n=32, size=512)
        return quantize_int8(fp32, out, tiles)


def score(model: Path, split_path: Path, out_dir: Path) -> dict:
    from terraseg.evaluate import evaluate

    t0 = time.time()
    m = evaluate(model, DATASET_YAML, split="test", split_file=split_path, out_dir=out_dir, batch_size=1)
    names = list(m["class_names"])
    return {"miou": m["miou"], "pixel_accuracy": m["pixel_accuracy"], "kappa": m["kappa"],
            "per_class_iou": {n: m["per_class"][n]["iou"] for n in names},
            "per_class_f1": {n: m["per_class"][n]["f1"] for n in names},
            "pixels": int(sum(m["per_class"][n]["support"] for n in names)), "seconds": round(time.time() - t0, 1)}


def demo_scene(split: dict, dubai_root: Path, spec, out: Path) -> dict:
    """The SCENE_SIZE window of a held-out image whose mask holds the most classes (ties: most even)."""
    import numpy as np
    from PIL import Image

    best = None
    for key in split["test"]:
        sample = next(s for s in spec.labelled() if s.key == key)
        image, mask = spec.read_pair(sample)
        h, w = mask.shape
        for top in range(0, h - SCENE_SIZE + 1, SCENE_SIZE // 2):
            for left in range(0, w - SCENE_SIZE + 1, SCENE_SIZE // 2):
                win = mask[top:top + SCENE_SIZE, left:left + SCENE_SIZE]
                share = np.bincount(win[win < spec.num_classes].ravel(), minlength=spec.num_classes) / win.size
                rank = (int((share >= 0.03).sum()), float(share.min()))
                if best is None or rank > best[0]:
                    best = (rank, key, top, left)
    _, key, top, left = best
    sample = next(s for s in spec.labelled() if s.key == key)
    image = Image.open(sample.image).convert("RGB").crop((left, top, left + SCENE_SIZE, top + SCENE_SIZE))
    mask = Image.open(sample.mask).convert("RGB").crop((left, top, left + SCENE_SIZE, top + SCENE_SIZE))
    out.mkdir(parents=True, exist_ok=True)
    image.save(out / "dubai-scene.jpg", quality=88, optimize=True)
    # the mask's few colours as a palette PNG: the same RGB values, a fraction of the bytes
    mask.quantize(colors=8, method=Image.Quantize.MAXCOVERAGE, dither=Image.Dither.NONE).save(
        out / "dubai-scene-mask.png", optimize=True)
    check = np.asarray(Image.open(out / "dubai-scene-mask.png").convert("RGB"))
    if not np.array_equal(check, np.asarray(mask)):
        raise SystemExit("the palette mask changed colours")
    (out / "ATTRIBUTION.md").write_text(
        "# Sample scene\n\n`dubai-scene.jpg` and `dubai-scene-mask.png` are a "
        f"{SCENE_SIZE} x {SCENE_SIZE} px window (left {left}, top {top}) of `{key}` and its mask from the\n"
        "Dubai aerial imagery data set: satellite images by MBRSC (Mohammed Bin Rashid Space Centre),\n"
        "labelled by Humans in the Loop, published under CC0 1.0 (public domain). The image comes from\n"
        "Tiles 7-8, which the built-in model `dubai-landcover` never saw in training. Mask colours: "
        "the model card's.\n", encoding="utf-8")
    return {"source": key, "window": {"left": left, "top": top, "size": SCENE_SIZE},
            "bytes": sum((out / n).stat().st_size for n in ("dubai-scene.jpg", "dubai-scene-mask.png"))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2500)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--validations", type=int, default=5)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--options", default=DEFAULT_OPTIONS)
    ap.add_argument("--set", action="append", default=[], help="training config override (repeatable)")
    ap.add_argument("--name", default=f"builtin-{time.strftime('%Y%m%d-%H%M%S')}")
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench"))
    ap.add_argument("--skip-train", metavar="BUNDLE", help="package an already trained bundle")
    ap.add_argument("--train-json", metavar="JSON", help="with --skip-train: the JSON benchmarks/dubai.py printed "
                    "for that bundle, so the card and bundle.json record its steps, images and crops")
    ap.add_argument("--target", default=str(TARGET), help="the pretrained package folder")
    ap.add_argument("--recard", action="store_true", help="only write card.md again from the shipped build.json")
    args = ap.parse_args(argv)
    if args.recard:
        from terraseg.bundle import read_meta

        folder = Path(args.target) / NAME
        summary = json.loads((folder / "build.json").read_text(encoding="utf-8"))
        (folder / "card.md").write_text(card(summary, read_meta(folder)), encoding="utf-8")
        return 0

    from terraseg.data.spec import load_spec

    spec = load_spec(DATASET_YAML)
    dubai_root = Path(spec.root)
    load_before = [round(v, 2) for v in os.getloadavg()]
    t0 = time.time()
    if args.skip_train:
        trained = Path(args.skip_train)
        train_result = (json.loads(Path(args.train_json).read_text(encoding="utf-8")) if args.train_json
                        else {"skipped": True})
        split_path = Path(args.out) / f"{args.name}-split.json"
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from dubai import tile_split

        tile_split(spec, split_path)
    else:
        trained, train_result = train(args)
        split_path = Path(args.out) / f"{args.name}-split.json"
    split = json.loads(split_path.read_text())
    target = Path(args.target)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=target))
    try:
        staging, folder = work / "staging", work / NAME
        model, meta = shipped_bundle(trained, staging)
        int8_file = int8_copy(staging, work / "model.int8.onnx", split, dubai_root)
        fp32 = score(staging, split_path, work / "eval-fp32")
        int8 = score(int8_file, split_path, work / "eval-int8")
        scene = demo_scene(split, dubai_root, spec, work / "samples")
        from terraseg.bundle import save_bundle

        metrics = {"test_miou": fp32["miou"], "test_pixel_accuracy": fp32["pixel_accuracy"],
                   "test_kappa": fp32["kappa"], "test_per_class_iou": fp32["per_class_iou"],
                   "test_miou_int8": int8["miou"], "test_pixel_accuracy_int8": int8["pixel_accuracy"],
                   "validation": dict(meta.metrics)}
        extra = {**meta.extra, "name": NAME, "licence": "training data CC0 1.0; model MIT, as terraseg",
                 "train_tiles": "Tile 1-6", "test_tiles": "Tile 7-8", "steps": train_result.get("steps"),
                 "run_dir": None}
        meta = meta.model_copy(update={"metrics": metrics, "extra": extra})
        save_bundle(folder, model.half(), meta)
        int8_file.rename(folder / "model.int8.onnx")
        sizes = {p.name: p.stat().st_size for p in sorted(folder.iterdir())}
        too_big = {n: v for n, v in sizes.items() if v > MAX_FILE_BYTES}
        if too_big:
            raise SystemExit(f"files over {MAX_FILE_BYTES} bytes: {too_big}")
        summary = {"model": args.model, "options": args.options, "train": train_result, "fp32": fp32, "int8": int8,
                   "int8_minus_fp32_points": round(100 * (int8["miou"] - fp32["miou"]), 2), "scene": scene,
                   "sizes": sizes, "load_average_before": load_before,
                   "load_average_after": [round(v, 2) for v in os.getloadavg()],
                   "minutes": round((time.time() - t0) / 60, 1), "date": time.strftime("%Y-%m-%d"),
                   "command": " ".join(["python", "packaging/build_builtin_model.py"] + (argv or sys.argv[1:]))}
        (folder / "card.md").write_text(card(summary, meta), encoding="utf-8")
        (folder / "build.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        # swap in: the old model stays until the new one is complete
        for name in (NAME, "samples"):
            old = target / name
            if old.exists():
                shutil.rmtree(old)
            (work / name).rename(old)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(summary, indent=2))
    return 0


def card(s: dict, meta) -> str:
    """The model card: what a user needs to decide whether the model fits their imagery."""
    fp32, int8 = s["fp32"], s["int8"]
    rows = "\n".join(f"| {n} | {meta.colors[i] and '#%02X%02X%02X' % tuple(meta.colors[i])} | "
                     f"{100 * fp32['per_class_iou'][n]:.1f} % | {100 * int8['per_class_iou'][n]:.1f} % |"
                     for i, n in enumerate(meta.classes))
    return f"""# dubai-landcover

Land cover from very-high-resolution RGB satellite imagery: **{", ".join(meta.classes)}**. A
classic U-Net ({s['model']}, options `{s['options']}`) trained from scratch on a CPU; shipped inside
terraseg, so it works with no download and no training.

## Training data and licence

* Dubai aerial imagery (MBRSC satellites, labelled by Humans in the Loop), **CC0 1.0** public domain:
  72 RGB images in 8 tiles, RGB colour masks. The "Unlabeled" colour and pure black are ignored (not
  land cover), so the model has 5 classes.
* Trained on **Tiles 1-6** ({s['train'].get('train_images', 48)} images, `image_part_005` of each tile held out for
  model selection); scored on **Tiles 7-8** (18 images, {fp32['pixels']:,} labelled pixels), places the
  model never saw. {s['train'].get('steps', '?')} steps of {s['train'].get('batch', 8)} crops of
  {s['train'].get('crop', 256)} px, the default recipe (class-balanced crops, median-frequency class
  weights, cross-entropy + Dice, AdamW with poly decay).
* Input: 3 bands (R, G, B), 8-bit; normalised with mean {[round(v, 2) for v in meta.mean]} and std
  {[round(v, 2) for v in meta.std]}. Ground sampling distance of the training images:
  {f"{meta.resolution} m" if meta.resolution else "not stated by the data set (JPEG images without georeference; buildings, cars and road markings are resolved, so metre-class or finer)"}.
  Predictions use {meta.tile_size} px tiles.

## Scores on the held-out tiles (full resolution)

| | fp32 (`model.safetensors`, fp16 storage) | int8 (`model.int8.onnx`) |
| --- | --- | --- |
| **mIoU, 5 classes** | **{100 * fp32['miou']:.1f} %** | {100 * int8['miou']:.1f} % |
| pixel accuracy | {100 * fp32['pixel_accuracy']:.1f} % | {100 * int8['pixel_accuracy']:.1f} % |
| Cohen's kappa | {fp32['kappa']:.3f} | {int8['kappa']:.3f} |

int8 − fp32: {s['int8_minus_fp32_points']:+.2f} points of mIoU.

| class | colour | IoU fp32 | IoU int8 |
| --- | --- | --- | --- |
{rows}

## Intended use and known limits

* Intended: a first land-cover map of very-high-resolution RGB imagery of arid cities, a starting
  point for fine-tuning on your own labels (`model.init_from: dubai-landcover`), trying terraseg, QGIS
  and the Deepness plugin (`model.int8.onnx`) before any training.
* **One city, one season, one sensor family**: trained on Dubai only (desert, dense built-up areas,
  irrigated vegetation, sea and pools). Expect lower scores elsewhere: temperate or tropical
  landscapes, snow, other sensors, much coarser or finer ground resolutions, images with other band
  orders or bit depths.
* Roads and vegetation are the weakest classes (thin, or mixed with land); the map is not survey-grade.
  For reported areas, assess the map with a reference sample (`terraseg assess`).

## Files

`bundle.json` + `model.safetensors` (terraseg bundle, torch), `model.int8.onnx` (ONNX Runtime, int8,
Deepness metadata keys), this card. Sizes: {", ".join(f"{n} {v / 1e6:.2f} MB" for n, v in s['sizes'].items())}.

## Reproduce

```bash
{s['command']}
```

Built on {s['date']} on a 2-core CPU (load average {s['load_average_before']} before,
{s['load_average_after']} after); {s['minutes']} minutes in all.
"""


if __name__ == "__main__":
    sys.exit(main())
