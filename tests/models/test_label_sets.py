"""The label-set head (models/label_sets.py): the sets it is given, the mixture it outputs, its validation, and
how it behaves in training, fine-tuning and reloading."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from biolens.errors import ModelError
from biolens.models import create_model
from biolens.models.label_sets import LabelSetHead, mix_label_set_logits, observed_label_sets

SETS = [[0], [0, 1], [2], []]


def _model(**params: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("dilated_resnet", vocab_size=22, num_classes=3, channels=8, label_sets=SETS, **params)


def test_observed_label_sets_are_distinct_in_order_of_first_appearance_without_unknown_rows():
    y = np.array([[1, 0, 0], [1, 1, 0], [1, 0, 0], [np.nan, 1, 0], [0, 0, 1], [0, 0, 0]])
    assert observed_label_sets(y) == [[0], [0, 1], [2], []]
    with pytest.raises(ValueError, match="samples, labels"):
        observed_label_sets(np.zeros(3))


def test_the_output_is_the_logit_of_the_mixture_of_sigmoids_and_set_marginals():
    model = _model(label_set_mix=0.25).eval()
    x = torch.randint(1, 22, (5, 30))
    with torch.no_grad():
        out = model(x)
        feats = model.forward_features(x)
        z, u = model.forward_head(feats), model.label_set_head.proj(feats)
    sets = torch.tensor([[1.0, 0, 0], [1, 1, 0], [0, 0, 1], [0, 0, 0]])
    want = 0.75 * torch.sigmoid(z) + 0.25 * torch.softmax(u, dim=1) @ sets
    assert out.shape == (5, 3)
    assert torch.allclose(torch.sigmoid(out), want, atol=1e-6)
    assert model.label_set_head.parts is None  # eval mode keeps nothing for the loss


def test_the_mixture_stays_finite_and_ordered_where_both_parts_are_sure():
    z = torch.tensor([[60.0, -60.0]])
    u = torch.tensor([[80.0, -80.0]])  # all mass on the first set: {label 0}
    out = mix_label_set_logits(z, u, torch.tensor([[1.0, 0.0], [0.0, 1.0]]), 0.5)
    assert torch.isfinite(out).all() and out[0, 0] > 30 and out[0, 1] < -30


def test_training_mode_keeps_both_heads_logits_for_the_loss():
    model = _model().train()
    model(torch.randint(1, 22, (4, 30)))
    z, u = model.label_set_head.parts
    assert z.shape == (4, 3) and u.shape == (4, len(SETS)) and u.requires_grad


@pytest.mark.parametrize("sets, mix, says", [
    ([[0]], 0.5, "at least 2 label sets"),
    ([[0], [3]], 0.5, r"label_sets\[1\] = \[3\]: label indices must be distinct and in 0 … 2"),
    ([[0], [1, 1]], 0.5, "must be distinct"),
    ([[0], [0]], 0.5, "lists a label set twice"),
    ([[0], ["AMP"]], 0.5, r"label_sets\[1\] = \['AMP'\]: each label set is a list of label indices"),
    ([[0], [1]], 1.0, "label_set_mix must be between 0 and 1"),
])
def test_unusable_label_sets_are_model_errors_naming_the_field(sets, mix, says):
    with pytest.raises(ModelError, match=says):
        create_model("dilated_resnet", vocab_size=22, num_classes=3, label_sets=sets, label_set_mix=mix)


def test_a_head_over_too_many_sets_is_refused():
    with pytest.raises(ModelError, match="at most 512"):
        LabelSetHead(8, 600, [[j] for j in range(513)])


def test_set_targets_index_known_sets_and_skip_unknown_or_unlisted_ones():
    head = LabelSetHead(8, 3, SETS)
    y = torch.tensor([[1.0, 1, 0], [0, 0, 0], [0, 1, 0], [float("nan"), 0, 1]])
    index, known = head.set_targets(y)
    assert known.tolist() == [True, True, False, False]  # {1} is not a listed set; a NaN makes the set unknown
    assert index[:2].tolist() == [1, 3]


def test_the_head_is_part_of_the_head_for_freezing_and_learning_rates_and_a_new_label_space_drops_it():
    model = _model()
    assert "label_set_head" not in model.stage_names()
    head_ids = {id(p) for p in model.head_parameters()}
    assert {id(p) for p in model.label_set_head.parameters()} <= head_ids
    model.freeze("all")
    assert all(p.requires_grad for p in model.label_set_head.parameters())
    model.reset_classifier(5)
    assert model.label_set_head is None and model.config["label_sets"] == []
    assert model(torch.randint(1, 22, (2, 30))).shape == (2, 5)


def test_the_config_rebuilds_the_same_model_from_its_state_dict():
    model = _model().eval()
    rebuilt = create_model("dilated_resnet", **model.config).eval()
    rebuilt.load_state_dict(model.state_dict())
    x = torch.randint(1, 22, (3, 30))
    with torch.no_grad():
        assert torch.equal(model(x), rebuilt(x))
    assert not any(k.endswith("sets") for k in model.state_dict())  # the set matrix comes from the params
