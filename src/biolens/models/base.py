"""The interface every sequence classifier implements, and the masking helpers they share.

Input ``x`` is either integer indices ``(B, L)`` (uint8 or int64, PAD=0, symbols 1..k, unknown k+1) or a float
one-hot ``(B, V-1, L)`` where channel ``c`` stands for index ``c+1`` and padding is an all-zero column. The
one-hot form lets gradient-based explanations (integrated gradients, saliency) differentiate through the input.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from biolens.data.encoding import one_hot
from biolens.errors import ModelError

log = logging.getLogger(__name__)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return value


def is_onehot(x: Tensor) -> bool:
    """True for a float one-hot batch ``(B, V-1, L)``, False for indices ``(B, L)``."""
    return x.is_floating_point()


def onehot(x: Tensor, vocab_size: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """``(B, L)`` indices → ``(B, V-1, L)`` float one-hot without the PAD channel; one-hot input passes through."""
    return one_hot(x, vocab_size, dtype)


def padding_mask(x: Tensor) -> Tensor:
    """``(B, L)`` bool, True at real positions, for indices (≠ PAD) or one-hot (column not all zero)."""
    if is_onehot(x):
        return x.ne(0).any(dim=1)
    return x.ne(0)


def embed_tokens(x: Tensor, embedding: nn.Embedding) -> Tensor:
    """Embedding lookup ``(B, L) → (B, L, E)``; one-hot ``(B, V-1, L)`` uses ``onehot^T @ W[1:]`` (same result)."""
    if is_onehot(x):
        return x.transpose(1, 2).to(embedding.weight.dtype) @ embedding.weight[1:]
    return embedding(x.long())


def pool_mask(mask: Tensor, ceil: bool = False) -> Tensor:
    """Padding mask after ``MaxPool1d(2)``: ``(B, L) → (B, L // 2)`` (or ``ceil(L / 2)``); a window is real if any
    position in it is."""
    b, length = mask.shape
    if ceil:
        mask = F.pad(mask, (0, length % 2), value=False)
    else:
        mask = mask[:, : length - length % 2]
    return mask.reshape(b, -1, 2).any(dim=-1)


def masked_max(h: Tensor, mask: Tensor) -> Tensor:
    """Global max over real positions: ``(B, C, L), (B, L) → (B, C)``; a row with no real position gives 0."""
    filled = h.masked_fill(~mask.unsqueeze(1), float("-inf")).amax(dim=-1)
    return torch.where(mask.any(dim=-1, keepdim=True), filled, torch.zeros_like(filled))


def masked_mean(h: Tensor, mask: Tensor) -> Tensor:
    """Global mean over real positions: ``(B, C, L), (B, L) → (B, C)``."""
    m = mask.unsqueeze(1).to(h.dtype)
    return (h * m).sum(dim=-1) / m.sum(dim=-1).clamp_min(1.0)


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax over real positions: ``(B, L), (B, L) → (B, L)``; padded positions get exactly 0 weight.

    Uses the dtype's most negative finite value instead of -inf, so a row without real positions gives uniform
    weights rather than NaN (e.g. the all-zero baseline of integrated gradients).
    """
    scores = scores.float().masked_fill(~mask, torch.finfo(torch.float32).min)
    return torch.softmax(scores, dim=-1)


HEAD_MODULES = ("head", "label_set_head")  # output layers: never a frozen stage, trained at the head's lr


class ClassifierHead:
    """The classifier-head half of the shared model interface (sequence and image models alike).

    Expects ``self.head`` (``nn.Linear`` or ``nn.Sequential`` ending in one), ``self.num_classes`` and
    ``self._config``.
    """

    def get_classifier(self) -> nn.Linear:
        """The final linear layer."""
        last = self.head[-1] if isinstance(self.head, nn.Sequential) else self.head
        assert isinstance(last, nn.Linear), "head must be nn.Linear or nn.Sequential ending in nn.Linear"
        return last

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the final linear layer with a fresh one of ``num_classes`` outputs (same device and dtype)."""
        if int(num_classes) < 1:
            raise ModelError(f"num_classes must be at least 1; got {num_classes}")
        old = self.get_classifier()
        new = nn.Linear(old.in_features, int(num_classes), device=old.weight.device, dtype=old.weight.dtype)
        if isinstance(self.head, nn.Sequential):
            self.head[-1] = new
        else:
            self.head = new
        self.num_classes = int(num_classes)
        self._config["num_classes"] = self.num_classes


class Freezable:
    """Fine-tuning over stages (guide 4.5), shared by sequence and image models: freezing every stage before one,
    frozen batch norm kept in eval mode, and discriminative learning rates (backbone × ``backbone_lr_scale``).

    Stages are the declared ``stages`` (attribute paths, input to output), else the top-level children except the
    head, module lists expanded (``stem, blocks.0, blocks.1, final_bn``).
    """

    stages: tuple[str, ...] = ()
    backbone_lr_scale: float = 1.0  # set by the task; not part of config (a training choice)

    def stage_names(self) -> list[str]:
        declared = list(self.stages or ())
        if declared:
            return declared
        names: list[str] = []
        for name, child in self.named_children():
            if name in HEAD_MODULES:
                continue
            if isinstance(child, (nn.ModuleList, nn.ModuleDict)):
                names += [f"{name}.{n}" for n, _ in child.named_children()]
            else:
                names.append(name)
        return names

    def stage_modules(self) -> list[tuple[str, nn.Module]]:
        return [(name, self.get_submodule(name)) for name in self.stage_names()]

    def head_parameters(self) -> list[nn.Parameter]:
        """The head's parameters, and those of a label-set head beside it (``label_set_head``) if there is one."""
        return [p for name in HEAD_MODULES if getattr(self, name, None) is not None
                for p in getattr(self, name).parameters()]

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        """Backbone at ``lr × backbone_lr_scale``, head at ``lr`` (frozen parameters included: they may unfreeze)."""
        head = {id(p) for p in self.head_parameters()}
        backbone = [p for p in self.parameters() if id(p) not in head]
        groups = [{"params": self.head_parameters(), "lr": lr, "name": "head"}]
        return ([{"params": backbone, "lr": lr * self.backbone_lr_scale, "name": "backbone"}] if backbone else []) + groups

    def freeze(self, until: str | None) -> None:
        """Freeze every stage before ``until`` (``"all"``: the whole backbone; ``None``: nothing).

        Frozen parameters get ``requires_grad=False`` and frozen batch-norm layers stay in eval mode, so neither
        their weights nor their running statistics change.
        """
        names = self.stage_names()
        if until is None:
            cut = 0
        elif until == "all":
            cut = len(names)
        elif until in names:
            cut = names.index(until)
        else:
            raise ModelError(f"cannot freeze until {until!r}: {type(self).__name__} stages are {', '.join(names)}, or all")
        self._frozen = set(names[:cut])
        for name, module in self.stage_modules():
            for p in module.parameters():
                p.requires_grad_(name not in self._frozen)
        self.train(self.training)

    def train(self, mode: bool = True):  # noqa: ANN201
        super().train(mode)
        frozen = getattr(self, "_frozen", set())
        for name, module in self.stage_modules():
            if name in frozen:
                module.eval()
        return self


class SequenceClassifier(ClassifierHead, Freezable, nn.Module):
    """Base class: ``forward(x) = forward_head(forward_features(x))``.

    Subclasses call ``super().__init__(vocab_size, num_classes, **hyperparams)`` with every constructor argument, set
    ``self.num_features`` and build ``self.head`` (an ``nn.Linear`` or an ``nn.Sequential`` ending in one).
    """

    task: str = "sequence"
    cuda_precision: str = "fp32"  # train.precision=auto on CUDA (devices.resolve_precision)
    aux_inputs: tuple[str, ...] = ()  # e.g. ("gc",): forward(x, gc=...) requires it
    extra_outputs: tuple[str, ...] = ()  # e.g. ("attention",): forward_with_attention() is available
    attention_stride: int = 1  # input positions per attention weight

    def __init__(self, vocab_size: int, num_classes: int, **hyperparams: Any):
        super().__init__()
        if int(vocab_size) < 3:
            raise ModelError(f"vocab_size must be at least 3 (PAD, one symbol, unknown); got {vocab_size}")
        if int(num_classes) < 1:
            raise ModelError(f"num_classes must be at least 1; got {num_classes}")
        self.vocab_size = int(vocab_size)
        self.num_classes = int(num_classes)
        self._config: dict[str, Any] = {
            "vocab_size": self.vocab_size,
            "num_classes": self.num_classes,
            **{k: _jsonable(v) for k, v in hyperparams.items()},
        }
        self.num_features = 0
        self.head: nn.Module = nn.Identity()

    @property
    def config(self) -> dict[str, Any]:
        """Every constructor argument (JSON-serialisable): ``create_model(name, **model.config)`` rebuilds it."""
        return copy.deepcopy(self._config)

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        """One group at ``lr`` unless the backbone has its own scale (fine-tuning from starting weights)."""
        if self.backbone_lr_scale == 1.0:
            return [{"params": list(self.parameters()), "lr": lr}]
        return super().param_groups(lr)

    # ---- input helpers -------------------------------------------------------------------------------------------
    def check_input(self, x: Tensor) -> None:
        """Raise ModelError unless ``x`` is ``(B, L)`` integer indices or a ``(B, V-1, L)`` float one-hot."""
        if is_onehot(x):
            if x.dim() != 3 or x.shape[1] != self.vocab_size - 1:
                raise ModelError(
                    f"one-hot input must have shape (B, {self.vocab_size - 1}, L) for vocab_size={self.vocab_size}; "
                    f"got {tuple(x.shape)}"
                )
        elif x.dim() != 2:
            raise ModelError(f"index input must have shape (B, L); got {tuple(x.shape)} ({x.dtype})")

    def onehot(self, x: Tensor) -> Tensor:
        """``(B, L)`` indices or ``(B, V-1, L)`` one-hot → ``(B, V-1, L)`` float."""
        return onehot(x, self.vocab_size)

    def padding_mask(self, x: Tensor) -> Tensor:
        """``(B, L)`` bool, True at real positions."""
        return padding_mask(x)

    def require_gc(self, gc: Tensor | None, batch: int) -> Tensor:
        """Validate the GC-content auxiliary input → ``(B,)`` float."""
        if gc is None:
            raise ModelError(
                f"model {type(self).__name__} needs the auxiliary input 'gc' (GC fraction per sequence, shape (B,)); "
                "call model(x, gc=gc), e.g. gc = biolens.data.augment.gc_content(x)"
            )
        gc = gc.reshape(-1)
        if gc.numel() != batch:
            raise ModelError(f"'gc' must have one value per sequence: expected {batch}, got {gc.numel()}")
        return gc.float()

    # ---- the interface -------------------------------------------------------------------------------------------
    def forward_features(self, x: Tensor, gc: Tensor | None = None) -> Tensor:
        """``x`` → ``(B, num_features)`` embedding."""
        raise NotImplementedError

    def forward_head(self, z: Tensor) -> Tensor:
        """``(B, num_features)`` → ``(B, num_classes)`` logits."""
        return self.head(z)

    def forward(self, x: Tensor, gc: Tensor | None = None) -> Tensor:
        """``x`` → ``(B, num_classes)`` logits."""
        return self.forward_head(self.forward_features(x, gc))

    def forward_with_attention(self, x: Tensor, gc: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``x`` → ``(logits (B, C), attention (B, L // attention_stride))``, for models with attention."""
        raise ModelError(f"model {type(self).__name__} has no attention output")

