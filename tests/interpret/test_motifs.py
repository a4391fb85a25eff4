"""Motif parsing (IUPAC, MEME, JASPAR), both-strand scanning at hand-checked positions, enrichment, MEME export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from biolens.data.alphabets import DNA, PROTEIN, RNA
from biolens.data.encoding import encode
from biolens.errors import ConfigError, DataError
from biolens.interpret.motifs import (
    BUILTIN_MOTIFS, enrichment, iupac_motif, load_motifs, parse_jaspar, parse_meme, pwm_motif, scan, write_meme,
)  # fmt: skip

MEME = """MEME version 4

ALPHABET= ACGT

strands: + -

Background letter frequencies
A 0.25 C 0.25 G 0.25 T 0.25

MOTIF TBP_like tata
letter-probability matrix: alength= 4 w= 4 nsites= 10 E= 0
 0.0 0.0 0.0 1.0
 1.0 0.0 0.0 0.0
 0.0 0.0 0.0 1.0
 0.7 0.0 0.0 0.3

MOTIF GATA
letter-probability matrix: alength= 4 w= 4 nsites= 10 E= 0
 0.0 0.0 1.0 0.0
 1.0 0.0 0.0 0.0
 0.0 0.0 0.0 1.0
 1.0 0.0 0.0 0.0
"""

JASPAR = """>MA0001.1 TATA
A [  0 10  0  7 ]
C [  0  0  0  0 ]
G [  0  0  0  0 ]
T [ 10  0 10  3 ]

