"""Models trained once per session on planted-TATAAA DNA (a bare loop: about 2 s each on one CPU core)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from biolens.data.alphabets import DNA
from biolens.data.encoding import encode
from biolens.models import create_model
from tests.interpret.helpers import one_thread, planted_tata

LENGTH = 60
ATTENTION_PARAMS = {"embedding_dim": 8, "filters": 16, "kernel_sizes": [7], "hidden_dim": 16, "num_layers": 1,
                    "attention_dim": 16, "head_hidden": 16, "dropout": 0.0, "head_dropout": 0.0}
CNN_PARAMS = {"channels": 16, "blocks": 1, "position_bins": 0}


@dataclass
class Planted:
    x: np.ndarray  # (N, L) uint8
    lengths: np.ndarray
    seqs: list[str]
    y: np.ndarray  # 1 = promoter (TATAAA planted)
    starts: np.ndarray  # planted start, -1 for background


def planted_set(n: int, seed: int, length: int = LENGTH) -> Planted:
    seqs, labels, starts = planted_tata(n=n, length=length, seed=seed)
    x, lengths = encode(seqs, DNA)
    return Planted(x, lengths, seqs, np.array([lab == "promoter" for lab in labels], dtype=np.int64), np.array(starts))


def fit(name: str, params: dict, epochs: int, lr: float, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    data = planted_set(400, seed=0)
    x, y = torch.as_tensor(data.x), torch.as_tensor(data.y)
    model = create_model(name, vocab_size=DNA.vocab_size, num_classes=2, **params)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for s in range(0, len(x), 32):
            i = perm[s:s + 32]
            loss = torch.nn.functional.cross_entropy(model(x[i]), y[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@pytest.fixture(autouse=True)
def _one_thread():  # noqa: ANN202
    with one_thread():
        yield


@pytest.fixture(scope="session")
def attention_model() -> torch.nn.Module:
    with one_thread():
        return fit("cnn_bilstm_attention", ATTENTION_PARAMS, epochs=6, lr=1e-2)


@pytest.fixture(scope="session")
def cnn_model() -> torch.nn.Module:
    with one_thread():
        return fit("dilated_resnet", CNN_PARAMS, epochs=8, lr=3e-3)


@pytest.fixture(scope="session")
def held_out() -> Planted:
    """Sequences the models never saw (another seed)."""
    return planted_set(120, seed=7)
