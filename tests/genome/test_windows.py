"""Intervals on a genome as training data: windows on both strands, drops, negatives, chromosome splits, errors."""

from __future__ import annotations

import numpy as np
import pytest

from biolens.config import DataConfig
from biolens.data.negatives import dinucleotide_shuffle, gc_fraction
from biolens.data.prepare import prepare_sequences
from biolens.data.windows import interval_windows
from biolens.errors import ConfigError, DataError
from tests.genome.conftest import write_genome

COMP = str.maketrans("ACGT", "TGCA")


def rc(s: str) -> str:
    return s[::-1].translate(COMP)


def random_dna(n: int, seed: int, gc: float = 0.5) -> str:
    rng = np.random.default_rng(seed)
    p = [(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2]
    return "".join(rng.choice(list("ACGT"), size=n, p=p))


@pytest.fixture
def genome(tmp_path):
    seqs = {f"chr{i}": random_dna(3000, i) for i in range(1, 5)}
    return write_genome(tmp_path / "g.fa.gz", seqs), seqs


def bed(path, lines):
    path.write_text("".join("\t".join(map(str, ln)) + "\n" for ln in lines))
    return str(path)


def cfg(path, genome, **intervals):
    return DataConfig(path=path, genome=str(genome), intervals=intervals)


def test_windows_on_both_strands_match_a_hand_cut_sequence(tmp_path, genome):
    fa, seqs = genome
    a = bed(tmp_path / "a.bed", [("chr1", 100, 120, "p", 0, "+"), ("chr1", 300, 320, "q", 0, "-"),
                                 ("chr2", 50, 58, "r", 0, ".")])
    b = bed(tmp_path / "b.bed", [("chr3", 1000, 1010, "s", 0, "+"), ("chr3", 2000, 2010, "t", 0, "-"),
                                 ("chr4", 10, 20, "u", 0, ".")])
    split = {"val_chroms": ["chr3"], "test_chroms": ["chr4"]}
    ws = interval_windows(DataConfig(path=[f"bound={a}", f"unbound={b}"], genome=str(fa),
                                     intervals={"window": 10, **split}))
    recs = ws.records
    assert recs.ids[:3] == ["chr1:105-115(+)", "chr1:305-315(-)", "chr2:49-59(+)"]
    assert recs.seqs[0] == seqs["chr1"][105:115]
    assert recs.seqs[1] == rc(seqs["chr1"][305:315])  # minus strand: reverse complement
    assert recs.seqs[2] == seqs["chr2"][49:59]  # '.': as on the genome
    assert recs.seqs[4] == rc(seqs["chr3"][2000:2010])
    assert recs.labels == ["bound"] * 3 + ["unbound"] * 3
    assert recs.sources[1] == f"{a}:2" and recs.sources[3] == f"{b}:1"
    assert ws.stranded  # both strands occur: strand-specific data
    no_window = interval_windows(DataConfig(path=[f"bound={a}", f"unbound={b}"], genome=str(fa), intervals=split))
    assert no_window.records.seqs[1] == rc(seqs["chr1"][300:320])  # the interval as it is
    ignore = interval_windows(DataConfig(path=[f"bound={a}", f"unbound={b}"], genome=str(fa),
                                         intervals={"window": 10, "ignore_strand": True, **split}))
    assert ignore.records.seqs[1] == seqs["chr1"][305:315] and not ignore.stranded


def test_summit_centring_and_left_out_windows(tmp_path, genome):
    fa, seqs = genome
    peaks = tmp_path / "p.narrowPeak"
    peaks.write_text("chr1\t100\t300\tp1\t1\t.\t1\t1\t1\t20\n"  # summit 120 → window 110-130
                     "chr1\t0\t10\tp2\t1\t.\t1\t1\t1\t-1\n"  # middle 5 → -5..15: past the contig start
                     "chr2\t500\t540\tp3\t1\t.\t1\t1\t1\t5\n"  # summit 505 → blacklisted
                     "chr2\t900\t940\tp4\t1\t.\t1\t1\t1\t5\n"
                     + "".join(f"chr3\t{s}\t{s + 30}\tq\t1\t.\t1\t1\t1\t-1\n" for s in range(100, 2000, 100)))
    black = bed(tmp_path / "black.bed", [("chr2", 490, 500), ("chrUn", 0, 10)])
    prepared = prepare_sequences(cfg(str(peaks), fa, window=20, blacklist=black, negatives="shuffled"), seed=0)
    rep = prepared.report["intervals"]
    assert rep["positives"] == 2 + 19 and rep["dropped"] == {"past a contig end": 1, "blacklisted": 1}
    reasons = {f["location"]: f["reason"] for f in prepared.filtered}
    assert "past the contig end" in reasons[f"{peaks}:2"] and "blacklisted" in reasons[f"{peaks}:3"]
    ids = {i for s in prepared.splits.values() for i in s.ids}
    assert "chr1:110-130(+)" in ids and "chr2:895-915(+)" in ids
    middle = interval_windows(cfg(str(peaks), fa, window=20, center="middle", negatives="shuffled"))
    assert "chr1:190-210(+)" in middle.records.ids


def test_chromosome_splits_put_every_window_and_its_negatives_on_their_contigs(tmp_path, genome):
    fa, _ = genome
    rng = np.random.default_rng(0)
    lines = [(f"chr{c}", s, s + 40) for c in range(1, 5) for s in sorted(rng.choice(np.arange(100, 2800, 90), 12,
                                                                                       replace=False))]
    p = prepare_sequences(cfg(bed(tmp_path / "p.bed", lines), fa, window=40, negatives="gc-matched",
                              val_chroms=["chr3"], test_chroms=["chr4"]), seed=1)
    for split, contigs in (("train", {"chr1", "chr2"}), ("val", {"chr3"}), ("test", {"chr4"})):
        part = p.splits[split]
        assert {i.split(":")[0] for i in part.ids} == contigs
        assert np.bincount(part.y, minlength=2).tolist() == [12 * len(contigs)] * 2  # negatives from the same contigs
    assert p.report["intervals"]["splits"]["by"] == "chromosome"
    only_test = prepare_sequences(cfg(bed(tmp_path / "p.bed", lines), fa, window=40, negatives="gc-matched",
                                      test_chroms=["chr4"]), seed=1)
    assert {i.split(":")[0] for i in only_test.splits["test"].ids} == {"chr4"}
    assert "chr4" not in {i.split(":")[0] for s in ("train", "val") for i in only_test.splits[s].ids}
    assert only_test.report["intervals"]["splits"]["by"] == "chromosome + seed"


def test_seeded_split_keeps_overlapping_windows_together(tmp_path, genome):
    fa, _ = genome
    chains = [(f"chr{c}", s + 15 * k, s + 15 * k + 30) for c in (1, 2) for s in range(100, 2800, 300) for k in range(3)]
    ws = interval_windows(cfg(bed(tmp_path / "p.bed", chains), fa, negatives="flanks"), seed=3)
    contig, start, end = ws.coords
    for i in range(len(start)):  # every window overlapping another lies in the same split
        other = (contig == contig[i]) & (start < end[i]) & (end > start[i])
        assert set(ws.split[other]) == {ws.split[i]}
    prepared = prepare_sequences(cfg(bed(tmp_path / "p.bed", chains), fa, negatives="flanks"), seed=3)
    leak = prepared.report["leakage"]
    assert leak["val_in_train"]["overlapping_interval"] == 0 == leak["test_in_train_or_val"]["overlapping_interval"]
    assert prepared.genome["contigs"]["chr1"] == 3000 and len(prepared.genome["checksum"]) == 64
    assert prepared.positive_class == "positive"


def test_gc_matched_negatives_follow_the_positives_gc(tmp_path):
    gc_rich, at_rich = random_dna(20000, 1, gc=0.7), random_dna(20000, 2, gc=0.3)
    fa = write_genome(tmp_path / "g.fa", {"chr1": gc_rich + at_rich})
    lines = [("chr1", s, s + 100) for s in range(200, 19000, 400)]  # positives only in the GC-rich half
    p = prepare_sequences(cfg(bed(tmp_path / "p.bed", lines), fa, window=100, negatives="gc-matched"), seed=0)
    neg = p.report["intervals"]["negatives"]
    assert neg["drawn"] == neg["requested"] == len(lines)
    assert abs(neg["gc_negatives"] - neg["gc_positives"]) < 0.02 and neg["gc_positives"] > 0.65
    x = np.concatenate([p.splits[s].x for s in ("train", "val", "test")])
    y = np.concatenate([p.splits[s].y for s in ("train", "val", "test")])
    neg_gc, pos_gc = gc_fraction(x[y == 0]), gc_fraction(x[y == 1])
    assert abs(np.median(neg_gc) - np.median(pos_gc)) < 0.02  # the distribution, not only the mean
    ws = interval_windows(cfg(bed(tmp_path / "p.bed", lines), fa, window=100, negatives="gc-matched"), seed=0)
    contig, start, end = ws.coords
    is_neg = np.array(ws.records.labels) == "negative"
    for s, e in zip(start[is_neg], end[is_neg]):  # clear of every positive
        assert not ((start[~is_neg] < e) & (end[~is_neg] > s)).any()


def test_negatives_are_seeded(tmp_path, genome):
    fa, _ = genome
    path = bed(tmp_path / "p.bed", [("chr1", s, s + 50) for s in range(100, 2900, 200)])
    a = interval_windows(cfg(path, fa, window=50, negatives="gc-matched"), seed=5).records.ids
    b = interval_windows(cfg(path, fa, window=50, negatives="gc-matched"), seed=5).records.ids
    c = interval_windows(cfg(path, fa, window=50, negatives="gc-matched"), seed=6).records.ids
    assert a == b and a != c


def test_shuffled_and_flank_negatives(tmp_path, genome):
    fa, seqs = genome
    path = bed(tmp_path / "p.bed", [("chr2", s, s + 60) for s in range(200, 2800, 300)])
    ws = interval_windows(cfg(path, fa, negatives="shuffled", negative_ratio=2), seed=0)
    recs = ws.records
    pos = {i: s for i, s, lab in zip(recs.ids, recs.seqs, recs.labels) if lab == "positive"}
    shuffled = [(i, s) for i, s, lab in zip(recs.ids, recs.seqs, recs.labels) if lab == "negative"]
    assert len(shuffled) == 2 * len(pos)
    for i, s in shuffled:
        src = pos[i.rsplit(":shuffled", 1)[0]]
        pairs = lambda t: sorted(t[k:k + 2] for k in range(len(t) - 1))  # noqa: E731
        assert pairs(s) == pairs(src) and s[0] == src[0] and s[-1] == src[-1]
    flanks = interval_windows(cfg(path, fa, negatives="flanks", flank_distance=5), seed=0)
    contig, start, end = flanks.coords
    is_neg = np.array(flanks.records.labels) == "negative"
    assert is_neg.sum() == (~is_neg).sum()
    for s, e in zip(start[is_neg], end[is_neg]):
        assert e - s == 60
        assert (np.isin(s - 5, end[~is_neg]) or np.isin(e + 5, start[~is_neg]))  # beside a positive, 5 bp away
        assert not ((start[~is_neg] < e) & (end[~is_neg] > s)).any()
    rows = [i for i, lab in enumerate(flanks.records.labels) if lab == "negative"]
    c, s0 = flanks.records.ids[rows[0]].split(":")[0], int(start[rows[0]])
    assert flanks.records.seqs[rows[0]] == seqs[c][s0:s0 + 60]


def test_dinucleotide_shuffle_keeps_counts_and_ends():
    rng = np.random.default_rng(0)
    x = rng.integers(1, 6, (50, 40)).astype(np.uint8)
    lengths = rng.integers(1, 41, 50)
    x[np.arange(40)[None, :] >= lengths[:, None]] = 0
    y = dinucleotide_shuffle(x, lengths, np.random.default_rng(1))
    def counts(r: np.ndarray, n: int) -> np.ndarray:
        return np.bincount(r[:n - 1].astype(int) * 6 + r[1:n], minlength=36)

    for row_x, row_y, n in zip(x, y, lengths):
        assert (counts(row_x, n) == counts(row_y, n)).all() and row_x[0] == row_y[0] and row_x[n - 1] == row_y[n - 1]
        assert (row_y[n:] == 0).all()
    assert (x != y).any()


def test_strands_set_the_default_reverse_complement_augmentation(tmp_path, genome):
    fa, _ = genome
    both = bed(tmp_path / "b.bed", [("chr1", s, s + 30, "x", 0, "+-"[k % 2])
                                    for k, s in enumerate(range(100, 2900, 100))])
    none = bed(tmp_path / "n.bed", [("chr1", s, s + 30, "x", 0, ".") for s in range(100, 2900, 100)])
    stranded = prepare_sequences(cfg(both, fa, negatives="shuffled"), seed=0)
    plain = prepare_sequences(cfg(none, fa, negatives="shuffled"), seed=0)
    assert stranded.config.augment.reverse_complement is False
    assert plain.config.augment.reverse_complement is True


def test_errors_name_the_line_or_field(tmp_path, genome):
    fa, _ = genome
    path = bed(tmp_path / "p.bed", [("chr1", 100, 200), ("Chromosome9", 5, 50)]
               + [("chr2", s, s + 50) for s in range(100, 2000, 100)])
    with pytest.raises(DataError, match=r"p\.bed:2: contig 'Chromosome9' is not in the genome .*"
                                        r"data\.intervals\.chrom_aliases\.Chromosome9=NAME"):
        interval_windows(cfg(path, fa, negatives="shuffled"))
    ok = interval_windows(cfg(path, fa, negatives="shuffled", chrom_aliases={"Chromosome9": "chr4"}))
    assert ok.records.ids[1] == "chr4:5-50(+)"
    single = bed(tmp_path / "s.bed", [("chr1", 100, 200)])
    with pytest.raises(DataError, match="every interval is of one class.*data.intervals.negatives"):
        interval_windows(cfg(single, fa))
    with pytest.raises(ConfigError, match="set data.intervals.window=N.*negatives=gc-matched"):
        interval_windows(cfg(single, fa, negatives="gc-matched"))
    with pytest.raises(ConfigError, match="data.val is for sequence files"):
        interval_windows(DataConfig(path=single, genome=str(fa), val=single))
    with pytest.raises(ConfigError, match="both name chr2"):
        interval_windows(cfg(single, fa, val_chroms=["chr2"], test_chroms=["chr2"]))
    with pytest.raises(ConfigError, match="test_chroms: contig 'chr9' is not in the genome"):
        interval_windows(cfg(single, fa, negatives="shuffled", test_chroms=["chr9"]))
    with pytest.raises(ConfigError, match="data.intervals options need data.genome"):
        prepare_sequences(DataConfig(path=single, intervals={"window": 100}))
