"""First-layer filters → PWMs → MEME, and back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from biolens.data.alphabets import DNA
from biolens.errors import ModelError
from biolens.interpret.filters import export_filters, filter_pwms, first_layer_activations
from biolens.interpret.motifs import parse_meme
from biolens.models import create_model
from tests.interpret.conftest import planted_set


def _tata_detector() -> torch.nn.Module:
    """dilated_resnet whose stem filter 0 is a hand-set TATAAA detector (kernel 7: TATAAA plus one free base)."""
    torch.manual_seed(0)
    model = create_model("dilated_resnet", vocab_size=6, num_classes=2, channels=4, blocks=1, stem_kernel=7,
                         position_bins=0).eval()
    w = torch.full((5, 7), -1.0)
    for j, c in enumerate("TATAAA"):
        w["ACGT".index(c), j] = 1.0
    w[:, 6] = 0.0
    with torch.no_grad():
        model.stem[0].weight[0] = w
    return model


def test_hand_set_filter_becomes_tata_pwm() -> None:
    model = _tata_detector()
    data = planted_set(60, seed=3)
    pwms = filter_pwms(model, data.x, DNA.vocab_size, 4)
    name, probs, nsites = next(p for p in pwms if p[0] == "stem_0_f0")
    assert probs.shape == (7, 4)
    assert "".join("ACGT"[i] for i in probs[:6].argmax(axis=1)) == "TATAAA"
    assert (probs[:6].max(axis=1) > 0.9).all()
    assert nsites >= 30  # every planted copy (30 positives) is aligned


def test_motif_extractor_filters_and_meme_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_model("motif_cnn", vocab_size=6, num_classes=2, embedding_dim=4, filters=3,
                         kernel_sizes=[3, 5]).eval()
    data = planted_set(40, seed=4)
    acts = first_layer_activations(model, torch.as_tensor(data.x))
    assert [n for n, _, _ in acts] == ["extractor.convs.0", "extractor.convs.1"]  # both read the embedded input
    path = tmp_path / "filters.meme"
    n = export_filters(model, data.x, DNA.vocab_size, "ACGT", path)
    back = parse_meme(path)
    pwms = filter_pwms(model, data.x, DNA.vocab_size, 4)
    assert n == len(back) == len(pwms) == 6
    assert [m.width for m in back] == [3, 3, 3, 5, 5, 5]
    for m, (name, probs, _) in zip(back, pwms):
        assert m.name == name
        np.testing.assert_allclose(m.probs, probs, atol=1e-6)


def test_model_without_conv_is_an_error() -> None:
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(2))
    with pytest.raises(ModelError, match="has no Conv1d layer"):
        first_layer_activations(model, torch.ones(2, 4, 5))
