"""The model registry: names, defaults, errors."""

from __future__ import annotations

import pytest
from torch import nn

from biolens.errors import ModelError
from biolens.models import (
    default_model,
    SequenceClassifier,
    create_model,
    list_models,
    model_info,
    register_model,
)
from biolens.models import registry


@pytest.fixture
def scratch_registry(monkeypatch):
    """A throwaway copy of the registry, so test registrations do not leak."""
    list_models()  # make sure the built-ins are registered before copying
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


class _Tiny(SequenceClassifier):
    def __init__(self, vocab_size: int, num_classes: int, width: int = 8):
        super().__init__(vocab_size, num_classes, width=width)
        self.num_features = width
        self.head = nn.Linear(width, num_classes)


def test_builtin_sequence_models_are_registered():
    names = list_models(task="sequence")
    assert names == sorted(names)
    assert {"motif_cnn", "cnn_bilstm_attention", "promoter_predictor", "dilated_resnet"} <= set(names)
    assert list_models(task="no-such-task") == []
    assert set(names) <= set(list_models())


def test_default_and_declared_inputs_outputs():
    assert default_model("sequence") == "dilated_resnet" and default_model("image") == "resnet"
    assert model_info(default_model("sequence")).default
    assert [n for n in list_models(task="sequence") if model_info(n).default] == [default_model("sequence")]
    spec = model_info("promoter_predictor")
    assert spec.task == "sequence"
    assert spec.aux_inputs == ("gc",)
    assert spec.extra_outputs == ("attention",)
    assert spec.attention_stride == 2
    assert spec.as_dict()["aux_inputs"] == ["gc"]
    assert model_info("dilated_resnet").aux_inputs == ()
    assert model_info("dilated_resnet").arguments()["channels"] == 32


def test_register_and_create(scratch_registry):
    register_model("tiny_test", task="sequence", description="tiny")(_Tiny)
    assert "tiny_test" in list_models(task="sequence")
    model = create_model("tiny_test", vocab_size=6, num_classes=2, width=4)
    assert isinstance(model, _Tiny) and model.config == {"vocab_size": 6, "num_classes": 2, "width": 4}


def test_duplicate_name_raises(scratch_registry):
    register_model("tiny_test", task="sequence", description="tiny")(_Tiny)
    with pytest.raises(ValueError, match="already registered"):
        register_model("tiny_test", task="sequence", description="again")(_Tiny)
    with pytest.raises(ValueError, match="already registered"):
        register_model("dilated_resnet", task="sequence", description="clash")(_Tiny)


def test_second_default_for_a_task_raises(scratch_registry):
    with pytest.raises(ValueError, match="already has a default"):
        register_model("tiny_default", task="sequence", description="tiny", default=True)(_Tiny)


def test_unknown_name_lists_known_models():
    with pytest.raises(ModelError) as info:
        create_model("no_such_model", vocab_size=6, num_classes=2)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("unknown model 'no_such_model'; known models: ")
    for name in list_models():
        assert name in message
    with pytest.raises(ModelError, match="known models"):
        model_info("no_such_model")


def test_bad_kwarg_names_model_and_accepted_arguments():
    with pytest.raises(ModelError) as info:
        create_model("dilated_resnet", vocab_size=6, num_classes=2, chanels=64)
    message = str(info.value)
    assert "dilated_resnet" in message and "chanels" in message
    assert "accepted arguments: vocab_size, num_classes, channels, blocks" in message


def test_missing_required_argument_is_model_error():
    with pytest.raises(ModelError, match="vocab_size"):
        create_model("motif_cnn", num_classes=2)


def test_invalid_hyperparameter_value_is_model_error():
    with pytest.raises(ModelError, match="kernel_sizes"):
        create_model("motif_cnn", vocab_size=6, num_classes=2, kernel_sizes=[4])
    with pytest.raises(ModelError, match="vocab_size"):
        create_model("dilated_resnet", vocab_size=1, num_classes=2)
