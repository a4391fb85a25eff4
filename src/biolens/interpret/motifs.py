"""Motifs: built-in promoter boxes, IUPAC strings, MEME and JASPAR matrices; scanning both strands; enrichment.

A motif is a score matrix ``(w, A)`` over the alphabet's canonical symbols plus a threshold:

- IUPAC strings (``TATAWAWR``) score 1 per allowed position and hit only when every position is allowed;
- PWMs (MEME letter-probability or JASPAR count matrices) score in log2 odds against a uniform background, with
  a small pseudocount; a hit scores at least ``min + rel * (max - min)`` (``rel`` = 0.85 by default).

Scanning is one ``conv1d`` of the one-hot batch per motif and strand: no per-character Python.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from biolens.data.alphabets import Alphabet
from biolens.data.encoding import one_hot
from biolens.errors import ConfigError, DataError
from biolens.io import atomic_write

log = logging.getLogger(__name__)

BUILTIN_MOTIFS = {"TATA_box": "TATAAA", "CAAT_box": "CCAAT", "GC_box": "GGGCGG"}  # guide 7.2

IUPAC = {
    "A": "A", "C": "C", "G": "G", "T": "T", "U": "T", "R": "AG", "Y": "CT", "S": "CG", "W": "AT", "K": "GT",
    "M": "AC", "B": "CGT", "D": "AGT", "H": "ACT", "V": "ACG", "N": "ACGT",
}  # fmt: skip
PSEUDOCOUNT = 0.01  # added to each probability before the log-odds (then renormalised)
DEFAULT_REL_THRESHOLD = 0.85


@dataclass
class Motif:
    """A named motif: ``scores (w, A)`` over ``letters`` (canonical symbols, e.g. ACGT) and a hit threshold.

    ``probs`` holds the letter-probability matrix for PWMs (None for IUPAC strings); ``consensus`` the IUPAC
    string or the most likely letter per position.
    """

    name: str
    letters: str
    scores: np.ndarray
    threshold: float
    consensus: str
    probs: np.ndarray | None = None
    source: str = ""

    @property
    def width(self) -> int:
        return int(self.scores.shape[0])


def _norm_letters(letters: str) -> str:
    return letters.upper().replace("U", "T")


def iupac_motif(pattern: str, name: str | None = None, letters: str = "ACGT", source: str = "") -> Motif:
    """A nucleic IUPAC string (``TATAAA``, ``TATAWAWR``) or, for protein letters, a literal with X as wildcard."""
    pat = pattern.strip().upper()
    where = f"{source}: " if source else ""
    if not pat:
        raise ConfigError(f"{where}empty motif; give an IUPAC string such as TATAAA")
    if _norm_letters(letters) == "ACGT":
        bad = sorted(set(pat) - set(IUPAC))
        if bad:
            raise ConfigError(f"{where}motif {pattern!r} has non-IUPAC letters {''.join(bad)}; use A C G T/U R Y S W "
                              "K M B D H V N, or a MEME/JASPAR file")
        allowed = [IUPAC[c] for c in pat]
        table = _norm_letters(letters)
    else:
        bad = sorted(set(pat) - set(letters.upper()) - {"X"})
        if bad:
            raise ConfigError(f"{where}motif {pattern!r} has letters {''.join(bad)} outside {letters} (X = any)")
        allowed = [letters.upper() if c == "X" else c for c in pat]
        table = letters.upper()
    scores = np.array([[1.0 if t in a else 0.0 for t in table] for a in allowed])
    return Motif(name or pat, letters.upper(), scores, float(len(pat)) - 0.5, pat, None, source or "iupac")


def pwm_motif(name: str, probs: np.ndarray, letters: str, rel_threshold: float = DEFAULT_REL_THRESHOLD,
              source: str = "") -> Motif:
    """A PWM from a letter-probability matrix ``(w, A)``: log2 odds against a uniform background."""
    p = np.asarray(probs, dtype=np.float64)
    p = (p + PSEUDOCOUNT) / (p.sum(axis=1, keepdims=True) + PSEUDOCOUNT * p.shape[1])
    scores = np.log2(p * p.shape[1])
    lo, hi = scores.min(axis=1).sum(), scores.max(axis=1).sum()
    consensus = "".join(letters[i] for i in np.asarray(probs).argmax(axis=1))
    return Motif(name, letters.upper(), scores, float(lo + rel_threshold * (hi - lo)), consensus,
                 np.asarray(probs, dtype=np.float64), source)


# ---- parsers ------------------------------------------------------------------------------------------------------
_FLOAT = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def _numbers(text: str, where: str) -> list[float]:
    try:
        return [float(t) for t in text.replace("[", " ").replace("]", " ").split()]
    except ValueError:
        raise DataError(f"{where}: expected numbers, got {text.strip()!r}") from None


def parse_meme(path: str | Path, rel_threshold: float = DEFAULT_REL_THRESHOLD) -> list[Motif]:
    """Motifs of a MEME-format file (``MOTIF`` + ``letter-probability matrix``); errors name file:line."""
    p = Path(path)
    lines = p.read_text().splitlines()
    letters = "ACGT"
    motifs: list[Motif] = []
    name: str | None = None
    name_line = 0
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("ALPHABET="):
            letters = line.split("=", 1)[1].strip().upper()
            letters = {"ACGU": "ACGT"}.get(letters, letters)
        elif line.startswith("MOTIF"):
            parts = line.split()
            if len(parts) < 2:
                raise DataError(f"{p}:{i + 1}: MOTIF line without a name; write 'MOTIF NAME [ALT]'")
            name, name_line = parts[1], i + 1
        elif line.startswith("letter-probability matrix"):
            where = f"{p}:{i + 1}"
            if name is None:
                raise DataError(f"{where}: letter-probability matrix before any MOTIF line")
            fields = dict(re.findall(r"(\w+)=\s*(" + _FLOAT + ")", line))
            alength, w = int(float(fields.get("alength", len(letters)))), fields.get("w")
            if w is None:
                raise DataError(f"{where}: letter-probability matrix without w= (motif width)")
            if alength != len(letters):
                raise DataError(f"{where}: alength={alength} but the alphabet {letters} has {len(letters)} letters")
            rows = []
            for j in range(int(float(w))):
                k = i + 1 + j
                if k >= len(lines) or not lines[k].strip():
                    raise DataError(f"{p}:{k + 1}: motif {name} ends after {j} rows; w={int(float(w))} declared")
                row = _numbers(lines[k], f"{p}:{k + 1}")
                if len(row) != alength or min(row) < 0 or abs(sum(row) - 1.0) > 0.02:
                    raise DataError(f"{p}:{k + 1}: motif {name} row must be {alength} probabilities >= 0 summing to "
                                    f"1; got {lines[k].strip()!r}")
                rows.append(row)
            motifs.append(pwm_motif(name, np.array(rows), letters, rel_threshold, f"{p}:{name_line}"))
            name = None
            i += int(float(w))
        i += 1
    if not motifs:
        raise DataError(f"{p}: no motifs found; expected MEME format ('MOTIF NAME' then 'letter-probability matrix: "
                        "alength= 4 w= W' and W rows)")
    return motifs


def parse_jaspar(path: str | Path, rel_threshold: float = DEFAULT_REL_THRESHOLD) -> list[Motif]:
    """Count matrices in JASPAR format: ``>ID NAME`` then four rows ``A [ n n … ]`` (or bare rows in ACGT order)."""
    p = Path(path)
    lines = p.read_text().splitlines()
    motifs: list[Motif] = []
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if not line:
            i += 1
            continue
        if not line.startswith(">"):
            raise DataError(f"{p}:{i + 1}: expected a '>ID NAME' header, got {line!r}")
        header = line[1:].split()
        if not header:
            raise DataError(f"{p}:{i + 1}: empty JASPAR header; write '>ID NAME'")
        name, header_line = "_".join(header[:2]) if len(header) > 1 else header[0], i + 1
        rows: dict[str, list[float]] = {}
        for j, default in enumerate("ACGT"):
            k = i + 1 + j
            if k >= len(lines) or not lines[k].strip() or lines[k].lstrip().startswith(">"):
                raise DataError(f"{p}:{k + 1}: motif {name} needs 4 rows (A, C, G, T); found {j}")
            text = lines[k].strip()
            letter = default
            if text[0].upper() in "ACGTU" and not text[0].isdigit():
                letter, text = _norm_letters(text[0]), text[1:]
            rows[letter] = _numbers(text, f"{p}:{k + 1}")
        if sorted(rows) != list("ACGT"):
            raise DataError(f"{p}:{header_line}: motif {name} must have one row each for A, C, G and T")
        widths = {len(r) for r in rows.values()}
        if len(widths) != 1 or 0 in widths or min(min(r) for r in rows.values()) < 0:
            raise DataError(f"{p}:{header_line}: motif {name} rows must be equal-length non-negative counts")
        counts = np.array([rows[c] for c in "ACGT"]).T  # (w, 4)
        totals = counts.sum(axis=1, keepdims=True)
        if (totals <= 0).any():
            raise DataError(f"{p}:{header_line}: motif {name} has a column with no counts")
        motifs.append(pwm_motif(name, counts / totals, "ACGT", rel_threshold, f"{p}:{header_line}"))
        i += 5
    if not motifs:
        raise DataError(f"{p}: no motifs found; expected JASPAR format ('>ID NAME' and four count rows)")
    return motifs


def load_motifs(specs: list[str] | None, letters: str = "ACGT", builtins: bool = True) -> list[Motif]:
    """Motifs from ``specs`` (files in MEME or JASPAR format, or IUPAC strings, optionally ``NAME=IUPAC``), after
    the built-in TATA, CAAT and GC boxes (nucleic alphabets only)."""
    nucleic = _norm_letters(letters) == "ACGT"
    motifs = []
    if builtins and nucleic:
        motifs = [iupac_motif(seq, name, letters, "builtin") for name, seq in BUILTIN_MOTIFS.items()]
    for spec in specs or []:
        path = Path(spec)
        if path.is_file():
            head = path.read_text()[:4096]
            if "MEME version" in head or "letter-probability matrix" in head:
                motifs += parse_meme(path)
            elif head.lstrip().startswith(">"):
                motifs += parse_jaspar(path)
            else:
                raise DataError(f"{path}:1: not a MEME ('MEME version …') or JASPAR ('>ID NAME') motif file")
        else:
            name, _, pattern = spec.rpartition("=")
            motifs.append(iupac_motif(pattern, name or None, letters, source=f"--motifs {spec}"))
    names = [m.name for m in motifs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"motif names must be unique; repeated: {', '.join(dup)} (name them NAME=IUPAC)")
    for m in motifs:
        if _norm_letters(m.letters) != _norm_letters(letters):
            raise ConfigError(f"{m.source}: motif {m.name} is over {m.letters} but the sequences are over {letters}")
    return motifs


def write_meme(path: str | Path, motifs: list[tuple[str, np.ndarray, int]], letters: str = "ACGT") -> None:
    """Write ``(name, probs (w, A), nsites)`` motifs in MEME minimal format (atomically)."""
    bg = " ".join(f"{c} {1 / len(letters):.4f}" for c in letters)
    out = [f"MEME version 4\n\nALPHABET= {letters}\n\nstrands: + -\n\nBackground letter frequencies\n{bg}\n"]
    for name, probs, nsites in motifs:
        out.append(f"MOTIF {name}\nletter-probability matrix: alength= {len(letters)} w= {len(probs)} "
                   f"nsites= {int(nsites)} E= 0")
        out += [" ".join(f"{v:.6f}" for v in row) for row in probs]
        out.append("")
    text = ("\n".join(out) + "\n").encode()
    atomic_write(Path(path), lambda fh: fh.write(text))


# ---- scanning -----------------------------------------------------------------------------------------------------
def _weights(motif: Motif, alphabet: Alphabet) -> torch.Tensor:
    """``(1, V-1, w)`` conv weight: canonical columns in alphabet order, the unknown symbol (N) at each row's min."""
    order = [_norm_letters(motif.letters).index(c) for c in _norm_letters(alphabet.symbols)]
    s = motif.scores[:, order]  # (w, A)
    w = np.concatenate([s, s.min(axis=1, keepdims=True)], axis=1)  # (w, A+1)
    return torch.as_tensor(w.T[None], dtype=torch.float64)


