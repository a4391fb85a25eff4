import gzip

import pytest

from biolens.data.readers import read_fasta, read_source, read_table
from biolens.errors import DataError
from tests.conftest import write_csv, write_fasta


def test_fasta_labels_in_header(tmp_path):
    p = write_fasta(tmp_path / "a.fa", ["ACGT", "GGCC"], ["x", "y"])
    r = read_fasta(p)
    assert r.ids == ["s1", "s2"] and r.seqs == ["ACGT", "GGCC"] and r.labels == ["x", "y"]
    assert r.locate(1) == f"{p}:3"


def test_fasta_multiline_and_gzip(tmp_path):
    p = tmp_path / "m.fa.gz"
    with gzip.open(p, "wt") as fh:
        fh.write(">a label=pos split=train\nACGT\nAC\n>b label=neg split=test\nGG\n")
    r = read_source(str(p))
    assert r.seqs == ["ACGTAC", "GG"] and r.labels == ["pos", "neg"] and r.splits == ["train", "test"]


def test_fasta_labels_from_csv(tmp_path):
    fa = write_fasta(tmp_path / "a.fa", ["ACGT", "GGCC"])
    labels = tmp_path / "labels.csv"
    labels.write_text("id,label\ns2,neg\ns1,pos\n")
    assert read_source(str(fa), labels_csv=str(labels)).labels == ["pos", "neg"]


def test_fasta_labels_csv_missing_id(tmp_path):
    fa = write_fasta(tmp_path / "a.fa", ["ACGT", "GGCC"])
    labels = tmp_path / "labels.csv"
    labels.write_text("id,label\ns1,pos\n")
    with pytest.raises(DataError, match=r"a\.fa:3: id 's2' has no label in .*labels\.csv"):
        read_source(str(fa), labels_csv=str(labels))


def test_one_fasta_per_class(tmp_path):
    pos = write_fasta(tmp_path / "pos.fa", ["ACGT", "AAAA"])
    neg = write_fasta(tmp_path / "neg.fa.gz", ["GGGG"], gz=True)
    r = read_source([f"promoter={pos}", f"other={neg}"])
    assert r.labels == ["promoter", "promoter", "other"]
    assert r.locate(2) == f"{neg}:1"


@pytest.mark.parametrize("name,sep", [("d.csv", ","), ("d.tsv", "\t"), ("d.csv.gz", ","), ("d.tsv.gz", "\t")])
def test_tables(tmp_path, name, sep):
    p = write_csv(tmp_path / name, ["ACGT", "GG"], ["a", "b"], sep=sep, seq_col="seq", label_col="cls")
    r = read_table(p, seq_col="seq", label_col="cls")
    assert r.seqs == ["ACGT", "GG"] and r.labels == ["a", "b"] and r.ids == ["s1", "s2"]
    assert r.locate(1) == f"{p}:3"


def test_table_missing_column_names_columns(tmp_path):
    p = write_csv(tmp_path / "d.csv", ["ACGT"], ["a"])
    with pytest.raises(DataError, match=r"no column 'seq' \(columns: id, sequence, label\); set data.seq_col=NAME"):
        read_table(p, seq_col="seq")


def test_a_table_of_image_files_read_as_sequences_says_how_to_read_it_as_a_manifest(tmp_path):
    p = tmp_path / "m.csv"
    p.write_text("image,label\nscans/a.PNG,x\nscans/b.dcm,y\n")
    with pytest.raises(DataError, match=r"no column 'sequence' \(columns: image, label\); column 'image' holds image "
                                        r"files: for an image manifest, rename it to 'path' or set "
                                        r"data.image.path_col=image \(--set data.image.path_col=image\)"):
        read_table(p)
    p.write_text("image,label\nscans/a.png,x\nnotes.txt,y\n")  # not every value an image: the plain advice
    with pytest.raises(DataError, match=r"\(columns: image, label\); set data.seq_col=NAME$"):
        read_table(p)


def test_table_bad_split_value(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("sequence,label,split\nACGT,a,train\nACGT,b,training\n")
    with pytest.raises(DataError, match=r"d\.csv:3: split='training'; expected one of train, val, test"):
        read_table(p)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_source(str(tmp_path / "nope.fa"))
    (tmp_path / "empty.fa").write_text("")
    with pytest.raises(DataError, match="is empty"):
        read_source(str(tmp_path / "empty.fa"))
    with gzip.open(tmp_path / "empty.fa.gz", "wt"):
        pass
    with pytest.raises(DataError, match="empty after decompression"):
        read_source(str(tmp_path / "empty.fa.gz"))


def test_fasta_without_records(tmp_path):
    p = tmp_path / "x.fa"
    p.write_text("this is not fasta\n")
    with pytest.raises(DataError, match="no FASTA records found"):
        read_source(str(p))


def test_fasta_header_without_label(tmp_path):
    p = tmp_path / "x.fa"
    p.write_text(">a label=pos\nACGT\n>b\nGGCC\n")
    with pytest.raises(DataError, match=r"x\.fa:3: header '>b' has no label"):
        read_source(str(p))
    p.write_text(">a\nACGT\n>b\nGGCC\n")
    with pytest.raises(DataError, match=r"x\.fa:1: header '>a' has no label; add ' label=CLASS'"):
        read_source(str(p))


def test_iter_chunks_streams_tables_and_fasta_with_correct_lines(tmp_path):
    from biolens.data.readers import iter_chunks

    seqs = [f"ACGT{'A' * i}" for i in range(10)]
    table = write_csv(tmp_path / "d.csv.gz", seqs, None)
    chunks = list(iter_chunks(table, 4))
    assert [len(c) for c in chunks] == [4, 4, 2]
    assert chunks[1].locate(0) == f"{table}:6" and chunks[2].seqs == seqs[8:]
    fa = write_fasta(tmp_path / "d.fa", seqs, ["x"] * 10)
    chunks = list(iter_chunks(fa, 3))
    assert [len(c) for c in chunks] == [3, 3, 3, 1]
    assert chunks[1].locate(1) == f"{fa}:9" and chunks[3].labels == ["x"]
