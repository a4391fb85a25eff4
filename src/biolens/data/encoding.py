"""Vectorized sequence encoding: strings → uint8 index matrices, with a 256-entry lookup table.

No per-character Python: all sequences are joined into one byte buffer, mapped through the alphabet's table in one
numpy call and scattered into a padded ``(N, L)`` matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from biolens.data.alphabets import ALPHABETS, DNA, INVALID, PAD, PROTEIN, RNA, Alphabet, get_alphabet
from biolens.errors import DataError


class RecordError(DataError):
    """A problem with one record; ``index`` is 0-based so callers can prefix the file and line."""

    def __init__(self, index: int, message: str):
        super().__init__(message)
        self.index = index
        self.detail = str(self)


@dataclass(frozen=True)
class InvalidSymbol:
    """First invalid character found: record index, 0-based position and the character."""

    index: int
    position: int
    char: str


def _join(seqs: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """All sequences as one uint8 buffer, plus lengths (int64)."""
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    # latin-1 keeps one byte per character; anything beyond it becomes '?', which no alphabet accepts
    buf = np.frombuffer("".join(seqs).encode("latin-1", errors="replace"), dtype=np.uint8)
    return buf, lengths


def find_invalid(seqs: Sequence[str], alphabet: Alphabet) -> InvalidSymbol | None:
    """Locate the first character that ``alphabet`` cannot encode, or None."""
    buf, lengths = _join(seqs)
    bad = np.flatnonzero(alphabet.lut[buf] == INVALID)
    if bad.size == 0:
        return None
    first = int(bad[0])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    row = int(np.searchsorted(starts, first, side="right") - 1)
    return InvalidSymbol(row, first - int(starts[row]), chr(buf[first]))


def invalid_symbol_error(bad: InvalidSymbol, alphabet: Alphabet) -> RecordError:
    return RecordError(
        bad.index,
        f"invalid character {bad.char!r} at position {bad.position + 1} for alphabet {alphabet.name} "
        f"(allowed: {alphabet.valid_chars()}); fix the sequence or set the alphabet explicitly",
    )


def encode(seqs: Sequence[str], alphabet: Alphabet, max_len: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Encode sequences to a right-padded index matrix.

    numpy ASCII-encodes, truncates and NUL-pads every sequence into one fixed-width buffer in a single C pass;
    ``bytes.translate`` then maps the whole buffer through the alphabet's 256-entry table (NUL → PAD).

    Args:
        seqs: N sequences (any case).
        alphabet: target alphabet; a character it cannot encode raises RecordError naming the record.
        max_len: truncate longer sequences to this length; default is the longest sequence.

    Returns:
        ``(X, lengths)``: X is ``(N, L)`` uint8 with PAD=0 after each sequence; lengths are the encoded
        (post-truncation) lengths, int64.
    """
    n = len(seqs)
    lengths = np.fromiter(map(len, seqs), dtype=np.int64, count=n)
    width = int(lengths.max(initial=0)) if max_len is None else int(max_len)
    if n == 0 or width <= 0:
        return np.zeros((n, max(width, 0)), dtype=np.uint8), np.minimum(lengths, max(width, 0))
    try:
        fixed = np.array(seqs, dtype=f"S{width}")  # (N,) bytes, truncated and NUL-padded
    except UnicodeEncodeError:
        raise invalid_symbol_error(find_invalid(seqs, alphabet), alphabet) from None
    codes = bytearray(fixed).translate(alphabet.pad_table)  # one C pass over N * width bytes
    if codes.find(INVALID) >= 0 or any("\0" in s for s in seqs):
        bad = find_invalid(seqs, alphabet)
        raise invalid_symbol_error(bad if bad is not None else InvalidSymbol(0, 0, "\\0"), alphabet)
    return np.frombuffer(codes, dtype=np.uint8).reshape(n, width), np.minimum(lengths, width)


def decode(x: np.ndarray, alphabet: Alphabet, lengths: np.ndarray | None = None) -> list[str]:
    """Inverse of ``encode`` (unknown symbols come back as N or X). ``x``: ``(N, L)`` indices."""
    x = np.asarray(x, dtype=np.uint8)
    chars = alphabet.index_to_char[x]
    if lengths is None:
        lengths = (x != PAD).sum(axis=1)
    return [bytes(row[:n]).decode("ascii") for row, n in zip(chars, lengths)]


