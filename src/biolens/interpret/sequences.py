"""Explaining a trained sequence run: one per-position score per method, then regions, top windows, motif hits,
enrichment and pictures from it.

Per method the per-position score is: attention weight (attention), minus the mean substitution effect (ism),
the channel sum of the attribution (ig, inputxgrad) or |gradient| at the observed symbol (saliency). Each method is
a registered score function (``interpret/registry.py``); ``explain_sequences`` is the runner that writes the rest.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biolens.data.alphabets import Alphabet
from biolens.data.encoding import decode
from biolens.errors import ConfigError, DataError, ModelError
from biolens.interpret import attention as att
from biolens.interpret.attributions import attribute, position_scores
from biolens.interpret.filters import export_filters
from biolens.interpret.ism import ism_batch, ism_importance
from biolens.interpret.motifs import Motif, enrichment, in_regions, load_motifs, scan
from biolens.interpret.plots import attribution_logo, ism_heatmap
from biolens.interpret.registry import Method, get_method, register_method, register_runner
from biolens.io import atomic_write
from biolens.tasks import Inputs

log = logging.getLogger(__name__)

_RAW = re.compile(r"^[A-Za-z*-]+$")


@dataclass
class Scored:
    """What a method computed: per-position ``scores`` ``(N, L)``, raw arrays to save, and the score stride."""

    scores: np.ndarray
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    stride: int = 1
    effects: np.ndarray | None = None  # ISM: (N, L, A), for the heatmaps


@dataclass
class Batch:
    """The inputs of one explanation, encoded as the run encodes them, with the classes to explain."""

    predictor: Any
    inputs: Inputs
    x: np.ndarray  # (N, L) uint8
    lengths: np.ndarray
    probs: np.ndarray
    predicted: np.ndarray
    targets: np.ndarray
    baseline: str
    batch_size: int

    @property
    def alphabet(self) -> Alphabet:
        return self.predictor.alphabet


# ---- the methods ------------------------------------------------------------------------------------------------------
def _needs_attention(predictor: Any) -> None:
    model = predictor.model
    if not att.has_attention(model):
        raise ModelError(f"--method attention: model {type(model).__name__} ({predictor.config.model.name}) has "
                         "no attention; use ism, ig or saliency, or train cnn_bilstm_attention / promoter_predictor")


@register_method("attention", "sequence", "attention weights of the model's attention layer, per input position",
                 check=_needs_attention)
def attention_method(b: Batch) -> Scored:
    model = b.predictor.model
    _, weights, scores = att.attention_scores(model, b.x, b.lengths, b.predictor.device)
    return Scored(scores, {"attention": weights}, int(getattr(model, "attention_stride", 1)))


@register_method("ism", "sequence", "in-silico mutagenesis: every substitution at every position, batched")
def ism_method(b: Batch) -> Scored:
    n_sym = len(b.alphabet.symbols)
    effects = ism_batch(b.predictor.model, b.x, b.lengths, b.targets, n_sym, b.predictor.device)
    return Scored(ism_importance(effects, b.x, n_sym), {"ism": effects}, effects=effects)


def _gradient_method(name: str):  # noqa: ANN202
    def compute(b: Batch) -> Scored:
        a = b.alphabet
        attr = attribute(b.predictor.model, b.x, b.targets, name, a.vocab_size, len(a.symbols), b.predictor.device,
                         baseline=b.baseline, batch_size=b.batch_size)
        return Scored(position_scores(attr, b.x, name), {name: attr.transpose(0, 2, 1)[..., :len(a.symbols)]})
    return compute


for _name, _what in (("ig", "integrated gradients (captum) against a uniform-background baseline"),
                     ("inputxgrad", "gradient × input (captum)"),
                     ("saliency", "|gradient| at the observed symbol (captum)")):
    register_method(_name, "sequence", _what)(_gradient_method(_name))


# ---- inputs and options -----------------------------------------------------------------------------------------------
def read_inputs(predictor: Any, inputs: Sequence[str]) -> Inputs:
    """Files (FASTA/CSV/TSV, gz) and raw sequence strings → the run's encoding, in the order given."""
    files = [str(item) for item in inputs if Path(item).exists()]
    raw = []
    for item in inputs:
        if not Path(item).exists():
            if not _RAW.match(item):
                raise DataError(f"{item}: no such file, and not a raw sequence (letters only); give a FASTA/CSV "
                                "file or a sequence such as ACGT…")
            raw.append(item)
    parts = [predictor.codec.read(f) for f in files]
    if raw:
        got = predictor.codec.coerce(raw)
        n0 = sum(len(p) for p in parts)
        got.ids = [f"seq{n0 + i + 1}" for i in range(len(raw))]
        parts.append(got)
    if not parts or not sum(len(p) for p in parts):
        raise DataError("no sequences to explain; give a FASTA/CSV file or sequences")
    for p in parts:
        empty = np.flatnonzero(p.encoded.lengths == 0)
        if empty.size:
            where = p.locate(int(empty[0])) if p.locate is not None else p.ids[int(empty[0])]
            raise DataError(f"{where}: empty sequence ({empty.size} in all); remove empty records to explain the rest")
    if len(parts) == 1:
        return parts[0]
    width = max(p.encoded.x.shape[1] for p in parts)
    x = np.concatenate([np.pad(p.encoded.x, ((0, 0), (0, width - p.encoded.x.shape[1]))) for p in parts])
    labelled = all(p.labels is not None for p in parts)
    return Inputs([i for p in parts for i in p.ids], type(parts[0].encoded)(x, np.concatenate(
        [p.encoded.lengths for p in parts])), [lab for p in parts for lab in p.labels] if labelled else None)


