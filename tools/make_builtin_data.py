"""Rebuild the bundled data sets in src/biolens/data/builtin/ from ../shared/datasets (run once; output committed).

Splits are fixed here, once: stratified by label, seeded (2026), with exact and reverse-complement duplicates kept
in one split, so the bundled benchmark has no leakage (peptides: exact duplicates). Usage:
python tools/make_builtin_data.py [SHARED_DATASETS] [--only dna|peptides]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from biolens.data.alphabets import DNA, PROTEIN, Alphabet
from biolens.data.encoding import encode
from biolens.data.splits import sequence_keys, stratified_split

SEED = 2026
OUT = Path(__file__).resolve().parents[1] / "src" / "biolens" / "data" / "builtin"


# PEPTIDE REACToR sets bundled as builtin:NAME (binary; label 1 = active): name → what "active" means
PEPTIDES = {
    "amp_antibp2": "antimicrobial (AntiBP2)",
    "avp_amppred": "antiviral (AMPpred)",
    "hem_hemopi": "hemolytic (HemoPI)",
    "cpp_cellppd": "cell-penetrating (CellPPD)",
}


def split_frame(df: pd.DataFrame, alphabet: Alphabet = DNA) -> pd.DataFrame:
    x, lengths = encode(list(df["sequence"]), alphabet)
    _, canonical = sequence_keys(x, lengths, alphabet)
    df["split"] = stratified_split(df["label"].to_numpy(), canonical, 0.1, 0.1, SEED)
    return df


def peptides(root: Path) -> None:
    """PEPTIDE REACToR (MIT): data.csv (sequence, label 0/1) in the order of seqs.fasta (>Seq_1, >Seq_2, …)."""
    for name in PEPTIDES:
        raw = pd.read_csv(root / "peptide_benchmarks_peptidereactor" / name / "data.csv")
        df = pd.DataFrame({"id": [f"Seq_{i + 1}" for i in range(len(raw))], "sequence": raw["sequence"].str.upper(),
                           "label": raw["label"].map({1: "active", 0: "inactive"})})
        df = split_frame(df, PROTEIN)
        df.to_csv(OUT / f"{name}.csv.gz", index=False, compression={"method": "gzip", "mtime": 0})
        print(name, len(df), df.groupby(["split", "label"]).size().to_dict())


def main(root: Path, only: str | None = None) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    if only in (None, "peptides"):
        peptides(root)
    if only == "peptides":
        return
    splice = pd.read_csv(root / "uci_splice_junction" / "splice.csv")
    splice = pd.DataFrame({"id": splice["name"].str.strip(), "sequence": splice["sequence"].str.upper(), "label": splice["label"]})
    names = {1: "promoter", 0: "non-promoter"}
    uci = pd.read_csv(root / "uci_ecoli_promoters" / "promoters.csv")
    uci = pd.DataFrame({"id": uci["name"].str.strip(), "sequence": uci["sequence"].str.upper(), "label": uci["label"].map(names)})
    reg = pd.read_csv(root / "ecoli_promoters_regulondb_81bp" / "promoter_vs_nonpromoter_benchmark.csv")
    reg = pd.DataFrame({
        "id": [f"{'pos' if lab == 1 else 'neg'}{i + 1}" for i, lab in enumerate(reg["label"])],
        "sequence": reg["sequence"].str.upper(),
        "label": reg["label"].map(names),
    })
    for name, df in (("splice", splice), ("ecoli_promoters", uci), ("regulondb_promoters", reg)):
        df = split_frame(df)
        df.to_csv(OUT / f"{name}.csv.gz", index=False, compression={"method": "gzip", "mtime": 0})
        print(name, len(df), df.groupby(["split", "label"]).size().to_dict())


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--only")]
    only = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--only=")), None)
    main(Path(args[0]) if args else Path(__file__).resolve().parents[2] / "shared" / "datasets", only)
