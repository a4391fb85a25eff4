"""Regression and multi-label metrics against scipy and scikit-learn on hand-made cases, bootstrap CIs, per-label
thresholds, the monitor check and the paired bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import (accuracy_score, average_precision_score, f1_score, hamming_loss, jaccard_score,
                             mean_absolute_error, mean_squared_error, precision_score, r2_score, recall_score,
                             roc_auc_score)

from biolens.errors import ConfigError
from biolens.evaluation.multilabel import label_thresholds, multilabel_metrics, shared_threshold
from biolens.evaluation.paired_targets import paired_bootstrap
from biolens.evaluation.regression import regression_metrics
from biolens.metric_fns import per_label
from biolens.metrics import (check_monitor, compute_target, get_metric, metric_names, monitor_direction,
                             target_metrics)

def approx(value, abs: float = 1e-6):  # noqa: A002  (metrics.json values are rounded to 6 decimals)
    return pytest.approx(value, abs=abs)


Y = np.array([1.0, 2.0, 3.5, 4.0, 2.5, 0.5, 3.0, 5.0])
P = np.array([1.2, 1.8, 3.0, 4.4, 2.0, 1.0, 3.3, 4.1])


@pytest.mark.parametrize("name, ref", [
    ("pearson", lambda y, p: pearsonr(y, p).statistic), ("spearman", lambda y, p: spearmanr(y, p).statistic),
    ("r2", r2_score), ("mae", mean_absolute_error), ("rmse", lambda y, p: np.sqrt(mean_squared_error(y, p))),
])
def test_regression_metrics_match_scipy_and_sklearn(name, ref):
    assert compute_target(name, "regression", Y[:, None], P[:, None]) == approx(ref(Y, P))


def test_missing_values_are_left_out_per_target_and_targets_are_averaged():
    y = np.stack([Y, Y[::-1]], axis=1)
    p = np.stack([P, P[::-1] + 1], axis=1)
    y[2, 0] = y[5, 1] = np.nan
    m = target_metrics("regression", y, p, ["a", "b"])
    keep_a, keep_b = ~np.isnan(y[:, 0]), ~np.isnan(y[:, 1])
    ra = spearmanr(y[keep_a, 0], p[keep_a, 0]).statistic
    rb = spearmanr(y[keep_b, 1], p[keep_b, 1]).statistic
    assert m["per_target"]["a"]["spearman"] == approx(ra)
    assert m["per_target"]["b"]["spearman"] == approx(rb)
    assert m["spearman"] == approx((ra + rb) / 2)
    assert m["per_target"]["a"]["n"] == 7
    assert m["per_target"]["b"]["mae"] == approx(mean_absolute_error(y[keep_b, 1], p[keep_b, 1]), abs=1e-6)


def test_undefined_correlation_is_none_not_an_error():
    m = target_metrics("regression", Y[:, None], np.full((8, 1), 2.0), ["a"])  # constant predictions
    assert m["pearson"] is None and m["spearman"] is None and m["mae"] is not None


YL = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 1]], dtype=float)
PL = np.array([[0.9, 0.2, 0.6], [0.3, 0.8, 0.4], [0.7, 0.4, 0.2], [0.1, 0.3, 0.9], [0.6, 0.1, 0.55], [0.2, 0.7, 0.3]])


def test_multilabel_metrics_match_sklearn():
    m = target_metrics("multilabel", YL, PL, ["a", "b", "c"])
    decided = (PL >= 0.5).astype(int)
    assert m["roc_auc"] == approx(roc_auc_score(YL, PL, average="macro"))
    assert m["micro_roc_auc"] == approx(roc_auc_score(YL, PL, average="micro"))
    assert m["pr_auc"] == approx(average_precision_score(YL, PL, average="macro"))
    assert m["micro_pr_auc"] == approx(average_precision_score(YL, PL, average="micro"))
    assert m["hamming_loss"] == approx(hamming_loss(YL, decided))
    assert m["subset_accuracy"] == approx(accuracy_score(YL, decided))
    assert m["macro_f1"] == approx(f1_score(YL, decided, average="macro"))
    for j, n in enumerate("abc"):
        assert m["per_label"][n]["roc_auc"] == approx(roc_auc_score(YL[:, j], PL[:, j]))
        assert m["per_label"][n]["pr_auc"] == approx(average_precision_score(YL[:, j], PL[:, j]))
        assert m["per_label"][n]["positives"] == int(YL[:, j].sum())


def _chou(y_hat: np.ndarray, y: np.ndarray) -> tuple[float, ...]:
    """PrMFTP's evaluation.py definitions, written out: aiming, coverage, accuracy, absolute true, absolute false."""
    n, k = y.shape
    aim = cov = acc = 0.0
    for v in range(n):
        inter = float(np.sum((y_hat[v] == 1) & (y[v] == 1)))
        union = float(np.sum((y_hat[v] == 1) | (y[v] == 1)))
        if inter:
            aim += inter / y_hat[v].sum()
            cov += inter / y[v].sum()
            acc += inter / union
    absolute_true = float(np.mean([list(a) == list(b) for a, b in zip(y_hat, y)]))
    absolute_false = float(np.mean([(np.sum((a == 1) | (b == 1)) - np.sum((a == 1) & (b == 1))) / k
                                    for a, b in zip(y_hat, y)]))
    return aim / n, cov / n, acc / n, absolute_true, absolute_false


