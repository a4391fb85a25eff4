"""Starting weights for any model, and fine-tuning set-up (guide 4.5), shared by sequence and image tasks.

``model.weights`` is a state dict (``.safetensors`` / ``.pt``) or a biolens run folder: a trained run of any task
kind, or a ``biolens pretrain`` run (its ``encoder.*`` tensors; the masked-token head is dropped). A run folder
brings its architecture (``config.yaml``) and input contract (``contract.json``) along, so a fine-tune can default
to the same model and refuse, in one line, weights made for another alphabet or architecture. Weights are never
part of ``model.params``: a fine-tuned run reloads offline from its own ``model.safetensors``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from biolens.bundle import MANIFEST, read_yaml, verify_bundle
from biolens.errors import BiolensError, ConfigError, ModelError
from biolens.models.base import HEAD_MODULES
from biolens.models.pretrain import ENCODER_PREFIX, HEAD_PREFIX

log = logging.getLogger(__name__)

PRETRAIN_FILE = "pretrain.json"  # marks a `biolens pretrain` run folder (objective, masking, data)


def read_state(path: Path) -> dict[str, Tensor]:
    """Tensors of a ``.safetensors`` / ``.pt`` state dict, or of a run folder's ``model.safetensors`` (nothing
    unpickled: ``torch.load(weights_only=True)``); a biolens checkpoint's ``model`` entry is used."""
    if path.is_dir():
        path = path / "model.safetensors"
    if not path.is_file():
        raise ModelError(f"model.weights={path}: file not found; give a .safetensors/.pt state dict or a biolens run folder")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)  # tensors only: nothing is unpickled
    except Exception as e:  # noqa: BLE001  many formats, one message
        raise ModelError(f"model.weights={path}: cannot read a state dict ({str(e).splitlines()[0][:100]})") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]  # a biolens checkpoint
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ModelError(f"model.weights={path}: not a state dict of tensors")
    return state


def load_matching(model: nn.Module, state: dict[str, Tensor], where: str) -> None:
    """Load ``state`` into ``model`` by name. The classifier head is re-initialised when its shape differs (another
    number of classes); any other shape mismatch or missing tensor is a ModelError listing keys."""
    own = model.state_dict()
    head = {f"{name}.{k}" for name in HEAD_MODULES if getattr(model, name, None) is not None
            for k in getattr(model, name).state_dict()}
    shared = [k for k in own if k in state]
    if not shared:
        raise ModelError(f"{where}: no parameter names match the model {type(model).__name__}; is it weights for another architecture?")
    mismatched = [k for k in shared if state[k].shape != own[k].shape and k not in head]
    if mismatched:
        shown = ", ".join(f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in mismatched[:5])
        more = f" and {len(mismatched) - 5} more" if len(mismatched) > 5 else ""
        raise ModelError(f"{where}: {len(mismatched)} weight shape(s) do not match the model: {shown}{more}; "
                         "use the same architecture and model.params as the weights")
    missing = [k for k in own if k not in state and k not in head and not k.endswith("num_batches_tracked")]
    if missing:
        raise ModelError(f"{where}: {len(missing)} model weight(s) missing from the file: {', '.join(missing[:5])}; "
                         "use the same architecture and model.params as the weights")
    load = {k: state[k] for k in shared if state[k].shape == own[k].shape}
    model.load_state_dict(load, strict=False)
    reset = sorted(head - set(load))
    log.info("loaded %d tensors from %s%s", len(load), where, "; new classifier head" if reset else "")


@dataclass
class StartingWeights:
    """What ``model.weights`` holds: tensors, plus the architecture and contract when it is a run folder."""

    path: Path
    state: dict[str, Tensor]
    model_name: str | None = None
    params: dict[str, Any] = field(default_factory=dict)  # without vocab_size / num_classes / in_channels
    task: str | None = None
    alphabet: str | None = None
    max_len: int | None = None
    pretrained: bool = False  # a `biolens pretrain` encoder

    @property
    def where(self) -> str:
        return f"model.weights={self.path}"


