"""Synthetic promoter-like DNA with a known answer: TATAAA planted at a random position in positives."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import torch

TATA = "TATAAA"


def planted_tata(n: int = 600, length: int = 80, seed: int = 0, motif: str = TATA
                 ) -> tuple[list[str], list[str], list[int]]:
    """Even rows: ``motif`` at a random start (label ``promoter``); odd rows: none (``background``).

    Chance copies of the motif and of its reverse complement are removed from every sequence first, so the
    planted copy is the only one. Returns ``(seqs, labels, starts)``; ``starts`` is -1 for background rows.
    """
    rng = np.random.default_rng(seed)
    rc = motif[::-1].translate(str.maketrans("ACGT", "TGCA"))
    seqs, labels, starts = [], [], []
    for i in range(n):
        s = "".join(rng.choice(list("ACGT"), size=length))
        while motif in s or rc in s:
            s = s.replace(motif, "GCGCGC").replace(rc, "GCGCGC")
        if i % 2 == 0:
            pos = int(rng.integers(0, length - len(motif) + 1))
            s = s[:pos] + motif + s[pos + len(motif):]
            labels.append("promoter")
            starts.append(pos)
        else:
            labels.append("background")
            starts.append(-1)
        seqs.append(s)
    return seqs, labels, starts


def write_table(path: Path, seqs: list[str], labels: list[str] | None = None) -> Path:
    rows = ["id,sequence" + (",label" if labels else "")]
    rows += [f"s{i + 1},{s}" + (f",{labels[i]}" if labels else "") for i, s in enumerate(seqs)]
    path.write_text("\n".join(rows) + "\n")
    return path


def overlaps(start: np.ndarray, end: np.ndarray, motif_start: np.ndarray, width: int = len(TATA)) -> np.ndarray:
    """Half-open ``[start, end)`` overlaps ``[motif_start, motif_start + width)``."""
    return (start < motif_start + width) & (motif_start < end)


@contextlib.contextmanager
def one_thread():
    """Run torch on one thread (tiny models on a shared 2-core box: thread contention costs more than it gives)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)
