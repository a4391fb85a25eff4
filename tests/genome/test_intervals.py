"""BED/narrowPeak reading (file:line errors) and interval arithmetic: overlaps, clusters, overlap leakage."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from biolens.data.intervals import overlap_clusters, overlap_leakage, overlaps_any, read_bed
from biolens.data.splits import find_leakage
from biolens.errors import DataError


def test_bed_and_narrowpeak_columns(tmp_path):
    bed = tmp_path / "x.bed"
    bed.write_text("track name=x\n# comment\nbrowser position chr1\nchr1\t10\t20\tp1\t5\t-\n\nchr2\t0\t5\tp2\t1\t+\n")
    iv = read_bed(bed)
    assert iv.contig.tolist() == ["chr1", "chr2"] and iv.start.tolist() == [10, 0] and iv.end.tolist() == [20, 5]
    assert iv.strand.tolist() == ["-", "+"] and iv.name.tolist() == ["p1", "p2"]
    assert iv.locate(1) == f"{bed}:6" and not iv.narrowpeak and iv.summit.tolist() == [-1, -1]
    peak = tmp_path / "x.narrowPeak.gz"
    peak.write_bytes(gzip.compress(b"chrX\t100\t300\tpk\t9\t.\t2.0\t3.0\t4.0\t25\nchrX\t400\t500\tpk2\t9\t.\t2\t3\t4\t-1\n"))
    np_iv = read_bed(peak)
    assert np_iv.narrowpeak and np_iv.summit.tolist() == [125, -1]  # start + offset; -1 = no summit
    three = tmp_path / "three.bed"
    three.write_text("c 1 2\n")  # space-separated BED3 is read too
    assert read_bed(three).strand.tolist() == ["."]


@pytest.mark.parametrize("line, message", [
    ("chr1\tten\t20\t.\t0\t+", r"x\.bed:2: start 'ten' is not an integer"),
    ("chr1\t20\t20\t.\t0\t+", r"x\.bed:2: end 20 is not after start 20"),
    ("chr1\t-5\t20\t.\t0\t+", r"x\.bed:2: start '-5' is not an integer >= 0"),
    ("chr1\t5", r"x\.bed:2: 2 column\(s\)"),
    ("chr1\t5\t9", r"x\.bed:2: 3 columns but the first line \(.*x\.bed:1\) has 6"),
    ("chr1\t5\t9\tn\t0\tx", r"x\.bed:2: strand 'x'"),
])
def test_bad_lines_name_file_and_line(tmp_path, line, message):
    bed = tmp_path / "x.bed"
    bed.write_text(f"chr1\t1\t2\t.\t0\t+\n{line}\n")
    with pytest.raises(DataError, match=message):
        read_bed(bed)


def test_label_column_must_exist_and_empty_file_is_refused(tmp_path):
    bed = tmp_path / "x.bed"
    bed.write_text("chr1\t1\t2\ta\n")
    with pytest.raises(DataError, match="label_column=6 but the file has 4"):
        read_bed(bed, label_col=6)
    (tmp_path / "empty.bed").write_text("# only a comment\n")
    with pytest.raises(DataError, match="no intervals"):
        read_bed(tmp_path / "empty.bed")


def test_overlaps_and_clusters_by_hand():
    contig = np.array([0, 0, 0, 1, 0])
    start = np.array([0, 5, 20, 5, 9])
    end = np.array([10, 8, 30, 8, 21])
    # 0-10 and 5-8 overlap; 9-21 links 0-10 with 20-30; contig 1 is separate
    ids = overlap_clusters(contig, start, end)
    assert ids[0] == ids[1] == ids[2] == ids[4] and ids[3] != ids[0]
    assert len(set(overlap_clusters(contig, np.array([0, 10, 20, 5, 40]), np.array([10, 20, 30, 8, 50])))) == 5
    hit = overlaps_any(np.array([0, 0, 1, 0]), np.array([10, 29, 0, 30]), np.array([12, 31, 5, 35]),
                       np.array([0, 0]), np.array([0, 20]), np.array([10, 30]))
    assert hit.tolist() == [False, True, False, False]  # half-open: 10-12 touches 0-10 but shares no base


def test_overlap_leakage_adds_to_the_sequence_report():
    split = np.array(["train", "train", "val", "val", "test", "test"])
    exact = np.array([0, 1, 0, 2, 3, 4])  # row 2 is an exact duplicate of row 0 (counted once, as exact)
    leak = find_leakage(exact, exact, split, check_rc=False)
    contig = np.zeros(6, dtype=np.int64)
    start = np.array([0, 100, 0, 105, 150, 500])
    end = start + 20
    overlap_leakage(leak, contig, start, end, split)
    assert leak["val_in_train"] == {"exact": 1, "overlapping_interval": 1}  # row 3 overlaps row 1
    assert leak["test_in_train_or_val"] == {"exact": 0, "overlapping_interval": 0}
    assert leak["_mask"].tolist() == [False, False, True, True, False, False]


def test_the_pre_training_checklist_counts_overlapping_windows():
    from biolens.findings import Report
    from biolens.training.checklist import _splits

    split = np.array(["train"] * 4 + ["val"] * 2 + ["test"] * 2)
    keys = np.arange(8)  # no sequence duplicates at all
    leak = find_leakage(keys, keys, split, check_rc=True)
    start = np.array([0, 100, 200, 300, 10, 110, 310, 2000])  # val rows overlap train rows 0, 1; test row 6 row 3
    overlap_leakage(leak, np.zeros(8, dtype=np.int64), start, start + 50, split)
    leak.pop("_mask")

    class Task:
        leakage_fix = "set data.dedup=true to drop them from val/test"

        def leakage(self):
            return leak

        def report(self):
            return {}

        def size(self, s):
            return int((split == s).sum())

    report = Report("checklist", "x")
    _splits(Task(), report)
    finding = report.findings[0]
    assert finding.status == "fail" and "100% of val" in finding.detail  # every val window overlaps train
    assert leak["val_in_train"]["overlapping_interval"] == 2
    assert leak["test_in_train_or_val"]["overlapping_interval"] == 1
