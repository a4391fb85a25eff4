"""ONNX and TorchScript export: parity with PyTorch eager for every registered model, dynamic axes, attention and
auxiliary inputs, int8, batch-norm fusion, and exporting a run folder."""

from __future__ import annotations

import io
import json
import shutil
import warnings
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
import torch
import yaml

from biolens.bundle import refresh_manifest, verify_bundle
from biolens.deploy.export import (FP32_TOLERANCE, INT8_PROB_TOLERANCE, OPSET, ExportModule, export_model,
                                   export_run, fuse_batchnorm, onnx_session, random_batch, run_onnx)
from biolens.errors import ConfigError
from biolens.models import create_model, list_models, model_info

# every registered model, built tiny (transfer backbones have no size knobs: smallest input instead)
TINY = {
    "dilated_resnet": {"channels": 8, "blocks": 2, "position_bins": 4},
    "motif_cnn": {"embedding_dim": 8, "filters": 8, "kernel_sizes": [3, 5]},
    "cnn_bilstm_attention": {"embedding_dim": 8, "filters": 8, "kernel_sizes": [3, 5], "hidden_dim": 8,
                             "num_layers": 2, "attention_dim": 8, "head_hidden": 8},
    "promoter_predictor": {"embedding_dim": 8, "filters": 8, "kernel_sizes": [3, 5], "hidden_dim": 8,
                           "num_layers": 1, "attention_dim": 8, "gc_dim": 4, "head_hidden": 8},
    "transformer": {"dim": 16, "depth": 2, "heads": 2},
    "dilated_resnet_rc": {"channels": 4, "blocks": 2, "position_bins": 4},
    "bigru": {"embedding_dim": 8, "hidden_dim": 8},
    "simple_cnn": {"widths": [4, 4, 8, 8], "hidden": 8},
    "resnet": {"widths": [4, 8], "blocks": [1, 1]},
    "resnet18": {}, "resnet34": {}, "resnet50": {}, "efficientnet_b0": {}, "convnext_tiny": {},
}
HEAVY = {"resnet18", "resnet34", "resnet50", "efficientnet_b0", "convnext_tiny"}  # torchvision backbones


def build(name: str) -> torch.nn.Module:
    spec = model_info(name)
    torch.manual_seed(0)
    if spec.task == "sequence":
        m = create_model(name, vocab_size=6, num_classes=3, **TINY[name])
    else:
        m = create_model(name, in_channels=3 if name in HEAVY else 1, num_classes=2, **TINY[name])
    _randomize_batchnorm(m)
    return m.eval()


def _randomize_batchnorm(m: torch.nn.Module) -> None:
    """Non-trivial running statistics, so folding and eval-mode export are really tested."""
    g = torch.Generator().manual_seed(1)
    for mod in m.modules():
        if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm) and mod.track_running_stats:
            mod.running_mean.copy_(torch.randn(mod.num_features, generator=g) * 0.1)
            mod.running_var.copy_(torch.rand(mod.num_features, generator=g) + 0.5)


def example(model: torch.nn.Module, n: int = 5, seed: int = 0) -> dict[str, torch.Tensor]:
    return random_batch(model, SimpleNamespace(max_len=24, image_size=32), n=n, seed=seed)


def test_every_registered_model_has_a_tiny_config():
    # an ensemble is built from other models (its export parity: tests/workflows/test_ensemble_tune.py)
    assert set(TINY) == {n for n in list_models() if model_info(n).task != "ensemble"}


def _params(fmt: str):
    return [pytest.param(n, fmt, marks=pytest.mark.slow) if n in HEAVY else (n, fmt) for n in sorted(TINY)]


@pytest.mark.parametrize(("name", "fmt"), _params("onnx"))
def test_onnx_parity_every_model(name, fmt):
    model = build(name)
    data, report = export_model(model, example(model), fmt)
    assert report["passed"] and report["fp32"]["max_abs_diff"] <= FP32_TOLERANCE
    assert len(report["fp32"]["checks"]) >= 2  # another batch size (and length) than the traced one
    proto = onnx.load_from_string(data)
    onnx.checker.check_model(proto)
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= OPSET
    inputs = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in proto.graph.input}
    outputs = [o.name for o in proto.graph.output]
    assert inputs["x"][0] == "batch"
    spec = model_info(name)
    if spec.task == "sequence":
        assert inputs["x"][1] == "length"
    assert list(inputs) == ["x", *spec.aux_inputs]
    assert outputs == (["logits", "attention"] if "attention" in spec.extra_outputs else ["logits"])
    # independent check on fresh inputs of another batch size
    other = example(model, n=3, seed=7)
    wrapper = ExportModule(model)
    args = tuple(other[k] for k in wrapper.input_names)
    with torch.no_grad():
        ref = wrapper(*args)
    ref = ref if isinstance(ref, tuple) else (ref,)
    got = run_onnx(onnx_session(data), tuple(a.long() if not a.is_floating_point() else a for a in args))
    for r, g in zip(ref, got):
        assert g.shape == tuple(r.shape)
        np.testing.assert_allclose(g, r.numpy(), atol=FP32_TOLERANCE)


