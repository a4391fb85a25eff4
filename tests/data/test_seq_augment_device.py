"""Batched sequence augmentation on the device: distributions and invariants, and the batches that use it."""

import numpy as np
import pytest
import torch

from biolens.data.alphabets import DNA
from biolens.data.augment import random_reverse_complement, random_shift, reverse_complement, shift, substitute
from biolens.data.dataset import SequenceBatches, SequenceData
from biolens.data.encoding import decode, encode
from biolens.data.splits import reverse_complement_np
from tests.conftest import planted_dna

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _rows(n=512, length=60, seed=0):
    seqs, _ = planted_dna(n, length, seed=seed, vary=True)
    x, lengths = encode(seqs, DNA, length)
    return seqs, torch.from_numpy(x.copy()), torch.from_numpy(lengths)


@pytest.mark.parametrize("device", DEVICES)
def test_reverse_complement_is_an_involution_and_matches_the_host_twin(device):
    seqs, x, lengths = _rows()
    x, lengths = x.to(device), lengths.to(device)
    table = torch.from_numpy(DNA.complement_table()).to(device)
    rc = reverse_complement(x, lengths, table)
    assert torch.equal(reverse_complement(rc, lengths, table), x)
    assert np.array_equal(rc.cpu().numpy(), reverse_complement_np(x.cpu().numpy(), lengths.cpu().numpy(), DNA))
    want = [s[::-1].translate(str.maketrans("ACGT", "TGCA")) for s in seqs]
    assert decode(rc.cpu().numpy(), DNA, lengths.cpu().numpy()) == want
    assert torch.equal(rc == 0, x == 0)  # padding stays on the right


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("p", [0.3, 0.5])
def test_random_reverse_complement_rate_is_p(device, p):
    _, x, lengths = _rows(4000, 30)
    x, lengths = x.to(device), lengths.to(device)
    table = torch.from_numpy(DNA.complement_table()).to(device)
    gen = torch.Generator(device=device).manual_seed(0)
    flipped = 0
    for _ in range(5):
        out = random_reverse_complement(x, lengths, table, p, gen)
        changed = (out != x).any(dim=1)
        assert torch.equal(out[changed], reverse_complement(x, lengths, table)[changed])
        flipped += int(changed.sum())
    rate = flipped / (5 * len(x))
    assert abs(rate - p) < 4 * (p * (1 - p) / (5 * len(x))) ** 0.5  # within 4 standard errors (palindromes aside)


@pytest.mark.parametrize("device", DEVICES)
def test_substitution_rate_and_symbols(device):
    _, x, _ = _rows(2000, 100)
    x = x.to(device)
    x[:, 5] = DNA.unknown_index  # N is never substituted
    gen = torch.Generator(device=device).manual_seed(1)
    out = substitute(x, 0.05, 4, gen)
    canonical = (x >= 1) & (x <= 4)
    hit = out != x
    assert not hit[~canonical].any()  # PAD and N untouched
    assert int(out[hit].min()) >= 1 and int(out[hit].max()) <= 4  # a different canonical base
    rate = hit.sum().item() / canonical.sum().item()
    assert abs(rate - 0.05) < 0.003
    # every other base is equally likely
    diff = ((out[hit].long() - x[hit].long()) % 4).cpu()
    counts = torch.bincount(diff, minlength=4)[1:].double()
    assert (counts / counts.sum() - 1 / 3).abs().max() < 0.03


def test_shift_moves_sequences_with_pad_fill():
    seqs = ["ACGTA", "GGC", "TTTTTTT"]
    x, lengths = (torch.from_numpy(a.copy()) for a in encode(seqs, DNA, 7))
    out, new = shift(x, lengths, torch.tensor([2, -1, 3]))
    assert new.tolist() == [7, 2, 7]
    assert decode(out.numpy(), DNA, new.numpy()) == ["--ACGTA", "GC", "---TTTT"]
    assert torch.equal(shift(x, lengths, torch.zeros(3, dtype=torch.long))[0], x)


