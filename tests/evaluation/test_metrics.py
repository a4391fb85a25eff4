import numpy as np
from sklearn.metrics import roc_auc_score

from biolens.metrics import classification_metrics
from biolens.contract import decide


def test_binary_metrics_golden():
    # classes ["neg", "pos"]; positives are rows 0-3
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    p_pos = np.array([0.9, 0.8, 0.6, 0.3, 0.7, 0.2, 0.1, 0.1, 0.4, 0.05])
    probs = np.stack([1 - p_pos, p_pos], axis=1)
    m = classification_metrics(y, probs, ["neg", "pos"], "pos")
    assert (m["tp"], m["fn"], m["fp"], m["tn"]) == (3, 1, 1, 5)
    assert m["sensitivity"] == 0.75 and m["specificity"] == round(5 / 6, 6)
    assert m["precision"] == 0.75 and m["npv"] == round(5 / 6, 6) and m["f1"] == 0.75
    assert m["accuracy"] == 0.8
    assert m["roc_auc"] == round(roc_auc_score(y, p_pos), 6)
    assert m["confusion_matrix"]["matrix"] == [[5, 1], [1, 3]]


def test_threshold_changes_decisions():
    probs = np.array([[0.6, 0.4], [0.2, 0.8]])
    assert decide(probs, 1, 0.5).tolist() == [0, 1]
    assert decide(probs, 1, 0.3).tolist() == [1, 1]
    assert decide(probs, 0, 0.7).tolist() == [1, 1]


def test_multiclass_metrics():
    y = np.array([0, 1, 2, 2])
    probs = np.array([[0.8, 0.1, 0.1], [0.1, 0.7, 0.2], [0.2, 0.2, 0.6], [0.5, 0.1, 0.4]])
    m = classification_metrics(y, probs, ["EI", "IE", "N"])
    assert m["accuracy"] == 0.75
    assert m["per_class"]["N"] == {"precision": 1.0, "recall": 0.5, "f1": round(2 / 3, 6), "support": 2}
    assert m["confusion_matrix"]["matrix"] == [[1, 0, 0], [0, 1, 0], [1, 0, 1]]
    assert m["roc_auc_ovr"] is not None and "sensitivity" not in m
