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

import io
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from biolens.bundle import MANIFEST, REQUIRED_FILES, refresh_manifest
from biolens.contract import softmax
from biolens.deploy.formats import (OPSET, ExportModule, fuse_batchnorm, model_args, onnx_session, prepare_model,
                                    run_eager,
                                    quantize_int8, run_onnx, run_torchscript, to_onnx, to_torchscript)
from biolens.errors import BiolensError, BiolensWarning, ConfigError, ModelError
from biolens.io import atomic_write
from biolens.tasks import Predictor, make_task, task_class

log = logging.getLogger(__name__)

__all__ = ["FP32_TOLERANCE", "INT8_PROB_TOLERANCE", "OPSET", "ExportModule", "ExportResult", "export_model",
           "export_run", "fuse_batchnorm", "onnx_session", "random_batch", "run_onnx", "sample_batch"]

FP32_TOLERANCE = 1e-4  # max abs difference of logits (and attention) against PyTorch eager
INT8_PROB_TOLERANCE = 0.05  # max abs difference of class probabilities for dynamic int8 weights
FORMATS = ("onnx", "torchscript")
SUFFIX = {"onnx": ".onnx", "torchscript": ".torchscript.pt"}


@dataclass
class ExportResult:
    path: Path
    format: str
    quantize: str | None
    parity: dict[str, Any]
    parity_path: Path | None = None


# ---- parity -------------------------------------------------------------------------------------------------------------


