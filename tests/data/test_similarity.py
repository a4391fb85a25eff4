"""MinHash similarity groups, grouped splits and folds, split assignments, perceptual hashes."""

import numpy as np
import pandas as pd
import pytest

from biolens.config import DataConfig
from biolens.data.alphabets import get_alphabet
from biolens.data.encoding import encode
from biolens.data.images.phash import dhash, near_matches
from biolens.data.prepare import prepare_sequences
from biolens.data.similarity import identity_to_jaccard, merge_groups, minhash, similar_pairs, similarity_groups
from biolens.data.splits import grouped_folds, inner_val, read_assignment, write_assignment
from biolens.errors import DataError
from tests.conftest import write_csv

AA = list("ACDEFGHIKLMNPQRSTVWY")


def _mutate(seq: str, n: int, rng: np.random.Generator, letters: list[str]) -> str:
    s = list(seq)
    for i in rng.choice(len(s), n, replace=False):
        s[i] = rng.choice([c for c in letters if c != s[i]])
    return "".join(s)


def test_minhash_links_near_homologs_and_not_distant_ones():
    rng = np.random.default_rng(0)
    base = ["".join(rng.choice(AA, 120)) for _ in range(60)]
    seqs = [s for b in base for s in (b, _mutate(b, 6, rng, AA), _mutate(b, 60, rng, AA))]  # 95% and 50% identity
    alpha = get_alphabet("protein")
    x, lengths = encode(seqs, alpha, 120)
    groups, pairs = similarity_groups(x, lengths, alpha, 0.8, 5, both_strands=False)
    g = groups.reshape(-1, 3)
    assert (g[:, 0] == g[:, 1]).all()  # 95 % identity: one group
    assert (g[:, 0] != g[:, 2]).all()  # 50 % identity: not
    assert len(np.unique(g[:, 0])) == 60
    assert identity_to_jaccard(1.0, 5) == 1.0 and 0 < identity_to_jaccard(0.8, 5) < 0.25


def test_minhash_sees_both_strands_and_ignores_short_sequences():
    alpha = get_alphabet("dna")
    rng = np.random.default_rng(1)
    s = "".join(rng.choice(list("ACGT"), 80))
    rc = s[::-1].translate(str.maketrans("ACGT", "TGCA"))
    x, lengths = encode([s, rc, "ACG", "ACG"], alpha, 80)
    both = minhash(x, lengths, alpha, 7, both_strands=True)
    assert (both[0] == both[1]).all()  # the same k-mer set on both strands
    one = minhash(x, lengths, alpha, 7, both_strands=False)
    assert (one[0] == one[1]).mean() < 0.5
    pairs = similar_pairs(both, 0.9)
    assert [tuple(p) for p in pairs] == [(0, 1)]  # the two 3-mers (shorter than k) are never linked


def test_merge_groups_is_transitive():
    a = np.array([0, 0, 1, 2, 3])  # rows 0,1 share a label
    b = np.array(["x", "y", "y", "z", "w"])  # rows 1,2 share another
    g = merge_groups(5, [a, b], np.array([[3, 4]]))
    assert g[0] == g[1] == g[2] and g[3] == g[4] and g[0] != g[3]


def test_grouped_folds_keep_groups_whole_and_stratify():
    rng = np.random.default_rng(2)
    groups = np.repeat(np.arange(60), 3)
    labels = np.repeat(rng.integers(0, 2, 60), 3)
    fold = grouped_folds(labels, groups, 5, seed=0)
    frame = pd.DataFrame({"g": groups, "f": fold, "y": labels})
    assert (frame.groupby("g")["f"].nunique() == 1).all()
    assert set(fold) == set(range(5))
    share = frame.groupby("f")["y"].mean()
    assert share.max() - share.min() < 0.25
    assert (grouped_folds(labels, groups, 5, seed=0) == fold).all()  # seeded
    with pytest.raises(DataError, match="3 folds need at least 3 groups"):
        grouped_folds(np.array([0, 1, 0, 1]), np.array([0, 0, 1, 1]), 3, 0)


