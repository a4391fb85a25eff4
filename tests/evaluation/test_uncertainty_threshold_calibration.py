import warnings

import numpy as np
import pytest

from biolens.errors import ConfigError, DataError
from biolens.evaluation.bootstrap import binary_cis, multiclass_cis
from biolens.evaluation.calibration import brier, expected_calibration_error, fit_temperature, nll, reliability
from biolens.evaluation.clinical import clinical_lines
from biolens.metrics import classification_metrics
from biolens.evaluation.threshold import choose_threshold
from biolens.contract import softmax


def test_no_positives_gives_undefined_not_zero():
    y = np.zeros(6, dtype=int)  # no positives at all
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.7, 0.3], [0.9, 0.1]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no sklearn warnings leak out
        m = classification_metrics(y, probs, ["neg", "pos"], "pos")
    assert m["sensitivity"] is None and m["roc_auc"] is None and m["pr_auc"] is None
    assert m["specificity"] == round(5 / 6, 6) and (m["tp"], m["fn"], m["fp"], m["tn"]) == (0, 0, 1, 5)
    assert "Sensitivity is undefined" in clinical_lines(m)[0]
    ci = binary_cis(y, probs[:, 1], 0.5, n_resamples=50)
    assert ci["roc_auc"] == [None, None] and ci["sensitivity"] == [None, None]


def test_bootstrap_ci_coverage_on_known_answer():
    """Accuracy of a classifier that is right with probability 0.8: the 95% CI should cover 0.8 about 95% of the
    time, and be about as wide as the normal approximation."""
    rng = np.random.default_rng(0)
    n, covered, widths = 400, 0, []
    for trial in range(60):
        y = rng.random(n) < 0.5
        correct = rng.random(n) < 0.8
        p = np.where(correct == y, 0.9, 0.1)  # P(positive): right for 80% of rows
        ci = binary_cis(y, p, 0.5, n_resamples=400, seed=trial, with_auc=False)["accuracy"]
        covered += ci[0] <= 0.8 <= ci[1]
        widths.append(ci[1] - ci[0])
    assert 0.85 <= covered / 60 <= 1.0
    assert np.mean(widths) == pytest.approx(2 * 1.96 * np.sqrt(0.8 * 0.2 / n), rel=0.15)


def test_bootstrap_is_seeded():
    rng = np.random.default_rng(1)
    y, p = rng.random(200) < 0.4, rng.random(200)
    assert binary_cis(y, p, 0.5, n_resamples=100, seed=3) == binary_cis(y, p, 0.5, n_resamples=100, seed=3)
    yt, yp = rng.integers(0, 3, 200), rng.integers(0, 3, 200)
    probs = rng.dirichlet(np.ones(3), 200)
    a = multiclass_cis(yt, yp, probs=probs, n_resamples=50, seed=1)
    assert a == multiclass_cis(yt, yp, probs=probs, n_resamples=50, seed=1)
    assert set(a) == {"accuracy", "balanced_accuracy", "mcc", "macro_f1", "roc_auc_ovr"}
    assert a["roc_auc_ovr"][0] < 0.5 < a["roc_auc_ovr"][1]  # random scores: the interval covers chance


def test_threshold_reaches_target_sensitivity_on_validation():
    rng = np.random.default_rng(0)
    y = rng.random(2000) < 0.3
    p = np.clip(0.35 * y + rng.random(2000) * 0.65, 0, 1)
    op = choose_threshold(y, p, "sensitivity", 0.95)
    achieved = ((p >= op.threshold) & y).sum() / y.sum()
    assert op.reached and achieved >= 0.95 and op.sensitivity == pytest.approx(achieved)
    # the best specificity among thresholds that reach the target: a slightly higher threshold misses it
    higher = np.min(p[p > op.threshold])
    assert ((p >= higher) & y).sum() / y.sum() < 0.95
    spec = choose_threshold(y, p, "specificity", 0.9)
    assert ((p < spec.threshold) & ~y).sum() / (~y).sum() >= 0.9
    assert 0 <= choose_threshold(y, p, "youden").threshold <= 1 and 0 <= choose_threshold(y, p, "f1").threshold <= 1


def test_threshold_errors():
    with pytest.raises(DataError, match="needs both classes"):
        choose_threshold(np.ones(5, bool), np.linspace(0, 1, 5))
    with pytest.raises(ConfigError, match="unknown operating-point method 'best'"):
        choose_threshold(np.array([0, 1]), np.array([0.2, 0.8]), "best")
    with pytest.raises(ConfigError, match="--target-sensitivity must be in"):
        choose_threshold(np.array([0, 1]), np.array([0.2, 0.8]), "sensitivity", 1.5)


def test_temperature_scaling_keeps_argmax_and_lowers_nll():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 1000)
    clean = np.eye(3)[y] * 2.0 + rng.normal(0, 1.0, (1000, 3))
    logits = clean * 4.0  # over-confident: the same ranking, logits blown up
    t = fit_temperature(logits, y)
    assert t > 1.5
    before, after = softmax(logits), softmax(logits, t)
    np.testing.assert_array_equal(before.argmax(1), after.argmax(1))
    assert nll(y, after) < nll(y, before)
    assert expected_calibration_error(y, after) < expected_calibration_error(y, before)


def test_calibration_numbers():
    y = np.array([0, 1, 1, 0])
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.55, 0.45]])
    assert brier(y, probs, 1) == pytest.approx(np.mean([0.1**2, 0.2**2, 0.6**2, 0.45**2]))
    rel = reliability(y, probs, n_bins=2)  # bins (0, .5] and (.5, 1]: all confidences are above 0.5
    assert rel["count"] == [0, 4]
    assert expected_calibration_error(y, probs, n_bins=2) == pytest.approx(abs(0.75 - np.mean([0.9, 0.8, 0.6, 0.55])))
