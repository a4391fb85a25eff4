"""What ``variants`` and ``scan`` share: a run applied to a genome.

- the run must read DNA, and the genome must be the assembly its contract records (``data.genome.check_same_genome``;
  runs not trained on a genome have nothing to check against);
- contig aliases: the run's own ``data.intervals.chrom_aliases`` plus the caller's;
- windows are scored on both strands and averaged (``strands="auto"``: both, unless the run was trained on
  strand-specific data without reverse-complement augmentation, where only the forward strand means anything).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from biolens.data.alphabets import DNA
from biolens.data.augment import reverse_complement_np
from biolens.data.genome import Genome, check_same_genome
from biolens.errors import ConfigError
from biolens.tasks import Predictor

STRANDS = ("auto", "both", "forward")


def as_predictor(run: str | Path | Predictor, device: str = "auto") -> Predictor:
    """A loaded run (checksums verified) that reads DNA windows."""
    predictor = run if isinstance(run, Predictor) else Predictor.load(run, device=device)
    c = predictor.contract
    if c.task != "sequence" or c.alphabet != "dna":
        what = f"a {c.task} model" if c.task != "sequence" else f"a {c.alphabet} model"
        raise ConfigError(f"run {predictor.run_dir} is {what}; genome scoring needs a DNA sequence run "
                          "(trained with --intervals --genome, or on DNA sequences)")
    return predictor


def open_genome(predictor: Predictor, genome: str | Path, aliases: Mapping[str, str] | None = None, *,
                allow_other_genome: bool = False) -> Genome:
    """The genome, with the run's and the caller's contig aliases, checked against the run's contract."""
    names = dict(predictor.config.data.intervals.chrom_aliases) if predictor.config is not None else {}
    names.update(aliases or {})
    g = Genome(genome, aliases=names)
    try:
        check_same_genome(predictor.contract.genome, g, allow_other=allow_other_genome)
    except BaseException:
        g.close()
        raise
    return g


def both_strands(predictor: Predictor, strands: str) -> bool:
    """Whether windows are scored on both strands (``auto``: unless the run trained without reverse complements)."""
    if strands not in STRANDS:
        raise ConfigError(f"strands {strands!r}: expected one of {', '.join(STRANDS)}")
    if strands != "auto":
        return strands == "both"
    rc = predictor.config.data.augment.reverse_complement if predictor.config is not None else None
    return rc is not False


def window_probs(predictor: Predictor, x: np.ndarray, both: bool, batch_size: int = 256) -> np.ndarray:
    """Class probabilities ``(N, C)`` of full-width DNA windows ``(N, W)``, averaged over both strands if ``both``."""
    lengths = np.full(len(x), x.shape[1], dtype=np.int64)
    probs = predictor.predict_proba(x, lengths, batch_size=batch_size)
    if both:
        probs = (probs + predictor.predict_proba(reverse_complement_np(x, lengths, DNA), lengths,
                                                 batch_size=batch_size)) / 2
    return probs


def scored_classes(predictor: Predictor, target_class: str | None = None) -> list[int]:
    """Class indices to report: ``target_class``, else the positive class of a binary run, else every class."""
    names = predictor.contract.class_names
    if target_class is not None:
        if target_class not in names:
            raise ConfigError(f"target_class {target_class!r} is not a class of the run; classes: {', '.join(names)}")
        return [names.index(target_class)]
    pos = predictor.contract.positive_index
    return [pos] if pos is not None else list(range(len(names)))


def is_regression(predictor: Predictor) -> bool:
    """Outputs are values in the targets' units (not probabilities)."""
    return getattr(predictor.contract, "target_type", "classification") == "regression"
