"""Callbacks that keep the run directory useful while training runs.

``RunArtifacts`` after every validation (rank 0 only):

* flushes ``metrics.csv`` and redraws ``plots/curves.png`` (loss, pixel accuracy and mIoU, train and
  val) and ``plots/confusion_matrix.png`` (row-normalised, with class names);
* when validation mIoU improved, exports the model as the bundle ``bundle/`` (safetensors + JSON
  with architecture, options, classes, colours, ignore index, bands, mean/std, crop size and the
  validation metrics) and writes ``best_metrics.json``.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Callable

import lightning.pytorch as pl

log = logging.getLogger("terraseg.train")


class RunArtifacts(pl.Callback):
    def __init__(self, run_dir: str | Path, make_meta: Callable[[dict], Any], plots: bool = True,
                 monitor: str = "miou"):
        self.run_dir = Path(run_dir)
        self.make_meta = make_meta
        self.plots = plots
        self.monitor = monitor
        self.best: float = -math.inf
        self.best_epoch: int | None = None

    @property
    def bundle_dir(self) -> Path:
        return self.run_dir / "bundle"

    @property
    def state_key(self) -> str:
        return "RunArtifacts"

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = float(state_dict.get("best", -math.inf))
        self.best_epoch = state_dict.get("best_epoch")

    def on_fit_start(self, trainer, pl_module) -> None:
        # a resumed run never replaces its bundle with a worse model
        meta_file = self.bundle_dir / "bundle.json"
        if meta_file.is_file():
            from terraseg.bundle import read_meta

            try:
                score = read_meta(self.bundle_dir).metrics.get(self.monitor)
                if score is not None and float(score) > self.best:
                    self.best = float(score)
            except Exception:  # pragma: no cover - unreadable old bundle: it gets replaced
                pass

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        metrics = getattr(pl_module, "last_val_metrics", None)
        if not metrics:
            return
        for lg in trainer.loggers:
            try:
                lg.save()
            except Exception:  # pragma: no cover
                pass
        if self.plots:
            self._plot(trainer, pl_module)
        score = metrics.get(self.monitor)
        score = float(score) if score is not None and math.isfinite(float(score)) else -math.inf
        if score > self.best or not (self.bundle_dir / "bundle.json").is_file():
            self.best = max(score, self.best)
            self.best_epoch = int(trainer.current_epoch)
            self.export(trainer, pl_module, metrics)

    def export(self, trainer, pl_module, metrics: dict) -> Path:
        from terraseg._io import write_json_atomic
        from terraseg.bundle import save_bundle
        from terraseg.metrics import jsonable
        from terraseg.models.finite import nonfinite_counts

        record = jsonable(dict(metrics))
        # epochs trained so far (a validation after fit() comes after the loop counted the last epoch)
        after_fit = trainer.state.fn is not None and str(trainer.state.fn.value) == "validate"
        record["epoch"] = int(trainer.current_epoch) + (0 if after_fit else 1)
        record["global_step"] = int(trainer.global_step)
        meta = self.make_meta(record)
        if nonfinite_counts(pl_module.model.state_dict()):  # never bundle a diverged model
            from terraseg.train.module import TrainingDiverged, diverged_message

            lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else float("nan")
            raise TrainingDiverged(diverged_message("the weights hold NaN or infinite values",
                                                    int(trainer.global_step), lr))
        save_bundle(self.bundle_dir, pl_module.model, meta)
        write_json_atomic(self.run_dir / "best_metrics.json", record)
        return self.bundle_dir

    def _plot(self, trainer, pl_module) -> None:
        from terraseg.plots import plot_confusion_matrix, plot_curves

        plots = self.run_dir / "plots"
        csv = self.run_dir / "metrics.csv"
        try:
            if csv.is_file():
                plot_curves(csv, plots / "curves.png")
            cm = getattr(pl_module, "last_val_cm", None)
            if cm is not None:
                plot_confusion_matrix(cm, pl_module.class_names, plots / "confusion_matrix.png", normalize=True)
        except Exception as exc:  # a plot must never kill a training run
            log.warning("could not update plots: %s", exc)


__all__ = ["RunArtifacts"]
