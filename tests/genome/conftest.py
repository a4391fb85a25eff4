"""Genome fixtures: FASTA writers (plain, gzip, real BGZF blocks), a synthetic genome with a motif planted at known
places, the intervals around them, and one run trained on them (shared by the variants, scan and CLI tests)."""

from __future__ import annotations

import gzip
import os
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

MOTIF = "TGACTCAGCATG"  # 12 bp, not its own reverse complement
RC = MOTIF[::-1].translate(str.maketrans("ACGT", "TGCA"))
CONTIGS = {"chrA": 30000, "chrB": 30000, "chrC": 30000}
WINDOW = 80
SMALL_MODEL = {"embedding_dim": 8, "filters": 16, "dropout": 0.1}


@pytest.fixture(scope="package", autouse=True)
def genome_cache(tmp_path_factory: pytest.TempPathFactory):
    """Every genome index of this package goes to a temporary cache (never ~/.cache)."""
    old = os.environ.get("BIOLENS_CACHE")
    os.environ["BIOLENS_CACHE"] = str(tmp_path_factory.mktemp("biolens-cache"))
    yield Path(os.environ["BIOLENS_CACHE"])
    if old is None:
        os.environ.pop("BIOLENS_CACHE", None)
    else:
        os.environ["BIOLENS_CACHE"] = old


def fasta_text(records: dict[str, str], width: int = 60) -> str:
    out = []
    for name, seq in records.items():
        out.append(f">{name} test contig")
        out += [seq[i:i + width] for i in range(0, len(seq), width)]
    return "\n".join(out) + "\n"


def write_genome(path: Path, records: dict[str, str], width: int = 60) -> Path:
    text = fasta_text(records, width).encode()
    if path.name.endswith(".bgz") or path.name.endswith(".bgzf.gz"):
        path.write_bytes(bgzf(text))
    elif path.suffix == ".gz":
        path.write_bytes(gzip.compress(text))
    else:
        path.write_bytes(text)
    return path


def bgzf(data: bytes, block: int = 1000) -> bytes:
    """BGZF (what ``bgzip`` writes): gzip members of at most 64 kB with the ``BC`` extra field, then the EOF block."""
    out = []
    for lo in range(0, len(data) + 1, block):
        chunk = data[lo:lo + block]
        if not chunk and lo:
            break
        comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        body = comp.compress(chunk) + comp.flush()
        header = b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff\x06\x00BC\x02\x00" + struct.pack("<H", len(body) + 25)
        out.append(header + body + struct.pack("<II", zlib.crc32(chunk), len(chunk)))
    eof = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
    return b"".join(out) + eof


def write_vcf(path: Path, rows: list[str], header: list[str] | None = None) -> Path:
    lines = ["##fileformat=VCFv4.2", *(header or []), "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO", *rows]
    text = "\n".join(lines) + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def motif_sites(fasta: Path) -> list[tuple[str, int]]:
    """(contig, start) of every motif copy on either strand, found in the FASTA itself."""
    from biolens.data.genome import Genome

    with Genome(fasta) as g:
        found = []
        for c, n in g.contigs.items():
            s = g.fetch(c, 0, n)
            found += [(c, m.start()) for pat in (MOTIF, RC) for m in re.finditer(pat, s)]
    return sorted(found)


@pytest.fixture(scope="package")
def planted(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A 90 kb genome of three contigs with the motif at 180 known sites, BED intervals around them (jittered, so
    the motif is not always at the window's centre) and the sites as found in the FASTA."""
    from biolens.data.synthetic import write_synthetic_genome

    root = tmp_path_factory.mktemp("planted")
    fasta = root / "genome.fa"
    write_synthetic_genome(fasta, CONTIGS, motif=MOTIF, sites=180, spacing=400, seed=11)
    sites = motif_sites(fasta)
    rng = np.random.default_rng(2)
    with open(root / "peaks.bed", "w") as fh:
        fh.write("track name=planted\n")
        for c, s in sites:
            j = int(rng.integers(-20, 21))
            fh.write(f"{c}\t{s + 6 - 30 + j}\t{s + 6 + 30 + j}\tsite\t0\t.\n")
    return {"root": root, "fasta": fasta, "bed": root / "peaks.bed", "sites": sites}


@pytest.fixture(scope="package")
def genome_run(planted: dict) -> Path:
    """One small CNN trained on the planted sites vs GC-matched genome windows, test split = chrC."""
    from biolens.workflows.train import train

    out = planted["root"] / "run"
    train(data=str(planted["bed"]), genome=str(planted["fasta"]), window=WINDOW, negatives="gc-matched",
          test_chroms=["chrC"], model="motif_cnn", params=SMALL_MODEL, epochs=8, batch_size=16, lr=5e-3,
          out=str(out))
    return out