def resolve_class(predictor: Any, name: str | None) -> int | None:
    if name is None:
        return None
    names = predictor.contract.class_names
    if name not in names:
        raise ConfigError(f"--class {name!r} is not a class of this model; classes: {', '.join(names)}")
    return names.index(name)


def _check_options(window: int, flank: int, top: int, threshold: str, baseline: str) -> None:
    att.threshold_of(np.zeros(1), threshold)  # a bad rule fails before anything is written
    if window < 1 or flank < 0 or top < 0:
        raise ConfigError(f"--window must be >= 1, --flank and --top >= 0; got {window}, {flank}, {top}")
    if baseline not in ("uniform", "zero"):
        raise ConfigError(f"--baseline {baseline!r}: expected uniform or zero")


# ---- outputs ----------------------------------------------------------------------------------------------------------
def _tsv(frame: pd.DataFrame, path: Path) -> None:
    text = frame.to_csv(sep="\t", index=False, float_format="%.6g").encode()
    atomic_write(path, lambda fh: fh.write(text))


def _npy(array: np.ndarray, path: Path) -> None:
    atomic_write(path, lambda fh: np.save(fh, array))


def _bed(frame: pd.DataFrame, name: pd.Series, score: pd.Series, path: Path, strand: pd.Series | None = None) -> None:
    """BED6 (0-based half-open); the score column is the weight scaled to 0–1000 (the exact weight is in the TSV)."""
    top = float(np.nanmax(np.abs(score))) if len(score) else 1.0
    bed = pd.DataFrame({
        "chrom": frame["id"], "start": frame["start"], "end": frame["end"], "name": name,
        "score": np.clip(np.round(1000 * np.abs(score.to_numpy(dtype=float)) / (top or 1.0)), 0, 1000).astype(int),
        "strand": strand if strand is not None else ".",
    })  # fmt: skip
    text = bed.to_csv(sep="\t", index=False, header=False).encode()
    atomic_write(path, lambda fh: fh.write(text))