def parity_batches(batch: dict[str, Tensor]) -> list[dict[str, Tensor]]:
    """The example batch, its first rows (another batch size) and, for index rows ``(B, L)``, extra padding
    (another length)."""
    out = [batch]
    n = len(batch["x"])
    if n > 1:
        out.append({k: v[: max(1, n // 3)] for k, v in batch.items()})
    if batch["x"].dim() == 2 and not batch["x"].is_floating_point():
        padded = dict(batch)
        padded["x"] = torch.nn.functional.pad(batch["x"], (0, 7))  # PAD = 0 at the end
        out.append(padded)
    return out


def compare(wrapper: ExportModule, runner, batches: list[dict[str, Tensor]], quantized: bool = False,  # noqa: ANN001
            outputs: Any = softmax) -> dict[str, Any]:
    """Run ``runner(args) → outputs`` and eager on every batch; max abs differences per output (and probabilities).

    ``argmax_agreement`` counts every input; ``decisive_agreement`` only those whose eager top-two probabilities
    differ by more than twice the export's largest probability difference, where a flipped class would be a real
    disagreement rather than rounding of a near tie (``None`` when no input is that decisive)."""
    checks, worst, worst_p, agree, total = [], 0.0, 0.0, 0, 0
    kept: list[tuple[np.ndarray, np.ndarray]] = []
    for batch in batches:
        args = model_args(wrapper, batch)
        ref, got = run_eager(wrapper, args), runner(args)
        diffs = {name: float(np.abs(r - g).max()) if r.size else 0.0
                 for name, r, g in zip(wrapper.output_names, ref, got)}
        p_ref, p_got = outputs(ref[0]), outputs(got[0])
        p_diff = float(np.abs(p_ref - p_got).max())
        agree += int((p_ref.argmax(1) == p_got.argmax(1)).sum())
        total += len(p_ref)
        kept.append((p_ref, p_got))
        checks.append({"batch": int(args[0].shape[0]), "shape": list(args[0].shape), "max_abs_diff": diffs,
                       "prob_max_abs_diff": p_diff})
        worst, worst_p = max(worst, max(diffs.values())), max(worst_p, p_diff)
    decisive = [(r, g) for pr, pg in kept for r, g in zip(pr, pg)
                if r.shape[0] > 1 and np.diff(np.sort(r)[-2:])[0] > 2 * worst_p]
    result: dict[str, Any] = {"checks": checks, "max_abs_diff": worst, "prob_max_abs_diff": worst_p,
                              "argmax_agreement": agree / max(total, 1), "n_inputs": total,
                              "decisive_agreement": (float(np.mean([r.argmax() == g.argmax() for r, g in decisive]))
                                                     if decisive else None), "n_decisive": len(decisive)}
    if quantized:
        result["tolerance"] = {"prob_max_abs_diff": INT8_PROB_TOLERANCE}
        result["passed"] = total > 0 and worst_p <= INT8_PROB_TOLERANCE
    else:
        result["tolerance"] = {"max_abs_diff": FP32_TOLERANCE}
        result["passed"] = total > 0 and worst <= FP32_TOLERANCE  # nothing compared is no evidence of parity
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
                 fuse_bn: bool = False, metadata: dict[str, str] | None = None, outputs: Any = softmax
                 ) -> tuple[bytes, dict[str, Any]]:
    """Export ``model`` and check parity on ``batch`` (``{"x", …aux}``) and its variants.

    ``outputs`` turns logits into what the parity of decisions is judged on (``prob_max_abs_diff``, the int8
    tolerance): class probabilities by default; ``parity_outputs`` gives label probabilities for multi-label runs and
    the standardized values for regression runs. Returns the file's bytes and the parity report. Raises ModelError
    when fp32 parity fails.
    """
    check_options(fmt, quantize)
    wrapper, fused = prepare_model(model, fuse_bn)
    reference = prepare_model(model)[0] if fuse_bn else wrapper  # parity is always against the unmodified model
    example = model_args(wrapper, batch)
    batches = parity_batches(batch)
    report: dict[str, Any] = {"format": fmt, "quantize": quantize, "opset": OPSET if fmt == "onnx" else None,
                              "inputs": wrapper.input_names, "outputs": wrapper.output_names,
                              "fused_batchnorm": fused if fuse_bn else None}
    if fmt == "onnx":
        data = to_onnx(wrapper, example, metadata)
        session = onnx_session(data)
        report["fp32"] = compare(reference, lambda a: run_onnx(session, a), batches, outputs=outputs)
        if quantize:
            data = quantize_int8(data)
            q = onnx_session(data)
            report["int8"] = compare(reference, lambda a: run_onnx(q, a), batches, quantized=True, outputs=outputs)
    else:
        ts = to_torchscript(wrapper, example, freeze=fuse_bn)
        report["fp32"] = compare(reference, lambda a: run_torchscript(ts, a), batches, outputs=outputs)
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
    """Contract-valid random inputs from the model's task kind: symbols 1..k at random lengths, or normal images."""
    kind = getattr(contract, "task", None) or model.task
    return task_class(kind).codec.random_batch(model, contract, n, seed)


def sample_batch(predictor: Any, n: int = 8) -> tuple[dict[str, Tensor], str]:
    """Up to ``n`` real inputs from the run's own test split (else val/train), preprocessed exactly as in
    evaluation; contract-valid random inputs when the run's data cannot be read (the string says which)."""
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


def parity_outputs(contract: Any) -> Any:
    """What parity compares besides the raw outputs: class probabilities (softmax), label probabilities (sigmoid) or,
    for regression, the model's standardized outputs themselves (so the int8 tolerance is 0.05 standard deviations)."""
    if contract.target_type == "multilabel":
        return lambda z: 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))
    if contract.target_type == "regression":
        return lambda z: np.asarray(z, dtype=np.float64)
    return softmax


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
    check_options(fmt, quantize)  # before loading the model and reading the run's data
    if int(n_samples) < 1:
        raise ConfigError(f"samples={n_samples}: parity needs at least 1 input; give 8 or more")
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
                                metadata=metadata_for(predictor), outputs=parity_outputs(predictor.contract))
    c = predictor.contract
    report["compared_outputs"] = {"classification": "class probabilities", "multilabel": "label probabilities",
                                  "regression": "standardized values (output units)"}[c.target_type]
    if c.target_type == "regression":  # the largest fp32 difference in each target's own units
        report["fp32"]["value_max_abs_diff"] = {n: report["fp32"]["max_abs_diff"] * s for n, s in
                                                zip(c.target_names, c.target_std or [1.0] * c.num_classes)}
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
