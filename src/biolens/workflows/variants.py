"""``biolens variants RUN --vcf x.vcf[.gz] --genome g.fa``: the model's view of every SNV and short indel.

For each ALT allele (multi-allelic records are split, one row per allele) the reference window is the model's length
``W`` of genome with the variant's first base at offset ``W // 2``; the alternative window shares the left flank,
carries the ALT allele there, and is filled up to ``W`` from the genome after the REF allele (so a deletion pulls in
more right flank and an insertion pushes some out). Both windows are scored on both strands (averaged, see
``workflows/genomic.py``). Rows report P(class) of both windows, their difference (alt − ref) and the log-odds ratio
``logit(p_alt) − logit(p_ref)`` (probabilities clipped to [1e-6, 1 − 1e-6]).

An allele that cannot be scored gets a status and a note instead of numbers, never an error of the whole file:
``malformed`` line, ``unknown_contig``, ``symbolic`` allele (``<DEL>``, ``*``, breakends, missing), ``not_dna``,
``too_long`` (over ``max_allele`` bases, or more than half the window), ``no_change`` (ALT = REF),
``ref_mismatch`` (REF differs from the genome) and ``near_contig_end`` (no full window). Both outputs are written
atomically: the TSV, and with ``vcf_out`` the VCF with ``BL_*`` INFO fields (Number=A, one value per ALT).
"""

from __future__ import annotations

import csv
import logging
import math
import os
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biolens.data.alphabets import DNA
from biolens.data.encoding import encode
from biolens.data.genome import Genome
from biolens.data.vcf import SYMBOLIC, VcfRecord, read_vcf
from biolens.errors import ConfigError, DataError
from biolens.io import temp_beside
from biolens.tasks import Predictor
from biolens.workflows.genomic import (as_predictor, both_strands, is_regression, open_genome, scored_classes,
                                       window_probs)

log = logging.getLogger(__name__)

EPS = 1e-6
_DNA_CHARS = set("ACGTN")
STATUS = {
    "scored": "scored",
    "malformed": "not a VCF record",
    "unknown_contig": "contig not in the genome",
    "symbolic": "symbolic or missing allele",
    "not_dna": "allele with characters other than A, C, G, T, N",
    "too_long": "not a short variant",
    "no_change": "ALT equals REF",
    "ref_mismatch": "REF does not match the genome",
    "near_contig_end": "too close to a contig end for a full window",
}


@dataclass
class VariantResult:
    """What ``score_variants`` wrote and how many alleles each status got."""

    out: Path
    vcf_out: Path | None
    records: int
    alleles: int
    status: dict[str, int] = field(default_factory=dict)

    @property
    def scored(self) -> int:
        return self.status.get("scored", 0)


@dataclass
class _Allele:
    rec: VcfRecord
    k: int  # ALT index
    alt: str
    status: str = "scored"
    note: str = ""
    contig: str = ""
    ref_seq: str = ""
    alt_seq: str = ""


