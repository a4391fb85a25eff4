"""Nearest-neighbour label transfer (models/neighbors.py, training/neighbors.py): the k-mer Jaccard against a
brute-force set computation, the blend, missing labels, the spec round trip, ONNX parity and the fit on val."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from biolens.errors import ModelError
from biolens.models import create_model
from biolens.models.neighbors import NeighborTransfer, blend_logits, transfer
from biolens.training.neighbors import fit_neighbor_transfer

VOCAB = 22  # protein: PAD, 20 residues, unknown


def _kmers(row: np.ndarray, k: int) -> set[tuple[int, ...]]:
    real = row[row > 0]
    return {tuple(real[i : i + k]) for i in range(len(real) - k + 1)}


def _rows(rng: np.random.Generator, n: int, width: int = 24, low: int = 5) -> np.ndarray:
    x = np.zeros((n, width), dtype=np.uint8)
    for i in range(n):
        size = int(rng.integers(low, width + 1))
        x[i, :size] = rng.integers(1, 6, size)  # 5 residues: k-mers repeat, so similarities spread out
    return x


def test_similarity_is_the_jaccard_index_of_the_k_mer_sets():
    rng = np.random.default_rng(0)
    train, query = _rows(rng, 40), _rows(rng, 9, width=30, low=2)
    query[0, :] = 0
    query[0, :2] = [1, 2]  # shorter than k: no k-mers, similarity 0
    query[1, :] = 0
    query[1, :24] = train[3]  # a training sequence (padded wider): similarity 1 with it
    query[2, :5] = [7, 8, 9, 10, 11]  # residues no training sequence has
    memory = NeighborTransfer.from_train(train, rng.integers(0, 2, 40), VOCAB, k=3, count=5, output="softmax")
    got = memory.similarity(torch.from_numpy(query)).numpy()
    for i, q in enumerate(query):
        for j, t in enumerate(train):
            a, b = _kmers(q, 3), _kmers(t, 3)
            want = len(a & b) / len(a | b) if a | b else 0.0
            assert got[i, j] == pytest.approx(want, abs=1e-6), (i, j)
    assert got[1, 3] == pytest.approx(1.0)
    onehot = torch.nn.functional.one_hot(torch.from_numpy(query).long(), VOCAB)[..., 1:].permute(0, 2, 1).float()
    assert torch.allclose(memory.similarity(onehot), torch.from_numpy(got))  # attributions pass one-hot inputs


def test_the_blend_is_the_weighted_mixture_of_probabilities_and_stays_finite():
    z = torch.tensor([[2.0, -1.0, 0.5], [80.0, -80.0, 0.0]])
    p_nn = torch.tensor([[0.1, 0.7, 0.2], [1e-6, 1 - 1e-6, 0.5]])
    w = torch.tensor([[0.3, 0.3, 0.3], [0.5, 0.5, 0.0]])
    soft = torch.softmax(blend_logits(z, p_nn, w[:, :1].expand(-1, 3), "softmax"), dim=1)
    want = 0.7 * torch.softmax(z[:1], dim=1) + 0.3 * p_nn[:1]
    assert torch.allclose(soft[:1], want, atol=1e-6)
    sig = torch.sigmoid(blend_logits(z, p_nn, w, "sigmoid"))
    assert torch.allclose(sig[0], 0.7 * torch.sigmoid(z[0]) + 0.3 * p_nn[0], atol=1e-6)
    assert torch.isfinite(blend_logits(z, p_nn, w, "sigmoid")).all()
    assert blend_logits(z, p_nn, w, "sigmoid")[1, 2] == pytest.approx(0.0, abs=1e-6)  # w = 0 keeps the network


def test_transfer_weighs_neighbours_by_similarity_and_skips_unknown_labels():
    s = torch.tensor([[1.0, 0.5]])
    y = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    known = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])  # label 1 unknown for both neighbours
    p_nn, w = transfer(s, y, known, power=1.0, weight=0.5, gamma=1.0)
    assert p_nn[0, 0] == pytest.approx((1.0 + 1e-6) / (1.5 + 2e-6), abs=1e-5)
    assert w[0, 0] == pytest.approx(0.5) and w[0, 1] == 0.0


def _model(neighbors: dict | None = None) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("dilated_resnet", vocab_size=VOCAB, num_classes=2, channels=8, blocks=1,
                        neighbors=neighbors or {"k": 3, "count": 5})


def test_a_fitted_model_rebuilds_from_its_params_and_weights_and_exports_with_parity():
    import onnxruntime as ort

    rng = np.random.default_rng(1)
    train = np.concatenate([_rows(rng, 30)] * 2)  # every row twice, with its own label: ties in similarity
    model = _model().eval()
    memory = NeighborTransfer.from_train(train, rng.integers(0, 2, 60), VOCAB, k=3, count=5, output="softmax")
    memory.neighbours, memory.power, memory.weight, memory.gamma = 3, 4.0, 0.75, 0.5
    x = torch.from_numpy(_rows(rng, 7, width=30))
    with torch.no_grad():
        plain = model(x)
        model.attach_neighbors(memory)
        blended = model(x)
    assert not torch.allclose(plain, blended)
    assert model.config["neighbors"]["weight"] == 0.75 and model.config["neighbors"]["size"] == 60
    again = create_model("dilated_resnet", **model.config).eval()
    again.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.equal(again(x), blended)
    model.train()
    with torch.no_grad():
        torch.manual_seed(0)
        assert model(x).shape == (7, 2)  # training mode: the network alone (dropout on)
    model.eval()
    buf = io.BytesIO()
    torch.onnx.export(model, (x,), buf, dynamo=False, opset_version=17, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "b", 1: "l"}, "y": {0: "b"}})
    sess = ort.InferenceSession(buf.getvalue())
    other = torch.from_numpy(_rows(rng, 3, width=20))
    for inp in (x, other):
        with torch.no_grad():
            want = model(inp).numpy()
        assert np.abs(sess.run(None, {"x": inp.numpy()})[0] - want).max() < 1e-4
    model.attach_neighbors(None)  # removed: the params keep only the request
    assert model.config["neighbors"] == {"k": 3, "count": 5}


def test_a_bad_request_names_the_field():
    with pytest.raises(ModelError, match=r"neighbors\.k=0"):
        _model({"k": 0})
    with pytest.raises(ModelError, match=r"neighbors\.count=100"):
        _model({"count": 100})
    with pytest.raises(ModelError, match="unknown field 'kk'"):
        _model({"kk": 3})
    with pytest.raises(ModelError, match=r"neighbors\.k=9"):
        _model({"k": 9})  # 22 ** 9 codes: too large a table


def _batches(x: np.ndarray, y: np.ndarray, size: int = 16) -> list[dict[str, torch.Tensor]]:
    return [{"x": torch.from_numpy(x[i : i + size]), "y": torch.from_numpy(y[i : i + size])}
            for i in range(0, len(x), size)]


def _families(rng: np.random.Generator, n: int, families: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sequences that are point mutants of their family's root; the label is the family's (2 classes)."""
    fam = rng.integers(0, len(families), n)
    x = families[fam].copy()
    hit = rng.random(x.shape) < 0.1
    x[hit] = rng.integers(1, 21, hit.sum())
    return x.astype(np.uint8), (fam % 2).astype(np.int64)


