"""VCF reading (plain, gzip or bgzip) for variant scoring: the header kept as is, records in chunks.

A data line that cannot be a VCF record (fewer than eight columns, a position that is no positive integer) is not
an error of the whole file: it comes back as a record with ``problem`` set, so the scorer can report it next to the
others. A file without the ``#CHROM`` header line is refused (it is not a VCF).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from biolens.data.sniff import check_text_file, open_text
from biolens.errors import DataError

SYMBOLIC = ("<", "*", ".")  # <DEL>, spanning deletions, missing ALT; breakends contain [ or ]


@dataclass
class VcfRecord:
    """One data line: the columns as read (``fields``), and CHROM/POS/ID/REF/ALT parsed (``problem`` when not)."""

    line: int
    fields: list[str]
    chrom: str = ""
    pos: int = 0  # 1-based, as in the file
    id: str = "."
    ref: str = ""
    alts: list[str] = field(default_factory=list)
    problem: str | None = None


@dataclass
class Vcf:
    path: Path
    header: list[str]  # every line before the first record, "#CHROM…" last, without newlines

    def records(self, chunk_size: int = 4096) -> Iterator[list[VcfRecord]]:
        """Records in chunks of ``chunk_size`` (bounded memory)."""
        chunk: list[VcfRecord] = []
        with open_text(self.path) as fh:
            for lineno, text in enumerate(fh, start=1):
                if lineno <= len(self.header):
                    continue
                text = text.rstrip("\r\n")
                if not text.strip():
                    continue
                chunk.append(parse_record(text, lineno))
                if len(chunk) == chunk_size:
                    yield chunk
                    chunk = []
        if chunk:
            yield chunk


def parse_record(text: str, lineno: int) -> VcfRecord:
    cols = text.split("\t")
    rec = VcfRecord(lineno, cols)
    if len(cols) < 8:
        rec.problem = f"{len(cols)} tab-separated column(s); a VCF record has at least 8 (CHROM … INFO)"
        return rec
    rec.chrom, pos, rec.id, rec.ref = cols[0].strip(), cols[1].strip(), cols[2], cols[3].strip().upper()
    try:
        rec.pos = int(pos)
    except ValueError:
        rec.problem = f"POS {pos!r} is not an integer"
        return rec
    if rec.pos < 1:
        rec.problem = f"POS {rec.pos} is not a 1-based position"
    rec.alts = [a.strip() for a in cols[4].split(",")]
    if not rec.ref:
        rec.problem = "empty REF"
    return rec


def read_vcf(path: str | Path) -> Vcf:
    """Open a VCF: checks the file (gzip integrity, UTF-8) and reads its header up to the ``#CHROM`` line."""
    p = check_text_file(path, "a VCF file").path
    header: list[str] = []
    with open_text(p) as fh:
        for text in fh:
            text = text.rstrip("\r\n")
            header.append(text)
            if text.startswith("#CHROM"):
                return Vcf(p, header)
            if not text.startswith("##"):
                break
    where = f"{p}:{len(header)}" if header else str(p)
    raise DataError(f"{where}: no '#CHROM POS ID REF ALT …' header line before the records; is this a VCF? "
                    "(meta lines start with ##, the header with #CHROM)")
