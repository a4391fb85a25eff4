"""``explain_sequences``: one call from a trained sequence run to pictures, tables and arrays.

Per method the per-position score is: attention weight (attention), minus the mean substitution effect (ism),
the channel sum of the attribution (ig, inputxgrad) or |gradient| at the observed symbol (saliency). From it come
threshold regions, each sequence's top window, motif hits with an in-region flag and the motif enrichment test.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biolens.data.encoding import decode
from biolens.data.prepare import encode_for_model
from biolens.data.readers import Records
from biolens.deploy.bundle import atomic_write
from biolens.errors import ConfigError, DataError, ModelError
from biolens.evaluation.metrics import decide
from biolens.interpret import attention as att
from biolens.interpret.attributions import attribute, position_scores
from biolens.interpret.ism import ism_batch, ism_importance
from biolens.interpret.motifs import enrichment, in_regions, load_motifs, scan
from biolens.models.inference import softmax

log = logging.getLogger(__name__)

SEQUENCE_METHODS = ("attention", "ism", "ig", "inputxgrad", "saliency")
IMAGE_METHODS = ("gradcam", "saliency", "occlusion")
_RAW = re.compile(r"^[A-Za-z*-]+$")


def read_inputs(predictor: Any, inputs: Sequence[str]) -> tuple[Records, np.ndarray, np.ndarray]:
    """Files (FASTA/CSV/TSV, gz) and raw sequence strings → records and the run's encoding ``(N, L)``."""
    parts: list[Records] = []
    raw: list[str] = []
    for item in inputs:
        if Path(item).exists():
            parts.append(predictor.read(str(item))[0])
        elif _RAW.match(item):
            raw.append(item)
        else:
            raise DataError(f"{item}: no such file, and not a raw sequence (letters only); give a FASTA/CSV file or "
                            "a sequence such as ACGT…")
    if raw:
        n0 = sum(len(p) for p in parts)
        parts.append(Records([f"seq{n0 + i + 1}" for i in range(len(raw))], raw, None,
                             sources=[f"sequence {n0 + i + 1}" for i in range(len(raw))]))
    if not parts or not sum(len(p) for p in parts):
        raise DataError("no sequences to explain; give a FASTA/CSV file or sequences")
    recs = parts[0] if len(parts) == 1 else Records.concat(parts)
    x, lengths = encode_for_model(recs, predictor.contract.alphabet, predictor.contract.max_len)
    return recs, x, lengths


def resolve_class(predictor: Any, name: str | None) -> int | None:
    if name is None:
        return None
    names = predictor.contract.class_names
    if name not in names:
        raise ConfigError(f"--class {name!r} is not a class of this model; classes: {', '.join(names)}")
    return names.index(name)


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


