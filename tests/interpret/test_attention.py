"""Attention weights mapped back to input positions (stride 2), threshold regions and top windows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from biolens.errors import ConfigError, ModelError
from biolens.interpret.attention import attention_scores, find_regions, threshold_of, top_windows
from biolens.models import create_model
from tests.interpret.conftest import ATTENTION_PARAMS, CNN_PARAMS


def test_threshold_rules() -> None:
    v = np.array([0.0, 0.0, 0.0, 4.0])
    assert threshold_of(v, "mean+std") == pytest.approx(1.0 + np.sqrt(3.0))
    assert threshold_of(v, "percentile:50") == 0.0
    with pytest.raises(ConfigError, match="percentile:Q"):
        threshold_of(v, "percentile:120")
    with pytest.raises(ConfigError, match="expected mean\\+std or percentile"):
        threshold_of(v, "max")


def test_regions_hand_checked() -> None:
    scores = np.zeros((2, 12))
    scores[0, 3:5] = 5.0
    scores[0, 9] = 4.0
    scores[1, 0] = 9.0
    regions = find_regions(scores, np.array([12, 6]), "mean+std")
    assert [(r.index, r.start, r.end, r.weight) for r in regions] == [(0, 3, 5, 5.0), (0, 9, 10, 4.0), (1, 0, 1, 9.0)]
    widened = find_regions(scores, np.array([12, 6]), "mean+std", flank=2)
    assert [(r.index, r.start, r.end) for r in widened] == [(0, 1, 12), (1, 0, 3)]  # [1, 7) and [7, 12) touch: merged


def test_regions_with_stride_threshold_on_windows() -> None:
    weights = np.array([[0.1, 0.1, 0.6, 0.1, 0.1]])  # pooled windows
    scores = np.repeat(weights, 2, axis=1)  # (1, 10): window i covers positions 2i, 2i+1
    regions = find_regions(scores, np.array([10]), "mean+std", stride=2)
    assert [(r.start, r.end, r.weight) for r in regions] == [(4, 6, 0.6)]


def test_top_windows() -> None:
    scores = np.array([[0, 1, 0, 0, 3, 3, 0, 0], [5, 0, 0, 0, 0, 0, 9, 9]], dtype=float)
    starts, sums = top_windows(scores, np.array([8, 6]), width=3)
    assert starts.tolist() == [3, 0] and sums.tolist() == [6.0, 5.0]  # row 1: positions >= 6 are padding
    with pytest.raises(ConfigError):
        top_windows(scores, np.array([8, 6]), width=0)


def test_attention_scores_map_stride_and_padding() -> None:
    torch.manual_seed(0)
    model = create_model("cnn_bilstm_attention", vocab_size=6, num_classes=2, **ATTENTION_PARAMS).eval()
    x = np.zeros((2, 9), dtype=np.uint8)
    x[0, :9], x[1, :6] = np.array([1, 2, 3, 4, 1, 2, 3, 4, 1]), np.array([4, 3, 2, 1, 4, 3])
    lengths = np.array([9, 6])
    logits, weights, scores = attention_scores(model, x, lengths)
    assert weights.shape == (2, 5) and scores.shape == (2, 9)
    with torch.no_grad():
        ref_logits, ref_w = model.forward_with_attention(torch.as_tensor(x))
    np.testing.assert_allclose(logits, ref_logits.numpy(), rtol=1e-5)
    np.testing.assert_allclose(weights[:, :4], ref_w.numpy(), rtol=1e-5)
    np.testing.assert_allclose(scores[0, :8], np.repeat(weights[0, :4], 2))  # position p ← window p // 2
    assert scores[0, 8] == 0.0  # the odd last base is in no pooled window
    assert (scores[1, 6:] == 0).all() and weights[1, 3:].sum() == 0  # padding gets no attention
    assert weights[1, :3].sum() == pytest.approx(1.0, abs=1e-5)


def test_attention_needs_an_attention_model() -> None:
    model = create_model("dilated_resnet", vocab_size=6, num_classes=2, **CNN_PARAMS)
    with pytest.raises(ModelError, match="has no attention output"):
        attention_scores(model, np.ones((1, 8), dtype=np.uint8), np.array([8]))
