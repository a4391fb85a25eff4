"""In-silico mutagenesis: every single substitution at every position, scored on the device in batches."""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn

from biolens.models.inference import call as call_model

log = logging.getLogger(__name__)


@torch.no_grad()
def ism(model: nn.Module, x: np.ndarray, length: int, target: int, n_symbols: int,
        device: torch.device | str = "cpu", batch_size: int = 1024) -> np.ndarray:
    """Effect of each substitution on one class logit for one sequence.

    Args:
        x: ``(L,)`` uint8 indices of one sequence (PAD after ``length``).
        length: real length; only positions ``< length`` are mutated.
        target: class whose logit is compared.
        n_symbols: canonical symbols (indices ``1..n_symbols``; 4 for DNA) substituted at every position.

    Returns:
        ``(length, n_symbols)`` float32: ``logit(mutant)[target] − logit(reference)[target]``; the reference
        symbol's own column is exactly 0 (and a position holding N gets every symbol's effect).
    """
    model.eval()
    ref = torch.as_tensor(np.ascontiguousarray(x[:length]), device=device).unsqueeze(0)  # (1, L)
    ref_logit = call_model(model, ref).float()[0, target]
    pos = torch.arange(length, device=device).repeat_interleave(n_symbols)  # (L*A,) mutant m changes pos[m]
    sym = torch.arange(1, n_symbols + 1, device=device, dtype=torch.uint8).repeat(length)  # (L*A,) to sym[m]
    effects = torch.empty(length * n_symbols, device=device)
    for s in range(0, len(pos), batch_size):
        p, v = pos[s:s + batch_size], sym[s:s + batch_size]
        mutants = ref.expand(len(p), -1).clone()  # (b, L) uint8
        mutants[torch.arange(len(p), device=device), p] = v
        effects[s:s + len(p)] = call_model(model, mutants).float()[:, target] - ref_logit
    out = effects.reshape(length, n_symbols).cpu().numpy()
    is_ref = (x[:length, None] == np.arange(1, n_symbols + 1)[None, :])
    out[is_ref] = 0.0  # exactly 0, not a float round-off of identical logits
    return out


@torch.no_grad()
def ism_batch(model: nn.Module, x: np.ndarray, lengths: np.ndarray, targets: np.ndarray, n_symbols: int,
              device: torch.device | str = "cpu", batch_size: int = 1024) -> np.ndarray:
    """ISM for every row: ``(N, L, n_symbols)`` float32, NaN past each sequence's end.

    Sequences of equal length are mutated together: all their ``rows × length × n_symbols`` mutants are built as
    one uint8 tensor per chunk of ``batch_size`` on the device, so short sequences still fill whole batches. Each
    mutant is compared with its own unpadded reference, exactly as ``ism`` does for one sequence.
    """
    model.eval()
    n, width = x.shape
    out = np.full((n, width, n_symbols), np.nan, dtype=np.float32)
    lengths = np.asarray(lengths, dtype=np.int64)
    for length in np.unique(lengths[lengths > 0]):
        rows = np.flatnonzero(lengths == length)
        ref = torch.as_tensor(np.ascontiguousarray(x[rows, :length]), device=device)  # (R, ℓ)
        tgt = torch.as_tensor(np.asarray(targets)[rows], device=device, dtype=torch.long)  # (R,)
        ref_logits = torch.cat([call_model(model, ref[s:s + batch_size]).float()
                                for s in range(0, len(rows), batch_size)])  # (R, C)
        ref_logit = ref_logits.gather(1, tgt[:, None])[:, 0]  # (R,)
        per_row = int(length) * n_symbols
        total = len(rows) * per_row
        effects = torch.empty(total, device=device)
        for s in range(0, total, batch_size):
            m = torch.arange(s, min(s + batch_size, total), device=device)  # flat mutant ids
            r, rest = m // per_row, m % per_row  # row, then position * A + symbol
            p, v = rest // n_symbols, (rest % n_symbols + 1).to(torch.uint8)
            mutants = ref[r]  # (b, ℓ) uint8; indexing already copies
            mutants[torch.arange(len(m), device=device), p] = v
            logits = call_model(model, mutants).float()
            effects[s:s + len(m)] = logits.gather(1, tgt[r][:, None])[:, 0] - ref_logit[r]
        eff = effects.reshape(len(rows), int(length), n_symbols).cpu().numpy()
        is_ref = x[rows, :length, None] == np.arange(1, n_symbols + 1)
        eff[is_ref] = 0.0  # exactly 0, not a float round-off of identical logits
        out[rows, :length] = eff
    return out


def ism_importance(effects: np.ndarray, x: np.ndarray, n_symbols: int) -> np.ndarray:
    """Per-position importance of the reference symbol: minus the mean effect of its substitutions.

    ``(N, L, A)`` effects → ``(N, L)``; positive where the reference base supports the class (mutating it lowers
    the logit). NaN (past the end) becomes 0.
    """
    is_ref = x[..., None] == np.arange(1, n_symbols + 1)
    n_alt = np.where(is_ref.any(axis=-1), n_symbols - 1, n_symbols)
    return np.nan_to_num(-np.nansum(np.where(is_ref, 0.0, effects), axis=-1) / np.maximum(n_alt, 1))
