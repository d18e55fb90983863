"""Losses: near-minimum for perfect predictions, ignored pixels really ignored, finite gradients."""

from __future__ import annotations

import pytest
import torch

from terraseg.train.losses import CombinedLoss, build_term, tanimoto, tanimoto_dual_loss

K = 4
IGN = 255
NAMES = ["ce", "focal", "dice", "lovasz", "tanimoto"]


def make_target(seed=0, n=2, h=12, w=10):
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(0, K, (n, h, w), generator=g)
    t[:, :3, :4] = IGN  # an ignored block
    return t


def perfect_logits(t, scale=30.0):
    safe = torch.where(t == IGN, torch.zeros_like(t), t)
    return torch.nn.functional.one_hot(safe, K).permute(0, 3, 1, 2).float() * scale - scale / 2


@pytest.mark.parametrize("name", NAMES)
def test_perfect_prediction_is_near_minimum(name):
    torch.manual_seed(0)
    t = make_target()
    fn = build_term(name, ignore_index=IGN)
    good = fn(perfect_logits(t), t).item()
    rand = fn(torch.randn(t.shape[0], K, *t.shape[1:]) * 2, t).item()
    assert good < 1e-3, good
    assert rand > 0.05 + good
    # probability input (multitask ResUNet-a) gives the same minimum
    probs = perfect_logits(t).softmax(1)
    assert fn(probs, t, from_logits=False).item() < 1e-3


@pytest.mark.parametrize("name", NAMES)
def test_ignore_index_is_ignored_and_gradients_finite(name):
    torch.manual_seed(1)
    t = make_target(seed=1)
    fn = build_term(name, ignore_index=IGN, class_weights=[1.0, 2.0, 0.5, 1.0] if name != "lovasz" else None)
    base = torch.randn(t.shape[0], K, *t.shape[1:])
    other = base.clone()
    ign = (t == IGN).unsqueeze(1).expand_as(base)
    other[ign] = torch.randn(int(ign.sum())) * 50  # change only ignored pixels' logits
    a = base.clone().requires_grad_(True)
    b = other.clone().requires_grad_(True)
    la, lb = fn(a, t), fn(b, t)
    la.backward()
    lb.backward()
    assert torch.isfinite(la) and torch.isfinite(lb)
    assert la.item() == pytest.approx(lb.item(), rel=1e-5, abs=1e-6)
    assert torch.isfinite(a.grad).all()
    assert torch.allclose(a.grad, b.grad, atol=1e-6)
    assert a.grad[ign].abs().max().item() == 0.0
    assert a.grad[~ign].abs().max().item() > 0.0


def test_class_weights_change_cross_entropy():
    t = make_target()
    x = torch.randn(t.shape[0], K, *t.shape[1:])
    plain = build_term("ce", IGN)(x, t)
    weighted = build_term("ce", IGN, class_weights=[1.0, 5.0, 1.0, 1.0])(x, t)
    assert not torch.isclose(plain, weighted)
    smooth = build_term("ce", IGN, label_smoothing=0.2)(perfect_logits(t), t)
    assert smooth.item() > 0.05  # label smoothing: a confident perfect prediction is penalised


def test_tanimoto_against_formula():
    # T(p, l) with unit weights is sum(p l) / sum(p² + l² - p l); complement uses 1-p, 1-l
    g = torch.Generator().manual_seed(3)
    p = torch.rand(1, 2, 5, 5, generator=g)
    l = (torch.rand(1, 2, 5, 5, generator=g) > 0.5).float()
    expect = (p * l).sum() / (p * p + l * l - p * l).sum()
    assert tanimoto(p, l, class_weights=False, smooth=0).item() == pytest.approx(expect.item(), rel=1e-6)
    pc, lc = 1 - p, 1 - l
    expect_c = (pc * lc).sum() / (pc * pc + lc * lc - pc * lc).sum()
    loss = tanimoto_dual_loss(p, l, class_weights=False)
    assert loss.item() == pytest.approx(1 - 0.5 * (expect.item() + expect_c.item()), rel=1e-4)
    # volume weights: a rare class counts as much as a frequent one
    l2 = torch.zeros(1, 2, 10, 10)
    l2[:, 0] = 1
    l2[0, 0, 0, 0] = 0
    l2[0, 1, 0, 0] = 1  # class 1 has one pixel
    p2 = l2.clone()
    p2[0, 1, 0, 0] = 0.0
    p2[0, 0, 0, 0] = 1.0  # the rare pixel is missed
    assert tanimoto(p2, l2, class_weights=True).item() < tanimoto(p2, l2, class_weights=False).item() - 0.2


def test_combined_loss_is_weighted_sum_and_handles_empty_batches():
    t = make_target()
    x = torch.randn(t.shape[0], K, *t.shape[1:], requires_grad=True)
    comb = CombinedLoss({"ce": 1.0, "dice": 0.5}, ignore_index=IGN)
    total = comb(x, t)
    ce = build_term("ce", IGN)(x, t)
    dice = build_term("dice", IGN)(x, t)
    assert total.item() == pytest.approx(ce.item() + 0.5 * dice.item(), rel=1e-5)
    assert set(comb.last) == {"ce", "dice"}
    empty = torch.full_like(t, IGN)
    z = comb(x, empty)
    z.backward()
    assert z.item() == 0.0 and torch.isfinite(x.grad).all()