def _log_odds(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def build_windows(genome: Genome, rec: VcfRecord, alt: str, width: int, max_allele: int) -> tuple[str, str, str, str]:
    """(status, note, ref window, alt window) of one allele (see the module docstring)."""
    contig = genome.resolve(rec.chrom)
    if contig is None:
        return "unknown_contig", f"contig {rec.chrom!r} is not in the genome ({genome.describe_contigs(3)})", "", ""
    ref = rec.ref
    if not alt or alt.startswith(SYMBOLIC) or "[" in alt or "]" in alt:
        return "symbolic", f"ALT {alt or '(empty)'!r} is symbolic or missing; only sequence alleles are scored", "", ""
    alt = alt.upper()
    bad = (set(ref) | set(alt)) - _DNA_CHARS
    if bad:
        return "not_dna", f"allele character {min(bad)!r} is no DNA base", "", ""
    half = width // 2
    longest = max(len(ref), len(alt))
    if longest > max_allele or longest > width - half:
        limit = min(max_allele, width - half)
        return "too_long", f"{longest} bp allele; only variants of up to {limit} bp are scored", "", ""
    if alt == ref:
        return "no_change", "ALT equals REF; nothing to score", "", ""
    p0, size = rec.pos - 1, genome.contigs[contig]
    if p0 + len(ref) > size:
        return "near_contig_end", f"REF ends past the contig end ({size:,} bp)", "", ""
    actual = genome.fetch(contig, p0, p0 + len(ref))
    if actual != ref:
        return "ref_mismatch", f"REF {ref} but the genome has {actual} at {contig}:{rec.pos}", "", ""
    start = p0 - half
    right = width - half - len(alt)  # bases after the ALT allele in the alt window
    if start < 0 or start + width > size or p0 + len(ref) + right > size:
        return "near_contig_end", (f"within {width - half} bp of the end of {contig} ({size:,} bp): no full "
                                   f"{width} bp window"), "", ""
    left = genome.fetch(contig, start, p0)
    ref_window = genome.fetch(contig, start, start + width)
    alt_window = left + alt + genome.fetch(contig, p0 + len(ref), p0 + len(ref) + right)
    return "scored", "", ref_window, alt_window


def score_variants(run: str | Path | Predictor, vcf: str | Path, genome: str | Path, *, out: str | Path,
                   vcf_out: str | Path | None = None, strands: str = "auto", target_class: str | None = None,
                   max_allele: int = 50, batch_size: int = 256, chunk_size: int = 2048,
                   aliases: Mapping[str, str] | None = None, allow_other_genome: bool = False, device: str = "auto",
                   progress: Callable[[int], None] | None = None) -> VariantResult:
    """Score every allele of ``vcf`` with the run and write ``out`` (TSV) and optionally ``vcf_out``."""
    if max_allele < 1 or batch_size < 1 or chunk_size < 1:
        raise ConfigError(f"max_allele, batch_size and chunk_size must be >= 1; got {max_allele}, {batch_size}, "
                          f"{chunk_size}")
    predictor = as_predictor(run, device)
    both = both_strands(predictor, strands)
    classes = scored_classes(predictor, target_class)
    reader = read_vcf(vcf)
    out = Path(out)
    outputs = [out] + ([Path(vcf_out)] if vcf_out is not None else [])
    if len({p.resolve() for p in outputs + [reader.path]}) < len(outputs) + 1:
        raise ConfigError(f"out {out} and vcf_out {vcf_out} must be two new files, neither of them the input VCF")
    for p in outputs:
        if p.is_dir():
            raise ConfigError(f"out {p} is a folder; give a file name")
        p.parent.mkdir(parents=True, exist_ok=True)
    width = int(predictor.contract.max_len)
    temps: list[str] = []
    counts: Counter = Counter()
    n_records = 0
    with open_genome(predictor, genome, aliases, allow_other_genome=allow_other_genome) as g:
        handles: list[Any] = []
        try:
            for p in outputs:
                fd, tmp = temp_beside(p)
                temps.append(tmp)
                handles.append(os.fdopen(fd, "w", newline=""))
            tsv, vcf_fh = handles[0], handles[1] if vcf_out is not None else None
            if vcf_fh is not None:
                vcf_fh.write("\n".join(_vcf_header(reader.header, predictor, classes, g, width, both)) + "\n")
            first = True
            for chunk in reader.records(chunk_size):
                alleles = _alleles(chunk, g, width, max_allele)
                probs_ref, probs_alt = _score(predictor, alleles, width, both, batch_size)
                frame = _frame(predictor, alleles, probs_ref, probs_alt, classes)
                frame.to_csv(tsv, sep="\t", index=False, header=first, float_format="%.6g", quoting=csv.QUOTE_MINIMAL)
                first = False
                if vcf_fh is not None:
                    _write_vcf(vcf_fh, chunk, alleles, frame, predictor, classes)
                counts.update(a.status for a in alleles)
                n_records += len(chunk)
                if progress is not None:
                    progress(n_records)
            if first:
                raise DataError(f"{reader.path}: no variant records after the header; nothing to score")
            for h in handles:
                h.close()
            for tmp, p in zip(temps, outputs):
                os.replace(tmp, p)
        except OSError as e:
            raise DataError(f"cannot write {out} ({e.strerror or e}); free disk space or choose another path") from None
        finally:
            for h in handles:
                h.close()
            for tmp in temps:
                Path(tmp).unlink(missing_ok=True)
    result = VariantResult(out, Path(vcf_out) if vcf_out is not None else None, n_records, sum(counts.values()),
                           dict(counts))
    skipped = {k: v for k, v in counts.items() if k != "scored"}
    log.info("variants: %d records, %d alleles, %d scored%s; %s", n_records, result.alleles, result.scored,
             (" (not scored: " + ", ".join(f"{v} {k}" for k, v in skipped.items()) + ")") if skipped else "", out)
    return result


def _alleles(chunk: list[VcfRecord], genome: Genome, width: int, max_allele: int) -> list[_Allele]:
    alleles = []
    for rec in chunk:
        if rec.problem is not None:
            alleles.append(_Allele(rec, 0, "", "malformed", f"line {rec.line}: {rec.problem}"))
            continue
        for k, alt in enumerate(rec.alts):
            status, note, ref_w, alt_w = build_windows(genome, rec, alt, width, max_allele)
            if len(rec.alts) > 1:
                split = f"allele {k + 1} of {len(rec.alts)} (multi-allelic record, split)"
                note = f"{split}; {note}" if note else split
            alleles.append(_Allele(rec, k, alt, status, note, ref_seq=ref_w, alt_seq=alt_w))
    return alleles


def _score(predictor: Predictor, alleles: list[_Allele], width: int, both: bool, batch_size: int
           ) -> tuple[np.ndarray, np.ndarray]:
    k = len(predictor.contract.class_names)
    ref, alt = np.full((len(alleles), k), np.nan), np.full((len(alleles), k), np.nan)
    rows = [i for i, a in enumerate(alleles) if a.status == "scored"]
    if rows:
        seqs = [alleles[i].ref_seq for i in rows] + [alleles[i].alt_seq for i in rows]
        x, _ = encode(seqs, DNA, width)
        probs = window_probs(predictor, x, both, batch_size)
        ref[rows], alt[rows] = probs[: len(rows)], probs[len(rows):]
    return ref, alt


def _frame(predictor: Predictor, alleles: list[_Allele], ref: np.ndarray, alt: np.ndarray, classes: list[int]
           ) -> pd.DataFrame:
    names = predictor.contract.class_names
    cols: dict[str, Any] = {
        "chrom": [a.rec.chrom for a in alleles], "pos": [a.rec.pos for a in alleles],
        "id": [a.rec.id for a in alleles], "ref": [a.rec.ref for a in alleles], "alt": [a.alt for a in alleles],
        "status": [a.status for a in alleles], "note": [a.note for a in alleles],
    }
    one, value = len(classes) == 1, is_regression(predictor)
    for c in classes:
        suffix = "" if one else f"_{names[c]}"
        cols[_column("ref", names[c], value)] = ref[:, c]
        cols[_column("alt", names[c], value)] = alt[:, c]
        cols[f"diff{suffix}"] = alt[:, c] - ref[:, c]
        if not value:  # regression outputs are values, not probabilities: no odds
            cols[f"log_odds_ratio{suffix}"] = _log_odds(alt[:, c]) - _log_odds(ref[:, c])
    return pd.DataFrame(cols)


def _column(which: str, name: str, value: bool) -> str:
    """``ref_p_<class>`` for probabilities, ``ref_<target>`` for regression values."""
    return f"{which}_{name}" if value else f"{which}_p_{name}"


def _info_ids(predictor: Predictor, classes: list[int]) -> list[tuple[str, str, int]]:
    """(INFO id suffix, class name, class index) per reported class."""
    names = predictor.contract.class_names
    return [("" if len(classes) == 1 else f"_{k}", names[c], c) for k, c in enumerate(classes)]


def _vcf_header(header: list[str], predictor: Predictor, classes: list[int], genome: Genome, width: int,
                both: bool) -> list[str]:
    strand = "both strands averaged" if both else "forward strand"
    skips = ", ".join(k for k in STATUS if k != "scored")
    lines = [f'##INFO=<ID=BL_STATUS,Number=A,Type=String,Description="biolens variants: scored, or why the allele '
             f'was not ({skips})">']
    value = is_regression(predictor)
    for suffix, name, _ in _info_ids(predictor, classes):
        what = name if value else f"P({name})"
        lines += [
            f'##INFO=<ID=BL_REF{suffix},Number=A,Type=Float,Description="biolens: {what} of the reference window">',
            f'##INFO=<ID=BL_ALT{suffix},Number=A,Type=Float,Description="biolens: {what} of the alternative window">',
            f'##INFO=<ID=BL_DIFF{suffix},Number=A,Type=Float,Description="biolens: alt - ref {what}">',
        ]
        if not value:
            lines.append(f'##INFO=<ID=BL_LOR{suffix},Number=A,Type=Float,Description="biolens: log-odds ratio of '
                         f'{what}, logit(alt) - logit(ref)">')
    lines.append(f"##biolens_variants=<run={predictor.run_dir},genome={genome.name},window={width},"
                 f"strands={strand.replace(' ', '_')}>")
    return header[:-1] + lines + header[-1:]


def _fmt(v: float) -> str:
    return "." if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.6g}"


