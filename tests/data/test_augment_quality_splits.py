import numpy as np
import torch

from biolens.config import QualityConfig
from biolens.data.alphabets import DNA, PROTEIN
from biolens.data.augment import gc_content, random_reverse_complement, reverse_complement, substitute
from biolens.data.encoding import decode, encode
from biolens.data.quality import longest_run, quality_filter, resolve_quality, summarize
from biolens.data.splits import find_leakage, reverse_complement_np, sequence_keys, stratified_split


def _rc_str(s: str) -> str:
    return s[::-1].translate(str.maketrans("ACGTN", "TGCAN"))


def test_reverse_complement_variable_lengths_torch_and_numpy():
    seqs = ["AACGT", "GGC", "ATTTTN"]
    x, lengths = encode(seqs, DNA)
    table = torch.from_numpy(DNA.complement_table())
    rc = reverse_complement(torch.from_numpy(x).long(), torch.from_numpy(lengths), table)
    assert decode(rc.numpy(), DNA, lengths) == [_rc_str(s) for s in seqs]
    assert (rc.numpy()[1, 3:] == 0).all()  # padding stays on the right
    np.testing.assert_array_equal(reverse_complement_np(x, lengths, DNA), rc.numpy())
    # applying twice is the identity
    rc2 = reverse_complement(rc, torch.from_numpy(lengths), table)
    np.testing.assert_array_equal(rc2.numpy(), x)


def test_random_reverse_complement_probability_extremes():
    x, lengths = encode(["AACG", "GT"], DNA)
    xt, lt = torch.from_numpy(x).long(), torch.from_numpy(lengths)
    table = torch.from_numpy(DNA.complement_table())
    assert torch.equal(random_reverse_complement(xt, lt, table, 0.0), xt)
    assert torch.equal(random_reverse_complement(xt, lt, table, 1.0), reverse_complement(xt, lt, table))


def test_substitute_changes_only_symbols_and_at_rate():
    x, _ = encode(["ACGT" * 500 + "NN"] + ["A" * 100], DNA)
    xt = torch.from_numpy(x).long()
    g = torch.Generator().manual_seed(0)
    out = substitute(xt, 0.1, 4, g)
    changed = out != xt
    assert not changed[xt == 0].any() and not changed[xt == 5].any()  # padding and N untouched
    rate = changed[(xt >= 1) & (xt <= 4)].float().mean().item()
    assert 0.08 < rate < 0.12
    assert ((out >= 0) & (out <= 5)).all()
    assert torch.equal(substitute(xt, 0.0, 4), xt)


def test_gc_content():
    x, _ = encode(["GGCC", "ATAT", "GCAT", "NNNN"], DNA)
    np.testing.assert_allclose(gc_content(torch.from_numpy(x), DNA).numpy(), [1.0, 0.0, 0.5, 0.5])


def test_quality_filter_reasons_in_order():
    seqs = ["", "ACGTNNNNNN", "A" * 25 + "CGTACGT", "ACACACACACACACACACAC", "ACGTTGCAAGCTTCGA"]
    x, lengths = encode(seqs, DNA)
    raw = np.array([len(s) for s in seqs])
    cfg = resolve_quality(QualityConfig(min_complexity=0.6), DNA)
    reasons = quality_filter(x, raw, DNA, cfg)
    assert list(reasons) == ["too_short", "too_many_unknown", "homopolymer", "low_complexity", ""]
    assert summarize(reasons) == {"too_short": 1, "too_many_unknown": 1, "homopolymer": 1, "low_complexity": 1,
                                  "dropped": 4, "kept": 1}


def test_quality_defaults_depend_on_alphabet():
    assert resolve_quality(QualityConfig(), DNA).max_homopolymer == 20
    assert resolve_quality(QualityConfig(), PROTEIN).max_homopolymer is None
    assert resolve_quality(QualityConfig(max_homopolymer=5), PROTEIN).max_homopolymer == 5


def test_longest_run():
    x, lengths = encode(["AAAC", "ACGT", "GGGGG"], DNA)
    np.testing.assert_array_equal(longest_run(x, lengths), [3, 1, 5])


def test_leakage_detects_exact_and_reverse_complement():
    seqs = ["AACCGGTTA", "ACGTTTGCA", "AACCGGTTA", _rc_str("ACGTTTGCA"), "GGGAAACCC"]
    split = np.array(["train", "train", "val", "test", "test"])
    x, lengths = encode(seqs, DNA)
    exact, canonical = sequence_keys(x, lengths, DNA)
    report = find_leakage(exact, canonical, split, check_rc=True)
    assert report["val_in_train"] == {"exact": 1, "reverse_complement": 0}
    assert report["test_in_train_or_val"] == {"exact": 0, "reverse_complement": 1}
    np.testing.assert_array_equal(report["_mask"], [False, False, True, True, False])


def test_stratified_split_keeps_groups_together_and_is_seeded():
    rng = np.random.default_rng(0)
    labels = np.array(["a", "b"] * 100)
    groups = rng.integers(0, 150, size=200)
    groups = np.where(labels == "a", groups * 2, groups * 2 + 1)  # groups never span labels
    s1 = stratified_split(labels, groups, 0.1, 0.1, seed=3)
    s2 = stratified_split(labels, groups, 0.1, 0.1, seed=3)
    np.testing.assert_array_equal(s1, s2)
    for g in np.unique(groups):
        assert len(set(s1[groups == g])) == 1
    assert set(s1) == {"train", "val", "test"}
    assert (s1 == "test").sum() > 10
