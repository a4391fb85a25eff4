"""Plain baselines next to the deep model: vectorized k-mer counts, the k-mer logistic regression on a run's own
splits, a BiGRU trained like the run, and the report's Baselines table."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from itertools import product

import numpy as np
import pytest

from biolens.bundle import verify_bundle
from biolens.config import DataConfig
from biolens.data.alphabets import DNA
from biolens.data.encoding import encode
from biolens.data.prepare import prepare_sequences
from biolens.evaluation.baselines import kmer_counts, kmer_features, kmer_logistic_regression
from biolens.workflows.baselines import run_baselines


def test_kmer_counts_match_counting_by_hand():
    seqs = ["ACGTACGNAC", "AAAA", "GT", "T"]
    x, _ = encode(seqs, DNA, max_len=12)
    for k in (1, 2, 3):
        counts = kmer_counts(x, 4, k)
        names = ["".join(p) for p in product("ACGT", repeat=k)]
        for row, s in enumerate(seqs):
            want = Counter(s[i:i + k] for i in range(len(s) - k + 1) if "N" not in s[i:i + k])
            assert {n: int(c) for n, c in zip(names, counts[row]) if c} == dict(want)


def test_kmer_logistic_regression_finds_a_planted_motif(planted_csv):
    data = prepare_sequences(DataConfig(path=str(planted_csv)))
    feats = kmer_features(data.splits["train"])
    assert feats.shape == (len(data.splits["train"]), 4 + 16 + 64 + 256)
    np.testing.assert_allclose(feats[:, :4].sum(1), 1.0, rtol=1e-5)  # frequencies per k
    out = kmer_logistic_regression(data.splits, data.class_names, data.positive_class)
    assert out["name"] == "kmer_logreg" and out["C"] in (0.01, 0.1, 1.0, 10.0)
    assert out["test"]["accuracy"] > 0.8 and out["test"]["n"] == len(data.splits["test"])


def test_protein_uses_amino_acid_pairs():
    data = prepare_sequences(DataConfig(path="builtin:hem_hemopi"))
    out = kmer_logistic_regression(data.splits, data.class_names, data.positive_class)
    assert out["features"] == 20 + 400 and out["test"]["accuracy"] > 0.6


@pytest.mark.slow
def test_run_baselines_and_report_table(trained_run, tmp_path):
    from biolens.workflows.report import build_report

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    saved = run_baselines(run, kmer=True, bigru=True)
    assert [b["name"] for b in saved["baselines"]] == ["kmer_logreg", "bigru"]
    assert saved["test_n"] == saved["baselines"][0]["test"]["n"] == saved["baselines"][1]["test"]["n"]
    verify_bundle(run)  # baselines.json is part of the bundle now
    again = run_baselines(run, kmer=True, bigru=True)  # nothing missing: nothing refitted
    assert again == json.loads((run / "baselines.json").read_text())
    _, md = build_report(run, n_resamples=20)
    text = md.read_text()
    section = text[text.index("## Baselines"):text.index("## Data")]
    assert "dilated_resnet (this run)" in section and "| kmer_logreg |" in section and "| bigru |" in section
    assert "accuracy points from the best baseline" in section
    verify_bundle(run)