def test_similarity_split_keeps_near_copies_on_one_side(tmp_path):
    rng = np.random.default_rng(3)
    seqs, labels = [], []
    for i in range(150):
        s = "".join(rng.choice(list("ACGT"), 60))
        seqs += [s, _mutate(s, 3, rng, list("ACGT"))]  # 95 % identical twins
        labels += [("a", "b")[i % 2]] * 2
    data = write_csv(tmp_path / "d.csv", seqs, labels)
    twins = np.arange(len(seqs)) // 2

    def straddling(prep) -> int:
        where = {}
        for split, part in prep.splits.items():
            for i in part.ids:
                where[i] = split
        sides = pd.DataFrame({"twin": twins, "split": [where[f"s{i + 1}"] for i in range(len(seqs))]})
        return int((sides.groupby("twin")["split"].nunique() > 1).sum())

    plain = prepare_sequences(DataConfig(path=str(data)), seed=0)
    assert straddling(plain) > 10  # exact-duplicate grouping alone splits most twins
    similar = prepare_sequences(DataConfig(path=str(data), split={"group_by": "similarity", "max_identity": 0.8}), seed=0)
    assert straddling(similar) == 0
    assert similar.report["grouping"]["similar_pairs"] >= 150
    assert similar.records["group"].nunique() <= 150


def test_group_column_and_assignment(tmp_path):
    rng = np.random.default_rng(4)
    seqs = ["".join(rng.choice(list("ACGT"), 30)) for _ in range(90)]
    labels = [("a", "b")[i % 2] for i in range(90)]
    path = write_csv(tmp_path / "d.csv", seqs, labels)
    frame = pd.read_csv(path)
    frame["patient"] = [f"p{i // 3}" for i in range(90)]
    frame.to_csv(path, index=False)
    prep = prepare_sequences(DataConfig(path=str(path), group_col="patient"), seed=0)
    rec = prep.records
    assert (rec.groupby("group")["split"].nunique() == 1).all()
    assert rec.groupby("group").size().max() >= 3

    assignment = tmp_path / "a.tsv"
    keep = rec.iloc[:60]
    write_assignment(assignment, keep["row"].to_numpy(), keep["id"].to_numpy(),
                     np.array(["train"] * 40 + ["val"] * 10 + ["test"] * 10))
    fixed = prepare_sequences(DataConfig(path=str(path), split={"assignment": str(assignment)}), seed=0)
    assert [len(fixed.splits[s]) for s in ("train", "val", "test")] == [40, 10, 10]
    assert set(fixed.splits["test"].ids) == set(keep["id"].iloc[50:60])

    bad = tmp_path / "bad.tsv"
    write_assignment(bad, np.array([0]), np.array(["not-the-id"]), np.array(["train"]))
    with pytest.raises(DataError, match=r"bad.tsv:2: record 0 is 's1' in the data, not 'not-the-id'"):
        read_assignment(bad, rec["id"].to_numpy())
    with pytest.raises(DataError, match="no column 'nope'"):
        prepare_sequences(DataConfig(path=str(path), group_col="nope"), seed=0)


def test_perceptual_hash_finds_near_copies():
    rng = np.random.default_rng(5)
    imgs = rng.integers(0, 255, (20, 1, 32, 32), dtype=np.uint8)
    imgs = np.repeat(np.repeat(imgs[:, :, ::4, ::4], 4, axis=2), 4, axis=3)  # blocky images, 8×8 structure
    brighter = np.clip(imgs.astype(int) + 10, 0, 255).astype(np.uint8)
    h, hb = dhash(imgs), dhash(brighter)
    assert (near_matches(hb, h)).all()
    others = rng.integers(0, 255, (20, 1, 32, 32), dtype=np.uint8)
    assert near_matches(dhash(others), h).sum() <= 1


def test_inner_val_with_a_rare_class_holds_out_one_record_of_it_per_part():
    labels = np.array(["a"] * 40 + ["b"] * 4)
    groups = np.arange(44)
    val = inner_val(labels, groups, 0.1, seed=0)  # 10 parts would need 10 'b' records: 4 parts instead
    assert (labels[val] == "b").sum() == 1 and 8 <= (labels[val] == "a").sum() <= 12
    plain = inner_val(np.array(["a", "b"] * 50), np.arange(100), 0.1, seed=0)
    assert plain.sum() == 10
