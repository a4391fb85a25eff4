"""Generic checks over every registered sequence model, plus model-specific contracts."""

from __future__ import annotations

import inspect
import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from biolens.errors import ModelError
from biolens.models import create_model, list_models
from biolens.data.augment import gc_content
from biolens.models.base import onehot, padding_mask

V = 6  # DNA: PAD, A, C, G, T, N
B, L = 4, 40
LENGTHS = (40, 33, 27, 18)
SEQ_MODELS = list_models(task="sequence")


def make_batch(lengths=LENGTHS, width=L, seed=0) -> torch.Tensor:
    """``(B, width)`` uint8 indices with every symbol (incl. unknown) present and right padding."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(1, V, (len(lengths), width), generator=g)
    x[0, :V - 1] = torch.arange(1, V)
    for i, n in enumerate(lengths):
        x[i, n:] = 0
    return x.to(torch.uint8)


def build(name: str, num_classes: int = 3, **kwargs) -> nn.Module:
    torch.manual_seed(0)
    return create_model(name, vocab_size=V, num_classes=num_classes, **kwargs)


def aux(model, x) -> dict:
    return {"gc": gc_content(x)} if "gc" in model.aux_inputs else {}


def test_helpers_on_both_input_kinds():
    x = make_batch()
    oh = onehot(x, V)
    assert oh.shape == (B, V - 1, L) and oh.dtype == torch.float32
    assert torch.equal(oh.argmax(1)[x != 0] + 1, x[x != 0].long())
    assert torch.equal(padding_mask(x), padding_mask(oh))
    assert padding_mask(x).sum(1).tolist() == list(LENGTHS)
    assert torch.allclose(gc_content(x), gc_content(oh))
    assert gc_content(torch.tensor([[2, 3, 1, 4, 5, 0]])).item() == pytest.approx(0.5)


@pytest.mark.parametrize("name", SEQ_MODELS)
def test_forward_shapes_and_no_nan(name):
    model = build(name).eval()
    x = make_batch()
    with torch.no_grad():
        logits = model(x, **aux(model, x))
        z = model.forward_features(x, **aux(model, x))
    assert logits.shape == (B, 3)
    assert z.shape == (B, model.num_features)
    assert torch.isfinite(logits).all()
    assert torch.allclose(model.forward_head(z), logits)


@pytest.mark.parametrize("name", SEQ_MODELS)
def test_index_and_onehot_inputs_agree(name):
    model = build(name).eval()
    x = make_batch()
    with torch.no_grad():
        from_uint8 = model(x, **aux(model, x))
        from_int64 = model(x.long(), **aux(model, x))
        from_onehot = model(onehot(x, V), **aux(model, x))
    assert torch.equal(from_uint8, from_int64)
    torch.testing.assert_close(from_onehot, from_uint8, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", SEQ_MODELS)
def test_onehot_input_gets_gradients(name):
    model = build(name).eval()
    x = make_batch()
    oh = onehot(x, V).requires_grad_(True)
    model(oh, **aux(model, x))[:, 1].sum().backward()
    assert oh.grad is not None and torch.isfinite(oh.grad).all() and oh.grad.abs().sum() > 0


@pytest.mark.parametrize("name", SEQ_MODELS)
def test_every_parameter_gets_a_gradient(name):
    model = build(name).train()
    x = make_batch()
    loss = F.cross_entropy(model(x, **aux(model, x)), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
        module = model.get_submodule(pname.rsplit(".", 1)[0]) if "." in pname else model
        if isinstance(module, nn.Embedding) and module.padding_idx is not None:
            pad = module.padding_idx
            assert torch.all(p.grad[pad] == 0), f"{pname}: PAD row must not learn"
            others = torch.cat([p.grad[:pad], p.grad[pad + 1 :]])
            assert (others.abs().sum(1) > 0).all(), f"{pname}: every symbol row needs a gradient"
        else:
            assert p.grad.abs().sum() > 0, f"{pname} has an all-zero gradient"


@pytest.mark.parametrize("name", SEQ_MODELS)
def test_reset_classifier(name):
    model = build(name)
    model.reset_classifier(5)
    model.eval()
    x = make_batch()
    with torch.no_grad():
        assert model(x, **aux(model, x)).shape == (B, 5)
    assert model.config["num_classes"] == 5 and model.num_classes == 5
    with pytest.raises(ModelError):
        model.reset_classifier(0)


@pytest.mark.parametrize("name", SEQ_MODELS)
def test_config_round_trip(name):
    model = build(name)
    config = json.loads(json.dumps(model.config))  # JSON-serialisable
    params = inspect.signature(type(model)).parameters
    assert set(config) == set(params), "config must hold every constructor argument"
    hyperparams = [p for n, p in params.items() if n not in {"vocab_size", "num_classes"}]
    assert all(p.default is not inspect.Parameter.empty for p in hyperparams), "every hyperparameter needs a default"
    rebuilt = create_model(name, **config)
    assert type(rebuilt) is type(model)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
    rebuilt.load_state_dict(model.state_dict())


@pytest.mark.parametrize("name", SEQ_MODELS)
def test_bad_input_shape_is_model_error(name):
    model = build(name).eval()
    x = make_batch()
    with pytest.raises(ModelError, match="one-hot"):
        model(torch.zeros(B, V, L), **aux(model, x))
    with pytest.raises(ModelError, match=r"\(B, L\)"):
        model(x.unsqueeze(0), **aux(model, x))


ATTENTION_MODELS = [n for n in SEQ_MODELS if "attention" in build(n).extra_outputs]
AUX_MODELS = [n for n in SEQ_MODELS if "gc" in build(n).aux_inputs]


def test_expected_models_declare_extras():
    assert {"cnn_bilstm_attention", "promoter_predictor"} <= set(ATTENTION_MODELS)
    assert "promoter_predictor" in AUX_MODELS


@pytest.mark.parametrize("width", [L, L + 1])
@pytest.mark.parametrize("name", ATTENTION_MODELS)
def test_attention_output(name, width):
    model = build(name).eval()
    x = make_batch(width=width)
    with torch.no_grad():
        logits, attention = model.forward_with_attention(x, **aux(model, x))
        plain = model(x, **aux(model, x))
    stride = model.attention_stride
    assert stride == 2
    assert attention.shape == (B, width // stride)
    torch.testing.assert_close(logits, plain)
    torch.testing.assert_close(attention.sum(1), torch.ones(B), atol=1e-5, rtol=0)
    for i, n in enumerate(LENGTHS):
        real = -(-n // stride)  # pooled windows holding at least one real position
        assert torch.all(attention[i, real:] == 0)
        assert torch.all(attention[i, :real] > 0)


@pytest.mark.parametrize("name", [n for n in SEQ_MODELS if n not in ATTENTION_MODELS])
def test_models_without_attention_say_so(name):
    x = make_batch()
    model = build(name)
    with pytest.raises(ModelError, match="no attention"):
        model.forward_with_attention(x, **aux(model, x))


@pytest.mark.parametrize("name", AUX_MODELS)
def test_aux_input_required(name):
    model = build(name).eval()
    x = make_batch()
    with pytest.raises(ModelError, match="gc"):
        model(x)
    with pytest.raises(ModelError, match="one value per sequence"):
        model(x, gc=torch.rand(B + 1))


def _randomize_batchnorm(model: nn.Module) -> None:
    # Default BN (mean 0, var 1, weight 1, bias 0) maps padded zeros to zero and would hide leaks.
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g))
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            with torch.no_grad():
                m.weight.copy_(torch.randn(n, generator=g))
                m.bias.copy_(torch.randn(n, generator=g))


@pytest.mark.parametrize(("downsample", "position_bins"), [(True, 0), (False, 0), (True, 4), (False, 16)])
def test_dilated_resnet_logits_do_not_depend_on_batch_padding(downsample, position_bins):
    model = build("dilated_resnet", downsample=downsample, position_bins=position_bins)
    _randomize_batchnorm(model)
    model.eval()
    lengths = (41, 17, 30, 8)
    x = make_batch(lengths=lengths, width=50)
    with torch.no_grad():
        batched = model(x)
        alone = torch.cat([model(x[i : i + 1, :n]) for i, n in enumerate(lengths)])
        wider = model(F.pad(x, (0, 23)))
        onehot_batched = model(onehot(x, V))
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(wider, alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(onehot_batched, alone, atol=1e-5, rtol=0)


def test_dilated_resnet_position_bins():
    model = build("dilated_resnet", channels=16, blocks=1, position_bins=4).train()
    assert model.num_features == 6 * 16
    x = make_batch()
    z = model.forward_features(x)
    assert z.shape == (B, 6 * 16)
    F.cross_entropy(model.forward_head(z), torch.tensor([0, 1, 2, 0])).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    # Each slice mean comes from its own part of the sequence: changing only the last quarter of every
    # sequence leaves the first slice's features unchanged once the receptive field is accounted for.
    model = build("dilated_resnet", channels=8, blocks=0, stem_kernel=1, downsample=False, position_bins=2).eval()
    x = make_batch(lengths=(40, 40, 40, 40))
    y = x.clone()
    y[:, 30:] = torch.where(y[:, 30:] == 1, 2, 1).to(y.dtype)
    with torch.no_grad():
        zx, zy = model.forward_features(x), model.forward_features(y)
    first_bin = torch.arange(2 * 8, 4 * 8, 2)  # flatten(1) of (C, K): channel-major, bin 0 at even offsets
    torch.testing.assert_close(zx[:, first_bin], zy[:, first_bin])
    assert not torch.allclose(zx, zy)


# ---- dilated_resnet's linear term ("wide and deep") -------------------------------------------------------------
def _reference_features(x: torch.Tensor, positions: int, kmers: tuple[int, ...], symbols: int = V - 1) -> torch.Tensor:
    """Plain-Python features of the linear term: one-hot bases at the first ``positions`` positions, then each
    k-mer's occurrences per real position, k-mers in lexicographic order of the one-hot channels."""
    import itertools

    rows = []
    for seq in x.tolist():
        real = [t - 1 for t in seq if t != 0]  # channel of each real position
        pos = [[1.0 if i < len(real) and real[i] == c else 0.0 for i in range(positions)] for c in range(symbols)]
        row = [v for channel in pos for v in channel]  # (S, P) flattened
        for k in kmers:
            windows = [tuple(real[i:i + k]) for i in range(len(real) - k + 1)]
            row += [windows.count(p) / len(real) for p in itertools.product(range(symbols), repeat=k)]
        rows.append(row)
    return torch.tensor(rows)


