"""doctor model: receptive fields with known answers, a detached layer, NaN weights, exploding gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from biolens.doctor.model import check_model, doctor_model, receptive_field
from biolens.tasks import task_class
from biolens.errors import ConfigError
from biolens.models import create_model
from biolens.models.image import ResidualBlock


def test_rf_three_kernel3_layers_is_7():
    m = nn.Sequential(*[nn.Conv1d(4, 4, 3, padding=1) for _ in range(3)])
    rf, layers, _ = receptive_field(m, torch.randn(1, 4, 50))
    assert rf == 7
    assert [r.rf for r in layers] == [3, 5, 7]


def test_rf_dilated_stack_1_2_4_is_15():
    m = nn.Sequential(*[nn.Conv1d(4, 4, 3, padding=d, dilation=d) for d in (1, 2, 4)])
    assert receptive_field(m, torch.randn(1, 4, 64))[0] == 15


def test_rf_guide_simple_cnn_stages():
    """Guide 4.2: Conv1 3, Conv2 5, MaxPool 6, Conv3 10, Conv4 14, MaxPool 16; then (jump 4) 24, 32, 36 … 76.

    (The guide's table lists 32 for its 'Conv5'; with the accumulated stride 4 of its own recurrence the fifth
    conv gives 16 + 2·4 = 24 and the sixth 32.)
    """
    model = create_model("simple_cnn", in_channels=3, num_classes=2)
    rf, layers, _ = receptive_field(model, torch.randn(1, 3, 224, 224))
    assert [r.rf for r in layers[:6]] == [3, 5, 6, 10, 14, 16]
    stage_end = {r.name.split(".")[0]: r.rf for r in layers}
    assert stage_end == {"stage1": 6, "stage2": 16, "stage3": 36, "stage4": 76}
    assert layers[-1].jump == 16 and rf == 76


def test_rf_parallel_branches_do_not_add_up():
    # residual shortcut (1x1, stride 2) runs beside conv1/conv2: 3 → 7 at jump 2, then 7 + 4 + 4 = 15
    m = nn.Sequential(ResidualBlock(4, 8, stride=2), ResidualBlock(8, 8))
    assert receptive_field(m, torch.randn(1, 4, 32, 32))[0] == 15
    # motif_cnn: parallel kernels 3/7/11 on one embedding, then max pool 2 → 11 + 1
    seq = create_model("motif_cnn", vocab_size=6, num_classes=2, embedding_dim=8, filters=4)
    assert receptive_field(seq, torch.randint(1, 5, (2, 40)))[0] == 12


def test_rf_default_sequence_model_matches_its_docstring():
    model = create_model("dilated_resnet", vocab_size=6, num_classes=2)
    assert receptive_field(model, torch.randint(1, 5, (2, 100)))[0] == 21  # "stem 15, then 2 * (1 + 2)"


class Detached(nn.Module):
    """A conv whose output is detached before the head: it never learns."""

    def __init__(self):
        super().__init__()
        self.features = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.features(x).detach().mean(dim=(2, 3)))


def test_detached_layer_is_named():
    report = check_model(Detached(), torch.randn(4, 1, 16, 16))
    f = report.get("gradient flow")
    assert f.status == "fail"
    assert "features.weight" in f.detail and "features.bias" in f.detail and "head" not in f.detail
    assert ".detach()" in f.fix
    assert report.exit_code() == 1


def test_nan_weight_and_exploding_gradient():
    m = nn.Sequential(nn.Conv1d(4, 4, 3), nn.Flatten(), nn.LazyLinear(2))
    m(torch.randn(2, 4, 10))
    with torch.no_grad():
        m[0].weight[0, 0, 0] = float("nan")
    report = check_model(m, torch.randn(2, 4, 10), kind="sequence")
    assert report.get("weights finite").status == "fail" and "0.weight" in report.get("weights finite").detail

    class Loud(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(8, 2)

        def forward(self, x):
            return self.lin(x) * 1e5

    loud = check_model(Loud(), torch.randn(4, 8))
    assert loud.get("gradient size").status == "warn" and "lin.weight" in loud.get("gradient size").detail


def test_registered_models_are_healthy_with_stage_table():
    report = doctor_model("simple_cnn", input_shape="1,32,32")
    assert report.status == "pass", [(f.name, f.detail) for f in report.findings]
    stages = report.tables["stages"]
    assert [s["stage"] for s in stages] == ["stage1", "stage2", "stage3", "stage4", "head"]
    assert stages[0]["output"] == "4×32×16×16" and stages[3]["rf"] == 76
    assert sum(s["params"] for s in stages) == report.get("parameters").data["params"]


def test_sequence_receptive_field_warnings():
    long = doctor_model("dilated_resnet", input_shape="2000")
    assert long.get("receptive field").status == "warn" and "21 bases" in long.get("receptive field").detail
    motif = doctor_model("dilated_resnet", input_shape="100", motif_length=30)
    assert motif.get("receptive field").status == "fail"
    rnn = doctor_model("cnn_bilstm_attention", input_shape="2,2000",
                       params={"embedding_dim": 8, "filters": 4, "hidden_dim": 8, "attention_dim": 4, "head_hidden": 4})
    assert rnn.get("receptive field").status == "pass"  # the BiLSTM sees the whole sequence


def test_parse_shape():
    seq, img = task_class("sequence"), task_class("image")
    assert seq.parse_shape("200") == (4, 200)
    assert img.parse_shape("3,224,224") == (4, 3, 224, 224)
    assert img.parse_shape("1,3,8,8") == (2, 3, 8, 8)
    with pytest.raises(ConfigError, match="C,H,W"):
        img.parse_shape("200")
    with pytest.raises(ConfigError, match="integers"):
        seq.parse_shape("a,b")