def _write_vcf(fh: Any, chunk: list[VcfRecord], alleles: list[_Allele], frame: pd.DataFrame, predictor: Predictor,
               classes: list[int]) -> None:
    by_record: dict[int, list[int]] = {}
    for i, a in enumerate(alleles):
        by_record.setdefault(id(a.rec), []).append(i)
    names = predictor.contract.class_names
    one, value = len(classes) == 1, is_regression(predictor)
    tags = (("BL_REF", "ref"), ("BL_ALT", "alt"), ("BL_DIFF", None)) + ((("BL_LOR", None),) if not value else ())
    for rec in chunk:
        rows = by_record[id(rec)]
        if rec.problem is not None:
            fh.write("\t".join(rec.fields) + "\n")  # not a record we can annotate: kept as it was
            continue
        fields = [f"BL_STATUS={','.join(alleles[i].status for i in rows)}"]
        for suffix, name, c in _info_ids(predictor, classes):
            col = "" if one else f"_{names[c]}"
            for tag, which in tags:
                column = (_column(which, name, value) if which else
                          f"diff{col}" if tag == "BL_DIFF" else f"log_odds_ratio{col}")
                fields.append(f"{tag}{suffix}=" + ",".join(_fmt(frame[column].iat[i]) for i in rows))
        info = rec.fields[7]
        cols = list(rec.fields)
        cols[7] = ";".join(fields) if info in ("", ".") else info + ";" + ";".join(fields)
        fh.write("\t".join(cols) + "\n")
