"""Perceptual (difference) hashes of images: near-duplicates across splits and between data sets.

``dhash``: the image in gray, shrunk to 9×8 (area average), one bit per horizontally adjacent pair (left brighter
than right): 64 bits that survive resizing, re-encoding and small intensity changes. Two images whose hashes
differ in at most ``NEAR_BITS`` bits are near-duplicates (the same radiograph re-exported, cropped a little, or
brightened).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

NEAR_BITS = 4
PAIRWISE_LIMIT = 20_000  # images compared all-against-all; above it only identical hashes count


def dhash(images: np.ndarray, block: int = 1024) -> np.ndarray:
    """64-bit difference hashes ``(N,)`` uint64 of uint8 images ``(N, C, H, W)``."""
    out = np.zeros(len(images), dtype=np.uint64)
    weights = (np.uint64(1) << np.arange(64, dtype=np.uint64))
    for start in range(0, len(images), block):
        x = torch.from_numpy(np.ascontiguousarray(images[start:start + block])).float().mean(dim=1, keepdim=True)
        small = F.adaptive_avg_pool2d(x, (8, 9))[:, 0]  # (b, 8, 9)
        bits = (small[:, :, :-1] > small[:, :, 1:]).reshape(len(x), 64).numpy()
        out[start:start + len(x)] = (bits.astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)
    return out


def _popcount(x: np.ndarray) -> np.ndarray:
    return np.unpackbits(x.view(np.uint8).reshape(*x.shape, 8), axis=-1).sum(axis=-1)


def near_matches(query: np.ndarray, reference: np.ndarray, max_bits: int = NEAR_BITS, block: int = 512) -> np.ndarray:
    """Bool ``(len(query),)``: the query hash is within ``max_bits`` bits of some reference hash (all pairs when
    both sets are at most ``PAIRWISE_LIMIT``, else identical hashes only)."""
    query, reference = np.asarray(query, dtype=np.uint64), np.asarray(reference, dtype=np.uint64)
    if not len(query) or not len(reference):
        return np.zeros(len(query), dtype=bool)
    if max(len(query), len(reference)) > PAIRWISE_LIMIT:
        return np.isin(query, reference)
    hit = np.zeros(len(query), dtype=bool)
    for start in range(0, len(query), block):
        q = query[start:start + block, None] ^ reference[None, :]
        hit[start:start + block] = (_popcount(q) <= max_bits).any(axis=1)
    return hit
