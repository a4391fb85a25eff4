"""Shared fixtures: small synthetic sequence data with a known answer (a motif planted in random DNA)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

MOTIF = "TATAAT"


def planted_dna(n: int = 240, length: int = 40, seed: int = 0, motif: str = MOTIF,
                vary: bool = False) -> tuple[list[str], list[str]]:
    """Half the sequences carry ``motif`` at a random position (label ``promoter``), half do not."""
    rng = np.random.default_rng(seed)
    seqs, labels = [], []
    for i in range(n):
        size = int(rng.integers(length - 10, length + 1)) if vary else length
        s = "".join(rng.choice(list("ACGT"), size=size))
        s = s.replace(motif, "GGGGGG")
        if i % 2 == 0:
            pos = int(rng.integers(0, size - len(motif)))
            s = s[:pos] + motif + s[pos + len(motif):]
            labels.append("promoter")
        else:
            labels.append("background")
        seqs.append(s)
    return seqs, labels


def write_fasta(path: Path, seqs: list[str], labels: list[str] | None = None, gz: bool = False) -> Path:
    lines = []
    for i, s in enumerate(seqs):
        lines.append(f">s{i + 1}" + (f" label={labels[i]}" if labels is not None else ""))
        lines.append(s)
    text = "\n".join(lines) + "\n"
    if gz:
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


def write_csv(path: Path, seqs: list[str], labels: list[str] | None = None, sep: str = ",",
              seq_col: str = "sequence", label_col: str = "label") -> Path:
    header = ["id", seq_col] + ([label_col] if labels is not None else [])
    rows = [sep.join(header)]
    for i, s in enumerate(seqs):
        rows.append(sep.join([f"s{i + 1}", s] + ([labels[i]] if labels is not None else [])))
    text = "\n".join(rows) + "\n"
    if path.suffix == ".gz":
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


TINY_MODEL = {"channels": 16, "blocks": 1}


@pytest.fixture
def planted_csv(tmp_path: Path) -> Path:
    seqs, labels = planted_dna()
    return write_csv(tmp_path / "planted.csv", seqs, labels)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small run trained once per session on planted-motif data (used by evaluate/predict tests)."""
    from biolens.workflows.train import train

    root = tmp_path_factory.mktemp("run")
    seqs, labels = planted_dna(n=400, seed=1)
    data = write_csv(root / "train.csv", seqs, labels)
    train({"data": {"path": str(data)}, "model": {"name": "dilated_resnet", "params": TINY_MODEL},
           "train": {"epochs": 8, "batch_size": 32, "lr": 3e-3}, "out": str(root / "run")})
    return root / "run"


TINY_IMAGE = {"widths": [4, 8], "blocks": [1, 1]}


@pytest.fixture(scope="session")
def image_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(run folder, data folder) of a resnet with widths 4/8 trained one epoch on 32 px two-class PNGs."""
    from biolens.workflows.train import train
    from tests.image_helpers import image_folder

    root = tmp_path_factory.mktemp("image_run")
    data = image_folder(root / "data", n=6)
    train({"data": {"path": str(data), "image": {"image_size": 32, "cache_dir": str(root / "cache")}},
           "model": {"name": "resnet", "params": TINY_IMAGE},
           "train": {"epochs": 1, "batch_size": 8}, "out": str(root / "run")})
    return root / "run", data


@pytest.fixture
def device() -> torch.device:
    """CUDA when present; tests that need it are marked gpu and skipped otherwise."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    return torch.device("cuda")


def kill_when(work, ready: Path, timeout: float = 120) -> None:
    """Run ``work()`` in a forked child (one torch thread: the parent's OpenMP pool does not survive fork) and
    SIGKILL it as soon as ``ready`` exists (or after ``timeout`` seconds)."""
    import os
    import signal
    import time

    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            torch.set_num_threads(1)
            work()
        finally:
            os._exit(0)
    deadline = time.time() + timeout
    while not ready.is_file() and time.time() < deadline:
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
