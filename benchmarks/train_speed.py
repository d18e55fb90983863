#!/usr/bin/env python
"""Training speed on this machine, in one run: the model alone vs the full training step, fp32 vs bf16.

* ``model_only``: forward, loss, backward and AdamW step on one batch kept in memory (no data
  loading), for fp32 and bf16 autocast, each in the contiguous and the channels-last layout. Rounds alternate
  between the variants (the full step takes its turn in each round) so that a change in machine
  load hits them alike. Every variant reports the median step time of all its rounds (the mean
  too): the same statistic for the model alone and the full step.
* ``full_step``: ``terraseg.train.train`` itself (cropping the real images, augmentation, loss,
  metrics, logging) with the precision ``trainer.precision: auto`` resolves to on this machine,
  timed between training batches in the steady state: every image is first decoded into the
  dataset's cache, as happens once per loading process in the first epoch of a real run
  (``decode_seconds_per_image`` is that one-time cost).

``bf16_native`` says whether the CPU computes bf16 natively (AVX512-BF16 / AMX); without it bf16
is emulated and slower, which is why ``auto`` keeps fp32 there::

    python benchmarks/train_speed.py                      # Dubai (../shared) or the generated sample
    python benchmarks/train_speed.py --model unet --options '{base_channels: 16, depth: 4}'

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DUBAI = ROOT / "examples" / "dubai.yaml"


def model_only(module, x, y, precision: str, channels_last: bool, steps: int) -> list[float]:
    """Seconds of each optimizer step of ``module``'s model and loss on the batch ``(x, y)``."""
    import torch

    model = module.model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    x = x.contiguous(memory_format=torch.channels_last) if channels_last else x.contiguous()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()
    times = []
    for _ in range(steps + 1):
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss, _ = module.compute_loss(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    return times[1:]  # the first step pays one-time allocations


def full_step(overrides: list[str], warmup: int, steps: int) -> tuple[list[float], str, float]:
    """Seconds of each step of a real ``terraseg.train`` run (batch end to batch end), the precision
    it used, and the seconds one image took to decode (once per loading process)."""
    import lightning.pytorch as pl

    from terraseg.train.run import train

    stamps: list[float] = []
    precision: list[str] = []
    decode: list[float] = []

    class Clock(pl.Callback):
        def on_train_start(self, trainer, *args):
            # steady state: every image decoded into the dataset's cache before the loader starts
            # (workers fork from this process and inherit it), as after the first epoch of a run
            ds = trainer.train_dataloader.dataset.base
            for s in ds.samples:
                ds._read(s, None)
            t = time.perf_counter()  # what one cache miss costs: decoding a whole image and mask
            for s in ds.samples[:3]:
                ds.spec.read_pair(s)
            decode.append((time.perf_counter() - t) / len(ds.samples[:3]))

        def on_train_batch_end(self, trainer, *args):
            stamps.append(time.perf_counter())
            precision[:] = [str(trainer.precision)]

    train(None, overrides + [f"trainer.max_steps={warmup + steps}"], callbacks=[Clock()])
    span = stamps[warmup:]
    return [b - a for a, b in zip(span, span[1:])], precision[0], decode[0]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smp:Unet")
    ap.add_argument("--options", default="{encoder_name: resnet18, encoder_weights: null}")
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=4, help="timed steps per variant and round")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workers", type=int, default=0, help="data loader worker processes of the full step")
    ap.add_argument("--warmup", type=int, default=3, help="untimed first steps of the full step")
    ap.add_argument("--dataset", help="dataset YAML (default: Dubai if present, else a generated sample)")
    args = ap.parse_args(argv)

    import torch

    from terraseg.data.spec import load_spec
    from terraseg.train.config import load_config
    from terraseg.train.module import SegmentationModule
    from terraseg.train.precision import cpu_bf16_supported

    tmp = Path(tempfile.mkdtemp(prefix="terraseg-speed-"))
    dataset = args.dataset
    if dataset is None:
        if load_spec(DUBAI).labelled():
            dataset = str(DUBAI)
        else:  # pragma: no cover - without ../shared
            from terraseg.data.sample import generate_sample

            dataset = str(generate_sample(tmp / "sample", n_images=8, size=512))
    overrides = [f"data.dataset={dataset}", f"data.crop_size={args.crop}", f"data.batch_size={args.batch}",
                 f"model.name={args.model}", f"model.options={args.options}", f"data.num_workers={args.workers}",
                 f"data.val_crop_size={args.crop}", "trainer.limit_val_batches=1", "trainer.max_epochs=null",
                 "trainer.progress_bar=false", "output.plots=false", f"output.dir={tmp}",
                 "data.samples_per_epoch=100000"]
    cfg = load_config(None, overrides + ["trainer.max_steps=1"])
    spec = load_spec(dataset)
    torch.manual_seed(0)
    module = SegmentationModule(cfg, spec.bands, list(spec.class_names), spec.ignore_index)
    x = torch.randn(args.batch, spec.bands, args.crop, args.crop)
    y = torch.randint(0, spec.num_classes, (args.batch, args.crop, args.crop))
    variants = {"fp32": ("fp32", False), "fp32_channels_last": ("fp32", True), "bf16": ("bf16", False),
                "bf16_channels_last": ("bf16", True)}
    times: dict[str, list[float]] = {k: [] for k in variants}
    full_times: list[float] = []
    load_before = os.getloadavg()
    for r in range(args.rounds):
        for name, (prec, cl) in variants.items():
            times[name] += model_only(module, x, y, prec, cl, args.steps)
        # the full step takes its turn in every round, so that load changes hit it like the rest
        t, full_precision, decode_s = full_step(overrides + [f"output.name=speed-{os.getpid()}-{r}"],
                                                warmup=args.warmup, steps=args.steps)
        full_times += t
    per_step = {k: statistics.median(v) for k, v in times.items()}
    full_s = statistics.median(full_times)
    layout = "_channels_last" if cfg["trainer"]["channels_last"] else ""
    auto_variant = ("bf16" if "bf16" in full_precision else "fp32") + layout
    result = {
        "model": args.model, "options": args.options, "crop": args.crop, "batch": args.batch, "dataset": dataset,
        "threads": torch.get_num_threads(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "bf16_native": cpu_bf16_supported(), "full_step_precision": full_precision, "workers": args.workers,
        "statistic": "median step time of all rounds (mean in *_mean)", "steps_timed": len(full_times),
        "model_only_steps_per_s": {k: round(1 / v, 4) for k, v in per_step.items()},
        "model_only_steps_per_s_mean": {k: round(1 / statistics.mean(v), 4) for k, v in times.items()},
        "full_step_steps_per_s": round(1 / full_s, 4),
        "full_step_steps_per_s_mean": round(1 / statistics.mean(full_times), 4), "full_step_variant": auto_variant,
        "decode_seconds_per_image": round(decode_s, 3),
        "full_vs_model_only": round(per_step[auto_variant] / full_s, 3),
        "full_vs_model_only_mean": round(statistics.mean(times[auto_variant]) / statistics.mean(full_times), 3),
        "bf16_vs_fp32": round(per_step["fp32"] / per_step["bf16"], 3),
        "channels_last_vs_contiguous": round(per_step["fp32"] / per_step["fp32_channels_last"], 3),
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
