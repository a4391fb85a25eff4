"""Latency benchmark: every backend, every batch size, sane numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from biolens.deploy.latency import BACKENDS, bench_model, bench_run, summarize, tile, time_calls
from biolens.errors import ConfigError
from biolens.models import create_model


def test_tile_and_summary():
    batch = {"x": torch.arange(6).reshape(3, 2), "gc": torch.tensor([0.1, 0.2, 0.3])}
    t = tile(batch, 7)
    assert t["x"].shape == (7, 2) and t["gc"].tolist() == pytest.approx([0.1, 0.2, 0.3, 0.1, 0.2, 0.3, 0.1])
    row = summarize("eager", "cpu", 8, np.array([0.001, 0.002, 0.003, 0.004]))
    assert row.p50_ms == pytest.approx(2.5) and row.p95_ms == pytest.approx(3.85)
    assert row.throughput == pytest.approx(8 / 0.0025) and row.repeats == 4
    calls = []
    seconds = time_calls(lambda: calls.append(1), repeats=5, warmup=2)
    assert len(calls) == 7 and seconds.shape == (5,) and (seconds >= 0).all()


def test_bench_model_all_backends_with_aux_input():
    torch.manual_seed(0)
    model = create_model("promoter_predictor", vocab_size=6, num_classes=2, embedding_dim=8, filters=8,
                         kernel_sizes=[3], hidden_dim=8, num_layers=1, attention_dim=8, gc_dim=4, head_hidden=8)
    x = torch.randint(1, 5, (3, 20))
    from biolens.data.augment import gc_content

    threads = torch.get_num_threads()
    rows = bench_model(model, {"x": x, "gc": gc_content(x)}, batch_sizes=(1, 4), repeats=3, warmup=1, devices=["cpu"],
                       threads=1)
    assert torch.get_num_threads() == threads  # restored
    assert [(r.backend, r.batch_size) for r in rows] == [(b, s) for b in BACKENDS for s in (1, 4)]
    for r in rows:
        assert r.device == "cpu" and 0 < r.p50_ms <= r.p95_ms and r.throughput > 0


def test_bench_bad_options():
    model = create_model("motif_cnn", vocab_size=6, num_classes=2, embedding_dim=4, filters=4, kernel_sizes=[3])
    batch = {"x": torch.randint(1, 5, (2, 10))}
    with pytest.raises(ConfigError, match="unknown backend 'tensorrt'"):
        bench_model(model, batch, backends=["tensorrt"])
    with pytest.raises(ConfigError, match="batch sizes must be positive"):
        bench_model(model, batch, batch_sizes=[0])
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            bench_model(model, batch, devices=["cuda"], backends=["eager"])


def test_bench_run_uses_run_data(trained_run):
    res = bench_run(trained_run, batch_sizes=(2,), repeats=2, warmup=0, backends=("eager", "onnxruntime"))
    assert res["model"] == "dilated_resnet" and res["inputs"].endswith("test-split inputs of the run's data")
    assert [r["backend"] for r in res["rows"]] == ["eager", "onnxruntime"]
    assert res["machine"]["cpu_count"] >= 1 and res["input_shape"] == [40]


@pytest.mark.gpu
def test_bench_cuda(trained_run, device):
    res = bench_run(trained_run, batch_sizes=(8,), repeats=3, warmup=1, devices=["cuda"])
    assert {r["backend"] for r in res["rows"]} >= {"eager", "torchscript"} and all(r["device"] == "cuda" for r in res["rows"])
