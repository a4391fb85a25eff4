"""Synthetic images with a known answer for the image-explanation tests: a bright square at a random position."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.image_helpers import write_png

Box = tuple[int, int, int]  # (top row, left column, side)


def square_image(rng: np.random.Generator, positive: bool, size: int = 32, side: int = 8) -> tuple[np.ndarray, Box | None]:
    """Noise in [0, 60); positives add a ``side``-pixel square of 220 at a random position (fully inside)."""
    img = rng.integers(0, 60, (size, size)).astype(np.uint8)
    if not positive:
        return img, None
    r, c = (int(v) for v in rng.integers(0, size - side + 1, 2))
    img[r:r + side, c:c + side] = 220
    return img, (r, c, side)


def square_dataset(root: Path, n: dict[str, int], seed: int = 0, size: int = 32, side: int = 8) -> Path:
    """``root/{split}/{absent,square}/i.png`` with ``n[split]`` images per class."""
    rng = np.random.default_rng(seed)
    for split, count in n.items():
        for label in ("absent", "square"):
            for i in range(count):
                img, _ = square_image(rng, label == "square", size, side)
                write_png(root / split / label / f"{label}_{i}.png", img)
    return root


def square_probes(folder: Path, n: int, seed: int = 1, size: int = 32, side: int = 8) -> list[tuple[Path, Box]]:
    """``n`` held-out positives with their squares' boxes."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        img, box = square_image(rng, True, size, side)
        out.append((write_png(folder / f"probe_{i}.png", img), box))
    return out


def inside(row: int | None, col: int | None, box: Box) -> bool:
    r, c, side = box
    return row is not None and col is not None and r <= row < r + side and c <= col < c + side