def test_the_five_mftp_metrics_match_the_published_definitions_and_sklearn():
    y_hat = (PL >= 0.5).astype(int)
    m = target_metrics("multilabel", YL, PL, ["a", "b", "c"])
    ours = (m["aiming"], m["coverage"], m["example_accuracy"], m["subset_accuracy"], m["hamming_loss"])
    assert ours == approx(_chou(y_hat, YL.astype(int)), abs=1e-6)
    assert m["aiming"] == approx(precision_score(YL, y_hat, average="samples", zero_division=0))
    assert m["coverage"] == approx(recall_score(YL, y_hat, average="samples", zero_division=0))
    assert m["example_accuracy"] == approx(jaccard_score(YL, y_hat, average="samples", zero_division=0))


def test_unknown_labels_are_masked():
    y = YL.copy()
    y[0, 2] = np.nan
    m = target_metrics("multilabel", y, PL, ["a", "b", "c"])
    seen = ~np.isnan(y[:, 2])
    assert m["per_label"]["c"]["roc_auc"] == approx(roc_auc_score(y[seen, 2], PL[seen, 2]))
    assert m["per_label"]["c"]["n"] == 5
    decided = PL >= 0.5
    assert m["subset_accuracy"] == approx(accuracy_score(YL[1:], decided[1:]))  # the complete rows
    flat = ~np.isnan(y)
    assert m["hamming_loss"] == approx(float(np.mean((y[flat] > 0.5) != decided[flat])))


def test_at_least_one_label_fills_empty_rows_in_every_decision_metric():
    p = PL.copy()
    p[3] = [0.1, 0.3, 0.45]  # nothing passes 0.5: the rule assigns c, its most probable (and true) label
    plain = (p >= 0.5).astype(int)
    filled = plain.copy()
    filled[3, 2] = 1
    m = target_metrics("multilabel", YL, p, ["a", "b", "c"], at_least_one=True)
    assert m["subset_accuracy"] == approx(accuracy_score(YL, filled))
    assert m["hamming_loss"] == approx(hamming_loss(YL, filled))
    assert m["macro_f1"] == approx(f1_score(YL, filled, average="macro"))
    assert m["per_label"]["c"]["predicted"] == int(filled[:, 2].sum())
    assert m["predicted_cardinality"] == approx(filled.sum() / len(filled), abs=1e-4)
    assert compute_target("subset_accuracy", "multilabel", YL, p) == approx(accuracy_score(YL, plain))
    assert m["roc_auc"] == approx(roc_auc_score(YL, p, average="macro"))  # rankings do not change


