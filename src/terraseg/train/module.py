"""The LightningModule: model, loss, optimizer + schedule, and train/val metrics.

Logged per epoch (``metrics.csv``, TensorBoard, progress bar): ``train_loss``, ``train_pa``,
``train_miou``, ``val_loss``, ``val_pa``, ``val_miou``, ``val_mca``, ``val_fwiou``, ``val_kappa``
and the learning rate ``lr``. Pixel accuracy and mIoU come from one confusion matrix accumulated
over the epoch (``terraseg.metrics``), summed over all processes under DDP.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch

from terraseg.errors import ConfigError, DataError
from terraseg.train.losses import build_loss, tanimoto_dual_loss


#: A training loss this many times the first step's loss means training diverged (a step of a
#: sane run never multiplies CE/Dice/focal/Lovász/Tanimoto by a thousand; lr=1e6 does within a step).
DIVERGENCE_FACTOR = 1000.0


class TrainingDiverged(ConfigError):
    """The loss (or the weights) became NaN, infinite or exploded: the settings make training diverge."""


def diverged_message(what: str, step: int, lr: float) -> str:
    return (f"training diverged: {what} at step {step} (learning rate {lr:.3g}); lower optimizer.lr, "
            "raise schedule.warmup_steps or set trainer.gradient_clip_val")


def is_multitask(model_name: str) -> bool:
    return model_name.strip().lower().endswith("_multitask")


class SegmentationModule(pl.LightningModule):
    def __init__(self, cfg: dict, in_channels: int, class_names: list[str], ignore_index: int = 255,
                 class_weights: list[float] | None = None):
        super().__init__()
        from terraseg import models

        self.save_hyperparameters({"config": cfg, "in_channels": in_channels, "class_names": class_names,
                                   "ignore_index": ignore_index, "class_weights": class_weights})
        self.cfg = cfg
        self.class_names = list(class_names)
        self.num_classes = len(class_names)
        self.ignore_index = ignore_index
        self.multitask = is_multitask(cfg["model"]["name"])
        self.model = models.build(cfg["model"]["name"], in_channels=in_channels, num_classes=self.num_classes,
                                  **cfg["model"]["options"])
        # channels-last (NHWC): oneDNN / cuDNN convolutions without layout conversions (README: speed)
        self.channels_last = bool(cfg["trainer"].get("channels_last", True))
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.loss_fn = build_loss(cfg["loss"], ignore_index, class_weights)
        self.last_val_cm: np.ndarray | None = None
        self.last_val_metrics: dict[str, Any] = {}
        self._cms: dict[str, Any] = {}
        self.validated_at_step: int | None = None
        self._first_loss: float | None = None  # loss of this process's first training step

    # ------------------------------------------------------------------ helpers
    def forward(self, x):
        return self.model(x)

    def _cm(self, stage: str):
        from terraseg.metrics import ConfusionMatrix

        if stage not in self._cms:
            self._cms[stage] = ConfusionMatrix(self.num_classes, self.ignore_index, self.class_names)
        return self._cms[stage]

    def _segmentation(self, out) -> tuple[torch.Tensor, bool]:
        """(segmentation output, is_logits)."""
        if isinstance(out, torch.Tensor):
            return out, True
        seg = getattr(out, "segmentation", None)
        if seg is None and isinstance(out, dict):
            seg = out["segmentation"]
        return seg, False

    def compute_loss(self, out, mask, extra: dict | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        seg, logits = self._segmentation(out)
        seg_loss = self.loss_fn(seg, mask, from_logits=logits)
        parts = {f"loss_{k}": v for k, v in self.loss_fn.last.items()}
        if not self.multitask or extra is None:
            return seg_loss, parts
        # conditioned multitask ResUNet-a: Tanimoto with complement on each auxiliary task
        valid = (mask != self.ignore_index).unsqueeze(1).float()
        tw = bool(self.cfg["loss"].get("tanimoto_class_weights", True))
        bnd = tanimoto_dual_loss(out.boundary.float(), extra["boundary"].float(), valid, tw)
        dist = tanimoto_dual_loss(out.distance.float(), extra["distance"].float(), valid, tw)
        col = tanimoto_dual_loss(out.color.float(), extra["color"].float(), None, False)
        parts.update({"loss_segmentation": seg_loss.detach(), "loss_boundary": bnd.detach(),
                      "loss_distance": dist.detach(), "loss_color": col.detach()})
        return (seg_loss + bnd + dist + col) / 4.0, parts

    def _step(self, batch, stage: str):
        x, mask = batch[0], batch[1]
        extra = batch[2] if len(batch) > 2 else None
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        out = self.model(x)
        loss, parts = self.compute_loss(out, mask, extra)
        seg, _ = self._segmentation(out)
        seg = seg.detach()
        if seg.device.type == "cpu":
            # on CPU, torch's argmax over the class axis and its bincount cost ~10x numpy's (about
            # 0.2 s per step of 4 x 256 px): the metrics would slow training down measurably
            self._cm(stage).update(np.argmax(seg.float().numpy(), axis=1), mask.numpy())
        else:
            self._cm(stage).update(seg.argmax(1), mask)
        n = x.shape[0]
        on_step = stage == "train"
        self.log(f"{stage}_loss", loss, on_step=on_step, on_epoch=True, prog_bar=True, batch_size=n,
                 sync_dist=True)
        if len(parts) > 1:
            for k, v in parts.items():
                self.log(f"{stage}_{k}", v, on_step=False, on_epoch=True, batch_size=n, sync_dist=True)
        return loss

    def _epoch_metrics(self, stage: str) -> tuple[np.ndarray, dict]:
        from terraseg.metrics import compute_metrics

        cm = self._cm(stage).matrix
        if self._trainer is not None and self._trainer.world_size > 1:
            t = torch.as_tensor(cm, device=self.device)
            cm = self.trainer.strategy.reduce(t, reduce_op="sum").cpu().numpy().astype(np.int64)
        self._cm(stage).reset()
        return cm, compute_metrics(cm, self.class_names)

    # ------------------------------------------------------------------ Lightning hooks
    def on_train_epoch_start(self):
        # dropout & co. draw from the global RNG: reseed per epoch so a resumed run matches
        torch.manual_seed((int(self.cfg["trainer"]["seed"]) * 1000003 + self.current_epoch) % (2 ** 63))
        self._cm("train").reset()

    def training_step(self, batch, batch_idx):
        loss = self._step(batch, "train")
        opt = self.optimizers(use_pl_optimizer=False)
        lr = opt.param_groups[0]["lr"]
        self._stop_if_diverged(loss, lr)
        self.log("lr", lr, on_step=True, on_epoch=False, prog_bar=False)
        return loss

    def _stop_if_diverged(self, loss: torch.Tensor, lr: float) -> None:
        """Stop on a NaN/inf loss, or one that exploded to ``DIVERGENCE_FACTOR`` times the first
        step's, before its backward pass spreads it into the weights. Under DDP every process learns
        whether any process diverged, so all stop together."""
        value = loss.detach().float()
        if self._first_loss is None and bool(torch.isfinite(value)):
            self._first_loss = max(float(value), 1e-3)
        limit = DIVERGENCE_FACTOR * (self._first_loss or float("inf"))
        bad = (~torch.isfinite(value) | (value > limit)).float()
        if self._trainer is not None and self.trainer.world_size > 1:
            bad = self.trainer.strategy.reduce(bad, reduce_op="sum")
        if float(bad) > 0:
            v = float(value)
            what = (f"the loss is {v}" if not np.isfinite(v) else
                    f"the loss is {v:.3g}, over {DIVERGENCE_FACTOR:g} times its first value {self._first_loss:.3g},")
            raise TrainingDiverged(diverged_message(what, int(self.global_step), float(lr)))

    def on_train_epoch_end(self):
        cm, m = self._epoch_metrics("train")
        if cm.sum() == 0:
            raise DataError("the training data yield no labelled pixels (every mask pixel is ignored: check "
                            "the class colours/values and the ignore settings of the dataset description)",
                            self.cfg["data"].get("dataset"))
        # the matrix is already summed over processes: every rank logs the same value
        self.log("train_pixels", float(cm.sum()), sync_dist=False, reduce_fx="max")
        self.log("train_pa", _f(m["pixel_accuracy"]), sync_dist=True)
        self.log("train_miou", _f(m["miou"]), sync_dist=True)

    def on_validation_epoch_start(self):
        self._cm("val").reset()

    def validation_step(self, batch, batch_idx):
        return self._step(batch, "val")

    def on_validation_epoch_end(self):
        cm, m = self._epoch_metrics("val")
        if self.trainer.sanity_checking:
            return
        if cm.sum() == 0:
            raise DataError("the validation data yield no labelled pixels (every mask pixel is ignored)",
                            self.cfg["data"].get("dataset"))
        self.last_val_cm = cm
        self.last_val_metrics = m
        self.validated_at_step = int(self.trainer.global_step)
        self.log("val_pa", _f(m["pixel_accuracy"]), prog_bar=True, sync_dist=True)
        self.log("val_miou", _f(m["miou"]), prog_bar=True, sync_dist=True)
        self.log("val_mca", _f(m["mean_class_accuracy"]), sync_dist=True)
        self.log("val_fwiou", _f(m["fwiou"]), sync_dist=True)
        self.log("val_kappa", _f(m["kappa"]), sync_dist=True)

    def configure_optimizers(self):
        from terraseg.train.optim import WarmupSchedule, build_optimizer, param_groups

        ocfg = self.cfg["optimizer"]
        groups = param_groups(self.model, float(ocfg["lr"]), float(ocfg["head_lr_multiplier"]))
        optimizer = build_optimizer(groups, ocfg)
        total = self._trainer.estimated_stepping_batches if self._trainer is not None else None
        total = float(total) if total is not None else None
        scheduler = WarmupSchedule(optimizer, self.cfg["schedule"], total_steps=total,
                                   time_progress=self._time_progress)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}

    def _time_progress(self) -> float:
        """Share of the wall-clock budget (trainer.max_time) used, 0 without a budget."""
        trainer = self._trainer
        if trainer is None:
            return 0.0
        from lightning.pytorch.callbacks import Timer

        for cb in trainer.callbacks:
            if isinstance(cb, Timer) and cb._duration:
                return float(cb.time_elapsed("train")) / float(cb._duration)
        return 0.0


def _f(v) -> float:
    return float("nan") if v is None else float(v)


__all__ = ["SegmentationModule", "is_multitask"]