def _write_regions(b: Batch, scored: Scored, seqs: list[str], out: Path, threshold: str, flank: int
                   ) -> tuple[pd.DataFrame, np.ndarray]:
    """``regions.tsv/.bed``: runs of positions above each sequence's threshold; returns them and the coverage."""
    names, ids = b.predictor.contract.class_names, b.inputs.ids
    regions = att.find_regions(scored.scores, b.lengths, threshold, flank, scored.stride)
    covered = np.zeros(b.x.shape, dtype=bool)
    for r in regions:
        covered[r.index, r.start:r.end] = True
    reg = pd.DataFrame({  # typed columns: a sequence set with no region above its threshold gives empty tables
        "id": pd.Series([ids[r.index] for r in regions], dtype=object),
        "start": pd.Series([r.start for r in regions], dtype=np.int64),
        "end": pd.Series([r.end for r in regions], dtype=np.int64),
        "subsequence": pd.Series([seqs[r.index][r.start:r.end] for r in regions], dtype=object),
        "weight": pd.Series([r.weight for r in regions], dtype=np.float64),
        "class": pd.Series([names[b.targets[r.index]] for r in regions], dtype=object),
    })  # fmt: skip
    if not regions:
        log.info("no position is above its sequence's threshold (%s): regions.tsv and regions.bed are empty",
                 threshold)
    _tsv(reg, out / "regions.tsv")
    _bed(reg, reg["class"] + "_region", reg["weight"], out / "regions.bed")
    return reg, covered


def _write_top_windows(b: Batch, scored: Scored, seqs: list[str], out: Path, window: int) -> pd.DataFrame:
    """``top_windows.tsv/.bed``: each sequence's highest-scoring window, with its prediction and explained class."""
    names, n = b.predictor.contract.class_names, len(b.inputs)
    starts, sums = att.top_windows(scored.scores, b.lengths, window)
    ends = np.minimum(starts + window, b.lengths)
    pred = pd.DataFrame({"id": b.inputs.ids})
    if b.inputs.labels is not None:
        pred["label"] = b.inputs.labels
    pred["prediction"] = [names[k] for k in b.predicted]
    pred["explained_class"] = [names[k] for k in b.targets]
    pred["p_explained"] = b.probs[np.arange(n), b.targets]
    pred["start"], pred["end"], pred["score"] = starts, ends, sums
    pred["subsequence"] = [s[a:e] for s, a, e in zip(seqs, starts, ends)]
    _tsv(pred, out / "top_windows.tsv")
    _bed(pred, pred["explained_class"] + "_top", pred["score"], out / "top_windows.bed")
    return pred


