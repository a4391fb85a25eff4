"""The transformer: padding masks, positions, pooling, patches, the written-out attention used for export, and
length generalization (trained on short sequences, tested on lengths it never saw)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from biolens.data.alphabets import DNA
from biolens.data.encoding import encode
from biolens.errors import ModelError
from biolens.models import create_model
from biolens.models.transformer import EncoderBlock, alibi_bias, apply_rotary, rotary_tables

VARIANTS = [{}, {"position": "rotary"}, {"position": "alibi"}, {"pooling": "cls"}, {"patch": 4},
            {"patch": 3, "pooling": "cls", "position": "alibi"}]


def build(**kw) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("transformer", vocab_size=6, num_classes=3, dim=16, depth=2, heads=2, **kw).eval()


def batch(lengths=(40, 33, 17, 5, 1), width=40, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(1, 6, (len(lengths), width), generator=g)
    x[torch.arange(width)[None, :] >= torch.tensor(lengths)[:, None]] = 0
    return x


@pytest.mark.parametrize("kw", VARIANTS)
def test_logits_do_not_depend_on_padding_or_batch(kw):
    model, x = build(**kw), batch()
    with torch.no_grad():
        full = model(x)
        padded = model(F.pad(x, (0, 13)))
        alone = torch.cat([model(x[i:i + 1, :n]) for i, n in enumerate((40, 33, 17, 5, 1))])
    torch.testing.assert_close(padded, full, atol=1e-5, rtol=0)
    torch.testing.assert_close(alone, full, atol=1e-5, rtol=0)


def test_all_padding_row_is_finite():
    model = build()  # e.g. the all-zero baseline of integrated gradients: no real token at all
    with torch.no_grad():
        assert torch.isfinite(model(torch.zeros(2, 5, 12))).all()
        assert torch.isfinite(model(torch.zeros(2, 12, dtype=torch.long))).all()


def test_written_out_attention_matches_sdpa():
    torch.manual_seed(0)
    block = EncoderBlock(16, 2, 2.0, 0.0, 0.0).eval()
    h = torch.randn(3, 9, 16)
    mask = torch.ones(3, 9, dtype=torch.bool)
    mask[1, 5:] = False
    bias = torch.zeros(3, 1, 1, 9).masked_fill(~mask[:, None, None, :], torch.finfo(torch.float32).min)
    q, k, v = torch.randn(3, 3, 2, 9, 8).unbind(0)
    want = torch.softmax(q @ k.transpose(-2, -1) / np.sqrt(8) + bias, dim=-1) @ v
    torch.testing.assert_close(block.attend(q, k, v, bias), want, atol=1e-5, rtol=0)


def test_rotary_scores_depend_only_on_relative_position():
    cos, sin = rotary_tables(40, 8, torch.device("cpu"), torch.float32)
    q, k = torch.randn(8), torch.randn(8)
    score = lambda i, j: (apply_rotary(q.view(1, 1, 1, 8).expand(1, 1, 40, 8), cos, sin)[0, 0, i]  # noqa: E731
                          @ apply_rotary(k.view(1, 1, 1, 8).expand(1, 1, 40, 8), cos, sin)[0, 0, j])
    assert score(3, 7) == pytest.approx(float(score(30, 34)), abs=1e-4)
    assert score(3, 7) != pytest.approx(float(score(7, 3)), abs=1e-3)


def test_alibi_is_relative_and_directional():
    b = alibi_bias(12, torch.tensor([0.5, 0.25]), torch.float32)
    assert b.shape == (2, 12, 12)
    assert b[0, 2, 5] == b[0, 6, 9]  # only the offset matters
    assert b[0, 5, 2] != b[0, 2, 5]  # left and right differ: order is visible
    assert (b.diagonal(dim1=1, dim2=2) == 0).all()


def test_patches_tokens_and_stride():
    model = build(patch=4)
    x = batch()
    states, mask = model.forward_tokens(x)
    assert states.shape == (5, 10, 16) and model.token_stride == 4
    assert mask.sum(1).tolist() == [10, 9, 5, 2, 1]  # ceil(length / 4)


def test_bad_shapes_are_model_errors():
    with pytest.raises(ModelError, match="must divide"):
        create_model("transformer", vocab_size=6, num_classes=2, dim=10, heads=3)
    with pytest.raises(ModelError, match="even head width"):
        create_model("transformer", vocab_size=6, num_classes=2, dim=6, heads=2)
    with pytest.raises(ModelError, match="position"):
        create_model("transformer", vocab_size=6, num_classes=2, position="learned")


def order_task(n: int, lo: int, hi: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A/T background with a C-G step every 5 bases (class 1) or a G-C step (class 0): the same composition, so
    only the order of neighbouring tokens separates the classes; attention has to read relative positions."""
    rng = np.random.default_rng(seed)
    seqs, y = [], []
    for i in range(n):
        length = int(rng.integers(lo, hi + 1))
        s = rng.choice(list("AT"), size=length)
        pair = ["C", "G"] if i % 2 == 0 else ["G", "C"]
        for pos in range(int(rng.integers(0, 3)), length - 1, 5):
            s[pos], s[pos + 1] = pair
        seqs.append("".join(s))
        y.append(i % 2 == 0)
    x, _ = encode(seqs, DNA)
    return torch.from_numpy(x.copy()), torch.tensor(y).long()


@pytest.mark.slow
def test_length_generalization_to_unseen_lengths():
    """Trained on lengths 16-32, the default transformer (rotary + ALiBi) classifies sequences of 48-64 bases,
    which it never saw, as well as the training ones: no maximum length, no position table."""
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        x, y = order_task(256, 16, 32, seed=0)
        model = create_model("transformer", vocab_size=6, num_classes=2, dim=16, depth=1, heads=2, dropout=0.0)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
        gen = torch.Generator().manual_seed(0)
        for _ in range(30):
            model.train()
            perm = torch.randperm(len(x), generator=gen)
            for i in range(0, len(x), 32):
                idx = perm[i:i + 32]
                loss = F.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        model.eval()
        with torch.no_grad():
            seen = (model(x).argmax(1) == y).float().mean().item()
            x2, y2 = order_task(200, 48, 64, seed=1)
            twice = (model(x2).argmax(1) == y2).float().mean().item()
    finally:
        torch.set_num_threads(threads)
    assert seen > 0.95 and twice > 0.9, (seen, twice)
