"""Property-based tests (Hypothesis) of the primitives every result rests on: encoding, reverse complement,
padding and seeded splits."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from biolens.data.alphabets import DNA, PROTEIN, RNA
from biolens.data.augment import gc_content, reverse_complement_np
from biolens.data.encoding import decode, encode, one_hot
from biolens.data.splits import sequence_keys, stratified_split
from biolens.models import create_model
from biolens.models.inference import call

DNA_SEQ = st.text(alphabet="ACGTN", min_size=0, max_size=60)
PROT_SEQ = st.text(alphabet=PROTEIN.symbols + "X", min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(st.lists(DNA_SEQ, min_size=1, max_size=20))
def test_encode_then_decode_gives_the_sequences_back(seqs):
    x, lengths = encode(seqs, DNA)
    assert x.dtype == np.uint8 and x.shape == (len(seqs), max(map(len, seqs)))
    assert decode(x, DNA, lengths) == [s.upper() for s in seqs]
    assert (x[np.arange(x.shape[1])[None, :] >= lengths[:, None]] == 0).all()  # right padding is PAD = 0


@settings(max_examples=150, deadline=None)
@given(st.lists(PROT_SEQ, min_size=1, max_size=10), st.integers(1, 50))
def test_truncation_keeps_the_prefix(seqs, max_len):
    x, lengths = encode(seqs, PROTEIN, max_len)
    assert x.shape[1] == max_len and (lengths == np.minimum([len(s) for s in seqs], max_len)).all()
    assert decode(x, PROTEIN, lengths) == [s[:max_len] for s in seqs]


@settings(max_examples=200, deadline=None)
@given(st.lists(DNA_SEQ, min_size=1, max_size=20))
def test_reverse_complement_is_an_involution_that_matches_the_string_definition(seqs):
    x, lengths = encode(seqs, DNA)
    rc = reverse_complement_np(x, lengths, DNA)
    table = str.maketrans("ACGTN", "TGCAN")
    assert decode(rc, DNA, lengths) == [s.upper().translate(table)[::-1] for s in seqs]
    assert np.array_equal(reverse_complement_np(rc, lengths, DNA), x)
    rna_x, _ = encode([s.replace("T", "U") for s in seqs], RNA)
    assert np.array_equal(reverse_complement_np(reverse_complement_np(rna_x, lengths, RNA), lengths, RNA), rna_x)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet="ACGT", min_size=1, max_size=30), min_size=1, max_size=12))
def test_gc_content_agrees_for_indices_and_one_hot_and_with_counting(seqs):
    x, _ = encode(seqs, DNA)
    xt = torch.from_numpy(x)
    gc = gc_content(xt)
    assert torch.allclose(gc, gc_content(one_hot(xt, DNA.vocab_size)))
    expected = [(s.count("G") + s.count("C")) / len(s) for s in seqs]
    np.testing.assert_allclose(gc.numpy(), expected, rtol=1e-6)


_MODEL = create_model("dilated_resnet", vocab_size=DNA.vocab_size, num_classes=2, channels=8, blocks=1).eval()


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="ACGT", min_size=2, max_size=40), st.integers(0, 30))
def test_extra_padding_never_changes_a_prediction(seq, pad):
    x, _ = encode([seq], DNA)
    padded = np.pad(x, ((0, 0), (0, pad)))
    with torch.no_grad():
        a, b = call(_MODEL, torch.from_numpy(x)), call(_MODEL, torch.from_numpy(padded))
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(30, 80))
def test_seeded_split_is_deterministic_and_keeps_duplicates_and_their_reverse_complements_together(seed, n):
    rng = np.random.default_rng(seed)
    base = ["".join(rng.choice(list("ACGT"), 12)) for _ in range(n)]
    table = str.maketrans("ACGT", "TGCA")
    seqs = base + [base[i] for i in range(0, n, 5)] + [base[i].translate(table)[::-1] for i in range(1, n, 7)]
    labels = np.array(["a", "b"] * (len(seqs) // 2) + ["a"] * (len(seqs) % 2))
    x, lengths = encode(seqs, DNA)
    _, canonical = sequence_keys(x, lengths, DNA)
    first = stratified_split(labels, canonical, 0.2, 0.2, seed)
    assert np.array_equal(first, stratified_split(labels, canonical, 0.2, 0.2, seed))
    for key in np.unique(canonical):  # a duplicate or reverse complement is never on the other side of a split
        assert len(set(first[canonical == key])) == 1
    assert set(first) == {"train", "val", "test"}
