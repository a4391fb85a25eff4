import numpy as np
import pytest

from biolens.data.alphabets import DNA, PROTEIN, RNA, get_alphabet
from biolens.data.encoding import (
    RecordError,
    decode,
    detect_alphabet,
    encode,
    find_invalid,
    length_stats,
    one_hot,
)
from biolens.errors import ConfigError


def test_encode_golden_indices_and_padding():
    x, lengths = encode(["ACGT", "acgnr", "A"], DNA)
    assert x.dtype == np.uint8
    np.testing.assert_array_equal(x, [[1, 2, 3, 4, 0], [1, 2, 3, 5, 5], [1, 0, 0, 0, 0]])
    np.testing.assert_array_equal(lengths, [4, 5, 1])


def test_encode_truncates_to_max_len():
    x, lengths = encode(["ACGTAC", "AC"], DNA, max_len=3)
    np.testing.assert_array_equal(x, [[1, 2, 3], [1, 2, 0]])
    np.testing.assert_array_equal(lengths, [3, 2])


@pytest.mark.parametrize("alphabet", [DNA, RNA, PROTEIN])
def test_round_trip(alphabet):
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list(alphabet.symbols), size=int(n))) for n in rng.integers(1, 50, size=100)]
    x, lengths = encode(seqs, alphabet)
    assert decode(x, alphabet, lengths) == seqs


def test_unknown_symbols_map_to_n_or_x():
    x, _ = encode(["MKBZ"], PROTEIN)
    assert list(x[0]) == [PROTEIN.symbols.index("M") + 1, PROTEIN.symbols.index("K") + 1, 21, 21]
    assert decode(x, PROTEIN) == ["MKXX"]


def test_one_hot_drops_pad_channel():
    x, _ = encode(["AC", "G"], DNA)
    oh = one_hot(x, DNA.vocab_size)
    assert oh.shape == (2, 5, 2)
    np.testing.assert_array_equal(oh[0, :, 0], [1, 0, 0, 0, 0])
    np.testing.assert_array_equal(oh[0, :, 1], [0, 1, 0, 0, 0])
    np.testing.assert_array_equal(oh[1, :, 1], [0, 0, 0, 0, 0])  # padding is all zeros


def test_find_invalid_reports_record_and_position():
    bad = find_invalid(["ACGT", "AC-T", "A1"], DNA)
    assert (bad.index, bad.position, bad.char) == (1, 2, "-")


def test_encode_rejects_invalid_characters():
    with pytest.raises(RecordError, match="invalid character '1' at position 3"):
        encode(["ACGT", "AC1T"], DNA)


def test_detect_alphabet():
    assert detect_alphabet(["ACGT", "acgn"]) == "dna"
    assert detect_alphabet(["ACGU", "GGUA"]) == "rna"
    assert detect_alphabet(["MKVLAAGIW", "PEPTIDE"]) == "protein"


def test_detect_alphabet_mixed_t_and_u():
    with pytest.raises(RecordError, match="mixed alphabets") as e:
        detect_alphabet(["ACGT", "ACGU"])
    assert e.value.index == 1


def test_detect_alphabet_mixed_nucleotide_and_protein():
    seqs = ["ACGTACGTACGTACGTACGTAC"] * 20 + ["MKVLWEEPQRSTVWY"]
    with pytest.raises(RecordError, match="protein letters") as e:
        detect_alphabet(seqs)
    assert e.value.index == 20


def test_length_stats():
    s = length_stats(np.array([10, 20, 30, 40]), max_len=25)
    assert s == {"n": 4, "min": 10, "max": 40, "mean": 25.0, "median": 25.0, "truncated": 2, "max_len": 25}


def test_unknown_alphabet_name():
    with pytest.raises(ConfigError, match="expected one of: dna, rna, protein"):
        get_alphabet("klingon")
