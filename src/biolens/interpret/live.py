"""Explanations in memory, for inputs the run's codec has already validated and encoded (the server's
``/v1/explain``): one result per input, nothing written to disk.

The same registered methods as ``biolens explain`` compute the scores (``interpret/registry.py``), on the same
model inputs; only the outputs differ: per-position scores and the top window as numbers (sequences), the overlay
picture as PNG bytes and the peak in the original image's pixels (images).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from biolens.data.encoding import decode
from biolens.data.images.decode import DICOM_SUFFIXES
from biolens.errors import ConfigError
from biolens.interpret import attention as att
from biolens.interpret.images import class_index, image_maps, overlay_png, peak_of, read_original
from biolens.interpret.registry import get_method, methods
from biolens.interpret.sequences import Batch, resolve_class
from biolens.tasks import Encoded, Inputs

DEFAULT_METHODS = {"sequence": "ig", "image": "gradcam"}


@dataclass
class LiveExplanation:
    """Class probabilities ``(N, C)`` (temperature applied) and one explanation dict per input."""

    probs: np.ndarray
    items: list[dict[str, Any]] = field(default_factory=list)


def usable_methods(predictor: Any) -> list[str]:
    """The registered methods of the run's kind that can explain this model (e.g. attention only for attention
    models), in registration order."""
    kind = predictor.contract.task
    out = []
    for name in methods(kind):
        try:
            get_method(kind, name).validate(predictor)
        except Exception:  # noqa: BLE001 - a method that does not fit is simply not offered
            continue
        out.append(name)
    return out


def default_method(predictor: Any) -> str | None:
    usable = usable_methods(predictor)
    preferred = DEFAULT_METHODS.get(predictor.contract.task)
    return preferred if preferred in usable else (usable[0] if usable else None)


def explain_sequences_live(predictor: Any, encoded: Encoded, ids: Sequence[str], method: str,
                           target_class: str | None = None, window: int = 10, batch_size: int = 64
                           ) -> LiveExplanation:
    """Per-position scores of ``method`` for encoded sequences ``(N, L)``, and each sequence's top window."""
    m = get_method("sequence", method)
    m.validate(predictor)
    if window < 1:
        raise ConfigError(f"window {window}: must be at least 1")
    fixed = resolve_class(predictor, target_class)
    x, lengths = encoded.x, np.asarray(encoded.lengths)
    contract = predictor.contract
    probs = contract.probabilities(predictor.logits(encoded, batch_size=256))
    predicted = contract.explained_index(probs)
    targets = predicted if fixed is None else np.full(len(x), fixed, dtype=np.int64)
    b = Batch(predictor, Inputs(list(ids), encoded), x, lengths, probs, predicted, targets, "uniform", batch_size)
    scores = m.compute(b).scores
    starts, sums = att.top_windows(scores, lengths, window)
    seqs = decode(x, predictor.alphabet, lengths)
    names = contract.class_names
    items = []
    for i, seq in enumerate(seqs):
        n, a = int(lengths[i]), int(starts[i])
        e = min(a + window, n)
        items.append({
            "method": m.name, "explained_class": names[int(targets[i])],
            "probability": round(float(probs[i, targets[i]]), 6), "sequence": seq,
            "scores": [round(float(v), 6) for v in scores[i, :n]],
            "top_window": {"start": a, "end": e, "score": round(float(sums[i]), 6), "subsequence": seq[a:e]},
        })
    return LiveExplanation(probs, items)


def explain_images_live(predictor: Any, images: np.ndarray, originals: Sequence[np.ndarray], names: Sequence[str],
                        method: str, target_class: str | None = None, batch_size: int = 16) -> LiveExplanation:
    """Maps of ``method`` for decoded images ``(N, C, R, R)`` uint8 (as the codec decodes uploads), drawn over each
    image's original pixels ``originals[i]`` (``(H, W)`` or ``(H, W, 3)`` uint8) as in ``biolens explain``."""
    m = get_method("image", method)
    m.validate(predictor)
    contract = predictor.contract
    fixed = class_index(contract, target_class)
    probs = np.zeros((len(images), len(contract.class_names)), dtype=np.float64)
    items: list[dict[str, Any] | None] = [None] * len(images)
    labels = contract.class_names
    for i, amap, p, pred, target in image_maps(predictor, images, m, fixed, batch_size):
        probs[i] = p
        amap = amap.astype(np.float32)
        original = originals[i]
        peak = peak_of(amap, original.shape[:2], contract)
        header = f"{names[i]}: predicted {labels[pred]}; {m.name} for {labels[target]} (p={p[target]:.3f})"
        items[i] = {"method": m.name, "explained_class": labels[target], "probability": round(float(p[target]), 6),
                    "peak": None if peak is None else [int(peak[0]), int(peak[1])],
                    "map_max": float(amap.max()), "image_size": [int(original.shape[0]), int(original.shape[1])],
                    "overlay_png": overlay_png(original, amap, contract, peak, header)}
    return LiveExplanation(probs, [it for it in items if it is not None])


def original_pixels(names: Sequence[str], blobs: Sequence[bytes], contract: Any) -> list[np.ndarray]:
    """Uploaded images' own pixels for the overlay (``(H, W)`` or ``(H, W, 3)`` uint8, decoded as in training but not
    resized), read from a temporary folder under index names (an upload's name is never used as a path)."""
    out = []
    with tempfile.TemporaryDirectory(prefix="biolens-explain-") as tmp:
        for i, (name, blob) in enumerate(zip(names, blobs, strict=True)):
            dicom = blob[128:132] == b"DICM" or Path(name).suffix.lower() in DICOM_SUFFIXES
            path = Path(tmp) / f"{i:05d}{'.dcm' if dicom else '.img'}"  # Pillow reads the format from the content
            path.write_bytes(blob)
            out.append(read_original(path, contract))
    return out