def explain_sequences(predictor: Any, inputs: Sequence[str], method: str, out_dir: str | Path,
                      target_class: str | None = None, motifs: Sequence[str] | None = None, top: int = 5,
                      window: int = 10, threshold: str = "mean+std", flank: int = 0, baseline: str = "uniform",
                      filters: bool = False, n_perm: int = 10000, batch_size: int = 64) -> dict[str, Any]:
    """Explain a sequence run's predictions on ``inputs`` and write the results into ``out_dir``.

    Args:
        predictor: a loaded ``Predictor`` of a sequence run.
        inputs: FASTA/CSV/TSV files (gz ok) and/or raw sequence strings.
        method: attention, ism, ig, inputxgrad or saliency.
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
    if method not in SEQUENCE_METHODS:
        hint = " (an image method; this is a sequence run)" if method in IMAGE_METHODS else ""
        raise ConfigError(f"--method {method!r} is not valid for sequence runs{hint}; choose one of "
                          f"{', '.join(SEQUENCE_METHODS)}")
    model, contract, device = predictor.model, predictor.contract, predictor.device
    if method == "attention" and not att.has_attention(model):
        raise ModelError(f"--method attention: model {type(model).__name__} ({predictor.config.model.name}) has no "
                         "attention; use ism, ig or saliency, or train cnn_bilstm_attention / promoter_predictor")
    target_index = resolve_class(predictor, target_class)
    att.threshold_of(np.zeros(1), threshold)  # a bad rule fails before anything is written
    if window < 1 or flank < 0 or top < 0:
        raise ConfigError(f"--window must be >= 1, --flank and --top >= 0; got {window}, {flank}, {top}")
    if baseline not in ("uniform", "zero"):
        raise ConfigError(f"--baseline {baseline!r}: expected uniform or zero")
    alphabet = predictor.alphabet
    letters, n_sym, vocab = alphabet.symbols, len(alphabet.symbols), alphabet.vocab_size
    motif_list = load_motifs(list(motifs or []), letters)
    recs, x, lengths = read_inputs(predictor, inputs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)  # only once the inputs and options are valid
    n = len(recs)
    logits = predictor.logits(x, lengths, batch_size=256)
    probs = softmax(logits, contract.temperature)
    predicted = decide(probs, contract.positive_index, contract.threshold)
    targets = predicted if target_index is None else np.full(n, target_index, dtype=np.int64)
    seqs = decode(x, alphabet, lengths)
    log.info("explaining %d sequences with %s", n, method)

    files: list[Path] = []
    stride = 1
    if method == "attention":
        _, weights, scores = att.attention_scores(model, x, lengths, device)
        stride = int(getattr(model, "attention_stride", 1))
        _npy(weights, out / "attention.npy")
        files.append(out / "attention.npy")
    elif method == "ism":
        effects = ism_batch(model, x, lengths, targets, n_sym, device)
        scores = ism_importance(effects, x, n_sym)
        _npy(effects, out / "ism.npy")
        files.append(out / "ism.npy")
    else:
        attr = attribute(model, x, targets, method, vocab, n_sym, device, baseline=baseline, batch_size=batch_size)
        scores = position_scores(attr, x, method)
        _npy(attr.transpose(0, 2, 1)[..., :n_sym], out / f"{method}.npy")  # (N, L, A) canonical symbols
        files.append(out / f"{method}.npy")
    _npy(scores.astype(np.float32), out / "scores.npy")
    atomic_write(out / "ids.txt", lambda fh: fh.write(("\n".join(recs.ids) + "\n").encode()))
    files += [out / "scores.npy", out / "ids.txt"]

    # regions and top windows
    regions = att.find_regions(scores, lengths, threshold, flank, stride)
    covered = np.zeros(x.shape, dtype=bool)
    for r in regions:
        covered[r.index, r.start:r.end] = True
    reg = pd.DataFrame({
        "id": [recs.ids[r.index] for r in regions], "start": [r.start for r in regions],
        "end": [r.end for r in regions], "subsequence": [seqs[r.index][r.start:r.end] for r in regions],
        "weight": [r.weight for r in regions], "class": [contract.class_names[targets[r.index]] for r in regions],
    })  # fmt: skip
    _tsv(reg, out / "regions.tsv")
    _bed(reg, reg["class"] + "_region", reg["weight"], out / "regions.bed")
    starts, sums = att.top_windows(scores, lengths, window)
    ends = np.minimum(starts + window, lengths)
    pred = pd.DataFrame({"id": recs.ids})
    if recs.labels is not None:
        pred["label"] = recs.labels
    pred["prediction"] = [contract.class_names[k] for k in predicted]
    pred["explained_class"] = [contract.class_names[k] for k in targets]
    pred["p_explained"] = probs[np.arange(n), targets]
    pred["start"], pred["end"], pred["score"] = starts, ends, sums
    pred["subsequence"] = [s[a:b] for s, a, b in zip(seqs, starts, ends)]
    _tsv(pred, out / "top_windows.tsv")
    _bed(pred, pred["explained_class"] + "_top", pred["score"], out / "top_windows.bed")
    files += [out / "regions.tsv", out / "regions.bed", out / "top_windows.tsv", out / "top_windows.bed"]

    # motifs
    hits = scan(motif_list, x, lengths, alphabet, recs.ids)
    hits["in_region"] = in_regions(hits, covered)
    _tsv(hits.drop(columns=["index"]), out / "motif_hits.tsv")
    _bed(hits, hits["motif"], hits["score"], out / "motif_hits.bed", hits["strand"])
    enr = enrichment(hits, covered, lengths, motif_list, n_perm=n_perm) if motif_list else pd.DataFrame()
    _tsv(enr, out / "enrichment.tsv")
    files += [out / "motif_hits.tsv", out / "motif_hits.bed", out / "enrichment.tsv"]

    if filters:
        from biolens.interpret.filters import export_filters

        k = export_filters(model, x, vocab, letters, out / "filters.meme", device=device)
        log.info("wrote %d first-layer filter PWMs", k)
        files.append(out / "filters.meme")

    # pictures
    from biolens.interpret.plots import attribution_logo, ism_heatmap

    for i in range(min(top, n)):
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", recs.ids[i])[:80]
        title = f"{recs.ids[i]}: {method}, class {contract.class_names[targets[i]]} (p={probs[i, targets[i]]:.3f})"
        span = (int(starts[i]), int(ends[i]))
        onehot = x[i, : lengths[i], None] == np.arange(1, n_sym + 1)  # (ℓ, A), only for the pictured inputs
        heights = scores[i, : lengths[i], None] * onehot  # signed logo heights: score × one-hot
        attribution_logo(heights, letters, out / f"logo_{i + 1}_{safe}.png", title, span)
        files.append(out / f"logo_{i + 1}_{safe}.png")
        if method == "ism":
            ism_heatmap(effects[i, : lengths[i]], letters, seqs[i], out / f"ism_{i + 1}_{safe}.png", title)
            files.append(out / f"ism_{i + 1}_{safe}.png")
    return {"method": method, "n": n, "explained_class": pred["explained_class"].tolist(), "regions": len(reg),
            "motif_hits": len(hits), "enrichment": enr.to_dict("records"), "files": [str(f) for f in files]}