def one_hot(x: torch.Tensor | np.ndarray, vocab_size: int, dtype: torch.dtype = torch.float32,
            channels: int | None = None) -> torch.Tensor | np.ndarray:
    """``(N, L)`` indices → ``(N, V-1, L)`` one-hot without the PAD channel (padding is all zeros); the first
    ``channels`` channels only when given (e.g. the canonical symbols). Float one-hot input passes through.

    The one implementation for models, explanations and motif scans: torch in, torch out; numpy in, numpy out.
    """
    if isinstance(x, np.ndarray):
        return one_hot(torch.from_numpy(np.ascontiguousarray(x)), vocab_size, dtype, channels).numpy()
    if x.is_floating_point():
        out = x.to(dtype)
    else:
        out = F.one_hot(x.long(), vocab_size)[..., 1:].transpose(1, 2).to(dtype)
    return (out if channels is None else out[:, :channels]).contiguous()


def length_stats(lengths: np.ndarray, max_len: int | None = None) -> dict[str, float | int]:
    """Min, max, mean and median length, and how many sequences exceed ``max_len``."""
    lengths = np.asarray(lengths)
    if lengths.size == 0:
        return {"n": 0, "min": 0, "max": 0, "mean": 0.0, "median": 0.0, "truncated": 0, "max_len": max_len}
    return {
        "n": int(lengths.size),
        "min": int(lengths.min()),
        "max": int(lengths.max()),
        "mean": round(float(lengths.mean()), 2),
        "median": float(np.median(lengths)),
        "truncated": int((lengths > max_len).sum()) if max_len else 0,
        "max_len": max_len,
    }


_NUCLEIC_ONLY = set("ACGTUN")


def detect_alphabet(seqs: Sequence[str]) -> str:
    """Guess dna, rna or protein from the characters used.

    Raises DataError for mixed alphabets (T and U in one file, or nucleotide and protein records together) and for
    characters that belong to no alphabet; the message names the first offending record (1-based).
    """
    buf, lengths = _join(seqs)
    if buf.size == 0:
        raise DataError("all sequences are empty")
    upper = np.frombuffer(bytes(buf).upper(), dtype=np.uint8)
    rows = np.repeat(np.arange(len(seqs)), lengths)
    present = {chr(c) for c in np.unique(upper)}

    def first_row_with(chars: str) -> int:
        mask = np.isin(upper, np.frombuffer(chars.encode(), dtype=np.uint8))
        return int(rows[np.flatnonzero(mask)[0]]) + 1

    known = set(DNA.valid_chars()) | set(RNA.valid_chars()) | set(PROTEIN.valid_chars())
    if present - known:
        bad = "".join(sorted(present - known))
        r = first_row_with(bad)
        raise RecordError(
            r - 1,
            f"invalid character {bad[0]!r}: it is in no sequence alphabet (dna, rna, protein); "
            "remove gaps, digits, stop codons and other symbols",
        )
    if present <= set(DNA.valid_chars()) | {"U"}:
        if "T" in present and "U" in present:
            raise RecordError(
                first_row_with("U") - 1,
                f"mixed alphabets: this record contains U (RNA) while record {first_row_with('T')} contains T (DNA); "
                "set data.alphabet=rna to read T as U (e.g. siRNA DNA overhangs), convert U to T for DNA, or use "
                "separate files",
            )
        return "rna" if "U" in present else "dna"
    # Protein letters present. If most records are pure nucleotides, the file mixes alphabets.
    protein_only = np.frombuffer("".join(sorted(present - _NUCLEIC_ONLY)).encode(), dtype=np.uint8)
    is_protein_row = np.zeros(len(seqs), dtype=bool)
    is_protein_row[rows[np.isin(upper, protein_only)]] = True
    if (~is_protein_row).mean() >= 0.9 and (lengths[~is_protein_row] >= 20).mean() > 0.5:
        r = int(np.flatnonzero(is_protein_row)[0])
        raise RecordError(
            r,
            f"mixed alphabets: this record contains protein letters while {int((~is_protein_row).sum())} of "
            f"{len(seqs)} records are pure nucleotides; fix the record or set the alphabet explicitly",
        )
    return "protein"


def resolve_alphabet(name: str, seqs: Sequence[str]) -> Alphabet:
    """``auto`` → detect; otherwise the named alphabet."""
    if name == "auto":
        return ALPHABETS[detect_alphabet(seqs)]
    return get_alphabet(name)
