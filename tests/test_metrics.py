"""Metrics against scikit-learn on random label maps (ignore pixels included) and hand-checked cases."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from terraseg.metrics import ConfusionMatrix, compute_metrics, confusion_matrix, format_table, jsonable

IGNORE = 255


def _random_maps(seed: int, k: int, shape=(3, 37, 41), drop_true=(), drop_pred=(), ignore_share=0.15):
    """Random target/prediction maps; classes in ``drop_true``/``drop_pred`` never occur there."""
    rng = np.random.default_rng(seed)
    allowed_t = [c for c in range(k) if c not in drop_true]
    allowed_p = [c for c in range(k) if c not in drop_pred]
    # Skewed class frequencies so frequency weighting matters.
    wt = rng.random(len(allowed_t)) ** 2 + 0.05
    target = rng.choice(allowed_t, size=shape, p=wt / wt.sum()).astype(np.uint8)
    # Predictions agree with the target ~half the time, so metrics are far from chance and from 1.
    noise = rng.choice(allowed_p, size=shape).astype(np.uint8)
    agree = (rng.random(shape) < 0.5) & np.isin(target, allowed_p)
    pred = np.where(agree, target, noise).astype(np.uint8)
    target[rng.random(shape) < ignore_share] = IGNORE
    return pred, target


def _sklearn_reference(pred, target, k):
    keep = target != IGNORE
    y_true = target[keep].astype(int)
    y_pred = pred[keep].astype(int)
    labels = list(range(k))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prec, rec, f1, support = skm.precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=None, zero_division=np.nan)
        # jaccard_score only takes 0 or 1 for zero_division: undefined where the two disagree.
        j0 = skm.jaccard_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
        j1 = skm.jaccard_score(y_true, y_pred, labels=labels, average=None, zero_division=1)
        iou = np.where(j0 == j1, j0, np.nan)
        ref = {
            "cm": skm.confusion_matrix(y_true, y_pred, labels=labels),
            "pixel_accuracy": skm.accuracy_score(y_true, y_pred),
            "mean_class_accuracy": skm.balanced_accuracy_score(y_true, y_pred),
            "kappa": skm.cohen_kappa_score(y_true, y_pred, labels=labels),
            "precision": prec, "recall": rec, "f1": f1, "support": support, "iou": iou,
        }
    # Frequency-weighted IoU straight from its definition (Long et al., FCN):
    # (sum_k t_k)^-1 * sum_i t_i * n_ii / (t_i + sum_j n_ji - n_ii), computed on the label arrays.
    num = 0.0
    for c in labels:
        t_c = np.sum(y_true == c)
        n_cc = np.sum((y_true == c) & (y_pred == c))
        p_c = np.sum(y_pred == c)
        if t_c:
            num += t_c * n_cc / (t_c + p_c - n_cc)
    ref["fwiou"] = num / y_true.size
    ref["pixels"] = y_true.size
    return ref


CASES = [
    # seed, classes, classes never true, classes never predicted
    (0, 2, (), ()),
    (1, 5, (), ()),
    (2, 6, (4,), ()),          # predicted but never true
    (3, 6, (), (1,)),          # true but never predicted
    (4, 7, (2, 5), (5, 6)),    # 5 absent from both, 2 only predicted, 6 only true
    (5, 12, (0, 3, 7), (7, 9)),
]


@pytest.mark.parametrize("seed,k,drop_true,drop_pred", CASES)
def test_metrics_match_sklearn(seed, k, drop_true, drop_pred):
    pred, target = _random_maps(seed, k, drop_true=drop_true, drop_pred=drop_pred)
    assert (target == IGNORE).any()
    ref = _sklearn_reference(pred, target, k)

    cm = confusion_matrix(pred, target, k, ignore_index=IGNORE)
    assert cm.dtype == np.int64 and cm.shape == (k, k)
    np.testing.assert_array_equal(cm, ref["cm"])

    m = compute_metrics(cm)
    assert m["pixels"] == ref["pixels"] == int((target != IGNORE).sum())
    for key in ("pixel_accuracy", "mean_class_accuracy", "kappa", "fwiou"):
        assert m[key] == pytest.approx(ref[key], rel=1e-12, abs=1e-12), key
    per = m["per_class"]
    assert list(per) == [str(c) for c in range(k)]
    for key in ("iou", "precision", "recall", "f1"):
        ours = np.array([per[str(c)][key] for c in range(k)])
        np.testing.assert_allclose(ours, ref[key], rtol=1e-12, atol=1e-12, equal_nan=True, err_msg=key)
        assert m[{"iou": "miou"}.get(key, f"mean_{key}")] == pytest.approx(np.nanmean(ref[key]), rel=1e-12)
    np.testing.assert_array_equal([per[str(c)]["support"] for c in range(k)], ref["support"])
    np.testing.assert_array_equal([per[str(c)]["predicted"] for c in range(k)], cm.sum(axis=0))

    # Defined-ness follows the documented rule.
    for c in range(k):
        absent_both = c in drop_true and c in drop_pred
        assert math.isnan(per[str(c)]["iou"]) == absent_both
        assert math.isnan(per[str(c)]["recall"]) == (c in drop_true)
        assert math.isnan(per[str(c)]["precision"]) == (c in drop_pred)


def test_hand_checked_case():
    target = np.array([[0, 0], [1, IGNORE]])
    pred = np.array([[0, 1], [1, 0]])
    cm = confusion_matrix(pred, target, 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [0, 0, 0]])
    m = compute_metrics(cm, ["water", "road", "building"])
    assert m["pixels"] == 3
    assert m["pixel_accuracy"] == pytest.approx(2 / 3)
    assert m["per_class"]["water"]["iou"] == pytest.approx(1 / 2)
    assert m["per_class"]["road"]["iou"] == pytest.approx(1 / 2)
    assert m["miou"] == pytest.approx(1 / 2)  # building (absent from both) is left out, not 0 or 1
    assert m["per_class"]["water"]["precision"] == 1.0
    assert m["per_class"]["water"]["recall"] == 0.5
    assert m["per_class"]["road"]["precision"] == 0.5
    assert m["per_class"]["road"]["f1"] == pytest.approx(2 / 3)
    assert m["mean_class_accuracy"] == pytest.approx(0.75)
    # p_o = 2/3, p_e = (2*1 + 1*2) / 9 = 4/9 -> kappa = (2/9) / (5/9) = 0.4
    assert m["kappa"] == pytest.approx(0.4)
    assert m["fwiou"] == pytest.approx((2 * 0.5 + 1 * 0.5) / 3)
    building = jsonable(m)["per_class"]["building"]
    assert building == {"iou": None, "precision": None, "recall": None, "f1": None, "support": 0, "predicted": 0}
    json.dumps(jsonable(m), allow_nan=False)  # strict JSON


def test_perfect_and_all_wrong():
    t = np.array([0, 1, 2, 2])
    m = compute_metrics(confusion_matrix(t, t, 3))
    for key in ("pixel_accuracy", "mean_class_accuracy", "miou", "fwiou", "kappa", "mean_f1"):
        assert m[key] == 1.0, key
    m = compute_metrics(confusion_matrix((t + 1) % 3, t, 3))
    assert m["pixel_accuracy"] == 0.0 and m["miou"] == 0.0 and m["fwiou"] == 0.0
    assert m["kappa"] < 0


def test_empty_matrix_is_all_undefined():
    target = np.full((4, 4), IGNORE)
    cm = confusion_matrix(np.zeros((4, 4), int), target, 3)
    assert cm.sum() == 0
    m = compute_metrics(cm)
    j = jsonable(m)
    for key in ("pixel_accuracy", "mean_class_accuracy", "miou", "fwiou", "kappa"):
        assert math.isnan(m[key]) and j[key] is None
    assert "–" in format_table(m)


def test_single_class_kappa_undefined():
    t = np.zeros(10, int)
    m = compute_metrics(confusion_matrix(t, t, 2))
    assert m["pixel_accuracy"] == 1.0 and math.isnan(m["kappa"])


def test_out_of_range_labels_raise():
    with pytest.raises(ValueError, match="outside 0..2"):
        confusion_matrix(np.array([0, 1]), np.array([0, 3]), 3)
    with pytest.raises(ValueError, match="outside 0..2"):
        confusion_matrix(np.array([0, 5]), np.array([0, 1]), 3)
    # A prediction under an ignored target is not checked (it does not count).
    assert confusion_matrix(np.array([0, 9]), np.array([0, IGNORE]), 3).sum() == 1
    with pytest.raises(ValueError, match="shape"):
        confusion_matrix(np.zeros((2, 3), int), np.zeros((3, 2), int), 3)


def test_class_names_checked():
    cm = np.eye(2, dtype=np.int64)
    with pytest.raises(ValueError, match="2x2"):
        compute_metrics(cm, ["a", "b", "c"])
    with pytest.raises(ValueError, match="unique"):
        compute_metrics(cm, ["a", "a"])


def test_torch_path_matches_numpy():
    torch = pytest.importorskip("torch")
    pred, target = _random_maps(7, 5)
    expected = confusion_matrix(pred, target, 5)
    got = confusion_matrix(torch.from_numpy(pred), torch.from_numpy(target).long(), 5)
    np.testing.assert_array_equal(got, expected)
    # Scores (N, K, H, W) are arg-maxed over the class dimension.
    scores = torch.nn.functional.one_hot(torch.from_numpy(pred).long(), 5).permute(0, 3, 1, 2).float()
    scores = scores + 0.01 * torch.rand_like(scores)
    np.testing.assert_array_equal(confusion_matrix(scores, torch.from_numpy(target), 5), expected)
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix(torch.tensor([0, 7]), torch.tensor([0, 1]), 5)


def test_accumulator_over_batches():
    torch = pytest.importorskip("torch")
    names = ["a", "b", "c", "d", "e"]
    acc = ConfusionMatrix(5, ignore_index=IGNORE, class_names=names)
    all_pred, all_target = [], []
    for seed in range(4):
        pred, target = _random_maps(10 + seed, 5, shape=(2, 16, 16))
        all_pred.append(pred)
        all_target.append(target)
        if seed % 2:
            acc.update(torch.from_numpy(pred), torch.from_numpy(target))  # tensors
        else:
            acc.update(pred, target)  # numpy
    whole = confusion_matrix(np.concatenate(all_pred), np.concatenate(all_target), 5)
    np.testing.assert_array_equal(acc.matrix, whole)
    assert acc.total == int((np.concatenate(all_target) != IGNORE).sum())
    assert jsonable(acc.compute()) == jsonable(compute_metrics(whole, names))
    acc.add(whole)
    np.testing.assert_array_equal(acc.matrix, 2 * whole)
    acc.reset()
    assert acc.total == 0


def test_format_table_lists_every_class():
    pred, target = _random_maps(3, 4)
    m = compute_metrics(confusion_matrix(pred, target, 4), ["water", "road", "a|b", "bare land"])
    md = format_table(m)
    assert f"| mIoU (%) | {100 * m['miou']:.2f} |" in md
    for name in ("water", "road", "a\\|b", "bare land"):
        assert f"| {name} | {100 * m['per_class'][name.replace(chr(92), '')]['iou']:.2f} |" in md


def test_jsonable_numpy_scalars_and_paths():
    from pathlib import Path

    obj = {"a": np.bool_(True), "b": np.int64(3), "c": np.float32(0.5), "d": Path("x") / "y.png",
           "e": (np.float64("nan"), float("inf")), 7: np.arange(2)}
    assert jsonable(obj) == {"a": True, "b": 3, "c": 0.5, "d": str(Path("x") / "y.png"), "e": [None, None],
                             "7": [0, 1]}
    json.dumps(jsonable(obj), allow_nan=False)