def _write_motifs(b: Batch, motifs: list[Motif], covered: np.ndarray, out: Path, n_perm: int
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``motif_hits.tsv/.bed`` (both strands for DNA/RNA) and ``enrichment.tsv`` (hits inside regions)."""
    hits = scan(motifs, b.x, b.lengths, b.alphabet, b.inputs.ids)
    hits["in_region"] = in_regions(hits, covered)
    _tsv(hits.drop(columns=["index"]), out / "motif_hits.tsv")
    _bed(hits, hits["motif"], hits["score"], out / "motif_hits.bed", hits["strand"])
    enr = enrichment(hits, covered, b.lengths, motifs, n_perm=n_perm) if motifs else pd.DataFrame()
    _tsv(enr, out / "enrichment.tsv")
    return hits, enr


def _write_pictures(b: Batch, scored: Scored, method: str, seqs: list[str], windows: pd.DataFrame, out: Path,
                    top: int) -> list[Path]:
    """A signed attribution logo (and for ISM a heatmap) for each of the first ``top`` inputs."""
    letters, names = b.alphabet.symbols, b.predictor.contract.class_names
    files = []
    for i in range(min(top, len(b.inputs))):
        ident, t = b.inputs.ids[i], b.targets[i]
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", ident)[:80]
        title = f"{ident}: {method}, class {names[t]} (p={b.probs[i, t]:.3f})"
        span = (int(windows["start"].iloc[i]), int(windows["end"].iloc[i]))
        length = int(b.lengths[i])
        onehot = b.x[i, :length, None] == np.arange(1, len(letters) + 1)  # (ℓ, A), only for the pictured inputs
        attribution_logo(scored.scores[i, :length, None] * onehot, letters, out / f"logo_{i + 1}_{safe}.png", title,
                         span)
        files.append(out / f"logo_{i + 1}_{safe}.png")
        if scored.effects is not None:
            ism_heatmap(scored.effects[i, :length], letters, seqs[i], out / f"ism_{i + 1}_{safe}.png", title)
            files.append(out / f"ism_{i + 1}_{safe}.png")
    return files


# ---- the runner -------------------------------------------------------------------------------------------------------
@register_runner("sequence")
def explain_sequences(predictor: Any, inputs: Sequence[str], method: Method | str, out_dir: str | Path,
                      target_class: str | None = None, motifs: Sequence[str] | None = None, top: int = 5,
                      window: int = 10, threshold: str = "mean+std", flank: int = 0, baseline: str = "uniform",
                      filters: bool = False, n_perm: int = 10000, batch_size: int = 64) -> dict[str, Any]:
    """Explain a sequence run's predictions on ``inputs`` and write the results into ``out_dir``.

    Args:
        predictor: a loaded ``Predictor`` of a sequence run.
        inputs: FASTA/CSV/TSV files (gz ok) and/or raw sequence strings.
        method: a registered sequence method (attention, ism, ig, inputxgrad, saliency) or its ``Method``.
        target_class: class to explain; default each sequence's predicted class.
        motifs: extra motifs (IUPAC strings, ``NAME=IUPAC``, MEME or JASPAR files) scanned after the built-in
            TATA/CAAT/GC boxes.
        top: PNG pictures for the first ``top`` inputs.
        window: width of each sequence's top window (the highest-scoring ``window`` positions).
        threshold: region rule, ``mean+std`` (guide 4.4) or ``percentile:Q``.
        flank: widen each region by this many positions on each side (the guide's attention view uses 10).
        baseline: integrated-gradients baseline, ``uniform`` (default) or ``zero`` (see ``attributions``).
        filters: also write the first-layer filters as PWMs (``filters.meme``).

    Returns:
        A summary: method, n, the explained class per input, the files written and the enrichment rows.
    """
    if isinstance(method, str):
        method = get_method("sequence", method)
    method.validate(predictor)
    target_index = resolve_class(predictor, target_class)
    _check_options(window, flank, top, threshold, baseline)
    motif_list = load_motifs(list(motifs or []), predictor.alphabet.symbols)
    got = read_inputs(predictor, inputs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)  # only once the inputs and options are valid
    x, lengths = got.encoded.x, got.encoded.lengths
    probs = predictor.contract.probabilities(predictor.logits(got.encoded, batch_size=256))
    predicted = predictor.contract.explained_index(probs)
    targets = predicted if target_index is None else np.full(len(got), target_index, dtype=np.int64)
    b = Batch(predictor, got, x, lengths, probs, predicted, targets, baseline, batch_size)
    log.info("explaining %d sequences with %s", len(got), method.name)

    scored: Scored = method.compute(b)
    files: list[Path] = []
    for name, array in scored.arrays.items():
        _npy(array, out / f"{name}.npy")
        files.append(out / f"{name}.npy")
    _npy(scored.scores.astype(np.float32), out / "scores.npy")
    atomic_write(out / "ids.txt", lambda fh: fh.write(("\n".join(got.ids) + "\n").encode()))
    files += [out / "scores.npy", out / "ids.txt"]
    seqs = decode(x, predictor.alphabet, lengths)
    regions, covered = _write_regions(b, scored, seqs, out, threshold, flank)
    windows = _write_top_windows(b, scored, seqs, out, window)
    files += [out / f for f in ("regions.tsv", "regions.bed", "top_windows.tsv", "top_windows.bed")]
    hits, enr = _write_motifs(b, motif_list, covered, out, n_perm)
    files += [out / "motif_hits.tsv", out / "motif_hits.bed", out / "enrichment.tsv"]
    if filters:
        a = predictor.alphabet
        k = export_filters(predictor.model, x, a.vocab_size, a.symbols, out / "filters.meme", device=predictor.device)
        log.info("wrote %d first-layer filter PWMs", k)
        files.append(out / "filters.meme")
    files += _write_pictures(b, scored, method.name, seqs, windows, out, top)
    return {"method": method.name, "n": len(got), "explained_class": windows["explained_class"].tolist(),
            "regions": len(regions), "motif_hits": len(hits), "enrichment": enr.to_dict("records"),
            "files": [str(f) for f in files]}