def scan(motifs: list[Motif], x: np.ndarray, lengths: np.ndarray, alphabet: Alphabet, ids: list[str],
         both_strands: bool | None = None, chunk_rows: int = 4096) -> pd.DataFrame:
    """Every hit of every motif: columns id, index, motif, start, end, strand, score, matched.

    ``start``/``end`` are 0-based half-open forward-strand coordinates (BED-style) for both strands; ``matched`` is
    the subsequence as read on the hit's strand. DNA/RNA are scanned on both strands unless ``both_strands=False``.
    Rows are one-hot encoded ``chunk_rows`` at a time, so memory stays bounded on big files.
    """
    both = alphabet.is_nucleic if both_strands is None else both_strands
    n, length = x.shape
    lengths_t = torch.as_tensor(np.asarray(lengths, dtype=np.int64))
    chars = alphabet.index_to_char
    id_array = np.asarray(ids, dtype=object)
    comp = alphabet.complement_table() if both else None  # index → complementary index
    kernels = []  # (motif, strand, weight) for every motif that fits
    for m in motifs:
        if m.width > length:
            continue
        w = _weights(m, alphabet)
        kernels.append((m, "+", w))
        if both:
            perm = torch.as_tensor(comp[1:] - 1)  # channel c on the reverse strand reads complement(c)
            kernels.append((m, "-", w[:, perm].flip(-1)))
    rows = []
    step = max(int(chunk_rows), 1)
    for c0 in range(0, n, step):
        xc = x[c0:c0 + step]
        onehot = one_hot(torch.as_tensor(xc), alphabet.vocab_size, torch.float64)
        for m, strand, weight in kernels:
            score = F.conv1d(onehot, weight)[:, 0]  # (n_chunk, L - w + 1)
            starts = torch.arange(score.shape[1])
            valid = starts[None, :] <= lengths_t[c0:c0 + len(xc), None] - m.width
            hit = (score >= m.threshold - 1e-9) & valid
            ii, ss = (t.numpy() for t in hit.nonzero(as_tuple=True))
            if len(ii) == 0:
                continue
            win = xc[ii[:, None], ss[:, None] + np.arange(m.width)[None, :]]  # (H, w) indices
            if strand == "-":
                win = comp[win][:, ::-1]
            matched = np.ascontiguousarray(chars[win]).view(f"S{m.width}")[:, 0].astype(str)  # (H,) no per-hit loop
            rows.append(pd.DataFrame({
                "id": id_array[ii + c0], "index": ii + c0, "motif": m.name, "start": ss,
                "end": ss + m.width, "strand": strand, "score": score[ii, ss].numpy().round(4), "matched": matched,
            }))  # fmt: skip
    cols = ["id", "index", "motif", "start", "end", "strand", "score", "matched"]
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=object if c in ("id", "motif", "strand", "matched") else float)
                             for c in cols})
    return pd.concat(rows, ignore_index=True).sort_values(["index", "start", "motif", "strand"], kind="stable",
                                                            ignore_index=True)


