"""Sequence alphabets and their 256-entry byte lookup tables.

Index layout for every alphabet: ``0`` is padding, ``1..k`` are the canonical symbols in order, ``k+1`` is the
unknown symbol (N for nucleic acids, X for protein). Ambiguity codes (IUPAC) map to the unknown symbol; any other
byte is invalid.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from biolens.errors import ConfigError

PAD = 0
INVALID = 255

_NUCLEIC_AMBIGUOUS = "RYSWKMBDHV"
# an RNA alphabet (set explicitly: data.alphabet=rna) reads T as U, for siRNAs with deoxythymidine overhangs
# (…UUat); a DNA model still refuses U, and automatic detection still calls a T+U mix an error
READS_AS = {"rna": {"T": "U"}}


@dataclass(frozen=True)
class Alphabet:
    name: str
    symbols: str  # canonical symbols, index 1..k
    unknown: str  # index k+1
    ambiguous: str = ""  # accepted, encoded as `unknown`
    complement: str | None = None  # complement of `symbols`, position by position (nucleic only)
    lut: np.ndarray = field(init=False, repr=False, compare=False)
    pad_table: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lut = np.full(256, INVALID, dtype=np.uint8)
        for i, s in enumerate(self.symbols, start=1):
            lut[ord(s)] = lut[ord(s.lower())] = i
        for s in self.ambiguous + self.unknown:
            lut[ord(s)] = lut[ord(s.lower())] = self.unknown_index
        for s, same in READS_AS.get(self.name, {}).items():  # T in an RNA (siRNA DNA overhangs)
            lut[ord(s)] = lut[ord(s.lower())] = lut[ord(same)]
        object.__setattr__(self, "lut", lut)
        pad = lut.copy()
        pad[0] = PAD  # NUL padding from fixed-width byte strings
        object.__setattr__(self, "pad_table", pad.tobytes())

    @property
    def unknown_index(self) -> int:
        return len(self.symbols) + 1

    @property
    def vocab_size(self) -> int:
        """Number of indices including PAD and unknown."""
        return len(self.symbols) + 2

    @property
    def is_nucleic(self) -> bool:
        return self.complement is not None

    @property
    def index_to_char(self) -> np.ndarray:
        """uint8 array mapping index → ASCII byte; PAD decodes to '-'."""
        return np.frombuffer(("-" + self.symbols + self.unknown).encode(), dtype=np.uint8)

    def complement_table(self) -> np.ndarray:
        """Index → index of the complementary symbol (PAD→PAD, unknown→unknown)."""
        if self.complement is None:
            raise ConfigError(f"alphabet {self.name!r} has no complement; reverse complement applies to dna and rna only")
        table = np.arange(self.vocab_size, dtype=np.int64)
        for i, c in enumerate(self.complement, start=1):
            table[i] = self.symbols.index(c) + 1
        return table

    def valid_chars(self) -> str:
        return self.symbols + self.unknown + self.ambiguous


DNA = Alphabet("dna", "ACGT", "N", _NUCLEIC_AMBIGUOUS, complement="TGCA")
RNA = Alphabet("rna", "ACGU", "N", _NUCLEIC_AMBIGUOUS, complement="UGCA")
PROTEIN = Alphabet("protein", "ACDEFGHIKLMNPQRSTVWY", "X", "BZJUO")

ALPHABETS: dict[str, Alphabet] = {a.name: a for a in (DNA, RNA, PROTEIN)}


def get_alphabet(name: str) -> Alphabet:
    try:
        return ALPHABETS[name.lower()]
    except KeyError:
        raise ConfigError(f"unknown alphabet {name!r}; expected one of: {', '.join(ALPHABETS)} (or auto)") from None
