"""Class names: which class of a binary task is the positive one."""

from __future__ import annotations

from biolens.errors import ConfigError

POSITIVE_NAMES = ("1", "pos", "positive", "promoter", "yes", "true", "+", "active", "disease", "case")


def pick_positive(class_names: list[str], wanted: str | None) -> str | None:
    """``wanted`` (which must be a class), else for two classes the one with a positive-sounding name, else the
    second in sorted order; None for multi-class tasks."""
    if wanted is not None:
        if wanted not in class_names:
            raise ConfigError(f"positive_class {wanted!r} is not a class; classes: {', '.join(class_names)}")
        return wanted
    if len(class_names) != 2:
        return None
    for name in class_names:
        if name.lower() in POSITIVE_NAMES:
            return name
    return class_names[1]
