"""Export a trained model to ONNX or TorchScript, with a parity check against PyTorch eager on real inputs.

ONNX uses the TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``, opset 17) with a dynamic batch
axis, and a dynamic length axis for sequence models; the file is checked with ``onnx.checker`` and carries the input
contract in its ``metadata_props``. TorchScript is traced and carries the contract as an extra file
(``contract.json``). Models with attention export it as a second output; models with auxiliary inputs (GC content)
take them as extra inputs. ``int8`` quantizes weights dynamically with onnxruntime.

Parity: every export is run on a few inputs (a batch of the run's test split, a smaller batch and, for sequences, the
same batch with extra padding so the dynamic axes are exercised) and compared with the eager model. fp32 must agree
within ``FP32_TOLERANCE`` (max abs difference of every output) or the export is refused. int8 is lossy by design: it
passes when class probabilities differ by at most ``INT8_PROB_TOLERANCE``; the argmax agreement is reported too.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from biolens.errors import BiolensError, BiolensWarning, ConfigError, ModelError

log = logging.getLogger(__name__)

OPSET = 17
FP32_TOLERANCE = 1e-4  # max abs difference of logits (and attention) against PyTorch eager
INT8_PROB_TOLERANCE = 0.05  # max abs difference of class probabilities for dynamic int8 weights
FORMATS = ("onnx", "torchscript")
SUFFIX = {"onnx": ".onnx", "torchscript": ".torchscript.pt"}


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


@dataclass
class ExportResult:
    path: Path
    format: str
    quantize: str | None
    parity: dict[str, Any]
    parity_path: Path | None = None


# ---- preparing the model ------------------------------------------------------------------------------------------------


def fuse_batchnorm(model: nn.Module) -> int:
    """Fold eval-mode BatchNorm into the convolution before it; returns the number of pairs fused.

    Pairs are a ConvNd directly followed by a matching BatchNormNd inside an ``nn.Sequential`` (the only place where
    module order is execution order); the BatchNorm becomes ``nn.Identity``. TorchScript export also freezes the
    graph, which folds the remaining pairs it can prove; the ONNX exporter folds eval-mode pairs by itself.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

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


def _inputs(wrapper: ExportModule, batch: dict[str, Tensor]) -> tuple[Tensor, ...]:
    x = batch["x"]
    if not x.is_floating_point():
        x = x.long()  # index input: int64 in the exported graph
    missing = [a for a in wrapper.aux_names if a not in batch]
    if missing:
        raise ModelError(f"example batch lacks the auxiliary input(s) {', '.join(missing)} the model declares")
    return (x.cpu(), *(batch[a].float().cpu() for a in wrapper.aux_names))


def _dynamic_axes(wrapper: ExportModule, sequence: bool) -> dict[str, dict[int, str]]:
    axes: dict[str, dict[int, str]] = {"x": {0: "batch", 1: "length"} if sequence else {0: "batch"}}
    axes.update({a: {0: "batch"} for a in wrapper.aux_names})
    axes["logits"] = {0: "batch"}
    if wrapper.attention:
        axes["attention"] = {0: "batch", 1: "positions"}
    return axes


def _eager(wrapper: ExportModule, args: tuple[Tensor, ...]) -> list[np.ndarray]:
    with torch.no_grad():
        out = wrapper(*args)
    return [o.float().numpy() for o in (out if isinstance(out, tuple) else (out,))]


# ---- the two formats ----------------------------------------------------------------------------------------------------


def to_onnx(wrapper: ExportModule, example: tuple[Tensor, ...], sequence: bool,
            metadata: dict[str, str] | None = None) -> bytes:
    """Serialized ONNX model (checked with ``onnx.checker``) with dynamic batch (and length) axes."""
    import onnx

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings about shape checks that become constants
        try:
            torch.onnx.export(wrapper, example, buf, dynamo=False, opset_version=OPSET, do_constant_folding=True,
                              input_names=wrapper.input_names, output_names=wrapper.output_names,
                              dynamic_axes=_dynamic_axes(wrapper, sequence))
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
    from onnxruntime.quantization import QuantType, quantize_dynamic

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
    import onnxruntime as ort

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


# ---- parity -------------------------------------------------------------------------------------------------------------


