"""Bundled real data sets, addressed as ``builtin:NAME`` (see builtin/DATA_LICENSES for attribution)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

from biolens.data.cachedir import cache_root
from biolens.data.synthetic import synthetic_expression, synthetic_peptides
from biolens.errors import DataError

PREFIX = "builtin:"


@dataclass(frozen=True)
class BuiltinDataset:
    name: str
    description: str
    alphabet: str
    classes: tuple[str, ...]
    n: int
    length: str
    stranded: bool  # sequences are aligned to one strand: reverse-complement augmentation would mislabel them
    license: str
    task: str = "sequence"  # "image": an .npz with {train,val,test}_{images,labels}, labels index ``classes``
    positive: str | None = None  # positive class of a binary image set
    target_cols: tuple[str, ...] = ()  # regression / multi-label sets: the target columns (else the label column)
    generate: Callable[[], pd.DataFrame] | None = None  # synthetic sets: made on first use, kept in the cache

    @property
    def path(self) -> Path:
        if self.generate is not None:
            return _generated(self)
        suffix = ".npz" if self.task == "image" else ".csv.gz"
        return Path(str(resources.files("biolens.data") / "builtin" / f"{self.name}{suffix}"))


def _generated(ds: BuiltinDataset) -> Path:
    """The synthetic set's CSV in ``$BIOLENS_CACHE/builtin`` (seeded, so every machine makes the same file),
    written on first use through a temporary file."""
    path = cache_root("builtin") / f"{ds.name}.csv.gz"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        ds.generate().to_csv(tmp, index=False, compression="gzip")
        os.replace(tmp, path)
    return path


BUILTINS: dict[str, BuiltinDataset] = {
    d.name: d
    for d in (
        BuiltinDataset("splice", "UCI primate splice junctions: exon→intron (EI), intron→exon (IE), neither (N)",
                       "dna", ("EI", "IE", "N"), 3190, "60", True, "CC BY 4.0"),
        BuiltinDataset("ecoli_promoters", "UCI E. coli promoters (Towell et al. 1990)",
                       "dna", ("non-promoter", "promoter"), 106, "57", True, "CC BY 4.0"),
        BuiltinDataset("regulondb_promoters", "E. coli RegulonDB promoter vs non-promoter benchmark (−60..+20 around TSS)",
                       "dna", ("non-promoter", "promoter"), 5720, "81", True, "MIT (RegulonDB)"),
        BuiltinDataset("amp_antibp2", "Antimicrobial vs non-antimicrobial peptides (AntiBP2; PEPTIDE REACToR)",
                       "protein", ("active", "inactive"), 1993, "6-94", False, "MIT (PEPTIDE REACToR)"),
        BuiltinDataset("avp_amppred", "Antiviral vs non-antiviral peptides (AMPpred; PEPTIDE REACToR)",
                       "protein", ("active", "inactive"), 1478, "10-255", False, "MIT (PEPTIDE REACToR)"),
        BuiltinDataset("hem_hemopi", "Hemolytic vs non-hemolytic peptides (HemoPI; PEPTIDE REACToR)",
                       "protein", ("active", "inactive"), 1104, "4-98", False, "MIT (PEPTIDE REACToR)"),
        BuiltinDataset("cpp_cellppd", "Cell-penetrating vs other peptides (CellPPD; PEPTIDE REACToR)",
                       "protein", ("active", "inactive"), 1614, "3-61", False, "MIT (PEPTIDE REACToR)"),
        BuiltinDataset("synthetic_expression", "synthetic DNA, 2 regression targets: expression = 2 × TATAAT copies + "
                       "4 × (GC − 0.5); stability = 5 × GC of the first 20 bases, 10% missing (made by biolens)",
                       "dna", ("expression", "stability"), 2000, "60", True, "CC0 (synthetic)",
                       target_cols=("expression", "stability"), generate=synthetic_expression),
        BuiltinDataset("synthetic_peptides", "synthetic peptides, multi-label: the label set is the set of planted "
                       "motifs RRWW, DEDE, GPGP, CYCY (made by biolens)", "protein", ("CYCY", "DEDE", "GPGP", "RRWW"),
                       2000, "20-40", False, "CC0 (synthetic)", target_cols=("labels",), generate=synthetic_peptides),
        BuiltinDataset("pneumoniamnist", "PneumoniaMNIST (MedMNIST v2): chest X-rays, normal vs pneumonia, official splits",
                       "image (gray)", ("normal", "pneumonia"), 5856, "28x28", False, "CC BY 4.0", "image", "pneumonia"),
        BuiltinDataset("breastmnist", "BreastMNIST (MedMNIST v2): breast ultrasound, malignant vs normal/benign, official splits",
                       "image (gray)", ("malignant", "normal_or_benign"), 780, "28x28", False, "CC BY 4.0", "image",
                       "malignant"),
    )
}


def is_builtin(spec: object) -> bool:
    return isinstance(spec, str) and spec.startswith(PREFIX)


def get_builtin(spec: str) -> BuiltinDataset:
    name = spec[len(PREFIX):] if is_builtin(spec) else spec
    try:
        return BUILTINS[name.replace("-", "_")]
    except KeyError:
        raise DataError(f"unknown data set {spec!r}; bundled: {', '.join(PREFIX + n for n in BUILTINS)}") from None
