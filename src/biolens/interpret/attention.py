"""Attention weights mapped back to input positions, and high-scoring regions of any per-position score.

The guide's attention models pool by 2 before the BiLSTM, so attention weight ``i`` covers input positions
``[i * stride, (i + 1) * stride)`` (``stride = model.attention_stride``). Regions are runs of positions whose score
passes a per-sequence threshold: the guide's ``mean + std`` or a percentile. Coordinates are 0-based, half-open
(BED-style).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from biolens.errors import ConfigError, ModelError
from biolens.models.inference import call as call_model

log = logging.getLogger(__name__)


def has_attention(model: nn.Module) -> bool:
    return "attention" in getattr(model, "extra_outputs", ())


@torch.no_grad()
def attention_scores(model: nn.Module, x: np.ndarray, lengths: np.ndarray, device: torch.device | str = "cpu",
                     batch_size: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Attention of every sequence, mapped to input positions.

    Args:
        x: ``(N, L)`` uint8 indices (PAD=0 after each sequence).

    Returns:
        ``(logits (N, C), weights (N, ceil(L / stride)) raw attention, scores (N, L))``: ``scores[n, p]`` is the
        weight of the pooled window holding ``p``; positions outside the sequence or not covered by any window
        (the odd last base under floor pooling) are 0.
    """
    if not has_attention(model):
        raise ModelError(f"model {type(model).__name__} has no attention output; use --method ism, ig or saliency")
    model.eval()
    stride = int(getattr(model, "attention_stride", 1))
    n, length = x.shape
    logits, weights = [], np.zeros((n, -(-length // stride)), dtype=np.float32)
    for s in range(0, n, batch_size):
        xb = torch.as_tensor(x[s:s + batch_size], device=device)
        out, w = call_model(model, xb, with_attention=True)
        logits.append(out.float().cpu().numpy())
        weights[s:s + len(xb), : w.shape[1]] = w.float().cpu().numpy()
    scores = np.repeat(weights, stride, axis=1)[:, :length]
    scores[np.arange(length)[None, :] >= lengths[:, None]] = 0.0
    return np.concatenate(logits), weights, scores


def threshold_of(values: np.ndarray, rule: str) -> float:
    """``mean+std`` (guide 4.4) or ``percentile:Q`` (guide 7.2 uses 90) of one sequence's scores."""
    if rule in ("meanstd", "mean+std"):
        return float(values.mean() + values.std())
    if rule.startswith("percentile:"):
        try:
            q = float(rule.split(":", 1)[1])
        except ValueError:
            q = -1.0
        if not 0 <= q <= 100:
            raise ConfigError(f"threshold {rule!r}: expected percentile:Q with 0 <= Q <= 100, e.g. percentile:90")
        return float(np.percentile(values, q))
    raise ConfigError(f"threshold {rule!r}: expected mean+std or percentile:Q (e.g. percentile:90)")


@dataclass
class Region:
    index: int  # row of the input
    start: int  # 0-based, inclusive
    end: int  # exclusive
    weight: float  # highest score inside


def find_regions(scores: np.ndarray, lengths: np.ndarray, rule: str = "mean+std", flank: int = 0,
                 stride: int = 1) -> list[Region]:
    """Runs of positions scoring above the per-sequence threshold, widened by ``flank`` and merged.

    With ``stride > 1`` (attention), the threshold is taken over the pooled windows, as in the guide, and each
    window above it marks its ``stride`` positions.
    """
    out: list[Region] = []
    for i, n in enumerate(np.asarray(lengths, dtype=np.int64)):
        s = scores[i, :n]
        if n == 0:
            continue
        pooled = s[: n - n % stride : stride] if stride > 1 and n >= stride else s  # one value per whole window
        thr = threshold_of(pooled, rule)
        above = s > thr
        if flank:
            cs = np.concatenate([[0], np.cumsum(above)])
            lo, hi = np.clip(np.arange(n) - flank, 0, n), np.clip(np.arange(n) + flank + 1, 0, n)
            above = cs[hi] - cs[lo] > 0
        edges = np.flatnonzero(np.diff(np.concatenate([[0], above.astype(np.int8), [0]])))
        for a, b in zip(edges[::2], edges[1::2]):
            out.append(Region(i, int(a), int(b), float(s[a:b].max())))
    return out


def top_windows(scores: np.ndarray, lengths: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Start and summed score of each sequence's highest-scoring window of ``width`` positions.

    Returns ``(starts (N,), sums (N,))``; a sequence shorter than ``width`` gives its whole length (start 0).
    """
    if width < 1:
        raise ConfigError(f"window width must be >= 1; got {width}")
    n, length = scores.shape
    valid = np.arange(length)[None, :] < lengths[:, None]
    cs = np.concatenate([np.zeros((n, 1)), np.cumsum(np.where(valid, scores, 0.0), axis=1)], axis=1)  # (N, L+1)
    w = min(width, length)
    sums = cs[:, w:] - cs[:, : length - w + 1]  # (N, L - w + 1): window starting at each position
    last_start = np.maximum(lengths - w, 0)
    sums = np.where(np.arange(sums.shape[1])[None, :] <= last_start[:, None], sums, -np.inf)
    starts = sums.argmax(axis=1)
    return starts.astype(np.int64), sums[np.arange(n), starts]
