"""Paired tests: DeLong against a worked example and an independent O(m·n) implementation, McNemar against
statsmodels."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from biolens.errors import DataError
from biolens.evaluation.paired import delong_covariance, delong_test, holm, mcnemar_test, midranks


def kernel_delong(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """DeLong et al. (1988) written out directly: the Mann-Whitney kernel over every positive/negative pair, the
    structural components as its row and column means, then their sample covariances. Returns (auc_a, auc_b,
    variance of the difference). Independent of the midrank algorithm under test."""
    y = y.astype(bool)
    comps = []
    for s in (a, b):
        x, z = s[y][:, None], s[~y][None, :]
        psi = (x > z) + 0.5 * (x == z)  # (m, n)
        comps.append((psi.mean(), psi.mean(axis=1), psi.mean(axis=0)))
    (auc_a, v10a, v01a), (auc_b, v10b, v01b) = comps
    m, n = len(v10a), len(v01a)
    s10 = np.cov(np.vstack([v10a, v10b]))
    s01 = np.cov(np.vstack([v01a, v01b]))
    s = s10 / m + s01 / n
    return auc_a, auc_b, s[0, 0] + s[1, 1] - 2 * s[0, 1]


def test_delong_worked_example():
    # Three positives and three negatives, worked by hand:
    #   A: positives 3, 5, 6 vs negatives 1, 2, 4 → 8 of 9 pairs ordered, AUC 8/9;
    #      V10 = (2/3, 1, 1), V01 = (1, 1, 2/3); var(V10) = var(V01) = 1/27
    #   B: positives 2, 4, 6 vs negatives 1, 3, 5 → 6 of 9, AUC 2/3;
    #      V10 = (1/3, 2/3, 1), V01 = (1, 2/3, 1/3); var = 1/9; cov(A, B) = 1/18 for both components
    #   S = S10/3 + S01/3: var A = 2/81, var B = 2/27, cov = 1/27 → var(A − B) = 2/81
    #   z = (2/9) / (√2/9) = √2, p = 2·(1 − Φ(√2)) = 0.1573
    y = np.array([1, 1, 1, 0, 0, 0])
    a = np.array([3, 5, 6, 1, 2, 4], dtype=float)
    b = np.array([2, 4, 6, 1, 3, 5], dtype=float)
    r = delong_test(y, a, b)
    assert r.auc_a == pytest.approx(8 / 9) and r.auc_b == pytest.approx(2 / 3)
    assert r.se == pytest.approx(np.sqrt(2) / 9)
    assert r.z == pytest.approx(np.sqrt(2))
    assert r.p_value == pytest.approx(0.157299, abs=1e-6)
    lo, hi = r.ci
    assert lo == pytest.approx(2 / 9 - 1.959964 * np.sqrt(2) / 9, abs=1e-6) and hi > lo
    assert (r.n_positive, r.n_negative) == (3, 3)


@pytest.mark.parametrize("seed,ties", [(0, False), (1, True), (2, True)])
def test_delong_matches_the_direct_kernel_computation(seed, ties):
    rng = np.random.default_rng(seed)
    n = 300
    y = rng.random(n) < 0.35
    a = y * 0.8 + rng.normal(size=n)
    b = 0.6 * a + y * 0.3 + rng.normal(size=n)
    if ties:  # coarse scores: many ties within and across classes
        a, b = np.round(a, 1), np.round(b * 2) / 2
    r = delong_test(y, a, b)
    auc_a, auc_b, var = kernel_delong(y, a, b)
    assert r.auc_a == pytest.approx(auc_a, abs=1e-12) and r.auc_b == pytest.approx(auc_b, abs=1e-12)
    assert r.auc_a == pytest.approx(roc_auc_score(y, a), abs=1e-12)
    assert r.se ** 2 == pytest.approx(var, rel=1e-9)
    assert r.p_value == pytest.approx(2 * stats.norm.sf(abs(auc_a - auc_b) / np.sqrt(var)), rel=1e-9)


def test_delong_variance_agrees_with_the_bootstrap():
    # DeLong estimates the sampling variance of the AUC difference; a paired bootstrap estimates the same quantity
    rng = np.random.default_rng(7)
    n = 400
    y = rng.random(n) < 0.5
    a = y * 1.0 + rng.normal(size=n)
    b = 0.5 * a + y * 0.4 + rng.normal(size=n)
    r = delong_test(y, a, b)

    idx = rng.integers(0, n, (2000, n))  # paired resamples: the same items for both models
    yy = y[idx]
    m = yy.sum(axis=1)

    def auc(s: np.ndarray) -> np.ndarray:  # Mann-Whitney U / (m·n) of every resample, scipy's average ranks
        ranks = stats.rankdata(s[idx], axis=1)
        return ((ranks * yy).sum(axis=1) - m * (m + 1) / 2) / (m * (n - m))

    assert np.std(auc(a) - auc(b)) == pytest.approx(r.se, rel=0.08)


def test_delong_covariance_of_one_model_and_identical_models():
    y = np.array([1, 0, 1, 0, 1, 0, 0])
    s = np.array([0.9, 0.1, 0.4, 0.5, 0.7, 0.3, 0.2])
    aucs, cov = delong_covariance(y, s)
    assert aucs.shape == (1,) and cov.shape == (1, 1) and aucs[0] == pytest.approx(roc_auc_score(y, s))
    same = delong_test(y, s, s)
    assert same.difference == 0 and same.p_value == 1.0 and same.se == 0


def test_delong_refuses_one_class_and_nan():
    with pytest.raises(DataError, match="positive and negative"):
        delong_test(np.ones(4), np.arange(4.0), np.arange(4.0))
    with pytest.raises(DataError, match="NaN"):
        delong_test(np.array([1, 0]), np.array([np.nan, 1.0]), np.array([0.0, 1.0]))


def test_midranks():
    np.testing.assert_array_equal(midranks(np.array([3.0, 1.0, 3.0, 2.0])), [3.5, 1.0, 3.5, 2.0])
    x = np.random.default_rng(0).integers(0, 5, 50).astype(float)
    np.testing.assert_allclose(midranks(x), stats.rankdata(x, method="average"))


@pytest.mark.parametrize("b,c,exact", [(3, 9, None), (0, 5, None), (20, 35, None), (12, 13, True), (4, 1, False),
                                       (0, 0, None), (14, 10, None)])
def test_mcnemar_matches_statsmodels(b, c, exact):
    from statsmodels.stats.contingency_tables import mcnemar

    both, neither = 40, 7
    correct_a = np.array([True] * both + [True] * b + [False] * c + [False] * neither)
    correct_b = np.array([True] * both + [False] * b + [True] * c + [False] * neither)
    r = mcnemar_test(correct_a, correct_b, exact=exact)
    use_exact = (b + c) < 25 if exact is None else exact
    ref = mcnemar([[both, b], [c, neither]], exact=use_exact, correction=True)
    assert (r.b, r.c, r.n) == (b, c, both + b + c + neither)
    assert r.method == ("exact" if use_exact else "chi2")
    if b + c:
        assert r.statistic == pytest.approx(ref.statistic) and r.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    else:
        assert r.p_value == 1.0
    assert r.accuracy_a == pytest.approx((both + b) / r.n) and r.accuracy_b == pytest.approx((both + c) / r.n)


def test_mcnemar_refuses_mismatched_inputs():
    with pytest.raises(DataError, match="one value per item"):
        mcnemar_test(np.ones(3, bool), np.ones(4, bool))


def test_holm_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests

    p = [0.01, 0.04, 0.03, 0.2, 0.005]
    np.testing.assert_allclose(holm(p), multipletests(p, method="holm")[1])
    assert np.isnan(holm([0.1, float("nan")])[1]) and holm([0.1, float("nan")])[0] == pytest.approx(0.1)
