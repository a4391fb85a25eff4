"""A run trained on a synthetic genome with a planted motif: what it records, variant effects with known answers,
VCF edge cases, another assembly refused, and a scan that finds the planted sites."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from biolens.data.genome import Genome
from biolens.data.intervals import read_bed
from biolens.errors import BundleError, ConfigError
from biolens.workflows.scan import scan_genome
from biolens.workflows.variants import score_variants
from tests.genome.conftest import MOTIF, WINDOW, write_vcf

pytestmark = pytest.mark.slow


def _other_base(b: str) -> str:
    return "A" if b != "A" else "C"


def _away(sites, contig, length, rng, n, margin=120):
    starts = np.array([s for c, s in sites if c == contig])
    out = []
    while len(out) < n:
        q = int(rng.integers(WINDOW, length - WINDOW))
        if np.abs(starts - q).min() > margin:
            out.append(q)
    return out


def test_the_run_records_its_genome_and_chromosome_split(genome_run, planted):
    contract = json.loads((genome_run / "contract.json").read_text())
    assert contract["genome"]["contigs"] == {"chrA": 30000, "chrB": 30000, "chrC": 30000}
    assert contract["max_len"] == WINDOW and contract["positive_class"] == "positive"
    report = json.loads((genome_run / "data_report.json").read_text())
    assert report["intervals"]["splits"]["test_chroms"] == ["chrC"]
    assert report["intervals"]["negatives"]["drawn"] == report["intervals"]["positives"] == len(planted["sites"])
    test_ids = pd.read_csv(genome_run / "predictions.csv")["id"]
    assert test_ids.str.startswith("chrC:").all()
    checklist = json.loads((genome_run / "checklist.json").read_text())
    assert {f["name"]: f["status"] for f in checklist["findings"]}["splits separate"] == "pass"
    metrics = json.loads((genome_run / "metrics.json").read_text())
    assert metrics["test"]["roc_auc"] > 0.95


def test_variant_effects_separate_destroying_from_neutral(genome_run, planted, tmp_path):
    fasta, sites = planted["fasta"], planted["sites"]
    rng = np.random.default_rng(0)
    rows, kind = [], {}
    with Genome(fasta) as g:
        for c, s in sites:
            if c != "chrC":
                continue
            q = s + 6  # a central base of the motif
            ref = g.fetch(c, q, q + 1)
            rows.append(f"{c}\t{q + 1}\tdestroy{s}\t{ref}\t{_other_base(ref)}\t.\tPASS\t.")
            kind[f"destroy{s}"] = "destroy"
        for k, q in enumerate(_away(sites, "chrC", 30000, rng, 60)):
            ref = g.fetch("chrC", q, q + 1)
            rows.append(f"chrC\t{q + 1}\taway{k}\t{ref}\t{_other_base(ref)}\t.\tPASS\t.")
            kind[f"away{k}"] = "away"
        for k, q in enumerate(_away(sites, "chrC", 30000, rng, 20, margin=200)):
            ref = g.fetch("chrC", q, q + 1)
            rows.append(f"chrC\t{q + 1}\tcreate{k}\t{ref}\t{ref}{MOTIF}\t.\tPASS\t.")  # inserts the motif
            kind[f"create{k}"] = "create"
        for c, s in sites[:20]:
            ref = g.fetch(c, s - 1, s + 7)  # anchor base + the first 7 motif bases
            rows.append(f"{c}\t{s}\tdel{s}\t{ref}\t{ref[0]}\t.\tPASS\t.")
            kind[f"del{s}"] = "deletion"
    vcf = write_vcf(tmp_path / "v.vcf.gz", rows)
    result = score_variants(genome_run, vcf, fasta, out=tmp_path / "eff.tsv")
    assert result.scored == result.alleles == len(rows)
    df = pd.read_csv(tmp_path / "eff.tsv", sep="\t")
    df["kind"] = df["id"].map(kind)
    assert np.allclose(df["diff"], df["alt_p_positive"] - df["ref_p_positive"], atol=2e-6)  # 6 significant digits
    lor = np.log(df.alt_p_positive / (1 - df.alt_p_positive)) - np.log(df.ref_p_positive / (1 - df.ref_p_positive))
    assert np.allclose(df["log_odds_ratio"], lor, atol=1e-4)
    pair = df[df.kind.isin(["destroy", "away"])]
    assert roc_auc_score(pair.kind == "destroy", -pair["diff"]) >= 0.95
    means = df.groupby("kind")["diff"].mean()
    assert means["destroy"] < -0.2 and abs(means["away"]) < 0.05
    assert means["create"] > 0.2 and means["deletion"] < -0.2


def test_vcf_edge_cases_get_a_reason_never_a_crash(genome_run, planted, tmp_path):
    fasta, sites = planted["fasta"], planted["sites"]
    c, s = sites[0]
    with Genome(fasta) as g:
        base = g.fetch(c, s + 6, s + 7)
        wrong = _other_base(base)
        alts = [b for b in "ACGT" if b != base][:2]
        end_base = g.fetch("chrA", 29998, 29999)
        long_ref = g.fetch("chrB", 1000, 1061)
    rows = [
        f"{c}\t{s + 7}\tmulti\t{base}\t{alts[0]},{alts[1]}\t.\tPASS\tDP=3",
        f"{c}\t{s + 7}\tmismatch\t{wrong}\tT\t.\tPASS\t.",
        f"chrA\t29999\tend\t{end_base}\t{_other_base(end_base)}\t.\tPASS\t.",
        "chrZ\t100\tunknown\tA\tC\t.\tPASS\t.",
        f"{c}\t{s + 7}\tsym\t{base}\t<DEL>\t.\tPASS\t.",
        f"{c}\t{s + 7}\tbnd\t{base}\t{base}]chrA:100]\t.\tPASS\t.",
        f"chrB\t1001\tlong\t{long_ref}\t{long_ref[0]}\t.\tPASS\t.",
        f"{c}\t{s + 7}\tsame\t{base}\t{base}\t.\tPASS\t.",
        "chrB\tabc\tmalformed\tA\tC\t.\tPASS\t.",
        "chrB\t100\tshort",
    ]
    vcf = write_vcf(tmp_path / "edge.vcf", rows, header=['##INFO=<ID=DP,Number=1,Type=Integer,Description="depth">'])
    result = score_variants(genome_run, vcf, fasta, out=tmp_path / "edge.tsv", vcf_out=tmp_path / "edge.out.vcf")
    df = pd.read_csv(tmp_path / "edge.tsv", sep="\t", keep_default_na=False)
    status = dict(zip(df["id"] + ":" + df["alt"], df["status"]))
    assert [v for k, v in status.items() if k.startswith("multi:")] == ["scored", "scored"]
    assert df[df.id == "multi"]["note"].str.contains("allele 1 of 2|allele 2 of 2").all()
    expect = {"mismatch": "ref_mismatch", "end": "near_contig_end", "unknown": "unknown_contig", "sym": "symbolic",
              "bnd": "symbolic", "long": "too_long", "same": "no_change", "malformed": "malformed",
              "short": "malformed"}
    got = {i: st for i, st in zip(df["id"], df["status"]) if i in expect}
    got["short"] = df[df.note.str.contains("3 tab-separated column")]["status"].iloc[0]
    assert got == expect
    assert f"the genome has {base}" in df[df.id == "mismatch"]["note"].iloc[0]
    assert df[df.status != "scored"]["diff"].eq("").all()  # no numbers for alleles that were not scored
    assert result.status["scored"] == 2 and result.records == len(rows)
    lines = (tmp_path / "edge.out.vcf").read_text().splitlines()
    assert any(ln.startswith("##INFO=<ID=BL_LOR,Number=A") for ln in lines)
    assert lines.index(next(ln for ln in lines if ln.startswith("#CHROM"))) > lines.index(
        next(ln for ln in lines if ln.startswith("##INFO=<ID=BL_STATUS")))
    body = [ln.split("\t") for ln in lines if not ln.startswith("#")]
    multi = next(r for r in body if r[2] == "multi")
    info = dict(kv.split("=") for kv in multi[7].split(";"))
    assert info["DP"] == "3" and info["BL_STATUS"] == "scored,scored" and len(info["BL_DIFF"].split(",")) == 2
    mismatch = dict(kv.split("=") for kv in next(r for r in body if r[2] == "mismatch")[7].split(";"))
    assert mismatch["BL_STATUS"] == "ref_mismatch" and mismatch["BL_REF"] == "."
    assert "chrB\tabc\tmalformed\tA\tC\t.\tPASS\t." in lines  # kept as it was


def test_another_assembly_is_refused(genome_run, planted, tmp_path):
    other = tmp_path / "other.fa"
    text = planted["fasta"].read_text().splitlines()
    text[1] = ("C" if text[1][0] != "C" else "G") + text[1][1:]  # one base changed
    other.write_text("\n".join(text) + "\n")
    vcf = write_vcf(tmp_path / "v.vcf", ["chrA\t500\t.\tA\tC\t.\tPASS\t."])
    with pytest.raises(BundleError, match="not the assembly this model was trained on.*different sequence"):
        score_variants(genome_run, vcf, other, out=tmp_path / "x.tsv")
    with pytest.raises(BundleError, match="allow_other_genome=True"):
        scan_genome(genome_run, other, out=tmp_path / "scan")
    assert not (tmp_path / "x.tsv").exists() and not (tmp_path / "scan").exists()
    result = score_variants(genome_run, vcf, other, out=tmp_path / "x.tsv", allow_other_genome=True)
    assert result.records == 1


def test_scan_finds_the_planted_sites_and_writes_readable_tracks(genome_run, planted, tmp_path):
    import pyBigWig

    regions = tmp_path / "chrC.bed"
    regions.write_text("chrC\t0\t30000\n")
    out = tmp_path / "scan"
    result = scan_genome(genome_run, planted["fasta"], out=out, regions=regions, stride=10, chunk_windows=500)
    sites = [s for c, s in planted["sites"] if c == "chrC"]
    peaks = read_bed(out / "peaks.bed")
    assert peaks.narrowpeak and (peaks.contig == "chrC").all()
    found = [((peaks.start <= s) & (peaks.end >= s + len(MOTIF))).any() for s in sites]
    true = [any(a < s + len(MOTIF) and s < b for s in sites) for a, b in zip(peaks.start, peaks.end)]  # on a site
    assert np.mean(found) >= 0.9 and np.mean(true) >= 0.9
    assert ((peaks.summit >= peaks.start) & (peaks.summit < peaks.end)).all()
    bg = pd.read_csv(out / "scan.bedGraph", sep="\t", header=None, skiprows=1)
    assert (bg[1].to_numpy()[1:] == bg[2].to_numpy()[:-1]).all()  # a gap-free step function
    bw = pyBigWig.open(str(out / "scan.bw"))
    assert bw.chroms() == {"chrA": 30000, "chrB": 30000, "chrC": 30000}
    back = bw.intervals("chrC")
    bw.close()
    assert len(back) == len(bg) == result.windows
    assert np.allclose([v for _, _, v in back], bg[3], atol=1e-5) and [s for s, _, _ in back] == bg[1].tolist()
    summary = json.loads((out / "scan.json").read_text())
    assert summary["strands"] == "both" and summary["window"] == WINDOW and summary["peaks"] == len(peaks)
    with pytest.raises(ConfigError, match="already holds scan results"):
        scan_genome(genome_run, planted["fasta"], out=out, regions=regions, stride=10)


def test_scan_whole_genome_default_regions(genome_run, planted, tmp_path):
    result = scan_genome(genome_run, planted["fasta"], out=tmp_path / "all", stride=WINDOW, strands="forward")
    assert result.bases == 90000 and result.windows == 3 * (30000 // WINDOW)
    assert result.summary["strands"] == "forward"
    shutil.rmtree(tmp_path / "all")
    with pytest.raises(ConfigError, match="stride 81: give 1"):
        scan_genome(genome_run, planted["fasta"], out=tmp_path / "all", stride=WINDOW + 1)
