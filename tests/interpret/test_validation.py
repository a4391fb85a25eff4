"""The issue's "Done when" for sequences: on planted-TATAAA DNA the explanations find the planted motif.

Measured percentages are logged (``-s`` or ``-o log_cli=true`` shows them) and asserted at >= 90%.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from biolens.data.alphabets import DNA
from biolens.interpret.attention import attention_scores, find_regions, top_windows
from biolens.interpret.attributions import attribute, position_scores
from biolens.interpret.ism import ism_batch, ism_importance
from biolens.interpret.motifs import enrichment, load_motifs, scan
from tests.interpret.helpers import one_thread, overlaps

pytestmark = pytest.mark.slow  # ~10 s: trains two small models once per session
log = logging.getLogger(__name__)
WINDOW = 10


def _logits(model, x):  # noqa: ANN001, ANN202
    import torch

    with torch.no_grad():
        return model(torch.as_tensor(x)).numpy()


def _correct_positives(model, data):  # noqa: ANN001, ANN202
    pred = _logits(model, data.x).argmax(axis=1)
    return (data.y == 1) & (pred == 1)


def _overlap_rate(scores: np.ndarray, data, keep: np.ndarray) -> float:  # noqa: ANN001
    starts, _ = top_windows(scores, data.lengths, WINDOW)
    hit = overlaps(starts, np.minimum(starts + WINDOW, data.lengths), data.starts)
    return float(hit[keep].mean())


def test_attention_top_window_finds_tata(attention_model, held_out) -> None:  # noqa: ANN001
    keep = _correct_positives(attention_model, held_out)
    assert keep.sum() >= 50  # the model learned the task
    _, _, scores = attention_scores(attention_model, held_out.x, held_out.lengths)
    rate = _overlap_rate(scores, held_out, keep)
    log.info("attention: top %d-bp window overlaps TATAAA in %.1f%% of %d correct positives", WINDOW, 100 * rate,
             keep.sum())
    assert rate >= 0.9


@pytest.fixture(scope="module")
def cnn_explanations(cnn_model, held_out):  # noqa: ANN001, ANN201
    sub = slice(0, 60)  # ISM on 60 sequences: 60 x 60 x 4 mutants
    x, lengths = held_out.x[sub], held_out.lengths[sub]
    targets = np.ones(len(x), dtype=np.int64)  # explain the promoter class
    with one_thread():
        effects = ism_batch(cnn_model, x, lengths, targets, 4)
        ig = attribute(cnn_model, held_out.x, np.ones(len(held_out.x), dtype=np.int64), "ig", DNA.vocab_size, 4)
    return effects, ism_importance(effects, x, 4), position_scores(ig, held_out.x, "ig")


def test_ism_and_ig_top_window_find_tata(cnn_model, held_out, cnn_explanations) -> None:  # noqa: ANN001
    _, ism_scores, ig_scores = cnn_explanations
    keep = _correct_positives(cnn_model, held_out)
    assert keep.sum() >= 45
    ig_rate = _overlap_rate(ig_scores, held_out, keep)
    n = len(ism_scores)
    sub = type(held_out)(held_out.x[:n], held_out.lengths[:n], held_out.seqs[:n], held_out.y[:n], held_out.starts[:n])
    ism_rate = _overlap_rate(ism_scores, sub, keep[:n])
    log.info("ISM: %.1f%% of %d; IG: %.1f%% of %d correct positives", 100 * ism_rate, keep[:n].sum(), 100 * ig_rate,
             keep.sum())
    assert ism_rate >= 0.9 and ig_rate >= 0.9


def test_ism_agrees_in_sign_with_ig_on_planted_positions(cnn_model, held_out, cnn_explanations) -> None:  # noqa: ANN001
    _, ism_scores, ig_scores = cnn_explanations
    n = len(ism_scores)
    keep = np.flatnonzero(_correct_positives(cnn_model, held_out)[:n])
    pos = held_out.starts[keep, None] + np.arange(6)[None, :]  # (K, 6) planted positions
    a, b = ism_scores[keep[:, None], pos], ig_scores[keep[:, None], pos]
    agree = float((np.sign(a) == np.sign(b)).mean())
    log.info("ISM and IG agree in sign on %.1f%% of %d planted positions", 100 * agree, a.size)
    assert agree >= 0.9
    assert (a > 0).mean() >= 0.9  # and both say the planted bases support the promoter class


@pytest.mark.parametrize("method", ["attention", "ig"])
def test_enrichment_flags_tata_not_caat(method, attention_model, held_out, cnn_explanations) -> None:  # noqa: ANN001
    if method == "attention":
        _, _, scores = attention_scores(attention_model, held_out.x, held_out.lengths)
    else:
        scores = cnn_explanations[2]
    covered = np.zeros(held_out.x.shape, dtype=bool)
    for r in find_regions(scores, held_out.lengths, "mean+std", stride=2 if method == "attention" else 1):
        covered[r.index, r.start:r.end] = True
    motifs = load_motifs([])
    hits = scan(motifs, held_out.x, held_out.lengths, DNA, [f"s{i}" for i in range(len(held_out.x))])
    table = enrichment(hits, covered, held_out.lengths, motifs, n_perm=2000).set_index("motif")
    log.info("%s enrichment:\n%s", method, table.to_string())
    assert bool(table.loc["TATA_box", "significant"]) and table.loc["TATA_box", "p_value"] < 0.01
    assert table.loc["CAAT_box", "hits"] > 0  # present by chance ...
    assert not bool(table.loc["CAAT_box", "significant"])  # ... but not enriched
    assert isinstance(table, pd.DataFrame)
