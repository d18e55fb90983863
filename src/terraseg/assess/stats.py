"""The estimators of Olofsson et al. (2014) for a stratified random sample whose strata are the map classes.

Olofsson, P., Foody, G. M., Herold, M., Stehman, S. V., Woodcock, C. E., Wulder, M. A. (2014).
Good practices for estimating area and assessing accuracy of land change. *Remote Sensing of
Environment* 148, 42–57. doi:10.1016/j.rse.2014.02.015

Notation (rows ``i`` are map classes = strata, columns ``j`` reference classes): ``n_ij`` sample
counts, ``n_i.`` points in stratum ``i``, ``A_i`` mapped area of class ``i``, ``A`` the total,
``W_i = A_i / A``.

* error matrix of estimated area proportions (eq. 4): ``p_ij = W_i n_ij / n_i.``
* overall accuracy (eq. 1): ``O = Σ_j p_jj``, ``V(O) = Σ_i W_i² U_i (1 - U_i) / (n_i. - 1)`` (eq. 5)
* user's accuracy (eq. 2): ``U_i = p_ii / p_i.``, ``V(U_i) = U_i (1 - U_i) / (n_i. - 1)`` (eq. 6)
* producer's accuracy (eq. 3): ``P_j = p_jj / p_.j``, with the variance of eq. 7
  (``N_.j = Σ_i A_i n_ij / n_i.``, the estimated reference area of class ``j``)
* area proportion (eq. 9): ``p_.k = Σ_i W_i n_ik / n_i.``, with
  ``S(p_.k)² = Σ_i W_i² (n_ik/n_i.)(1 - n_ik/n_i.) / (n_i. - 1)`` (eq. 10);
  error-adjusted area ``A p_.k`` with standard error ``A S(p_.k)`` (eq. 11)
* 95 % confidence intervals: ``± 1.96 × SE``.

Sample size (eq. 13, Cochran 1977 eq. 5.25 without the finite population correction):
``n = (Σ_i W_i S_i / S(O))²`` with ``S_i = sqrt(U_i (1 - U_i))`` from the expected user's accuracies.

With a full-coverage reference (a census) the error matrix is known exactly (:func:`census_estimate`):
the same quantities without sampling error, so no intervals.

Plain functions over numpy arrays; nothing here reads files.
"""

from __future__ import annotations

import math

import numpy as np

#: Multiplier of the standard error for a 95 % confidence interval (as in the paper).
Z95 = 1.96


def sample_size(weights, expected_ua, target_se: float) -> int:
    """Total sample size for a target standard error of overall accuracy (eq. 13), rounded up.

    ``weights``: map area proportions ``W_i`` of the strata; ``expected_ua``: the user's accuracy
    expected of each class (``S_i = sqrt(U_i (1 - U_i))``); ``target_se``: e.g. 0.01.
    """
    w = np.asarray(weights, np.float64)
    u = np.asarray(expected_ua, np.float64)
    if target_se <= 0:
        raise ValueError("the target standard error must be positive")
    s = np.sqrt(np.clip(u * (1.0 - u), 0.0, None))
    return max(1, int(math.ceil((float(np.sum(w * s)) / target_se) ** 2 - 1e-9)))


def allocate(n: int, pixels, min_per_class: int) -> np.ndarray:
    """Points per stratum: proportional to area, but at least ``min_per_class`` (and at most the
    stratum's pixel count). Strata without pixels get none.

    Strata whose proportional share falls under the minimum get the minimum; the rest of ``n`` is
    shared in proportion to area among the others (repeated until stable), rounded by largest
    remainders so the total is exactly ``n`` (or the minimums' sum when that is larger).
    """
    pixels = np.asarray(pixels, np.float64)
    active = pixels > 0
    out = np.zeros(len(pixels), np.int64)
    if not active.any() or n <= 0:
        return out
    fixed = np.zeros(len(pixels), bool)
    while True:
        free = active & ~fixed
        rest = n - min_per_class * int(fixed.sum())
        if not free.any() or rest <= 0:
            break
        share = np.where(free, rest * pixels / pixels[free].sum(), 0.0)
        small = free & (share < min_per_class)
        if not small.any():
            base = np.floor(share).astype(np.int64)
            remainder = int(rest - base[free].sum())
            order = np.argsort(-(share - base), kind="stable")
            order = [i for i in order if free[i]][:remainder]
            base[order] += 1
            out[free] = base[free]
            break
        fixed |= small
    out[fixed] = min_per_class
    return np.minimum(out, pixels.astype(np.int64))


