"""Reverse-complement equivariance: the parameter-shared layers commute with RC, and dilated_resnet_rc gives the same
logits for a sequence and its reverse complement, for random weights and random batch-norm statistics."""

from __future__ import annotations

import pytest
import torch

from biolens.data.alphabets import DNA, RNA
from biolens.data.augment import reverse_complement
from biolens.errors import ModelError
from biolens.models import create_model
from biolens.models.base import onehot
from biolens.models.rc import (COMPLEMENT_CHANNELS, RCBatchNorm1d, RCConv1d, RCPreActBlock, rc_channels,
                               swap_halves, symmetric_bins)

TABLE = torch.from_numpy(DNA.complement_table())


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights everywhere, including batch-norm affine parameters and running statistics."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model


def padded_batch(lengths=(50, 49, 33, 20, 7, 1), width=50, seed=0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(1, 6, (len(lengths), width), generator=g)  # includes N (index 5)
    lengths = torch.tensor(lengths)
    x[torch.arange(width)[None, :] >= lengths[:, None]] = 0
    return x, lengths


def test_complement_channels_match_the_alphabets():
    for alphabet in (DNA, RNA):
        table = alphabet.complement_table()  # index → complementary index
        assert [int(table[c + 1]) - 1 for c in range(5)] == list(COMPLEMENT_CHANNELS)


@pytest.mark.parametrize(("kernel", "dilation", "bias"), [(1, 1, True), (7, 1, False), (3, 4, True)])
def test_rc_conv_maps_rc_input_to_rc_output(kernel, dilation, bias):
    torch.manual_seed(0)
    conv = RCConv1d(5, 6, kernel, COMPLEMENT_CHANNELS, dilation=dilation, bias=bias)
    x = torch.randn(3, 5, 31)
    out = conv(x)
    assert out.shape == (3, 12, 31)
    torch.testing.assert_close(conv(rc_channels(x, COMPLEMENT_CHANNELS)), rc_channels(out, swap_halves(12)),
                               atol=1e-5, rtol=0)
    # hidden → hidden, as inside the blocks
    hidden = RCConv1d(12, 4, kernel, swap_halves(12), dilation=dilation, bias=bias)
    torch.testing.assert_close(hidden(rc_channels(out, swap_halves(12))), rc_channels(hidden(out), swap_halves(8)),
                               atol=1e-5, rtol=0)


def test_rc_conv_shares_parameters():
    conv = RCConv1d(5, 8, 15, COMPLEMENT_CHANNELS)
    assert conv.out_channels == 16
    assert sum(p.numel() for p in conv.parameters()) == 8 * 5 * 15 + 8  # half of a plain 16-filter conv


def test_rc_batchnorm_and_block_are_equivariant_in_both_modes():
    torch.manual_seed(0)
    h = torch.randn(4, 8, 20)
    perm = swap_halves(8)
    bn = randomize(RCBatchNorm1d(4))
    for mode in (True, False):
        bn.train(mode)
        torch.testing.assert_close(bn(rc_channels(h, perm)), rc_channels(bn(h), perm), atol=1e-5, rtol=0)
    block = randomize(RCPreActBlock(4, 3, 2, dropout=0.0)).eval()
    m = torch.ones(4, 1, 20)
    torch.testing.assert_close(block(rc_channels(h, perm), m), rc_channels(block(h, m), perm), atol=1e-5, rtol=0)


def test_symmetric_bins_mirror_exactly():
    mask = torch.zeros(5, 23, dtype=torch.bool)
    for i, n in enumerate((23, 20, 8, 3, 1)):
        mask[i, :n] = True
    for k in (1, 2, 4, 7, 16):
        w = symmetric_bins(mask, k)
        assert torch.allclose(w.sum(-1), mask.float())  # every real position counts once, padding never
        for i, n in enumerate((23, 20, 8, 3, 1)):
            real = w[i, :n]
            torch.testing.assert_close(real.flip(0), real.flip(1), atol=0, rtol=0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_invariant_model_same_logits_for_sequence_and_reverse_complement(seed):
    torch.manual_seed(seed)
    model = randomize(create_model("dilated_resnet_rc", vocab_size=6, num_classes=3, channels=6, blocks=3,
                                   position_bins=5), seed).eval()
    x, lengths = padded_batch(seed=seed)
    rc = reverse_complement(x, lengths, TABLE)
    with torch.no_grad():
        a, b = model(x), model(rc)
        padded = model(torch.nn.functional.pad(x, (0, 9)))
    assert a.abs().max() > 1e-2  # not trivially zero
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a, padded, atol=1e-5, rtol=1e-5)  # padding-invariant too
    # the one-hot path (explanations) agrees with the index path
    torch.testing.assert_close(model(onehot(rc, 6)), b, atol=1e-5, rtol=1e-5)


def test_plain_model_is_not_invariant():
    """The control: the default dilated model distinguishes a sequence from its reverse complement."""
    model = randomize(create_model("dilated_resnet", vocab_size=6, num_classes=3, channels=6, blocks=2)).eval()
    x, lengths = padded_batch()
    with torch.no_grad():
        assert (model(x) - model(reverse_complement(x, lengths, TABLE))).abs().max() > 1e-3


def test_rc_model_refuses_protein():
    with pytest.raises(ModelError, match="dilated_resnet_rc is for dna or rna"):
        create_model("dilated_resnet_rc", vocab_size=22, num_classes=2)
