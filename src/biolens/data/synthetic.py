"""Synthetic sequence files with known content, for tests, benchmarks and demonstrations.

Written in blocks with numpy (no per-character Python), so files of hundreds of megabytes take seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

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


def write_synthetic_genome(path: str | Path, lengths: dict[str, int], *, motif: str | None = None, sites: int = 0,
                           spacing: int = 1000, seed: int = 0, line_width: int = 60, gzip_it: bool = False
                           ) -> list[tuple[str, int, str]]:
    """A random genome (uniform A/C/G/T, one record per ``lengths`` entry) with ``motif`` planted at ``sites`` known
    places, in random orientation, at least ``spacing`` bases apart and ``spacing // 2`` from the contig ends.

    Written in blocks of lines with numpy, so a 100 Mb genome takes seconds. Returns the sites as ``(contig, start,
    strand)`` (0-based start of the planted copy; strand ``-`` means its reverse complement was planted), sorted.
    """
    import gzip

    rng = np.random.default_rng(seed)
    path = Path(path)
    slots = [(c, k) for c, n in lengths.items() for k in range(max(0, n // spacing - 1))]
    if sites > len(slots):
        raise ValueError(f"{sites} sites need {sites} slots of {spacing} bp; the genome has {len(slots)}")
    chosen = sorted(slots[i] for i in rng.choice(len(slots), size=sites, replace=False)) if sites else []
    planted: list[tuple[str, int, str]] = []
    opener = gzip.open if gzip_it else open
    with opener(path, "wb") as fh:
        for contig, n in lengths.items():
            seq = _DNA[rng.integers(0, 4, size=n, dtype=np.uint8)]
            for c, k in chosen:
                if c != contig or motif is None:
                    continue
                start = (k + 1) * spacing - spacing // 2 + int(rng.integers(0, max(1, spacing // 2 - len(motif))))
                strand = "+" if rng.random() < 0.5 else "-"
                copy = motif if strand == "+" else motif[::-1].translate(str.maketrans("ACGT", "TGCA"))
                seq[start:start + len(motif)] = np.frombuffer(copy.encode(), dtype=np.uint8)
                planted.append((contig, start, strand))
            fh.write(f">{contig}\n".encode())
            full = n // line_width
            body = np.full((full, line_width + 1), ord("\n"), dtype=np.uint8)
            body[:, :line_width] = seq[: full * line_width].reshape(full, line_width)
            fh.write(body.tobytes())
            if n % line_width:
                fh.write(seq[full * line_width:].tobytes() + b"\n")
    return sorted(planted)


_PROTEIN = np.frombuffer(b"ACDEFGHIKLMNPQRSTVWY", dtype=np.uint8)
EXPRESSION_MOTIF = "TATAAT"
PEPTIDE_MOTIFS = {"RRWW": "RRWW", "DEDE": "DEDE", "GPGP": "GPGP", "CYCY": "CYCY"}


def _split_column(n: int, rng: np.random.Generator, val: float = 0.1, test: float = 0.1) -> np.ndarray:
    u = rng.random(n)
    return np.where(u < test, "test", np.where(u < test + val, "val", "train"))


def synthetic_expression(n: int = 2000, length: int = 60, *, seed: int = 0, missing: float = 0.1) -> pd.DataFrame:
    """DNA with two regression targets that are known functions of the sequence (a pandas DataFrame):

    - ``expression`` = 2 × (copies of ``TATAAT``) + 4 × (GC fraction − 0.5) + N(0, 0.1²);
    - ``stability`` = 5 × GC fraction of the first 20 bases + N(0, 0.1²), missing (empty) in ``missing`` of rows,
      so a multi-task model must mask it.

    Motif copies (0–3, at random non-overlapping slots) are planted into uniform random DNA; a ``split`` column
    fixes train/val/test (80/10/10)."""
    rng = np.random.default_rng(seed)
    x = _DNA[rng.integers(0, 4, size=(n, length), dtype=np.uint8)]
    motif = np.frombuffer(EXPRESSION_MOTIF.encode(), dtype=np.uint8)
    slots = length // len(motif)
    copies = rng.integers(0, 4, size=n)
    for i in range(n):
        for s in rng.choice(slots, size=copies[i], replace=False):
            x[i, s * len(motif):(s + 1) * len(motif)] = motif
    seqs = x.view(f"S{length}").ravel().astype(str)
    gc = np.isin(x, (ord("G"), ord("C"))).mean(axis=1)
    gc20 = np.isin(x[:, :20], (ord("G"), ord("C"))).mean(axis=1)
    count = np.array([s.count(EXPRESSION_MOTIF) for s in seqs])  # planted copies, plus any made by chance
    expression = 2.0 * count + 4.0 * (gc - 0.5) + rng.normal(0, 0.1, n)
    stability = 5.0 * gc20 + rng.normal(0, 0.1, n)
    stab_text = np.array([f"{v:.4f}" for v in stability], dtype=object)
    stab_text[rng.random(n) < missing] = ""
    return pd.DataFrame({"id": [f"s{i}" for i in range(n)], "sequence": seqs,
                         "expression": np.round(expression, 4), "stability": stab_text,
                         "split": _split_column(n, rng)})


def synthetic_peptides(n: int = 2000, *, seed: int = 0, rate: float = 0.3) -> pd.DataFrame:
    """Peptides (20–40 aa) whose label set is the set of motifs planted in them (a pandas DataFrame with a
    ``labels`` column of ``A|B`` sets, empty for none): each of ``RRWW``, ``DEDE``, ``GPGP``, ``CYCY`` is planted with
    probability ``rate``, at a random position; a ``split`` column fixes train/val/test (80/10/10)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(20, 41, size=n)
    seqs, sets = [], []
    names = list(PEPTIDE_MOTIFS)
    for i in range(n):
        body = _PROTEIN[rng.integers(0, len(_PROTEIN), size=lengths[i])].copy()
        chosen = [m for m in names if rng.random() < rate]
        starts = rng.permutation(lengths[i] // 5)[:len(chosen)] * 5  # non-overlapping 5-residue slots
        for m, s in zip(chosen, starts):
            body[s:s + len(m)] = np.frombuffer(PEPTIDE_MOTIFS[m].encode(), dtype=np.uint8)
        seq = body.tobytes().decode()
        seqs.append(seq)
        sets.append("|".join(m for m in names if PEPTIDE_MOTIFS[m] in seq))
    return pd.DataFrame({"id": [f"p{i}" for i in range(n)], "sequence": seqs, "labels": sets,
                         "split": _split_column(n, rng)})
