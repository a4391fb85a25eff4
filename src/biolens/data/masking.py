"""Masked-token pretraining inputs (BERT-style): which positions to hide, what the model sees there, and the batches.

Masking works on whole batches of index rows on the device, like augmentation. A *unit* is ``stride`` consecutive
positions (one model token: a base for convolutions, a k-mer patch for a patched transformer); units are picked with
probability ``rate`` among those holding a canonical symbol, and every row that has one gets at least one unit.
Inside a picked unit every canonical position is a target; the input there becomes the unknown symbol (N / X,
which every alphabet has, so no extra vocabulary is needed) for 80% of the units, random canonical symbols for
10%, and stays unchanged for 10% (Devlin et al. 2019).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

MASK_FRACTION = 0.8  # picked units shown as the unknown symbol
RANDOM_FRACTION = 0.1  # picked units shown as random symbols (the rest stay unchanged)


def mask_tokens(x: torch.Tensor, n_symbols: int, rate: float = 0.15, stride: int = 1,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask ``(B, L)`` index rows (PAD 0, symbols 1..n_symbols, unknown n_symbols+1).

    Returns:
        ``(inputs, targets)``: the rows as the model sees them (same dtype) and a ``(B, L)`` bool mask of the
        positions to predict (canonical symbols only; their original values are ``x[targets]``).
    """
    if not 0 < rate < 1:
        raise ValueError(f"mask rate must be in (0, 1); got {rate}")
    b, length = x.shape
    canonical = (x >= 1) & (x <= n_symbols)  # (B, L)
    units = -(-length // stride)
    pad = units * stride - length
    unit_has = torch.nn.functional.pad(canonical, (0, pad)).reshape(b, units, stride).any(dim=-1)  # (B, U)
    draw = torch.rand((b, units), device=x.device, generator=generator)
    picked = (draw < rate) & unit_has
    lonely = ~picked.any(dim=1) & unit_has.any(dim=1)  # rows without a pick: take one unit at random
    fallback = torch.rand((b, units), device=x.device, generator=generator).masked_fill(~unit_has, -1.0).argmax(dim=1)
    picked = picked | (torch.nn.functional.one_hot(fallback, units).bool() & lonely.unsqueeze(1))
    action = torch.rand((b, units), device=x.device, generator=generator)
    spread = lambda u: u.repeat_interleave(stride, dim=1)[:, :length]  # noqa: E731  (B, U) → (B, L)
    picked_pos = spread(picked)
    targets = picked_pos & canonical
    real = x != 0
    shown_unknown = picked_pos & spread(action < MASK_FRACTION) & real
    shown_random = picked_pos & spread((action >= MASK_FRACTION) & (action < MASK_FRACTION + RANDOM_FRACTION)) & real
    random_symbols = torch.randint(1, n_symbols + 1, (b, length), device=x.device, generator=generator)
    out = torch.where(shown_unknown, torch.full_like(x, n_symbols + 1), x)
    out = torch.where(shown_random, random_symbols.to(x.dtype), out)
    return out, targets


class MaskedBatches:
    """Masked-token batches ``{"x", "mlm_mask", "y", "index", "lengths"}`` over sequence batches (labels unused):
    ``y`` holds the original symbol of every target position as a class ``0..n_symbols-1``, in row-major order of
    ``mlm_mask``. ``fixed=True`` (validation) masks the same positions every epoch, so the loss is comparable."""

    def __init__(self, batches: Any, n_symbols: int, rate: float = 0.15, stride: int = 1, seed: int = 0,
                 fixed: bool = False):
        self.batches, self.n_symbols, self.rate, self.stride = batches, n_symbols, rate, stride
        self.seed, self.fixed, self.epoch = seed, fixed, 0

    def __len__(self) -> int:
        return len(self.batches)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.batches, "set_epoch"):
            self.batches.set_epoch(epoch)

    @property
    def augmentations(self) -> list[str]:
        return list(getattr(self.batches, "augmentations", []))

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        gen = None
        for batch in self.batches:
            x = batch["x"]
            if gen is None:
                gen = torch.Generator(device=x.device).manual_seed(
                    self.seed * 1_000_003 + (0 if self.fixed else self.epoch) + 17)
            inputs, targets = mask_tokens(x, self.n_symbols, self.rate, self.stride, gen)
            yield {"x": inputs, "mlm_mask": targets, "y": x[targets].long() - 1, "index": batch["index"],
                   "lengths": batch["lengths"]}