def recorded_model(path: str | Path) -> str | None:
    """The architecture a run folder was made with (``config.yaml``), or None for a plain state-dict file."""
    p = Path(path)
    if p.is_dir() and (p / "config.yaml").is_file():
        name = (read_yaml(p / "config.yaml").get("model") or {}).get("name")
        return str(name) if name else None
    return None


def read_starting_weights(path: str | Path) -> StartingWeights:
    """Read ``model.weights``: a run folder (checksums verified when it has a manifest) or a state-dict file."""
    p = Path(path)
    if not p.is_dir():
        return StartingWeights(p, read_state(p))
    try:
        if (p / MANIFEST).is_file():
            verify_bundle(p)
        config = read_yaml(p / "config.yaml") if (p / "config.yaml").is_file() else {}
        contract = json.loads((p / "contract.json").read_text()) if (p / "contract.json").is_file() else {}
    except (BiolensError, ValueError) as e:
        raise ConfigError(f"model.weights={p}: {str(e).splitlines()[0]}") from None
    state = read_state(p)
    pretrained = (p / PRETRAIN_FILE).is_file()
    if pretrained:
        # the encoder's tensors; its classifier head was never trained (a fresh one is made for the fine-tune)
        state = {k[len(ENCODER_PREFIX):]: v for k, v in state.items()
                 if k.startswith(ENCODER_PREFIX) and not k.startswith(ENCODER_PREFIX + "head.")}
    model = config.get("model") or {}
    params = {k: v for k, v in (model.get("params") or {}).items() if k not in ("vocab_size", "num_classes", "in_channels")}
    return StartingWeights(p, state, model_name=model.get("name"), params=params, task=contract.get("task"),
                           alphabet=contract.get("alphabet"), max_len=contract.get("max_len"), pretrained=pretrained)


def check_sequence_start(start: StartingWeights, model_name: str, alphabet: str) -> None:
    """A ConfigError (one line, naming ``model.weights``) unless the weights fit a sequence model on this data."""
    if start.task is not None and start.task != "sequence":
        raise ConfigError(f"{start.where}: a {start.task} run; a sequence model starts from sequence weights "
                          "(`biolens pretrain` or a sequence run)")
    if start.alphabet is not None and start.alphabet != alphabet:
        raise ConfigError(f"{start.where}: alphabet {start.alphabet} does not match the data ({alphabet}); pretrain on "
                          f"{alphabet} sequences (biolens pretrain --data ...) or set data.alphabet={start.alphabet} "
                          f"if the data are {start.alphabet}")
    if start.model_name is not None and start.model_name != model_name:
        raise ConfigError(f"{start.where}: the weights are a {start.model_name} but model.name is {model_name}; drop "
                          f"model.name (the weights' architecture is used) or pretrain a {model_name}")
    if start.pretrained and any(k.startswith(HEAD_PREFIX) for k in start.state):
        raise ConfigError(f"{start.where}: damaged pretraining run (masked-token head under the encoder's names)")


def set_up_finetuning(model: nn.Module, *, freeze_until: str | None, head_epochs: int, backbone_lr_scale: float | None,
                      epochs: int, has_weights: bool, weights_scale: float = 0.1) -> None:
    """Freezing (``"all"`` while only the head trains for ``head_epochs``, then ``StagedUnfreeze`` thaws down to
    ``freeze_until``) and discriminative LRs: backbone × ``backbone_lr_scale`` (default ``weights_scale`` with
    starting weights, else 1).

    ``weights_scale`` is the task's default: 0.1 for images (ImageNet backbones, guide 4.5), 1 for sequences, where a
    small masked-token-pretrained encoder has to adapt (on 10% of splice's labels, validation accuracy 0.79-0.88
    with 1 against 0.70-0.79 with 0.1 and 0.76-0.79 from scratch; BENCHMARKS.md)."""
    if head_epochs >= epochs:
        raise ConfigError(f"model.head_epochs={head_epochs} leaves no epoch to fine-tune (train.epochs={epochs})")
    model.freeze("all" if head_epochs else freeze_until)
    # discriminative LRs (guide 4.5): the optimizer asks the model for param_groups(lr)
    model.backbone_lr_scale = backbone_lr_scale if backbone_lr_scale is not None else (
        weights_scale if has_weights else 1.0)
