"""The reference genome: plain, gzip and BGZF FASTA read alike, index in the cache only, identity and checks."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from biolens.data.genome import Genome, check_same_genome
from biolens.errors import BundleError, DataError
from tests.genome.conftest import write_genome

SEQS = {"chr1": "ACGTACGTNNacgtRYACGT" * 5, "chr2": "GGGGCCCCAAAATTTT"}


@pytest.mark.parametrize("name", ["g.fa", "g.fa.gz", "g.fa.bgz"])
def test_plain_gzip_and_bgzip_read_alike_and_index_only_in_the_cache(tmp_path, genome_cache, name):
    folder = tmp_path / "user"
    folder.mkdir()
    path = write_genome(folder / name, SEQS, width=7)
    before = sorted(p.name for p in folder.iterdir())
    with Genome(path) as g:
        assert g.contigs == {"chr1": 100, "chr2": 16}
        assert g.fetch("chr1", 6, 14) == "GTNNACGT"  # lower case read as upper case
        assert g.fetch("chr2", 14, 16) == "TT"
        ident = g.identity()
        assert g.dir.is_relative_to(genome_cache)
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing written next to the user's file
    plain = write_genome(tmp_path / "plain.fa", SEQS, width=60)
    with Genome(plain) as g:
        assert g.identity()["checksum"] == ident["checksum"]  # line width and compression do not matter


def test_encode_and_windows_are_dna_indices(tmp_path):
    path = write_genome(tmp_path / "g.fa", SEQS)
    with Genome(path) as g:
        assert g.encode("chr1", 0, 12).tolist() == [1, 2, 3, 4, 1, 2, 3, 4, 5, 5, 1, 2]
        assert g.encode("chr1", 14, 16).tolist() == [5, 5]  # IUPAC R, Y → N
        w = g.windows(np.array(["chr2", "chr1", "chr2"], dtype=object), np.array([0, 4, 8]), 4)
        assert w.tolist() == [[3, 3, 3, 3], [1, 2, 3, 4], [1, 1, 1, 1]]
        with pytest.raises(ValueError):
            g.fetch("chr2", 10, 17)


def test_identity_is_name_independent_but_sequence_exact(tmp_path, caplog):
    a = write_genome(tmp_path / "a.fa", SEQS)
    renamed = write_genome(tmp_path / "b.fa", {"1": SEQS["chr1"], "2": SEQS["chr2"]})
    changed = write_genome(tmp_path / "c.fa", {"chr1": "T" + SEQS["chr1"][1:], "chr2": SEQS["chr2"]})
    shorter = write_genome(tmp_path / "d.fa", {"chr1": SEQS["chr1"][:-1], "chr2": SEQS["chr2"]})
    with Genome(a) as g:
        recorded = g.identity()
    with Genome(renamed) as g:
        check_same_genome(recorded, g)  # same assembly under other contig names
    with Genome(changed) as g, pytest.raises(BundleError) as e:
        check_same_genome(recorded, g)
    assert "same contig names and lengths but a different sequence" in str(e.value)
    assert "\n" not in str(e.value)
    with Genome(shorter) as g:
        with pytest.raises(BundleError, match="contig chr1 is 99 bp here but 100 bp"):
            check_same_genome(recorded, g)
        with caplog.at_level(logging.WARNING, logger="biolens"):
            check_same_genome(recorded, g, allow_other=True)
    assert "scoring it anyway" in caplog.text
    with Genome(a) as g:
        check_same_genome(None, g)  # a run without a genome: nothing to compare


def test_bad_genomes_are_one_line_errors(tmp_path):
    with pytest.raises(DataError, match="genome file not found"):
        Genome(tmp_path / "missing.fa")
    (tmp_path / "notfasta.fa").write_text("ACGT\nACGT\n")
    with pytest.raises(DataError, match="first line must start with '>'"):
        Genome(tmp_path / "notfasta.fa")
    (tmp_path / "ragged.fa").write_text(">c\nACGTACGT\nACG\nACGTACGT\n")
    with pytest.raises(DataError, match="cannot index it.*same length"):
        Genome(tmp_path / "ragged.fa")
    (tmp_path / "dup.fa").write_text(">c\nACGT\n>c\nACGT\n")
    with pytest.raises(DataError, match="unique name"):
        Genome(tmp_path / "dup.fa")
    broken = tmp_path / "trunc.fa.gz"
    write_genome(broken, SEQS)
    broken.write_bytes(broken.read_bytes()[:-12])
    with pytest.raises(DataError, match="truncated gzip"):
        Genome(broken)
    bad = write_genome(tmp_path / "star.fa", {"c": "ACGT*ACGT"})
    with Genome(bad) as g, pytest.raises(DataError, match=r"contig 'c' has the character '\*' at position 5"):
        g.identity()