def _safe_div(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1.0), np.nan)


def stratified_estimate(counts, strata_area) -> dict:
    """Accuracy and error-adjusted area from sample counts ``n_ij`` (rows map, columns reference) and
    the mapped area of every stratum (any unit: areas come back in that unit).

    Every stratum with area must hold at least 2 points (the variances divide by ``n_i. - 1``);
    raises ``ValueError`` otherwise. Undefined figures (the producer's accuracy of a class no point
    was found in) are NaN. Returns numpy arrays under the names of the module docstring.
    """
    n = np.asarray(counts, np.float64)
    area = np.asarray(strata_area, np.float64)
    k = len(area)
    if n.shape != (k, k):
        raise ValueError(f"counts must be {k}x{k}, not {n.shape}")
    ni = n.sum(axis=1)
    if np.any((area > 0) & (ni < 2)):
        raise ValueError("every stratum with area needs at least 2 sample points")
    total = float(area.sum())
    w = area / total
    frac = np.where(ni[:, None] > 0, n / np.where(ni > 0, ni, 1.0)[:, None], 0.0)  # n_ij / n_i.
    p = w[:, None] * frac
    dof = np.where(ni > 1, ni - 1.0, np.inf)  # strata without area and < 2 points add nothing
    ua = _safe_div(np.diag(n), ni)
    ua_var = np.where(ni > 1, ua * (1 - ua) / dof, np.nan)
    u0 = np.nan_to_num(ua)
    overall = float(np.trace(p))
    overall_var = float(np.sum(w ** 2 * u0 * (1 - u0) / dof))
    p_ref = p.sum(axis=0)
    pa = _safe_div(np.diag(p), p_ref)
    n_ref = (area[:, None] * frac).sum(axis=0)  # estimated reference area of each class, N_.j
    pa_var = np.full(k, np.nan)
    term = area[:, None] ** 2 * frac * (1 - frac) / dof[:, None]  # N_i.² n_ij/n_i. (1 - n_ij/n_i.) / (n_i. - 1)
    for j in range(k):
        if n_ref[j] <= 0:
            continue
        own = area[j] ** 2 * (1 - pa[j]) ** 2 * u0[j] * (1 - u0[j]) / dof[j]
        others = pa[j] ** 2 * (term[:, j].sum() - term[j, j])
        pa_var[j] = (own + others) / n_ref[j] ** 2
    area_se_prop = np.sqrt(np.sum(w[:, None] ** 2 * frac * (1 - frac) / dof[:, None], axis=0))
    return {
        "counts": n, "proportions": p, "weights": w, "total_area": total, "sample_points": ni,
        "overall_accuracy": overall, "overall_accuracy_se": math.sqrt(overall_var),
        "users_accuracy": ua, "users_accuracy_se": np.sqrt(ua_var),
        "producers_accuracy": pa, "producers_accuracy_se": np.sqrt(pa_var),
        "area_proportion": p_ref, "area_proportion_se": area_se_prop,
        "area": total * p_ref, "area_se": total * area_se_prop,
    }


def census_estimate(area_matrix) -> dict:
    """Exact figures from a full-coverage reference: ``area_matrix[i, j]`` is the area mapped as ``i``
    whose reference class is ``j`` (any unit). No sampling error, so no standard errors."""
    a = np.asarray(area_matrix, np.float64)
    total = float(a.sum())
    p = a / total if total > 0 else np.zeros_like(a)
    p_map, p_ref = p.sum(axis=1), p.sum(axis=0)
    return {
        "counts": a, "proportions": p, "weights": p_map, "total_area": total,
        "overall_accuracy": float(np.trace(p)),
        "users_accuracy": _safe_div(np.diag(p), p_map), "producers_accuracy": _safe_div(np.diag(p), p_ref),
        "area_proportion": p_ref, "area": a.sum(axis=0),
    }
