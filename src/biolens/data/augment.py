"""Sequence augmentation as pure functions on whole batches of index tensors ``(B, L)``, on any device."""

from __future__ import annotations

import numpy as np
import torch

from biolens.data.alphabets import DNA, Alphabet


def reverse_complement(x: torch.Tensor, lengths: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Reverse complement of right-padded rows: ``(B, L)`` indices → ``(B, L)``, padding stays on the right.

    ``table`` maps index → complementary index (``Alphabet.complement_table``), on x's device. The one
    implementation: numpy callers use :func:`reverse_complement_np`, which runs this on CPU tensors.
    """
    width = x.shape[1]
    src = lengths[:, None] - 1 - torch.arange(width, device=x.device)[None, :]  # (B, L)
    out = torch.gather(x, 1, src.clamp(min=0))
    return torch.where(src >= 0, table[out.long()].to(x.dtype), torch.zeros_like(x))


def reverse_complement_np(x: np.ndarray, lengths: np.ndarray, alphabet: Alphabet, block: int = 1 << 16) -> np.ndarray:
    """:func:`reverse_complement` for numpy ``(N, L)`` uint8 rows, in row blocks of about ``block`` elements so the
    int64 gather indices stay small (the store runs it on every chunk of a file larger than RAM)."""
    x = np.ascontiguousarray(x, dtype=np.uint8)
    lengths = np.asarray(lengths, dtype=np.int64)
    out = np.empty_like(x)
    table = torch.from_numpy(alphabet.complement_table())
    rows = max(1, block // max(x.shape[1], 1))
    for start in range(0, len(x), rows):
        stop = start + rows
        out[start:stop] = reverse_complement(torch.from_numpy(x[start:stop]), torch.from_numpy(lengths[start:stop]),
                                             table).numpy()
    return out


def random_reverse_complement(
    x: torch.Tensor, lengths: torch.Tensor, table: torch.Tensor, p: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Reverse-complement each row with probability ``p``."""
    flip = torch.rand(x.shape[0], device=x.device, generator=generator) < p
    if not flip.any():
        return x
    return torch.where(flip[:, None], reverse_complement(x, lengths, table), x)


def substitute(x: torch.Tensor, rate: float, n_symbols: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Replace each canonical symbol (index 1..n_symbols) with a different one with probability ``rate``."""
    if rate <= 0:
        return x
    is_symbol = (x >= 1) & (x <= n_symbols)
    hit = (torch.rand(x.shape, device=x.device, generator=generator) < rate) & is_symbol
    shift = torch.randint(1, n_symbols, x.shape, device=x.device, generator=generator)
    mutated = (x.long() - 1 + shift) % n_symbols + 1
    return torch.where(hit, mutated.to(x.dtype), x)


def gc_content(x: torch.Tensor, alphabet: Alphabet = DNA) -> torch.Tensor:
    """Fraction of G+C among canonical bases per row: indices ``(B, L)`` or one-hot ``(B, V-1, L)`` → ``(B,)``
    float. Unknown symbols and padding are ignored; a row without canonical bases gives 0.5."""
    g, c = alphabet.symbols.index("G") + 1, alphabet.symbols.index("C") + 1
    n_sym = len(alphabet.symbols)
    if x.is_floating_point():  # one-hot: channel k holds index k + 1
        counts = x[:, :n_sym].sum(dim=-1).float()  # (B, symbols)
        gc, total = counts[:, g - 1] + counts[:, c - 1], counts.sum(dim=1)
    else:
        gc = ((x == g) | (x == c)).sum(dim=1).float()
        total = ((x >= 1) & (x <= n_sym)).sum(dim=1).float()
    return torch.where(total > 0, gc / total.clamp(min=1), torch.full_like(gc, 0.5))


def shift(x: torch.Tensor, lengths: torch.Tensor, offsets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Move each right-padded row's sequence by ``offsets`` positions, filling with PAD (0).

    A positive offset moves the sequence right (``offset`` PADs in front; bases pushed past the row's end are
    cut); a negative one moves it left (its first ``-offset`` bases are cut). ``(B, L)``, ``(B,)``, ``(B,)`` →
    rows ``(B, L)`` and new lengths ``(B,)``: the position after each row's last base, so everything from there
    on is PAD, as for unshifted rows.
    """
    width = x.shape[1]
    src = torch.arange(width, device=x.device)[None, :] - offsets[:, None]  # (B, L) source position
    valid = (src >= 0) & (src < lengths[:, None])
    out = torch.where(valid, torch.gather(x, 1, src.clamp(0, max(width - 1, 0))), torch.zeros_like(x))
    return out, (lengths + offsets).clamp(0, width)


def random_shift(x: torch.Tensor, lengths: torch.Tensor, max_shift: int, generator: torch.Generator | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Shift each row by a uniform offset in ``[-max_shift, max_shift]``, keeping at least one base per row."""
    offsets = torch.randint(-max_shift, max_shift + 1, (x.shape[0],), device=x.device, generator=generator)
    offsets = torch.minimum(torch.maximum(offsets, 1 - lengths), torch.full_like(offsets, x.shape[1] - 1))
    return shift(x, lengths, offsets)