def test_thresholds_change_decisions_but_not_ranking_metrics():
    t = np.array([0.65, 0.5, 0.5])
    m = target_metrics("multilabel", YL, PL, ["a", "b", "c"], t)
    assert m["hamming_loss"] == approx(hamming_loss(YL, (PL >= t).astype(int)))
    assert m["roc_auc"] == approx(roc_auc_score(YL, PL, average="macro"))
    assert m["per_label"]["a"]["threshold"] == 0.65


def test_label_thresholds_maximise_f1_or_reach_a_sensitivity():
    rng = np.random.default_rng(0)
    y = (rng.random((400, 2)) < 0.3).astype(float)
    p = np.clip(0.35 * y + rng.random((400, 2)) * 0.65, 0, 1)
    t, info = label_thresholds(y, p, ["a", "b"], "f1")
    for j in range(2):
        grid = np.unique(p[:, j])
        best = max(f1_score(y[:, j], p[:, j] >= g) for g in grid)
        assert f1_score(y[:, j], p[:, j] >= t[j]) == approx(best)
    t, info = label_thresholds(y, p, ["a", "b"], "sensitivity", 0.9)
    for j in range(2):
        assert recall_score(y[:, j], p[:, j] >= t[j]) >= 0.9
    const = np.zeros((10, 1))
    t, info = label_thresholds(const, np.linspace(0, 1, 10)[:, None], ["c"], "f1")
    assert t == [0.5] and info["per_label"]["c"]["kept_default"]  # one class on val: the default stays


def test_bootstrap_cis_are_seeded_and_bracket_the_estimate():
    rng = np.random.default_rng(1)
    y = rng.normal(size=(120, 1))
    p = y + rng.normal(scale=0.5, size=(120, 1))
    a = regression_metrics(y, p, ["t"], n_resamples=200, seed=3)
    b = regression_metrics(y, p, ["t"], n_resamples=200, seed=3)
    assert a["ci"] == b["ci"]
    for name in ("pearson", "spearman", "r2", "mae", "rmse"):
        lo, hi = a["ci"][name]
        assert lo <= a[name] <= hi
    assert any("Spearman" in line for line in a["clinical"])
    ml = multilabel_metrics(YL, PL, ["a", "b", "c"], np.full(3, 0.5), n_resamples=50, seed=0)
    lo, hi = ml["ci"]["hamming_loss"]
    assert lo <= ml["hamming_loss"] <= hi and ml["ci_level"] == 0.95


def test_monitor_names_and_directions():
    assert check_monitor("val_spearman", False, "regression") == "spearman"
    assert monitor_direction("val_spearman") == "max" and monitor_direction("val_rmse") == "min"
    assert monitor_direction("val_hamming_loss") == "min"
    assert check_monitor("val_subset_accuracy", False, "multilabel") == "subset_accuracy"
    assert check_monitor("val_acc", False, "multilabel") is None  # the trainer logs subset accuracy as acc
    with pytest.raises(ConfigError, match="does not apply to a regression task; use one of: val_loss, val_pearson"):
        check_monitor("val_roc_auc", False, "regression")
    with pytest.raises(ConfigError, match="does not apply to a binary task"):
        check_monitor("val_spearman", True)
    with pytest.raises(ConfigError, match="only train_loss are logged"):
        check_monitor("train_acc", False, "regression")


def test_paired_bootstrap_of_a_difference():
    rng = np.random.default_rng(2)
    y = rng.normal(size=(300, 1))
    good, bad = y + rng.normal(scale=0.3, size=y.shape), y + rng.normal(scale=1.5, size=y.shape)
    r = paired_bootstrap("spearman", "regression", y, good, bad, n_resamples=300)
    assert r.difference > 0 and r.ci[0] > 0 and r.p_value < 0.01
    same = paired_bootstrap("spearman", "regression", y, good, good, n_resamples=100)
    assert same.difference == 0 and same.p_value == 1.0


