"""Fixtures for the deploy tests: a tiny trained image run (the sequence run is ``trained_run`` in tests/conftest)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.image_helpers import image_folder

TINY_IMAGE = {"widths": [4, 8], "blocks": [1, 1]}


@pytest.fixture(scope="session")
def image_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(run folder, data folder) of a resnet with widths 4/8 trained one epoch on 32 px two-class PNGs."""
    from biolens.workflows.train import train

    root = tmp_path_factory.mktemp("image_run")
    data = image_folder(root / "data", n=6)
    train({"data": {"path": str(data), "image": {"image_size": 32, "cache_dir": str(root / "cache")}},
           "model": {"name": "resnet", "params": TINY_IMAGE},
           "train": {"epochs": 1, "batch_size": 8}, "out": str(root / "run")})
    return root / "run", data
