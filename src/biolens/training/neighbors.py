"""Fitting nearest-neighbour label transfer (``models/neighbors.NeighborTransfer``) after training.

The memory is the train split (un-augmented); the blend's four numbers are chosen on the val split by its log loss
(NLL of the true class for single-label targets, the mean BCE over known labels for multi-label ones) over
:data:`GRID`, with the network's own val logits as the starting point. Transfer is left off (the model stays exactly the
network) unless the best blend lowers the per-sample val loss by more than two standard errors of the paired
difference, so a grid search on a small val split cannot switch it on by chance.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from biolens.models.inference import forward
from biolens.models.neighbors import MAX_MEMORY, NeighborTransfer, blend_logits, transfer

log = logging.getLogger(__name__)

GRID = {"neighbours": (1, 3, 5, 10), "power": (1.0, 4.0, 8.0), "weight": (0.0, 0.1, 0.25, 0.5, 0.75, 1.0),
        "gamma": (0.5, 1.0, 2.0)}
MIN_Z = 2.0  # the val gain must exceed this many standard errors


def _rows(batches: Any) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for batch in batches:
        xs.append(batch["x"].cpu().numpy())
        ys.append(batch["y"].cpu().numpy())
    width = max(x.shape[1] for x in xs)
    x = np.concatenate([np.pad(a, ((0, 0), (0, width - a.shape[1]))) for a in xs])
    return x, np.concatenate(ys)


def _losses(logits: torch.Tensor, y: torch.Tensor, output: str) -> torch.Tensor:
    """Per-sample log loss ``(N,)``: NLL of the true class, or the mean BCE over the sample's known labels."""
    if output == "softmax":
        return F.cross_entropy(logits, y.long(), reduction="none")
    known = ~torch.isnan(y)
    bce = F.binary_cross_entropy_with_logits(logits, torch.nan_to_num(y), reduction="none") * known
    return bce.sum(dim=1) / known.sum(dim=1).clamp_min(1)


def clear_gain(base: torch.Tensor, loss: torch.Tensor) -> bool:
    """Whether per-sample losses ``loss`` beat ``base`` by more than :data:`MIN_Z` standard errors of the paired
    difference: on a small val split a grid of blends finds chance gains, which must not switch transfer on."""
    d = (base - loss).double()
    if len(d) < 2:
        return False
    se = float(d.std()) / len(d) ** 0.5
    return float(d.mean()) > MIN_Z * se and float(d.mean()) > 0


@torch.no_grad()
def fit_neighbor_transfer(model: nn.Module, train_batches: Any, val_batches: Any, output: str) -> dict[str, Any]:
    """Build the memory from ``train_batches``, fit the blend on ``val_batches`` and attach it to ``model``
    (``model.attach_neighbors``) when it lowers the val loss. Returns what was fitted, for ``train_summary.json``.
    """
    spec = dict(model.config.get("neighbors") or {})
    k, count = int(spec.get("k", 3)), int(spec.get("count", 10))
    x, y = _rows(train_batches)
    slots = len(x) * max(1, x.shape[1] - k + 1)
    if slots > MAX_MEMORY:
        log.info("neighbour transfer: left off (%s training sequences × %d k-mers exceed the %s kept in a model)",
                 f"{len(x):,}", x.shape[1] - k + 1, f"{MAX_MEMORY:,}")
        model.attach_neighbors(None)
        return {"used": False, "reason": f"memory of {slots:,} k-mers above {MAX_MEMORY:,}"}
    device = next(model.parameters()).device
    memory = NeighborTransfer.from_train(x, y, model.vocab_size, k=k, count=count, output=output).to(device)
    was_training = model.training
    model.eval()
    model.attach_neighbors(None)  # the network's own logits
    logits, sims, tys, kns, ys = [], [], [], [], []
    for batch in val_batches:
        logits.append(forward(model, batch).float())
        s, ty, kn = memory.nearest(batch["x"], memory.count)
        sims.append(s), tys.append(ty), kns.append(kn), ys.append(batch["y"].float())
    if not logits:
        model.train(was_training)
        log.info("neighbour transfer: left off (no val split to fit its weight on)")
        return {"used": False, "reason": "no val split"}
    z, s, ty, kn, yv = (torch.cat(t) for t in (logits, sims, tys, kns, ys))
    base = _losses(z, yv, output)
    best = (float(base.mean()), base, {"neighbours": 1, "power": 1.0, "weight": 0.0, "gamma": 1.0})
    for n, power, weight, gamma in itertools.product(*GRID.values()):
        if weight == 0.0 or n > s.shape[1]:
            continue
        p_nn, w = transfer(s[:, :n], ty[:, :n], kn[:, :n], power, weight, gamma)
        losses = _losses(blend_logits(z, p_nn, w, output), yv, output)
        if float(losses.mean()) < best[0]:
            best = (float(losses.mean()), losses, {"neighbours": n, "power": power, "weight": weight, "gamma": gamma})
    if best[2]["weight"] and not clear_gain(base, best[1]):
        log.info("neighbour transfer: the best blend lowers the val loss only by chance (%.4f → %.4f, under %g "
                 "standard errors)", float(base.mean()), best[0], MIN_Z)
        best = (float(base.mean()), base, {"neighbours": 1, "power": 1.0, "weight": 0.0, "gamma": 1.0})
    loss, _, fit = best
    base = float(base.mean())
    model.train(was_training)
    summary = {"k": k, "memory": len(x), "val_loss_network": round(base, 5), "val_loss": round(loss, 5), **fit}
    if fit["weight"] == 0.0:
        log.info("neighbour transfer: left off (no blend lowered the val loss %.4f)", base)
        return {"used": False, **summary}
    memory.neighbours, memory.power, memory.weight, memory.gamma = (
        fit["neighbours"], fit["power"], fit["weight"], fit["gamma"])
    model.attach_neighbors(memory)
    log.info("neighbour transfer: %d nearest of %s training sequences by %d-mer Jaccard, weight %.2f·s^%.1f, "
             "power %.0f; val loss %.4f → %.4f", fit["neighbours"], f"{len(x):,}", k, fit["weight"], fit["gamma"],
             fit["power"], base, loss)
    return {"used": True, **summary}