def test_per_label_scores_every_label_as_scikit_learn_does_one_by_one():
    """Complete data go to scikit-learn in one call per metric (average=None); the figures are those of one call per
    label, with NaN for a label without positives and, with missing entries, the label-by-label path."""
    rng = np.random.default_rng(4)
    y = (rng.random((200, 5)) < 0.3).astype(float)
    y[:, 3] = 0.0  # no positives: AUC undefined
    p = rng.random((200, 5))
    for fn in (roc_auc_score, average_precision_score):
        got = per_label(fn, y, p)
        want = [fn(y[:, j], p[:, j]) if y[:, j].any() else np.nan for j in range(5)]
        np.testing.assert_allclose(got, want, equal_nan=True)
    d = p > 0.5
    np.testing.assert_allclose(per_label(lambda a, b, **kw: f1_score(a, b, zero_division=0, **kw), y, d,
                                         needs_both=False),
                               [f1_score(y[:, j], d[:, j], zero_division=0) for j in range(5)])
    y[0, 0] = np.nan  # a missing entry: label by label, over each label's observed rows
    assert per_label(roc_auc_score, y, p)[0] == pytest.approx(roc_auc_score(y[1:, 0], p[1:, 0]))


@pytest.mark.parametrize("missing, unobserved_label", [(0.0, False), (0.08, False), (0.08, True)])
def test_sample_counted_metrics_give_scikit_learns_value_on_every_resample(missing, unobserved_label):
    """The bootstrap sums per-sample counts for the multi-label decision metrics instead of calling scikit-learn on
    each resample: on resamples with repeated rows, empty true and decided sets, a label never true nor decided,
    missing entries and a label missing everywhere (no fully observed row: the example-based metrics are NaN), the
    counts give the registry's scikit-learn figure."""
    rng = np.random.default_rng(7)
    y = (rng.random((150, 6)) < 0.25).astype(float)
    y[:, 5] = 0.0
    y[rng.random(y.shape) < missing] = np.nan
    if unobserved_label:
        y[:, 4] = np.nan
    d = rng.random(y.shape) < 0.3
    d[:10] = False  # empty decided sets
    counted = [n for n in metric_names(target_type="multilabel") if get_metric(n).sample_counts]
    assert set(counted) == {"macro_f1", "hamming_loss", "subset_accuracy", "aiming", "coverage", "example_accuracy"}
    for _ in range(5):
        idx = rng.integers(0, len(y), len(y))
        for name in counted:
            m = get_metric(name)
            want = m.multilabel(y[idx], np.zeros_like(y[idx]), d[idx])
            got = m.from_counts(m.sample_counts(y, d)[idx].sum(axis=0))
            assert got == pytest.approx(want, abs=1e-12, nan_ok=True), name


def test_shared_threshold_keeps_the_best_val_subset_accuracy_under_the_never_empty_rule():
    # 300 rows, 3 labels; each row's true set is its top label. A second label at 0.6 is wrong on 200 rows and right
    # on 100 (where it belongs to the set), so 0.5-0.60 decide 100 rows right and 0.65-0.90 decide 200
    y = np.zeros((300, 3))
    y[:, 0] = 1
    y[:100, 1] = 1
    p = np.full((300, 3), 0.1)
    p[:, 0] = 0.95
    p[:, 1] = 0.6
    t, info = shared_threshold(y, p)
    assert t == 0.65 and info["method"] == "val_subset_accuracy" and info["val_rows"] == 300
    assert info["val_subset_accuracy"][0.5] == pytest.approx(1 / 3) and info["val_subset_accuracy"][0.65] == pytest.approx(2 / 3)
    # a tie keeps the lowest threshold; an empty row still gets its most probable label at any threshold
    p[:, 1] = 0.2
    assert shared_threshold(y, p)[0] == 0.5
    # rows with an unknown label do not count; too few fully labelled rows keep 0.5
    y[:150, 2] = np.nan
    t, info = shared_threshold(y, p)
    assert t == 0.5 and info == {"method": "default", "val_rows": 150, "min_rows": 200}