def parity_batches(batch: dict[str, Tensor], sequence: bool) -> list[dict[str, Tensor]]:
    """The example batch, its first rows (another batch size) and, for sequences, extra padding (another length)."""
    out = [batch]
    n = len(batch["x"])
    if n > 1:
        out.append({k: v[: max(1, n // 3)] for k, v in batch.items()})
    if sequence and not batch["x"].is_floating_point():
        padded = dict(batch)
        padded["x"] = torch.nn.functional.pad(batch["x"], (0, 7))  # PAD = 0 at the end
        out.append(padded)
    return out


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def compare(wrapper: ExportModule, runner, batches: list[dict[str, Tensor]], quantized: bool = False  # noqa: ANN001
            ) -> dict[str, Any]:
    """Run ``runner(args) → outputs`` and eager on every batch; max abs differences per output (and probabilities)."""
    checks, worst, worst_p, agree, total = [], 0.0, 0.0, 0, 0
    for batch in batches:
        args = _inputs(wrapper, batch)
        ref, got = _eager(wrapper, args), runner(args)
        diffs = {name: float(np.abs(r - g).max()) if r.size else 0.0
                 for name, r, g in zip(wrapper.output_names, ref, got)}
        p_ref, p_got = _softmax(ref[0]), _softmax(got[0])
        p_diff = float(np.abs(p_ref - p_got).max())
        agree += int((p_ref.argmax(1) == p_got.argmax(1)).sum())
        total += len(p_ref)
        checks.append({"batch": int(args[0].shape[0]), "shape": list(args[0].shape), "max_abs_diff": diffs,
                       "prob_max_abs_diff": p_diff})
        worst, worst_p = max(worst, max(diffs.values())), max(worst_p, p_diff)
    result: dict[str, Any] = {"checks": checks, "max_abs_diff": worst, "prob_max_abs_diff": worst_p,
                              "argmax_agreement": agree / max(total, 1), "n_inputs": total}
    if quantized:
        result["tolerance"] = {"prob_max_abs_diff": INT8_PROB_TOLERANCE}
        result["passed"] = worst_p <= INT8_PROB_TOLERANCE
    else:
        result["tolerance"] = {"max_abs_diff": FP32_TOLERANCE}
        result["passed"] = worst <= FP32_TOLERANCE
    return result


def check_options(fmt: str, quantize: str | None) -> None:
    """ConfigError for an unknown format or quantization, or int8 outside ONNX."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; expected one of: {', '.join(FORMATS)}")
    if quantize not in (None, "int8"):
        raise ConfigError(f"unknown --quantize {quantize!r}; expected int8")
    if quantize and fmt != "onnx":
        raise ConfigError("--quantize int8 is for --format onnx (onnxruntime dynamic quantization)")


def export_model(model: nn.Module, batch: dict[str, Tensor], fmt: str, *, quantize: str | None = None,
                 fuse_bn: bool = False, metadata: dict[str, str] | None = None
                 ) -> tuple[bytes, dict[str, Any]]:
    """Export ``model`` and check parity on ``batch`` (``{"x", …aux}``) and its variants.

    Returns the file's bytes and the parity report. Raises ModelError when fp32 parity fails.
    """
    check_options(fmt, quantize)
    wrapper, fused = prepare_model(model, fuse_bn)
    reference = prepare_model(model)[0] if fuse_bn else wrapper  # parity is always against the unmodified model
    sequence = getattr(model, "task", "sequence") == "sequence"
    example = _inputs(wrapper, batch)
    batches = parity_batches(batch, sequence)
    report: dict[str, Any] = {"format": fmt, "quantize": quantize, "opset": OPSET if fmt == "onnx" else None,
                              "inputs": wrapper.input_names, "outputs": wrapper.output_names,
                              "fused_batchnorm": fused if fuse_bn else None}
    if fmt == "onnx":
        data = to_onnx(wrapper, example, sequence, metadata)
        session = onnx_session(data)
        report["fp32"] = compare(reference, lambda a: run_onnx(session, a), batches)
        if quantize:
            data = quantize_int8(data)
            q = onnx_session(data)
            report["int8"] = compare(reference, lambda a: run_onnx(q, a), batches, quantized=True)
    else:
        ts = to_torchscript(wrapper, example, freeze=fuse_bn)
        report["fp32"] = compare(reference, lambda a: run_torchscript(ts, a), batches)
        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            torch.jit.save(ts, buf, _extra_files={k: v.encode() for k, v in (metadata or {}).items()})
        data = buf.getvalue()
    if not report["fp32"]["passed"]:
        raise ModelError(f"{fmt} export of {type(model).__name__} does not match PyTorch: max abs difference "
                         f"{report['fp32']['max_abs_diff']:.2e} > {FP32_TOLERANCE:g}; the model uses an operation the "
                         "exporter handles differently")
    if quantize and not report["int8"]["passed"]:
        warnings.warn(f"int8 probabilities differ from fp32 by up to {report['int8']['prob_max_abs_diff']:.3f} "
                      f"(> {INT8_PROB_TOLERANCE}); argmax agreement {report['int8']['argmax_agreement']:.1%}; prefer "
                      "the fp32 export for this model", BiolensWarning, stacklevel=2)
    report["passed"] = report["fp32"]["passed"] and (not quantize or report["int8"]["passed"])
    return data, report


# ---- inputs for a run ---------------------------------------------------------------------------------------------------


def random_batch(model: nn.Module, contract: Any, n: int = 8, seed: int = 0) -> dict[str, Tensor]:
    """Contract-valid random inputs: symbols 1..k at random lengths (padded), or standard-normal images."""
    from biolens.models.base import gc_content

    g = torch.Generator().manual_seed(seed)
    if getattr(model, "task", "sequence") == "image":
        size = contract.image_size if contract is not None else 32
        return {"x": torch.randn(n, model.in_channels, size, size, generator=g)}
    length = min(int(getattr(contract, "max_len", None) or 64), 512)
    k = model.vocab_size - 2  # symbols 1..k (k+1 = unknown)
    x = torch.randint(1, k + 1, (n, length), generator=g)
    lengths = torch.randint(max(2, length // 2), length + 1, (n,), generator=g)
    x[torch.arange(length).unsqueeze(0) >= lengths.unsqueeze(1)] = 0
    batch = {"x": x}
    if "gc" in getattr(model, "aux_inputs", ()):
        batch["gc"] = gc_content(x)
    return batch


def sample_batch(predictor: Any, n: int = 8) -> tuple[dict[str, Tensor], str]:
    """Up to ``n`` real inputs from the run's own test split (else val/train), preprocessed exactly as in
    evaluation; contract-valid random inputs when the run's data cannot be read (the string says which)."""
    from biolens.training.tasks import make_task

    try:
        task = make_task(predictor.config)
        task.prepare()
        for split in ("test", "val", "train"):
            if task.size(split):
                batch = next(iter(task.batches(split, train=False, device=torch.device("cpu"), batch_size=n)))
                model_keys = {"x", *getattr(predictor.model, "aux_inputs", ())}
                return {k: v for k, v in batch.items() if k in model_keys}, f"{len(batch['x'])} {split}-split inputs of the run's data"
    except (BiolensError, OSError) as e:
        log.warning("run data not readable (%s); parity uses contract-valid random inputs", str(e)[:200])
        return random_batch(predictor.model, predictor.contract, n), f"random inputs (run data not readable: {str(e)[:120]})"
    return random_batch(predictor.model, predictor.contract, n), "random inputs (the run's data has no rows)"


def metadata_for(predictor: Any) -> dict[str, str]:
    """Contract and provenance embedded in the exported file."""
    m = predictor.manifest
    info = {"model": predictor.config.model.name, "bundle_format": m.get("bundle_format"), "created": m.get("created"),
            "biolens": m.get("biolens"), "torch": m.get("torch"), "git_commit": m.get("git_commit"),
            "dataset_fingerprint": m.get("dataset_fingerprint"),
            "model_sha256": m.get("files", {}).get("model.safetensors")}
    return {"biolens.contract": json.dumps(predictor.contract.to_dict()), "biolens.bundle": json.dumps(info)}


def export_run(run: str | Path, fmt: str = "onnx", out: str | Path | None = None, *, quantize: str | None = None,
               fuse_bn: bool = False, n_samples: int = 8) -> ExportResult:
    """Export a run folder's model and write ``<out>`` plus ``<out>.parity.json`` (atomically).

    The default ``out`` is ``RUN/model.onnx`` (``model.int8.onnx``, ``model.torchscript.pt``); a file inside the
    run folder is added to ``manifest.json``.
    """
    from biolens.deploy.bundle import MANIFEST, REQUIRED_FILES, atomic_write, refresh_manifest
    from biolens.deploy.predictor import Predictor

    check_options(fmt, quantize)  # before loading the model and reading the run's data
    predictor = Predictor.load(run, device="cpu")
    if out is None:
        name = "model" + (".int8" if quantize else "") + SUFFIX.get(fmt, "")
        out = predictor.run_dir / name
    out = Path(out)
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; give a file name such as {out / ('model' + SUFFIX.get(fmt, ''))}")
    protected = {(predictor.run_dir / f).resolve() for f in (*REQUIRED_FILES, MANIFEST)}
    if {out.resolve(), out.with_name(out.name + ".parity.json").resolve()} & protected:
        raise ConfigError(f"--out {out} would overwrite a file the run needs; give another name such as "
                          f"{predictor.run_dir / ('model' + SUFFIX.get(fmt, ''))}")
    batch, source = sample_batch(predictor, n_samples)
    data, report = export_model(predictor.model, batch, fmt, quantize=quantize, fuse_bn=fuse_bn,
                                metadata=metadata_for(predictor))
    report.update({"run": str(predictor.run_dir), "model": predictor.config.model.name, "file": out.name,
                   "bytes": len(data), "parity_inputs": source})
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda fh: fh.write(data))
    parity_path = out.with_name(out.name + ".parity.json")
    atomic_write(parity_path, lambda fh: fh.write((json.dumps(report, indent=2) + "\n").encode()))
    if out.resolve().parent.is_relative_to(predictor.run_dir.resolve()):
        refresh_manifest(predictor.run_dir, written=[out, parity_path])
    log.info("exported %s (%d bytes); parity %s", out, len(data), "passed" if report["passed"] else "FAILED")
    return ExportResult(out, fmt, quantize, report, parity_path)