def test_the_fit_attaches_transfer_where_neighbours_predict_the_label_and_lowers_val_loss():
    rng = np.random.default_rng(2)
    roots = rng.integers(1, 21, (30, 20))
    xt, yt = _families(rng, 200, roots)
    xv, yv = _families(rng, 80, roots)
    model = _model({"k": 3, "count": 10}).eval()  # untrained: its val loss is about log 2
    summary = fit_neighbor_transfer(model, _batches(xt, yt), _batches(xv, yv), "softmax")
    assert summary["used"] and summary["val_loss"] < summary["val_loss_network"] - 0.2
    assert model.neighbor_transfer is not None and model.config["neighbors"]["weight"] > 0
    with torch.no_grad():
        acc = (model(torch.from_numpy(xv)).argmax(1).numpy() == yv).mean()
    assert acc > 0.9


def test_the_fit_leaves_transfer_off_where_neighbours_carry_no_signal():
    rng = np.random.default_rng(3)
    xt, xv = _rows(rng, 200), _rows(rng, 80)
    yt = np.full((200, 2), np.nan)
    yt[:, 0] = rng.integers(0, 2, 200)  # label 1 never known: the fit must cope
    yv = np.stack([rng.integers(0, 2, 80), np.full(80, np.nan)], axis=1)
    torch.manual_seed(0)
    model = create_model("dilated_resnet", vocab_size=VOCAB, num_classes=2, channels=8, blocks=1,
                         neighbors={"k": 3, "count": 10}).eval()
    with torch.no_grad():  # a network sure of 0.5 everywhere: nothing random neighbours say can lower its loss
        model.get_classifier().weight.zero_()
        model.get_classifier().bias.zero_()
    summary = fit_neighbor_transfer(model, _batches(xt, yt.astype(np.float32)),
                                    _batches(xv, yv.astype(np.float32)), "sigmoid")
    assert not summary["used"] and model.neighbor_transfer is None
    assert model.config["neighbors"] == {"k": 3, "count": 10}