@pytest.mark.parametrize("device", DEVICES)
def test_random_shift_keeps_lengths_and_padding_consistent(device):
    seqs, x, lengths = _rows(3000, 50)
    x, lengths = x.to(device), lengths.to(device)
    gen = torch.Generator(device=device).manual_seed(2)
    out, new = random_shift(x, lengths, 4, gen)
    width = x.shape[1]
    pos = torch.arange(width, device=device)[None, :]
    assert out.shape == x.shape and out.dtype == x.dtype
    assert not out[pos >= new[:, None]].any()  # PAD from the new length on
    assert (out[torch.arange(len(x), device=device), new - 1] != 0).all()  # a base right before it
    # each row is a contiguous piece of the original, after leading PADs
    lead = (out == 0).long().cumprod(dim=1).sum(dim=1)  # leading PADs = positive offset
    kept = new - lead
    assert (kept >= 1).all()
    offsets = []
    for i in range(0, len(x), 97):
        row, s, o, k = out[i].cpu(), seqs[i], int(lead[i]), int(kept[i])
        piece = decode(row[o : o + k][None].numpy(), DNA)[0]
        if o > 0:
            assert piece == s[:k]
            offsets.append(o)
        else:
            assert s.endswith(piece)
            offsets.append(len(piece) - len(s))
    assert set(offsets) <= set(range(-4, 5)) and len(set(offsets)) >= 7
    # offsets are uniform over [-4, 4]
    counts = torch.bincount((new - lengths).clamp(-4, 4).cpu() + 4, minlength=9)[:4]  # left shifts are exact
    assert (counts.double() / len(x) - 1 / 9).abs().max() < 0.03


def _data(n=200):
    seqs, labels = planted_dna(n, 40, seed=3, vary=True)
    x, lengths = encode(seqs, DNA, 40)
    return SequenceData(np.arange(n), x, lengths, np.array([lab == "promoter" for lab in labels], dtype=np.int64), DNA)


@pytest.mark.parametrize("device", DEVICES)
def test_batches_with_shift_repeat_per_epoch_and_stay_consistent(device):
    data = _data()
    b = SequenceBatches(data, 64, shuffle=True, device=device, seed=1, reverse_complement=True, shift=5, with_gc=True)
    epochs = []
    for epoch in (1, 2, 1):
        b.set_epoch(epoch)
        epochs.append([{k: v.clone() for k, v in batch.items()} for batch in b])
    assert all(torch.equal(a["x"], c["x"]) for a, c in zip(epochs[0], epochs[2]))  # seeded per epoch
    assert not all(torch.equal(a["x"], c["x"]) for a, c in zip(epochs[0], epochs[1]))
    for batch in epochs[0]:
        x, lengths = batch["x"], batch["lengths"]
        pos = torch.arange(x.shape[1], device=x.device)[None, :]
        assert not x[pos >= lengths[:, None]].any() and (x[torch.arange(len(x), device=x.device), lengths - 1] != 0).all()
        assert lengths.max() <= x.shape[1]
    seen = torch.cat([batch["index"] for batch in epochs[0]]).cpu()
    assert sorted(seen.tolist()) == list(range(len(data)))


def test_no_shift_batches_are_unchanged():
    """shift=0 draws nothing: batches equal those of the augmentations alone (the existing behaviour)."""
    data = _data()
    kw = dict(shuffle=True, seed=4, reverse_complement=True, substitution_rate=0.1)
    a = list(SequenceBatches(data, 50, **kw))
    b = list(SequenceBatches(data, 50, shift=0, **kw))
    assert all(torch.equal(p["x"], q["x"]) and torch.equal(p["lengths"], q["lengths"]) for p, q in zip(a, b))
    assert all(torch.equal(p["lengths"], torch.from_numpy(data.lengths)[p["index"]]) for p in a)
