"""``make demo``: the whole terraseg pipeline on a generated sample, on a laptop CPU, no downloads.

    python -m terraseg.demo --out demo-output [--minutes 2.5]

Steps: predict a real CC0 Dubai scene with the built-in model (no training) and score the map
against its mask; then generate a labelled sample and a separate test set, inspect the sample, compute
band statistics, split it without leakage, train a small U-Net for a couple of minutes, evaluate it at
full resolution on the test set, predict a large generated GeoTIFF scene (class GeoTIFF, colour mask,
overlay, polygons, class areas), and export the model to ONNX and predict with it without PyTorch.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console

console = Console(stderr=True)

# A small classic U-Net, trained for a couple of minutes on CPU (see examples/train-sample.yaml).
TRAIN_CONFIG = {
    "data": {"crop_size": 128, "batch_size": 8, "samples_per_epoch": 64},
    "model": {"name": "unet", "options": {"base_channels": 16, "depth": 3}},
    "loss": {"terms": {"ce": 1.0, "dice": 0.5}},
    "optimizer": {"name": "adamw", "lr": 0.003, "weight_decay": 0.0001},
    "schedule": {"name": "poly", "warmup_steps": 10},
    "trainer": {"max_epochs": 12, "seed": 0},
}


def _step(title: str) -> float:
    console.rule(f"[bold]{title}")
    return time.perf_counter()


def _done(t0: float, what: str) -> None:
    console.print(f"[green]✓[/] {what} [dim]({time.perf_counter() - t0:.1f} s)[/]")


def run_demo(out: str | Path = "demo-output", minutes: float = 2.5, scene_size: int = 3000) -> dict:
    """Run every stage into ``out`` and return a summary (also written to ``out/summary.json``)."""
    from terraseg._io import write_json_atomic
    from terraseg.data import (compute_stats, generate_sample, inspect_dataset, make_split, write_split,
                               write_stats_to_yaml)
    from terraseg.data.spec import load_spec

    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    summary: dict = {"out": str(out)}

    t = _step("0. the built-in model on a real scene (no training)")
    summary["builtin"] = builtin_scene(out / "builtin")
    b = summary["builtin"]
    _done(t, f"dubai-landcover on a held-out Dubai image: pixel accuracy {b['score']['pixel_accuracy']:.3f}, "
             f"mIoU {b['score']['miou']:.3f} against its mask; overlay at {b['outputs']['overlay']}")

    t = _step("1. generate a labelled sample (procedural, no downloads)")
    sample_yaml = generate_sample(out / "sample", n_images=16, size=256, seed=0)
    test_yaml = generate_sample(out / "test-set", n_images=6, size=256, seed=1)  # same size, other seed
    _done(t, f"16 training scenes in {sample_yaml.parent}, 6 test scenes in {test_yaml.parent}")

    t = _step("2. inspect: palette discovery and checks")
    report = inspect_dataset(out / "sample", out_yaml=out / "sample" / "inspected.yaml")
    summary["palette"] = [{"color": c.label, "name": c.name, "share": round(c.share, 4)} for c in report.palette]
    for c in report.palette:
        console.print(f"  {c.label}  {c.share * 100:5.1f} %  {c.name or '(ignored)'}")
    _done(t, f"{len(report.palette)} colours, draft dataset YAML at {out / 'sample' / 'inspected.yaml'}")

    t = _step("3. band statistics and a leak-free split")
    spec = load_spec(sample_yaml)
    stats = compute_stats(spec)
    summary["mean"], summary["std"] = stats.mean, stats.std
    console.print(f"  mean {[round(m, 1) for m in stats.mean]}  std {[round(s, 1) for s in stats.std]}")
    write_stats_to_yaml(sample_yaml, stats)  # training normalises with these, and the bundle carries them
    split = make_split(spec, val=0.25, test=0.0, seed=0)
    split_path = write_split(split, out / "sample" / "split.json")
    _done(t, f"mean/std written into {sample_yaml.name}; {len(split['train'])} train / {len(split['val'])} val images, "
             f"split written to {split_path}")

    t = _step(f"4. train a small U-Net (about {minutes:g} minutes on CPU)")
    from terraseg.train import train

    config = json.loads(json.dumps(TRAIN_CONFIG))
    config["data"].update({"dataset": str(sample_yaml), "split": str(split_path)})
    config["trainer"]["max_time"] = minutes
    config["output"] = {"dir": str(out), "name": "run"}
    run_dir = out / "run"
    if (run_dir / "checkpoints").is_dir():  # a previous demo: start afresh
        import shutil

        shutil.rmtree(run_dir)
    result = train(config)
    summary["train"] = {"run_dir": str(result.run_dir), "bundle": str(result.bundle_path),
                        "val_miou": result.metrics.get("miou"), "epochs": result.epochs}
    _done(t, f"bundle at {result.bundle_path}, validation mIoU {result.metrics.get('miou', float('nan')):.3f}")

    t = _step("5. evaluate at full resolution on the separate test set")
    from terraseg.evaluate import evaluate

    metrics = evaluate(result.bundle_path, test_yaml, split=None, out_dir=out / "evaluate")
    summary["evaluate"] = {k: metrics[k] for k in ("pixel_accuracy", "mean_class_accuracy", "miou", "fwiou", "kappa")}
    _done(t, f"mIoU {metrics['miou']:.3f}, pixel accuracy {metrics['pixel_accuracy']:.3f}; "
             f"metrics.json, metrics.md, confusion_matrix.png in {out / 'evaluate'}")

    t = _step(f"6. predict a {scene_size}×{scene_size} georeferenced scene at full resolution")
    from terraseg.predict import predict_file

    # a mosaic of training-size scenes: the objects have the size and look the model was trained on
    scene_yaml = generate_sample(out / "scene", n_images=1, size=scene_size, seed=7, fmt="tif", tile=256)
    scene = scene_yaml.parent / "images" / "scene_000.tif"
    outputs = predict_file(result.bundle_path, scene, out / "predict", vector="gpkg", min_area=4.0)
    summary["predict"] = {k: str(v) for k, v in outputs.items()}
    for kind, path in outputs.items():
        console.print(f"  {kind:12s} {path}")
    score = score_map(outputs["classes"], scene_yaml)
    summary["scene_score"] = score
    _done(t, f"class map (Cloud Optimized GeoTIFF + .qml QGIS style), colour mask, overlay, polygons and class "
             f"areas written; the map scores pixel accuracy {score['pixel_accuracy']:.3f}, mIoU "
             f"{score['miou']:.3f} against the scene's mask")

    t = _step("7. export to ONNX and predict without PyTorch")
    from terraseg.export import export_onnx

    onnx_path = export_onnx(result.bundle_path, out / "model.onnx")
    code = ("import sys; from terraseg.predict import predict_file; "
            f"predict_file({str(onnx_path)!r}, {str(scene)!r}, {str(out / 'predict-onnx')!r}, "
            "color=False, overlay=False); assert 'torch' not in sys.modules; print('ok')")
    subprocess.run([sys.executable, "-c", code], check=True)
    summary["onnx"] = str(onnx_path)
    _done(t, f"{onnx_path} ({onnx_path.stat().st_size / 1e6:.1f} MB, loads in QGIS Deepness); onnxruntime "
             f"prediction in {out / 'predict-onnx'}")

    write_json_atomic(out / "summary.json", summary)
    console.rule("[bold green]done")
    for label, sc in (("built-in dubai-landcover, real Dubai scene ", summary["builtin"]["score"]),
                      ("sample model trained now, generated scene", summary["scene_score"])):
        console.print(f"  {label}: pixel accuracy {sc['pixel_accuracy']:.3f}, mIoU {sc['miou']:.3f}")
    console.print(f"Results in {out} (summary.json lists every file). Try: terraseg gui "
                  f"{scene} --model {result.bundle_path}")
    return summary


def builtin_scene(out: Path) -> dict:
    """Predict the shipped Dubai scene with the built-in model and score it against the scene's mask."""
    import numpy as np
    from PIL import Image

    from terraseg.bundle import read_meta
    from terraseg.data.palette import rgb_to_index
    from terraseg.pretrained import folder, sample_scene
    from terraseg.runtime import predict_file

    image, mask_path = sample_scene()
    meta = read_meta(folder("dubai-landcover"))
    outputs = predict_file("dubai-landcover", image, out)
    # the scene's mask uses the model's class colours; other colours (Unlabeled, black) are not scored
    mask, _ = rgb_to_index(np.asarray(Image.open(mask_path).convert("RGB")), meta.colors)
    score = _score(outputs["classes"], mask, list(meta.classes), 255)
    return {"image": str(image), "outputs": {k: str(v) for k, v in outputs.items()}, "score": score}


