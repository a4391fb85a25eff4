"""The BiGRU baseline is padding-invariant in both directions; every sequence model can be frozen by stage for
fine-tuning, with frozen batch norm kept in eval mode and discriminative learning rates."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from biolens.errors import ModelError
from biolens.models import create_model, list_models
from biolens.models.sequence_gru import reverse_within_length


def test_bigru_padding_never_reaches_real_positions():
    torch.manual_seed(0)
    model = create_model("bigru", vocab_size=6, num_classes=2, hidden_dim=8, embedding_dim=4).eval()
    x = torch.randint(1, 6, (3, 20))
    x[1, 12:] = 0
    x[2, 3:] = 0
    with torch.no_grad():
        full = model(x)
        torch.testing.assert_close(model(F.pad(x, (0, 30))), full, atol=1e-6, rtol=0)
        torch.testing.assert_close(model(x[2:3, :3]), full[2:3], atol=1e-6, rtol=0)
    h = torch.arange(12.0).view(2, 6, 1)
    lengths = torch.tensor([6, 4])
    assert reverse_within_length(h, lengths)[1, :, 0].tolist() == [9, 8, 7, 6, 10, 11]
    torch.testing.assert_close(reverse_within_length(reverse_within_length(h, lengths), lengths), h)


@pytest.mark.parametrize("name", list_models("sequence"))
def test_every_sequence_model_freezes_by_stage(name):
    model = create_model(name, vocab_size=6, num_classes=2)
    stages = model.stage_names()
    assert stages and "head" not in stages
    model.freeze("all")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {n for n, _ in model.named_parameters() if n.startswith("head.")}
    model.train()
    head = {id(m) for m in model.head.modules()}  # the head trains (promoter_predictor's has a batch norm)
    assert all(not m.training for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d) and id(m) not in head)
    model.freeze(stages[-1])  # everything before the last stage
    last = dict(model.stage_modules())[stages[-1]]
    assert all(p.requires_grad for p in last.parameters())
    model.freeze(None)
    assert all(p.requires_grad for p in model.parameters())
    with pytest.raises(ModelError, match="cannot freeze until 'nope'"):
        model.freeze("nope")


def test_discriminative_lr_groups_only_when_scaled():
    model = create_model("transformer", vocab_size=6, num_classes=2, dim=16, heads=2)
    assert len(model.param_groups(1e-3)) == 1  # as before: one group at the train LR
    model.backbone_lr_scale = 0.1
    groups = {g["name"]: g for g in model.param_groups(1e-3)}
    assert groups["backbone"]["lr"] == pytest.approx(1e-4) and groups["head"]["lr"] == 1e-3
    assert sum(len(g["params"]) for g in groups.values()) == len(list(model.parameters()))
