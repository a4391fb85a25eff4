"""Models made of trained models: an ensemble of runs, and test-time augmentation (TTA) around any model.

Both are ordinary ``nn.Module`` graphs, so predict, evaluate, serve and export treat them like any model, and an
ONNX export of an ensemble (with or without TTA) is one graph. Both return the **log** of the averaged class
probabilities: the contract's softmax (temperature 1) turns them back into exactly those probabilities.

- :class:`Ensemble` (registered as ``ensemble``; built by ``biolens ensemble`` and ``biolens cv``, never trained):
  ``log Σ_i w_i softmax(z_i / T_i)`` over members with the same input contract, ``T_i`` each member's own
  calibrated temperature.
- :class:`TestTimeAugmentation`: the mean probability over views of the input the training augmentation used —
  the reverse complement of a double-stranded sequence, the horizontal mirror of an image.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from biolens.contract import TTA_VIEWS
from biolens.data.augment import reverse_complement
from biolens.errors import ModelError
from biolens.models.registry import create_model, register_model


def _member_inputs(model: nn.Module, aux: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k: aux[k] for k in getattr(model, "aux_inputs", ()) if k in aux}


@register_model("ensemble", task="ensemble",
                description="weighted mean of the class probabilities of trained runs (biolens ensemble / cv)")
class Ensemble(nn.Module):
    """Members rebuilt from their configs: ``members`` = ``[{"name", "params", "temperature"}, …]``."""

    aux_inputs: tuple[str, ...] = ()  # an instance takes its members' (set in __init__)
    extra_outputs: tuple[str, ...] = ()
    transfer = False  # the bundle's data config is the members' resolved one: no "auto" choice is left to make

    def __init__(self, members: list[dict[str, Any]], weights: list[float] | None = None,
                 output: str = "softmax"):
        super().__init__()
        if output not in OUTPUTS:
            raise ModelError(f"model.params.output {output!r}: one of {', '.join(OUTPUTS)}")
        if not isinstance(members, list) or len(members) < 2:
            raise ModelError("an ensemble needs at least 2 members (model.params.members)")
        built = []
        for i, m in enumerate(members):
            if not isinstance(m, dict) or "name" not in m:
                raise ModelError(f"model.params.members[{i}] needs a name and params")
            if m["name"] == "ensemble":
                raise ModelError(f"model.params.members[{i}] is itself an ensemble; list its members instead")
            built.append(create_model(m["name"], **dict(m.get("params") or {})))
        weights = [1.0] * len(members) if weights is None else [float(w) for w in weights]
        if len(weights) != len(members) or any(not math.isfinite(w) or w <= 0 for w in weights):
            raise ModelError(f"model.params.weights: {len(members)} positive numbers needed, got {weights}")
        temps = [float(m.get("temperature", 1.0)) for m in members]
        if any(not math.isfinite(t) or t <= 0 for t in temps):
            raise ModelError(f"model.params.members: temperatures must be positive, got {temps}")
        kinds = {getattr(m, "task", None) for m in built}
        classes = {getattr(m, "num_classes", None) for m in built}
        if len(kinds) != 1 or len(classes) != 1:
            raise ModelError(f"ensemble members differ in task kind {sorted(map(str, kinds))} or number of classes "
                             f"{sorted(map(str, classes))}; combine runs trained on the same data")
        self.members = nn.ModuleList(built)
        total = sum(weights)
        self.register_buffer("log_weights", torch.log(torch.tensor([w / total for w in weights])), persistent=False)
        self.register_buffer("temperatures", torch.tensor(temps), persistent=False)
        self.output = output
        # regression members trained on their own standardization: scale/shift map each member's standardized
        # output onto the first member's (the ensemble contract's) standardization
        scales = [list(m.get("scale") or []) for m in members]
        shifts = [list(m.get("shift") or []) for m in members]
        n_out = getattr(built[0], "num_classes", 1)
        scale = torch.tensor([s or [1.0] * n_out for s in scales], dtype=torch.float32)
        shift = torch.tensor([s or [0.0] * n_out for s in shifts], dtype=torch.float32)
        if scale.shape != (len(members), n_out) or shift.shape != (len(members), n_out):
            raise ModelError(f"model.params.members: scale and shift need {n_out} values per member")
        self.register_buffer("scale", scale, persistent=False)
        self.register_buffer("shift", shift, persistent=False)
        self.task = kinds.pop()
        self.num_classes = classes.pop()
        self.aux_inputs = tuple(dict.fromkeys(a for m in built for a in getattr(m, "aux_inputs", ())))
        self.cuda_precision = "fp32"
        for attr in ("vocab_size", "in_channels"):
            if hasattr(built[0], attr):
                setattr(self, attr, getattr(built[0], attr))
        self._config = {"members": [{"name": m["name"], "params": dict(m.get("params") or {}), "temperature": t,
                                     **({"scale": sc, "shift": sh} if sc or sh else {})}
                                    for m, t, sc, sh in zip(members, temps, scales, shifts)],
                        "weights": [w / total for w in weights], "output": output}

    @property
    def config(self) -> dict[str, Any]:
        return {"members": [dict(m) for m in self._config["members"]], "weights": list(self._config["weights"]),
                "output": self.output}

    def parts(self) -> list[tuple[float, nn.Module]]:
        """``(weight, member)`` pairs, for explanations computed per member (Grad-CAM)."""
        return [(float(w), m) for w, m in zip(self.log_weights.exp().tolist(), self.members)]

    def forward(self, x: Tensor, **aux: Tensor) -> Tensor:
        outs = torch.stack([m(x, **_member_inputs(m, aux)).float() for m in self.members], dim=0)  # (M, B, C)
        if self.output == "identity":  # regression values, moved onto the first member's standardization
            outs = outs * self.scale[:, None, :] + self.shift[:, None, :]
        elif self.output == "log":  # Poisson log-rates, likewise (only the scale moves)
            outs = outs + torch.log(self.scale)[:, None, :]
        else:
            outs = outs / self.temperatures.view(-1, 1, 1)
        return combine(outs, self.log_weights, self.output)


OUTPUTS = ("softmax", "sigmoid", "identity", "log")


def output_kind(target_type: str, link: str | None = None) -> str:
    """How an ensemble or TTA combines the outputs of a run of ``target_type``: mean probability (softmax or
    sigmoid, returned as logits) or mean value (identity; log for a log link)."""
    if target_type == "multilabel":
        return "sigmoid"
    if target_type == "regression":
        return "log" if link == "log" else "identity"
    return "softmax"


def combine(z: Tensor, log_weights: Tensor, output: str) -> Tensor:
    """Logits ``(B, C)`` of the weighted mean probability of stacked logits ``z`` ``(M, B, C)`` (softmax per row or
    sigmoid per label), or the weighted mean of values (identity)."""
    w = log_weights.view(-1, 1, 1)
    if output == "softmax":
        return torch.logsumexp(F.log_softmax(z, dim=-1) + w, dim=0)
    if output == "sigmoid":  # log p and log(1 − p) of the mean probability: its logit, stable at both ends
        log_p = torch.logsumexp(F.logsigmoid(z) + w, dim=0)
        log_q = torch.logsumexp(F.logsigmoid(-z) + w, dim=0)
        return log_p - log_q
    if output == "log":
        return torch.logsumexp(z + w, dim=0)
    return (z * w.exp()).sum(dim=0)


def _rc_onehot(x: Tensor, table: Tensor) -> Tensor:
    """Reverse complement of a right-padded one-hot batch ``(B, V-1, L)``."""
    width = x.shape[-1]
    lengths = x.ne(0).any(dim=1).sum(dim=1)
    src = lengths[:, None] - 1 - torch.arange(width, device=x.device)[None, :]
    perm = (table[1:x.shape[1] + 1].long() - 1).clamp(min=0)  # channel c is index c+1
    out = torch.gather(x[:, perm, :], 2, src.clamp(min=0)[:, None, :].expand(-1, x.shape[1], -1))
    return torch.where(src[:, None, :] >= 0, out, torch.zeros_like(out))


class TestTimeAugmentation(nn.Module):
    """The mean over the identity and the given views, combined as the run's outputs are (``combine``): the log of
    the mean softmax for classifiers, the logit of the mean sigmoid for multi-label runs, the mean value for
    regression."""

    __test__ = False  # not a pytest class

    def __init__(self, model: nn.Module, views: list[str], complement_table: Tensor | None = None,
                 output: str = "softmax"):
        super().__init__()
        if output not in OUTPUTS:
            raise ModelError(f"test-time augmentation output {output!r}: one of {', '.join(OUTPUTS)}")
        self.output = output
        kind = getattr(model, "task", None)
        known = TTA_VIEWS.get(kind, ())
        bad = [v for v in views if v not in known]
        if bad or not views:
            raise ModelError(f"test-time augmentation {views} for a {kind} model; known views: "
                             f"{', '.join(known) or 'none'}")
        if "reverse_complement" in views and complement_table is None:
            raise ModelError("the reverse_complement view needs the alphabet's complement table")
        self.model, self.views = model, list(views)
        if complement_table is not None:
            self.register_buffer("table", complement_table.clone().to(torch.int64), persistent=False)
        for attr in ("task", "num_classes", "aux_inputs", "vocab_size", "in_channels", "cuda_precision"):
            if hasattr(model, attr):
                setattr(self, attr, getattr(model, attr))

    def parts(self) -> list[tuple[float, nn.Module]]:
        return [(1.0, self.model)]

    def _view(self, name: str, x: Tensor) -> Tensor:
        if name == "hflip":
            return torch.flip(x, dims=[-1])
        if x.is_floating_point():
            return _rc_onehot(x, self.table)
        lengths = x.ne(0).sum(dim=1)
        return reverse_complement(x.long(), lengths, self.table).to(x.dtype)

    def forward(self, x: Tensor, **aux: Tensor) -> Tensor:
        inputs = _member_inputs(self.model, aux)  # GC content is the same on both strands; images have none
        outs = [self.model(x, **inputs).float()] + [self.model(self._view(v, x), **inputs).float() for v in self.views]
        equal = torch.full((len(outs),), -math.log(len(outs)), device=outs[0].device)
        return combine(torch.stack(outs, dim=0), equal, self.output)


def leaf_models(model: nn.Module) -> list[tuple[float, nn.Module]]:
    """The trained networks inside an ensemble / TTA wrapper with their weights (a plain model: itself, 1)."""
    if not hasattr(model, "parts"):
        return [(1.0, model)]
    return [(w * v, leaf) for w, part in model.parts() for v, leaf in leaf_models(part)]