# ---- enrichment ---------------------------------------------------------------------------------------------------
def enrichment(hits: pd.DataFrame, covered: np.ndarray, lengths: np.ndarray, motifs: list[Motif],
               n_perm: int = 10000, seed: int = 0, alpha: float = 0.05) -> pd.DataFrame:
    """Do a motif's hits fall inside high-attribution regions more often than by chance?

    A hit is inside when at least half of its positions (``ceil(w / 2)``) are covered (``covered (N, L)`` bool). The
    null places each hit at a uniformly random start in its own sequence (``n_perm`` times, seeded) and applies the
    same rule; the one-sided p-value is ``(1 + #null >= observed) / (1 + n_perm)``, Bonferroni-adjusted over motifs
    for ``significant``.

    Returns one row per motif: motif, hits, inside, expected, fold, p_value, p_adjusted, significant.
    """
    rng = np.random.default_rng(seed)
    cs = np.concatenate([np.zeros((len(covered), 1), dtype=np.int64), np.cumsum(covered, axis=1)], axis=1)
    rows = []
    for m in motifs:
        h = hits[hits["motif"] == m.name]
        idx, starts = h["index"].to_numpy(dtype=np.int64), h["start"].to_numpy(dtype=np.int64)
        need = -(-m.width // 2)
        observed = int((cs[idx, starts + m.width] - cs[idx, starts] >= need).sum()) if len(h) else 0
        span = lengths[idx] - m.width + 1  # number of possible starts per hit
        null = np.empty(n_perm, dtype=np.int64)
        chunk = max(1, 2_000_000 // max(len(h), 1))
        for s in range(0, n_perm, chunk):
            r = min(chunk, n_perm - s)
            rand = (rng.random((len(h), r)) * span[:, None]).astype(np.int64)  # (H, r) random starts
            null[s:s + r] = (cs[idx[:, None], rand + m.width] - cs[idx[:, None], rand] >= need).sum(axis=0)
        expected = float(null.mean()) if len(h) else 0.0
        p = float((1 + (null >= observed).sum()) / (1 + n_perm)) if len(h) else 1.0
        rows.append({"motif": m.name, "hits": len(h), "inside": observed, "expected": round(expected, 3),
                     "fold": round(observed / expected, 3) if expected > 0 else float("nan"), "p_value": p})
    out = pd.DataFrame(rows, columns=["motif", "hits", "inside", "expected", "fold", "p_value"])
    out["p_adjusted"] = np.minimum(out["p_value"] * max(len(motifs), 1), 1.0)
    out["significant"] = out["p_adjusted"] < alpha
    return out


def in_regions(hits: pd.DataFrame, covered: np.ndarray) -> np.ndarray:
    """Per hit: at least half of its positions lie in a region (the rule ``enrichment`` counts)."""
    if not len(hits):
        return np.zeros(0, dtype=bool)
    cs = np.concatenate([np.zeros((len(covered), 1), dtype=np.int64), np.cumsum(covered, axis=1)], axis=1)
    idx = hits["index"].to_numpy(dtype=np.int64)
    start, end = hits["start"].to_numpy(dtype=np.int64), hits["end"].to_numpy(dtype=np.int64)
    return cs[idx, end] - cs[idx, start] >= -(-(end - start) // 2)
