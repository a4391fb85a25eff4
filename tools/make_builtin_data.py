"""Rebuild the bundled data sets in src/biolens/data/builtin/ from ../shared/datasets (run once; output committed).

Splits are fixed here, once: stratified by label, seeded (2026), with exact and reverse-complement duplicates kept
in one split, so the bundled benchmark has no leakage. Usage: python tools/make_builtin_data.py [SHARED_DATASETS]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from biolens.data.alphabets import DNA
from biolens.data.encoding import encode
from biolens.data.splits import sequence_keys, stratified_split

SEED = 2026
OUT = Path(__file__).resolve().parents[1] / "src" / "biolens" / "data" / "builtin"


def split_frame(df: pd.DataFrame) -> pd.DataFrame:
    x, lengths = encode(list(df["sequence"]), DNA)
    _, canonical = sequence_keys(x, lengths, DNA)
    df["split"] = stratified_split(df["label"].to_numpy(), canonical, 0.1, 0.1, SEED)
    return df


def main(root: Path) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
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
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared" / "datasets")