@pytest.mark.parametrize(("name", "fmt"), _params("torchscript"))
def test_torchscript_parity_every_model(name, fmt):
    model = build(name)
    data, report = export_model(model, example(model), fmt, metadata={"biolens.contract": '{"task": "x"}'})
    assert report["passed"] and report["fp32"]["max_abs_diff"] <= FP32_TOLERANCE
    extra = {"biolens.contract": ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated upstream, still supported
        ts = torch.jit.load(io.BytesIO(data), _extra_files=extra)
    assert extra["biolens.contract"] == b'{"task": "x"}'
    other = example(model, n=2, seed=3)
    wrapper = ExportModule(model)
    args = tuple(other[k] for k in wrapper.input_names)
    with torch.no_grad():
        ref, got = wrapper(*args), ts(*(a.long() if not a.is_floating_point() else a for a in args))
    for r, g in zip(ref if isinstance(ref, tuple) else (ref,), got if isinstance(got, tuple) else (got,)):
        torch.testing.assert_close(g, r, atol=FP32_TOLERANCE, rtol=0)


@pytest.mark.parametrize("name", ["dilated_resnet", "cnn_bilstm_attention", "resnet"])
def test_int8_within_documented_tolerance(name):
    model = build(name)
    data, report = export_model(model, example(model, n=8), "onnx", quantize="int8")
    q = report["int8"]
    assert q["tolerance"] == {"prob_max_abs_diff": INT8_PROB_TOLERANCE}
    assert q["passed"] and q["prob_max_abs_diff"] <= INT8_PROB_TOLERANCE
    # random untrained weights give near-tied classes; wherever the fp32 decision is clear, int8 must keep it
    assert q["n_decisive"] >= 2 and q["decisive_agreement"] == 1.0
    assert q["max_abs_diff"] > 0  # weights really are quantized
    assert any(n.op_type in ("DynamicQuantizeLinear", "MatMulInteger", "ConvInteger", "DynamicQuantizeLSTM")
               for n in onnx.load_from_string(data).graph.node)


def test_fuse_batchnorm_keeps_outputs():
    model = build("dilated_resnet")
    batch = example(model)
    with torch.no_grad():
        before = model(batch["x"])
        fused_model = build("dilated_resnet")
        n = fuse_batchnorm(fused_model)
        after = fused_model(batch["x"])
    assert n == 1  # the stem's Conv1d + BatchNorm1d (pre-activation blocks apply BN before their conv: not fused)
    torch.testing.assert_close(after, before, atol=1e-5, rtol=0)
    for fmt in ("onnx", "torchscript"):
        _, report = export_model(model, batch, fmt, fuse_bn=True)
        assert report["passed"] and report["fused_batchnorm"] == 1


def test_bad_options():
    model = build("motif_cnn")
    with pytest.raises(ConfigError, match="unknown export format 'tflite'"):
        export_model(model, example(model), "tflite")
    with pytest.raises(ConfigError, match="--quantize int8 is for --format onnx"):
        export_model(model, example(model), "torchscript", quantize="int8")


def test_export_run_checks_options_before_loading_anything(tmp_path):
    with pytest.raises(ConfigError, match="unknown export format 'tflite'"):  # not "run folder not found"
        export_run(tmp_path / "no_such_run", "tflite")


def test_export_run_writes_file_parity_and_manifest(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    res = export_run(run, "onnx")
    assert res.path == run / "model.onnx" and res.parity_path == run / "model.onnx.parity.json"
    saved = json.loads(res.parity_path.read_text())
    assert saved["passed"] and saved["fp32"]["max_abs_diff"] <= FP32_TOLERANCE
    assert saved["parity_inputs"].endswith("test-split inputs of the run's data")
    assert saved["fp32"]["checks"][0]["shape"][0] == 8
    proto = onnx.load(str(res.path))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["biolens.contract"]) == json.loads((run / "contract.json").read_text())
    assert json.loads(meta["biolens.bundle"])["model"] == "dilated_resnet"
    manifest = verify_bundle(run)  # the export inside the run is now part of the bundle
    assert {"model.onnx", "model.onnx.parity.json"} <= set(manifest["files"])
    # int8 to a path outside the run: the run's manifest is left alone
    before = (run / "manifest.json").read_text()
    res = export_run(run, "onnx", tmp_path / "out" / "m.onnx", quantize="int8")
    assert res.parity["int8"]["passed"] and (tmp_path / "out" / "m.onnx.parity.json").is_file()
    assert (run / "manifest.json").read_text() == before


def test_export_run_without_reachable_data_uses_random_inputs(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["data"]["path"] = str(tmp_path / "moved_away.csv")
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    refresh_manifest(run)
    res = export_run(run, "torchscript", tmp_path / "m.pt")
    assert res.parity["parity_inputs"].startswith("random inputs (run data not readable")
    assert res.parity["passed"]


@pytest.mark.parametrize("name", ["model.safetensors", "manifest.json", "config.yaml"])
def test_export_run_never_overwrites_the_runs_own_files(trained_run, tmp_path, name):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    with pytest.raises(ConfigError, match=f"--out .*{name} would overwrite a file the run needs"):
        export_run(run, "torchscript", run / name)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    verify_bundle(run)
