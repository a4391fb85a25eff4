"""A reference genome: FASTA (plain, gzip or bgzip) with random access through pyfaidx, indexed in the cache.

- **Nothing is written next to the user's file.** The ``.fai`` index goes to ``$BIOLENS_CACHE/genomes/<key>/``
  (key: the file's path, size and mtime); a compressed genome (plain gzip or bgzip, by magic bytes) is decompressed
  there once, so later runs open it at once. Every cache file is written to a temporary name and renamed.
- **Identity.** ``identity()`` is what a run's contract records: the genome's name, each contig's length and one
  checksum (SHA-256 over the sorted per-contig SHA-256 of the upper-case sequence: independent of contig names and
  order, so ``chr1`` and ``1`` name the same assembly, but one changed base is another genome). It is computed in one
  pass that also rejects characters no DNA alphabet has (one line naming the contig and position), and cached.
- **Contig names.** ``aliases`` map names used by BED/VCF files to the genome's (``Chromosome`` → ``NC_000913.3``).
- Sequences come back as uint8 indices in the DNA alphabet (``encode``, ``windows``): soft-masked (lower-case)
  bases read as upper case and IUPAC ambiguity codes as N, exactly as ``data.encoding.encode`` reads sequences.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyfaidx

from biolens.data.alphabets import DNA, INVALID
from biolens.data.cachedir import cache_root, file_stamp
from biolens.data.sniff import UTF8_BOM, check_text_file, is_gzip
from biolens.errors import BundleError, DataError
from biolens.io import temp_beside, write_json

log = logging.getLogger(__name__)

READ_BLOCK = 1 << 24  # bases read at a time when hashing or streaming a contig
_FASTA_SUFFIXES = (".fa", ".fasta", ".fna", ".ffn", ".fas", ".seq")
_UNKNOWN = DNA.unknown_index
# genome bytes → DNA indices; characters no alphabet has stay INVALID (checked once, by identity())
_LUT = DNA.lut.copy()


def genome_name(path: Path) -> str:
    """``GRCh38.fa.gz`` → ``GRCh38``."""
    name = path.name.removesuffix(".gz")
    for suffix in _FASTA_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _atomic_copy(chunks: Iterator[bytes], target: Path) -> None:
    fd, tmp = temp_beside(target)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _decompressed(path: Path) -> Iterator[bytes]:
    with gzip.open(path, "rb") as fh:
        while block := fh.read(1 << 22):
            yield block


class Genome:
    """Random access to a reference FASTA. Use as a context manager (or call ``close``)."""

    def __init__(self, path: str | Path, *, aliases: Mapping[str, str] | None = None,
                 cache_dir: str | Path | None = None):
        self.path = Path(path)
        if not self.path.exists():
            raise DataError(f"genome file not found: {self.path}; check the path (data.genome)")
        if self.path.is_dir():
            raise DataError(f"genome {self.path} is a directory; give a FASTA file (.fa, .fa.gz)")
        self.name = genome_name(self.path)
        self.aliases = dict(aliases or {})
        self.cache = Path(cache_dir) if cache_dir else cache_root("genomes")
        key = hashlib.sha256(f"genome{file_stamp(self.path)}".encode()).hexdigest()[:20]
        self.dir = self.cache / key
        fasta, index = self._prepare(self.dir)
        try:
            self._fa = pyfaidx.Fasta(str(fasta), indexname=str(index), as_raw=True, sequence_always_upper=True,
                                     rebuild=False, build_index=False)
        except (pyfaidx.FastaIndexingError, ValueError, OSError) as e:
            raise DataError(f"genome {self.path}: cannot open its index ({e}); delete {self.dir} and retry") from None
        self.contigs: dict[str, int] = {name: len(rec) for name, rec in self._fa.records.items()}
        if not self.contigs:
            raise DataError(f"genome {self.path}: no FASTA records found; check the file")
        self._identity: dict[str, Any] | None = None

    # ---- cache ------------------------------------------------------------------------------------------------
    def _prepare(self, folder: Path) -> tuple[Path, Path]:
        """(plain FASTA, its index) in the cache; built once per file version, atomically."""
        index = folder / "genome.fai"
        gz = is_gzip(self.path)
        fasta = folder / "genome.fa" if gz else self.path
        if index.is_file() and fasta.is_file():
            return fasta, index
        check_text_file(self.path, "a FASTA genome")  # complete gzip, UTF-8, no NUL bytes: before anything is cached
        folder.mkdir(parents=True, exist_ok=True)
        if gz and not fasta.is_file():
            log.info("genome %s is compressed: decompressing it once into %s", self.path, fasta)
            _atomic_copy(_decompressed(self.path), fasta)
        with open(fasta, "rb") as fh:
            head = fh.read(3)
        if head == UTF8_BOM:
            raise DataError(f"genome {self.path} starts with a UTF-8 byte-order mark; save it without one")
        if head[:1] != b">":
            raise DataError(f"genome {self.path}: not a FASTA file (the first line must start with '>'); check the "
                            "file")
        fd, tmp = temp_beside(index)
        os.close(fd)
        os.unlink(tmp)  # pyfaidx would take an existing (empty) file for an up-to-date index
        try:
            pyfaidx.Faidx(str(fasta), indexname=tmp, build_index=True, rebuild=True).close()
            os.replace(tmp, index)
        except pyfaidx.FastaIndexingError as e:
            raise DataError(f"genome {self.path}: cannot index it ({' '.join(str(e).split())}); every line of a "
                            "record must have the same length (re-wrap it, e.g. with seqkit seq -w 60)") from None
        except ValueError as e:  # duplicate record names
            raise DataError(f"genome {self.path}: {e}; give every record a unique name") from None
        finally:
            Path(tmp).unlink(missing_ok=True)
        return fasta, index

    def close(self) -> None:
        self._fa.close()

    def __enter__(self) -> Genome:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- names ------------------------------------------------------------------------------------------------
    def resolve(self, name: str) -> str | None:
        """The genome's name for a contig name from a BED/VCF file (aliases applied), or None if it has none."""
        name = self.aliases.get(name, name)
        return name if name in self.contigs else None

    def describe_contigs(self, limit: int = 5) -> str:
        names = list(self.contigs)
        return ", ".join(names[:limit]) + (f", … ({len(names)} in all)" if len(names) > limit else "")

    # ---- sequence ---------------------------------------------------------------------------------------------
    def fetch(self, contig: str, start: int, end: int) -> str:
        """Upper-case sequence of ``[start, end)`` (0-based, half-open) on the genome's contig name."""
        if not 0 <= start <= end <= self.contigs[contig]:
            raise ValueError(f"{contig}:{start}-{end} is outside the contig (length {self.contigs[contig]})")
        if start == end:
            return ""
        return self._fa[contig][start:end]

    def encode(self, contig: str, start: int, end: int) -> np.ndarray:
        """``[start, end)`` as DNA indices ``(end - start,)`` uint8 (A C G T = 1..4, N and IUPAC codes = 5)."""
        raw = np.frombuffer(self.fetch(contig, start, end).encode("latin-1", errors="replace"), dtype=np.uint8)
        out = _LUT[raw]
        out[out == INVALID] = _UNKNOWN  # rejected once by identity(); never a crash here
        return out

    def windows(self, contigs: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
        """Windows ``[start, start + width)`` as ``(N, width)`` uint8 DNA indices, in the given order."""
        n = len(starts)
        out = np.zeros((n, width), dtype=np.uint8)
        contigs, starts = np.asarray(contigs, dtype=object), np.asarray(starts, dtype=np.int64)
        for name in dict.fromkeys(contigs):
            rows = np.flatnonzero(contigs == name)
            lo, hi = int(starts[rows].min()), int(starts[rows].max()) + width
            if hi - lo <= max(4 * width * len(rows), 1 << 20):  # dense: one read, then slice rows out of it
                view = np.lib.stride_tricks.sliding_window_view(self.encode(name, lo, hi), width)
                out[rows] = view[starts[rows] - lo]
            else:
                for r in rows:
                    out[r] = self.encode(name, int(starts[r]), int(starts[r]) + width)
        return out

    def blocks(self, contig: str, start: int = 0, end: int | None = None, size: int = READ_BLOCK
               ) -> Iterator[tuple[int, np.ndarray]]:
        """``(offset, indices)`` blocks of ``[start, end)`` on one contig, ``size`` bases each (bounded memory)."""
        end = self.contigs[contig] if end is None else end
        for lo in range(start, end, size):
            yield lo, self.encode(contig, lo, min(lo + size, end))

    # ---- identity ---------------------------------------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        """``{"name", "contigs": {name: length}, "checksum"}`` for the contract (cached next to the index)."""
        if self._identity is not None:
            return self._identity
        cached = self.dir / "identity.json"
        if cached.is_file():
            try:
                self._identity = json.loads(cached.read_text())
                return self._identity
            except json.JSONDecodeError:
                pass  # rebuilt below
        digests = []
        for name, length in self.contigs.items():
            h = hashlib.sha256()
            for lo in range(0, length, READ_BLOCK):
                raw = self.fetch(name, lo, min(lo + READ_BLOCK, length)).encode("latin-1", errors="replace")
                bad = np.flatnonzero(_LUT[np.frombuffer(raw, dtype=np.uint8)] == INVALID)
                if bad.size:
                    at = int(bad[0])
                    raise DataError(f"genome {self.path}: contig {name!r} has the character {chr(raw[at])!r} at "
                                    f"position {lo + at + 1}, which is no DNA base or IUPAC code; fix the FASTA")
                h.update(raw)
            digests.append(h.hexdigest())
        checksum = hashlib.sha256("\n".join(sorted(digests)).encode()).hexdigest()
        self._identity = {"name": self.name, "contigs": dict(self.contigs), "checksum": checksum}
        write_json(cached, self._identity)
        return self._identity


def check_same_genome(recorded: Mapping[str, Any] | None, genome: Genome, *, allow_other: bool = False) -> None:
    """Refuse (one BundleError) to apply a model to another assembly than the one its contract records.

    ``recorded`` is the contract's ``genome`` (None for runs not trained on a genome: nothing to check).
    """
    if not recorded:
        log.info("the run records no genome (it was not trained on intervals); %s is not checked against it",
                 genome.path)
        return
    given = genome.identity()
    if given["checksum"] == recorded.get("checksum"):
        return
    theirs, ours = dict(recorded.get("contigs", {})), given["contigs"]
    common = [c for c in theirs if c in ours]
    differ = [c for c in common if theirs[c] != ours[c]]
    if differ:
        why = f"contig {differ[0]} is {ours[differ[0]]:,} bp here but {theirs[differ[0]]:,} bp in the model's genome"
    elif not common:
        why = f"no contig name in common (model: {', '.join(list(theirs)[:3])}; given: {genome.describe_contigs(3)})"
    elif set(theirs) != set(ours):
        why = f"{len(ours)} contigs here, {len(theirs)} in the model's genome"
    else:
        why = "same contig names and lengths but a different sequence"
    msg = (f"genome {genome.path} is not the assembly this model was trained on ({recorded.get('name')!r}, "
           f"checksum {str(recorded.get('checksum'))[:12]}…): {why}")
    if allow_other:
        log.warning("%s; scoring it anyway (allow_other_genome)", msg)
        return
    raise BundleError(f"{msg}; give that genome, or pass allow_other_genome=True to score this one anyway")
