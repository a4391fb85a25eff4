"""The guide's clinical reading of binary metrics (7.1 step 7), as plain sentences."""

from __future__ import annotations

from typing import Any


def clinical_lines(m: dict[str, Any]) -> list[str]:
    """Sentences for a binary metrics dict (``classification_metrics`` output); empty for multi-class."""
    if "sensitivity" not in m:
        return []
    pos = m.get("positive_class", "positive")
    lines = []
    sens, spec = m.get("sensitivity"), m.get("specificity")
    if sens is None:
        lines.append(f"Sensitivity is undefined: there are no {pos} cases in this data.")
    else:
        lines.append(f"Sensitivity {sens:.3f}: {sens * 100:.1f}% of {pos} cases detected; missed {m['fn']} {pos} cases.")
        if sens >= 0.95:
            lines.append("Excellent sensitivity: very few positive cases missed.")
        elif sens >= 0.90:
            lines.append("Good sensitivity: acceptable for screening.")
        else:
            lines.append("Low sensitivity: too many positive cases missed for screening.")
    if spec is None:
        lines.append("Specificity is undefined: there are no negative cases in this data.")
    else:
        lines.append(f"Specificity {spec:.3f}: {spec * 100:.1f}% of negative cases identified; {m['fp']} false alarms.")
        lines.append("Good specificity: low false-alarm rate." if spec >= 0.90 else "Low specificity: many false alarms.")
    if m.get("precision") is not None:
        lines.append(f"Precision (PPV) {m['precision']:.3f}: {m['precision'] * 100:.1f}% of positive calls are right.")
    return lines