def score_map(class_raster: str | Path, scene_yaml: str | Path) -> dict:
    """Pixel accuracy, mIoU and per-class IoU of a predicted class raster against the generated
    scene's own mask (the only labelled image of ``scene_yaml``)."""
    from terraseg.data.spec import load_spec

    spec = load_spec(scene_yaml)
    mask, _ = spec.read_mask(spec.labelled()[0])
    return _score(class_raster, mask, list(spec.class_names), spec.ignore_index)


def _score(class_raster: str | Path, mask, class_names: list[str], ignore_index: int) -> dict:
    from terraseg.data.raster import read_raster
    from terraseg.metrics import ConfusionMatrix, compute_metrics

    pred = read_raster(class_raster, palette_indices=True)[..., 0]  # a PNG class map is a palette image
    cm = ConfusionMatrix(len(class_names), ignore_index, class_names).update(pred, mask).matrix
    m = compute_metrics(cm, class_names)
    return {"pixel_accuracy": float(m["pixel_accuracy"]), "miou": float(m["miou"]),
            "per_class_iou": {n: float(v["iou"]) for n, v in m["per_class"].items()}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m terraseg.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo-output", help="output folder (default: demo-output)")
    parser.add_argument("--minutes", type=float, default=2.5, help="training budget in minutes (default 2.5)")
    parser.add_argument("--scene-size", type=int, default=3000, help="side of the generated scene to predict")
    args = parser.parse_args(argv)
    from terraseg.errors import TerrasegError

    try:
        run_demo(args.out, minutes=args.minutes, scene_size=args.scene_size)
    except TerrasegError as exc:
        from rich.text import Text

        console.print(Text("error: ", style="bold red") + Text(str(exc)), highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
