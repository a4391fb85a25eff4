"""The export formats: a positional wrapper around any registered model, ONNX (TorchScript-based exporter,
``dynamo=False``, opset 17, dynamic batch and length axes, ``onnx.checker``), dynamic int8 weights
(onnxruntime), traced TorchScript, batch-norm folding, and runners for each format.
"""

from __future__ import annotations

import copy
import io
import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from biolens.errors import ModelError

log = logging.getLogger(__name__)

OPSET = 17


class ExportModule(nn.Module):
    """Positional-input wrapper: ``(x, *aux) → logits`` or ``(logits, attention)`` for models with attention."""

    def __init__(self, model: nn.Module, attention: bool | None = None):
        super().__init__()
        self.model = model
        self.aux_names = tuple(getattr(model, "aux_inputs", ()))
        has = "attention" in getattr(model, "extra_outputs", ())
        self.attention = has if attention is None else bool(attention and has)

    def forward(self, x: Tensor, *aux: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        kwargs = dict(zip(self.aux_names, aux))
        if self.attention:
            return self.model.forward_with_attention(x, **kwargs)
        return self.model(x, **kwargs)

    @property
    def input_names(self) -> list[str]:
        return ["x", *self.aux_names]

    @property
    def output_names(self) -> list[str]:
        return ["logits", "attention"] if self.attention else ["logits"]


# ---- preparing the model ------------------------------------------------------------------------------------------------


def fuse_batchnorm(model: nn.Module) -> int:
    """Fold eval-mode BatchNorm into the convolution before it; returns the number of pairs fused.

    Pairs are a ConvNd directly followed by a matching BatchNormNd inside an ``nn.Sequential`` (the only place where
    module order is execution order); the BatchNorm becomes ``nn.Identity``. TorchScript export also freezes the
    graph, which folds the remaining pairs it can prove; the ONNX exporter folds eval-mode pairs by itself.
    """
    model.eval()
    pairs = {nn.Conv1d: nn.BatchNorm1d, nn.Conv2d: nn.BatchNorm2d, nn.Conv3d: nn.BatchNorm3d}
    fused = 0
    for parent in list(model.modules()):
        if not isinstance(parent, nn.Sequential):
            continue
        names = list(parent._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = parent._modules[a], parent._modules[b]
            if (type(conv) in pairs and isinstance(bn, pairs[type(conv)]) and bn.track_running_stats
                    and bn.num_features == conv.out_channels):
                parent._modules[a] = fuse_conv_bn_eval(conv, bn)
                parent._modules[b] = nn.Identity()
                fused += 1
    log.info("fused %d convolution + batch-norm pairs", fused)
    return fused


def prepare_model(model: nn.Module, fuse_bn: bool = False) -> tuple[ExportModule, int]:
    """A CPU, eval-mode copy of ``model`` wrapped for export (the original is untouched)."""
    m = copy.deepcopy(model).cpu().eval()
    fused = fuse_batchnorm(m) if fuse_bn else 0
    return ExportModule(m).eval(), fused


def model_args(wrapper: ExportModule, batch: dict[str, Tensor]) -> tuple[Tensor, ...]:
    """Positional inputs ``(x, *aux)`` of a batch for the exported graph (index input as int64)."""
    x = batch["x"]
    if not x.is_floating_point():
        x = x.long()  # index input: int64 in the exported graph
    missing = [a for a in wrapper.aux_names if a not in batch]
    if missing:
        raise ModelError(f"example batch lacks the auxiliary input(s) {', '.join(missing)} the model declares")
    return (x.cpu(), *(batch[a].float().cpu() for a in wrapper.aux_names))


def _dynamic_axes(wrapper: ExportModule, example: tuple[Tensor, ...]) -> dict[str, dict[int, str]]:
    # (B, L) index rows: any batch and any length; other inputs (images, one-hot): any batch
    axes: dict[str, dict[int, str]] = {"x": {0: "batch", 1: "length"} if example[0].dim() == 2 else {0: "batch"}}
    axes.update({a: {0: "batch"} for a in wrapper.aux_names})
    axes["logits"] = {0: "batch"}
    if wrapper.attention:
        axes["attention"] = {0: "batch", 1: "positions"}
    return axes


def run_eager(wrapper: ExportModule, args: tuple[Tensor, ...]) -> list[np.ndarray]:
    with torch.no_grad():
        out = wrapper(*args)
    return [o.float().numpy() for o in (out if isinstance(out, tuple) else (out,))]


# ---- the two formats ----------------------------------------------------------------------------------------------------


def to_onnx(wrapper: ExportModule, example: tuple[Tensor, ...], metadata: dict[str, str] | None = None) -> bytes:
    """Serialized ONNX model (checked with ``onnx.checker``) with dynamic batch (and length) axes."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings about shape checks that become constants
        try:
            torch.onnx.export(wrapper, example, buf, dynamo=False, opset_version=OPSET, do_constant_folding=True,
                              input_names=wrapper.input_names, output_names=wrapper.output_names,
                              dynamic_axes=_dynamic_axes(wrapper, example))
        except Exception as e:  # noqa: BLE001  the exporter raises many types
            raise ModelError(f"ONNX export of {type(wrapper.model).__name__} failed: {str(e).splitlines()[0][:200]}") from None
    proto = onnx.load_from_string(buf.getvalue())
    for key, value in (metadata or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "biolens"
    try:
        onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise ModelError(f"the ONNX export of {type(wrapper.model).__name__} fails onnx.checker: "
                         f"{str(e).splitlines()[0][:200]}; try --format torchscript") from None
    return proto.SerializeToString()


def quantize_int8(onnx_bytes: bytes) -> bytes:
    """Dynamic int8 weight quantization (onnxruntime.quantization.quantize_dynamic); activations stay float."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(onnx_bytes)
        root = logging.getLogger()
        hint = _DropRootHint()  # onnxruntime logs "consider pre-processing" on the root logger every time
        root.addFilter(hint)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
        finally:
            root.removeFilter(hint)
        return dst.read_bytes()


class _DropRootHint(logging.Filter):
    """onnxruntime.quantization logs hints (pre-processing, tensors it leaves in float) on the root logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "onnxruntime" in record.pathname and record.levelno <= logging.WARNING:
            log.debug("onnxruntime.quantization: %s", record.getMessage().splitlines()[0])
            return False
        return True


def onnx_session(onnx_bytes: bytes, device: str = "cpu", threads: int | None = None):  # noqa: ANN201
    """An onnxruntime InferenceSession (CUDA provider when asked and available; ``threads`` intra-op threads)."""
    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = int(threads)
    return ort.InferenceSession(onnx_bytes, opts, providers=providers)


def run_onnx(session, args: tuple[Tensor, ...]) -> list[np.ndarray]:  # noqa: ANN001
    names = [i.name for i in session.get_inputs()]
    return session.run(None, {n: a.numpy() for n, a in zip(names, args)})


def to_torchscript(wrapper: ExportModule, example: tuple[Tensor, ...], freeze: bool = False) -> torch.jit.ScriptModule:
    """Traced TorchScript module (``freeze``: constants folded, e.g. convolution + batch norm)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ts = torch.jit.trace(wrapper, example, check_trace=False)
        except Exception as e:  # noqa: BLE001
            raise ModelError(f"TorchScript trace of {type(wrapper.model).__name__} failed: {str(e).splitlines()[0][:200]}") from None
        if freeze:
            ts = torch.jit.freeze(ts.eval())  # (TorchScript is deprecated upstream from torch 2.10 on, still supported)
    return ts


def run_torchscript(ts: torch.jit.ScriptModule, args: tuple[Tensor, ...]) -> list[np.ndarray]:
    with torch.no_grad():
        out = ts(*args)
    return [o.float().numpy() for o in (out if isinstance(out, tuple) else (out,))]
