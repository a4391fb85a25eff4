"""Synthetic sequence files with known content, for tests, benchmarks and demonstrations.

Written in blocks with numpy (no per-character Python), so files of hundreds of megabytes take seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

_DNA = np.frombuffer(b"ACGT", dtype=np.uint8)


def write_random_fasta(path: str | Path, n: int, length: int, *, seed: int = 0, short_fraction: float = 0.0,
                       labels: str = "ab", block: int = 20_000) -> Path:
    """``n`` uniformly random DNA records of ``length`` bases, headers ``>r{i} label={a|b}`` (random labels).

    ``short_fraction`` of the records (chosen at random) are one base shorter, e.g. to fall just below a quality
    filter's ``min_len``.
    """
    rng = np.random.default_rng(seed)
    path = Path(path)
    with open(path, "wb") as fh:
        for start in range(0, n, block):
            k = min(block, n - start)
            body = np.full((k, length + 1), ord("\n"), dtype=np.uint8)
            body[:, :length] = _DNA[rng.integers(0, 4, size=(k, length), dtype=np.uint8)]
            short = rng.random(k) < short_fraction
            codes = rng.integers(0, len(labels), size=k)
            raw = body.tobytes()
            parts = []
            for j in range(k):
                row = raw[j * (length + 1):(j + 1) * (length + 1)]
                parts += [f">r{start + j} label={labels[codes[j]]}\n".encode(), row[:-2] + b"\n" if short[j] else row]
            fh.write(b"".join(parts))
    return path