>MA0002.1 CCAAT
0 0 10 10 0
10 10 0 0 0
0 0 0 0 0
0 0 0 0 10
"""


def _scan(motifs, seqs, **kw):  # noqa: ANN001, ANN003, ANN202
    x, lengths = encode(seqs, DNA)
    return scan(motifs, x, lengths, DNA, [f"s{i}" for i in range(len(seqs))], **kw)


def test_builtins_are_the_guides_boxes() -> None:
    assert BUILTIN_MOTIFS == {"TATA_box": "TATAAA", "CAAT_box": "CCAAT", "GC_box": "GGGCGG"}
    assert [m.name for m in load_motifs([])] == ["TATA_box", "CAAT_box", "GC_box"]
    assert load_motifs([], letters=PROTEIN.symbols) == []  # promoter boxes are for nucleic acids only


def test_iupac_scan_both_strands_hand_checked() -> None:
    #        0123456789012345678901
    seq = "GGTATAAAGGCCTTTATACCAA"  # TATAAA at 2 (+); TTTATA at 12 is TATAAA on the minus strand
    hits = _scan([iupac_motif("TATAAA", "tata")], [seq])
    expected = [[2, 8, "+", "TATAAA"], [12, 18, "-", "TATAAA"]]
    assert hits[["start", "end", "strand", "matched"]].values.tolist() == expected
    assert seq[12:18] == "TTTATA"
    plus_only = _scan([iupac_motif("TATAAA", "tata")], [seq], both_strands=False)
    assert plus_only["start"].tolist() == [2]


def test_iupac_degenerate_codes_and_n() -> None:
    m = iupac_motif("TATAWAWR", "tbp")  # W = A/T, R = A/G
    hits = _scan([m], ["CTATATAAGC", "CTATAAACGC", "CTATANAAGC"])
    assert hits[hits.strand == "+"][["index", "start"]].values.tolist() == [[0, 1]]  # TATATAAG only; N never matches
    n_motif = iupac_motif("CCNAT", "ccnat")
    assert _scan([n_motif], ["ACCGATA"])[["start", "strand"]].values.tolist() == [[1, "+"]]
    assert iupac_motif("UAUAAA").consensus == "UAUAAA"  # U is read as T


def test_scan_in_row_chunks_equals_one_pass() -> None:
    seqs = ["GGTATAAAGGCCTTTATACCAA", "CCAATGGGCGG", "ACGT", "TTTATATATAAAGGGCGGCCAAT", "GGCCAATT"]
    motifs = load_motifs(["tbp=TATAWAWR"])
    whole = _scan(motifs, seqs)
    assert len(whole) >= 6 and set(whole["index"]) == {0, 1, 3, 4}
    for rows in (1, 2, 3):
        pd.testing.assert_frame_equal(_scan(motifs, seqs, chunk_rows=rows), whole)


def test_rna_scans_with_u() -> None:
    x, lengths = encode(["GGUAUAAAGG"], RNA)
    hits = scan([iupac_motif("TATAAA", "tata")], x, lengths, RNA, ["r"])
    assert hits[["start", "strand", "matched"]].values.tolist() == [[2, "+", "UAUAAA"]]


def test_protein_literal_with_x_and_one_strand() -> None:
    x, lengths = encode(["MKTAYIAKQR"], PROTEIN)
    hits = scan([iupac_motif("AYXA", "m", letters=PROTEIN.symbols)], x, lengths, PROTEIN, ["p"])
    assert hits[["start", "strand", "matched"]].values.tolist() == [[3, "+", "AYIA"]]


def test_iupac_errors() -> None:
    with pytest.raises(ConfigError, match="non-IUPAC letters J"):
        iupac_motif("TAJA")
    with pytest.raises(ConfigError, match="empty motif"):
        iupac_motif("  ")
    with pytest.raises(ConfigError, match="repeated: TATA_box"):
        load_motifs(["TATA_box=TATA"])


def test_meme_parse_and_pwm_scan(tmp_path: Path) -> None:
    path = tmp_path / "m.meme"
    path.write_text(MEME)
    motifs = parse_meme(path)
    assert [m.name for m in motifs] == ["TBP_like", "GATA"]
    assert motifs[0].width == 4 and motifs[0].consensus == "TATA"
    np.testing.assert_allclose(motifs[0].probs[3], [0.7, 0, 0, 0.3])
    assert motifs[0].source == f"{path}:10"
    #                 0123456789
    hits = _scan(motifs[1:], ["CCGATACCCC", "CCCCTATCCC"])  # GATA at 2 (+); TATC at 4 is GATA on the minus strand
    assert hits[["index", "start", "strand", "matched"]].values.tolist() == [[0, 2, "+", "GATA"], [1, 4, "-", "GATA"]]
    tata = _scan(motifs[:1], ["GGTATTGG", "GGTATAGG"])  # TATT passes the 0.85 relative threshold, TATA scores higher
    plus = tata[tata.strand == "+"]
    assert plus["index"].tolist() == [0, 1] and plus.iloc[1]["score"] > plus.iloc[0]["score"]


def test_meme_errors_name_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.meme"
    third_row = " 1.0 0.0 0.0 0.0\n 0.0 0.0 0.0 1.0\n 0.7"
    bad.write_text(MEME.replace(third_row, third_row.replace(" 0.0 0.0 0.0 1.0", " 0.5 0.0 0.0 1.0"), 1))
    with pytest.raises(DataError, match=rf"{bad}:14: motif TBP_like row must be 4 probabilities"):
        parse_meme(bad)
    short = tmp_path / "short.meme"
    short.write_text(MEME.split("MOTIF GATA")[0].replace("w= 4", "w= 5"))
    with pytest.raises(DataError, match=rf"{short}:16: motif TBP_like ends after 4 rows; w=5"):
        parse_meme(short)
    none = tmp_path / "none.meme"
    none.write_text("MEME version 4\n")
    with pytest.raises(DataError, match="no motifs found"):
        parse_meme(none)
    text = tmp_path / "x.txt"
    text.write_text("hello\n")
    with pytest.raises(DataError, match=rf"{text}:1: not a MEME"):
        load_motifs([str(text)])


def test_jaspar_bracketed_and_bare(tmp_path: Path) -> None:
    path = tmp_path / "m.jaspar"
    path.write_text(JASPAR)
    motifs = parse_jaspar(path)
    assert [m.name for m in motifs] == ["MA0001.1_TATA", "MA0002.1_CCAAT"]
    assert [m.consensus for m in motifs] == ["TATA", "CCAAT"]
    np.testing.assert_allclose(motifs[0].probs[3], [0.7, 0, 0, 0.3])
    assert [m.name for m in load_motifs([str(path)])][3:] == ["MA0001.1_TATA", "MA0002.1_CCAAT"]
    hits = _scan(motifs[1:], ["GGCCAATGG"])
    assert hits[["start", "strand"]].values.tolist() == [[2, "+"]]
    bad = tmp_path / "bad.jaspar"
    bad.write_text(">M1 x\nA [ 1 2 ]\nC [ 1 2 ]\nG [ 1 q ]\nT [ 1 2 ]\n")
    with pytest.raises(DataError, match=rf"{bad}:4: expected numbers"):
        parse_jaspar(bad)
    short = tmp_path / "short.jaspar"
    short.write_text(">M1 x\nA [ 1 2 ]\nC [ 1 2 ]\n")
    with pytest.raises(DataError, match=rf"{short}:4: motif M1_x needs 4 rows"):
        parse_jaspar(short)


def test_meme_export_parses_back(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    probs = [rng.dirichlet(np.ones(4), size=w) for w in (5, 8)]
    path = tmp_path / "out.meme"
    write_meme(path, [("f0", probs[0], 12), ("f1", probs[1], 3)])
    back = parse_meme(path)
    assert [m.name for m in back] == ["f0", "f1"]
    for m, p in zip(back, probs):
        np.testing.assert_allclose(m.probs, p, atol=1e-6)
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically


def test_pwm_threshold_is_relative() -> None:
    m = pwm_motif("t", np.eye(4)[[3, 0, 3, 0]], "ACGT", rel_threshold=1.0)
    hits = _scan([m], ["TATA", "TATT"], both_strands=False)
    assert hits["index"].tolist() == [0]  # only the perfect match reaches 100% of the score range


def test_enrichment_counts_and_p_values() -> None:
    motifs = [iupac_motif("TATAAA", "tata"), iupac_motif("CCAAT", "caat")]
    rng = np.random.default_rng(1)
    seqs, covered = [], np.zeros((40, 50), dtype=bool)
    for i in range(40):
        s = list(rng.choice(list("GC"), size=50))  # no A/T: no chance hits
        s[10:16] = "TATAAA"  # always inside the covered window
        s[35:40] = "CCAAT"  # always outside it
        seqs.append("".join(s))
        covered[i, 8:18] = True
    hits = _scan(motifs, seqs, both_strands=False)
    table = enrichment(hits, covered, np.full(40, 50), motifs, n_perm=999, seed=0).set_index("motif")
    assert table.loc["tata", ["hits", "inside"]].tolist() == [40, 40]
    assert table.loc["tata", "p_value"] == pytest.approx(1 / 1000)  # no permutation reaches 40 of 40
    assert table.loc["tata", "expected"] == pytest.approx(40 * 11 / 45, rel=0.05)  # starts 5..15 of 0..44 half in
    assert bool(table.loc["tata", "significant"])
    assert table.loc["caat", "inside"] == 0 and table.loc["caat", "p_value"] == 1.0
    assert not bool(table.loc["caat", "significant"])
