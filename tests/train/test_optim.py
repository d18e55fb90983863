"""Schedules with warmup, optimizers and the head learning-rate multiplier."""

from __future__ import annotations

import math

import pytest
import torch

from terraseg.train.optim import WarmupSchedule, build_optimizer, schedule_factor

BASE = {"warmup_steps": 0, "warmup_start_factor": 0.01, "power": 0.9, "min_lr_factor": 0.0,
        "milestones": [0.5, 0.75], "gamma": 0.1}


def lrs(name, total=100, warmup=0, **kw):
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = WarmupSchedule(opt, {**BASE, "name": name, "warmup_steps": warmup, **kw}, total_steps=total)
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_poly_cosine_step_shapes():
    poly = lrs("poly")
    assert poly[0] == pytest.approx(0.1)
    assert poly[50] == pytest.approx(0.1 * 0.5 ** 0.9)
    assert all(a >= b for a, b in zip(poly, poly[1:]))
    cos = lrs("cosine")
    assert cos[50] == pytest.approx(0.05)
    assert cos[25] == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 0.25)))
    step = lrs("step")
    assert step[49] == pytest.approx(0.1) and step[50] == pytest.approx(0.01) and step[80] == pytest.approx(0.001)
    const = lrs("constant")
    assert set(const) == {0.1}


def test_linear_warmup_then_schedule():
    lr = lrs("cosine", warmup=10)
    assert lr[0] == pytest.approx(0.1 * 0.01)
    assert lr[5] == pytest.approx(0.1 * (0.01 + 0.99 * 0.5) * 0.5 * (1 + math.cos(math.pi * 0.05)))
    assert all(a < b for a, b in zip(lr[:10], lr[1:11]))
    assert lr[10] == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 0.10)))


def test_time_budget_drives_progress_and_state_resumes():
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=1.0)
    clock = {"p": 0.0}
    sched = WarmupSchedule(opt, {**BASE, "name": "poly", "power": 1.0}, total_steps=float("inf"),
                           time_progress=lambda: clock["p"])
    clock["p"] = 0.75
    opt.step()
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.25)
    state = sched.state_dict()
    assert "time_progress" not in state and "optimizer" not in state
    opt2 = torch.optim.AdamW(model.parameters(), lr=1.0)
    s2 = WarmupSchedule(opt2, {**BASE, "name": "poly", "power": 1.0}, total_steps=40)
    s2.load_state_dict({k: v for k, v in state.items() if k != "total_steps"})
    assert s2.last_epoch == sched.last_epoch


@pytest.mark.parametrize("name, cls", [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)])
def test_optimizers(name, cls):
    model = torch.nn.Linear(2, 2)
    cfg = {"name": name, "lr": 0.5, "weight_decay": 0.01, "momentum": 0.8, "nesterov": True, "betas": [0.8, 0.9]}
    opt = build_optimizer([{"params": list(model.parameters()), "lr": 0.5}], cfg)
    assert isinstance(opt, cls)
    g = opt.param_groups[0]
    assert g["lr"] == 0.5 and g["weight_decay"] == 0.01
    if name == "sgd":
        assert g["momentum"] == 0.8 and g["nesterov"] is True
    else:
        assert tuple(g["betas"]) == (0.8, 0.9)


def test_head_lr_multiplier_splits_encoder_and_head():
    from terraseg import models
    from terraseg.train.optim import param_groups

    model = models.build("unet", 3, 5, base_channels=4, depth=2)
    groups = param_groups(model, 0.01, head_lr_multiplier=10.0)
    assert [g["name"] for g in groups] == ["encoder", "head"]
    assert groups[0]["lr"] == 0.01 and groups[1]["lr"] == pytest.approx(0.1)
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    enc, _ = models.param_groups(model)
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in enc}
    opt = build_optimizer(groups, {"name": "adamw", "lr": 0.01, "weight_decay": 0.0, "betas": [0.9, 0.999]})
    sched = WarmupSchedule(opt, {**BASE, "name": "poly", "power": 1.0}, total_steps=10)
    for _ in range(5):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.005) and opt.param_groups[1]["lr"] == pytest.approx(0.05)
    # multiplier 1: a single group
    assert len(param_groups(model, 0.01, 1.0)) == 1
