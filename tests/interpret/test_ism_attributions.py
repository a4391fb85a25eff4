"""ISM against single forward passes, batch-size invariance; captum attributions: completeness and parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from biolens.errors import ConfigError
from biolens.interpret.attributions import attribute, make_baseline, onehot_input, position_scores
from biolens.interpret.ism import ism, ism_batch, ism_importance
from biolens.models import create_model
from tests.interpret.conftest import CNN_PARAMS


@pytest.fixture
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("dilated_resnet", vocab_size=6, num_classes=2, **CNN_PARAMS).eval()


@pytest.fixture
def gc_model() -> torch.nn.Module:
    torch.manual_seed(0)
    params = {"embedding_dim": 8, "filters": 8, "kernel_sizes": [3], "hidden_dim": 8, "num_layers": 1,
              "attention_dim": 8, "gc_dim": 4, "head_hidden": 8}
    return create_model("promoter_predictor", vocab_size=6, num_classes=2, **params).eval()


def _x() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.integers(1, 5, size=(3, 14)).astype(np.uint8)
    x[1, 10:] = 0  # padded row
    x[2, 5] = 5  # an N
    return x, np.array([14, 10, 14])


def test_ism_equals_single_forward_passes(model) -> None:  # noqa: ANN001
    x, lengths = _x()
    effects = ism(model, x[1], 10, target=1, n_symbols=4, batch_size=7)
    assert effects.shape == (10, 4)
    with torch.no_grad():
        ref = model(torch.as_tensor(x[1:2, :10]))[0, 1]
        for p, s in [(0, 1), (4, 3), (9, 4)]:
            mutant = x[1:2, :10].copy()
            mutant[0, p] = s
            expected = model(torch.as_tensor(mutant))[0, 1] - ref
            assert effects[p, s - 1] == pytest.approx(float(expected), abs=1e-5)
    assert (effects[np.arange(10), x[1, :10] - 1] == 0).all()  # the reference symbol: exactly 0


def test_ism_batch_invariance_padding_and_importance(model) -> None:  # noqa: ANN001
    x, lengths = _x()
    a = ism_batch(model, x, lengths, np.array([1, 1, 0]), 4, batch_size=1024)
    b = ism_batch(model, x, lengths, np.array([1, 1, 0]), 4, batch_size=5)
    np.testing.assert_allclose(a, b, atol=1e-5)
    for i in range(3):  # grouped by length, batched across sequences = one sequence at a time
        single = ism(model, x[i], int(lengths[i]), int([1, 1, 0][i]), 4)
        np.testing.assert_allclose(a[i, : lengths[i]], single, atol=1e-5)
    assert np.isnan(a[1, 10:]).all() and not np.isnan(a[1, :10]).any()
    assert (a[2, 5] != 0).sum() >= 3  # the N position: every symbol is a real substitution
    imp = ism_importance(a, x, 4)
    p = 3
    assert imp[0, p] == pytest.approx(-a[0, p].sum() / 3, abs=1e-6)
    assert imp[2, 5] == pytest.approx(-a[2, 5].mean(), abs=1e-6)
    assert (imp[1, 10:] == 0).all()


def test_ism_with_gc_input(gc_model) -> None:  # noqa: ANN001
    x, lengths = _x()
    effects = ism(gc_model, x[0], 14, target=0, n_symbols=4)
    assert effects.shape == (14, 4) and np.isfinite(effects).all()


def test_ig_completeness_against_captum_delta(model) -> None:  # noqa: ANN001
    x, lengths = _x()
    attr = attribute(model, x, np.array([1, 0, 1]), "ig", 6, 4, n_steps=64)
    assert attr.shape == (3, 5, 14)
    inp = onehot_input(x, 6)
    base = make_baseline(inp, 4, "uniform")
    with torch.no_grad():
        diff = (model(inp) - model(base)).numpy()[np.arange(3), [1, 0, 1]]
    np.testing.assert_allclose(attr.sum(axis=(1, 2)), diff, atol=2e-2 * np.abs(diff).max() + 1e-3)
    assert (attr[1, :, 10:] == 0).all()  # padding: input and baseline both zero


def test_baselines() -> None:
    x, _ = _x()
    inp = onehot_input(x, 6)
    base = make_baseline(inp, 4)
    assert torch.allclose(base[0, :4], torch.full((4, 14), 0.25)) and (base[:, 4] == 0).all()
    assert (base[1, :, 10:] == 0).all()
    assert (make_baseline(inp, 4, "zero") == 0).all()
    with pytest.raises(ConfigError, match="uniform or zero"):
        make_baseline(inp, 4, "shuffled")


def test_inputxgrad_and_saliency_match_autograd(model) -> None:  # noqa: ANN001
    x, _ = _x()
    inp = onehot_input(x, 6).requires_grad_(True)
    model(inp)[:, 1].sum().backward()
    grad = inp.grad.numpy()
    ixg = attribute(model, x, np.array([1, 1, 1]), "inputxgrad", 6, 4)
    np.testing.assert_allclose(ixg, grad * inp.detach().numpy(), atol=1e-6)
    sal = attribute(model, x, np.array([1, 1, 1]), "saliency", 6, 4)
    np.testing.assert_allclose(sal, np.abs(grad), atol=1e-6)
    per_pos = position_scores(sal, x, "saliency")
    assert per_pos[0, 0] == pytest.approx(abs(grad[0, x[0, 0] - 1, 0]))
    assert (per_pos[1, 10:] == 0).all()
    np.testing.assert_allclose(position_scores(ixg, x, "inputxgrad"), ixg.sum(axis=1), atol=1e-7)
    with pytest.raises(ConfigError, match="expected one of ig, inputxgrad, saliency"):
        attribute(model, x, np.array([1, 1, 1]), "deeplift", 6, 4)


def test_attribute_runs_in_eval_mode_and_restores_the_callers_mode(model) -> None:  # noqa: ANN001
    x, _ = _x()
    expected = attribute(model, x, np.array([1, 0, 1]), "inputxgrad", 6, 4)
    model.train()  # batch norm in train mode would use batch statistics and change the gradients
    got = attribute(model, x, np.array([1, 0, 1]), "inputxgrad", 6, 4)
    assert model.training  # restored
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert all(p.grad is None for p in model.parameters())  # captum differentiates the input only