def test_linear_term_features_are_position_one_hot_and_kmer_frequencies():
    model = build("dilated_resnet", 1, channels=8, blocks=1, linear_positions=30, linear_kmers=[1, 2]).eval()
    x = make_batch()
    feats = model.linear_term.features(model.onehot(x), padding_mask(x))
    assert feats.shape == (B, 30 * (V - 1) + (V - 1) + (V - 1) ** 2) == (B, model.linear_term.linear.in_features)
    torch.testing.assert_close(feats, _reference_features(x, 30, (1, 2)))
    three = build("dilated_resnet", 1, channels=8, blocks=1, linear_kmers=[3])
    torch.testing.assert_close(three.linear_term.features(three.onehot(x), padding_mask(x)),
                               _reference_features(x, 0, (3,)))


def test_linear_term_starts_at_zero_and_keeps_padding_invariance():
    plain = build("dilated_resnet", 2, channels=8, blocks=1).eval()
    wide = build("dilated_resnet", 2, channels=8, blocks=1, linear_positions=16, linear_kmers=[2, 3]).eval()
    x = make_batch()
    torch.testing.assert_close(wide(x), plain(x))  # same seed, same network; the term adds exactly zero at init
    with torch.no_grad():
        wide.linear_term.linear.weight.normal_()
    assert not torch.allclose(wide(x), plain(x))
    padded = F.pad(x, (0, 7))
    torch.testing.assert_close(wide(padded), wide(x))  # padding adds no position, k-mer or length
    torch.testing.assert_close(wide(onehot(x, V)), wide(x))  # one-hot input (attributions) gives the same output
    wide.reset_classifier(5)
    assert wide(x).shape == (B, 5) and wide.linear_term.linear.out_features == 5
    assert create_model("dilated_resnet", **wide.config).linear_term.linear.out_features == 5


def test_linear_term_gc_windows_are_squared_gc_fractions_of_whole_windows():
    model = build("dilated_resnet", 1, channels=8, blocks=1, linear_positions=30, linear_gc_window=9).eval()
    x = make_batch()
    feats = model.linear_term.features(model.onehot(x), padding_mask(x))
    assert feats.shape == (B, 30 * (V - 1) + 22) == (B, model.linear_term.linear.in_features)
    for b, n in enumerate(LENGTHS):
        real = x[b, :n].tolist()  # indices 1..5 = A C G T N: G and C are 2 and 3
        want = [(sum(c in (2, 3) for c in real[i:i + 9]) / 9) ** 2 if i + 9 <= n else 0.0 for i in range(22)]
        torch.testing.assert_close(feats[b, 30 * (V - 1):], torch.tensor(want))
    padded = F.pad(x, (0, 5))
    torch.testing.assert_close(model.linear_term.features(model.onehot(padded), padding_mask(padded)), feats)
    with pytest.raises(ModelError, match=r"linear_gc_window=9 reads G and C: it needs a DNA or RNA alphabet"):
        create_model("dilated_resnet", vocab_size=22, num_classes=1, linear_positions=30, linear_gc_window=9)
    with pytest.raises(ModelError, match=r"linear_gc_window=9: the windows lie in the first linear_positions=4"):
        create_model("dilated_resnet", vocab_size=V, num_classes=1, linear_positions=4, linear_gc_window=9)


def test_linear_term_refuses_more_features_than_it_can_afford():
    with pytest.raises(ModelError, match=r"linear_kmers=\[6\] give 15,625 linear features.*at most 4,096"):
        create_model("dilated_resnet", vocab_size=V, num_classes=1, linear_kmers=[6], linear_positions=0)
    with pytest.raises(ModelError, match=r"model.params.linear_kmers=\[0\]"):
        create_model("dilated_resnet", vocab_size=V, num_classes=1, linear_kmers=[0])
    with pytest.raises(ModelError, match="distinct"):
        create_model("dilated_resnet", vocab_size=V, num_classes=1, linear_kmers=[2, 2])
