"""``biolens doctor model``: forward on dummy input, NaN weights, gradient flow, size and receptive field per stage.

The receptive field is measured on the layers the forward pass really runs (forward hooks on every leaf module,
in call order), with the usual recurrence ``r += (k − 1) · dilation · jump``, ``jump *= stride`` (guide 4.2).
Each tensor carries its own ``(r, jump)``: parallel branches (inception-style kernels, residual shortcuts) start
from the same input and do not add up; a tensor made by a functional op (``F.gelu``, ``*``, ``cat``) takes the
largest field seen so far.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from biolens.errors import ModelError
from biolens.findings import Finding, Report
from biolens.models import model_info
from biolens.tasks import task_class

log = logging.getLogger(__name__)

EXPLODING_GRAD = 100.0  # guide 7.3
_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_POOL = (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d)
_GLOBAL = (nn.RNNBase, nn.MultiheadAttention, nn.TransformerEncoderLayer, nn.TransformerEncoder)


def _first(v: Any) -> int:
    return int(v[0]) if isinstance(v, (tuple, list)) else int(v)


@dataclass
class LayerRF:
    name: str
    kind: str
    kernel: int
    stride: int
    dilation: int
    rf: int
    jump: int


def receptive_field(model: nn.Module, *inputs: torch.Tensor, **kwargs: torch.Tensor) -> tuple[int, list[LayerRF], bool]:
    """Receptive field (input positions, along one axis) of the model's last spatial layer.

    Returns ``(rf, layers, global_context)``: the field, each convolution/pooling layer in forward order with the
    field after it, and whether the model also has a layer that sees the whole input (RNN, attention).
    """
    known: dict[int, tuple[int, int]] = {}  # id(tensor) → (rf, jump)
    keep: list[torch.Tensor] = []  # keeps ids unique during the pass
    layers: list[LayerRF] = []
    frontier = [1, 1]  # largest rf seen so far and its jump
    names = {m: n for n, m in model.named_modules()}
    has_global = any(isinstance(m, _GLOBAL) for m in model.modules())

    def lookup(t: torch.Tensor) -> tuple[int, int]:
        if id(t) in known:
            return known[id(t)]
        known[id(t)] = (frontier[0], frontier[1])  # a derived tensor: parallel uses of it share this field
        keep.append(t)
        return known[id(t)]

    def hook(module: nn.Module, args: tuple, out: Any) -> None:
        x = next((a for a in args if isinstance(a, torch.Tensor)), None)
        if x is None or not isinstance(out, torch.Tensor):
            return
        rf, jump = lookup(x)
        if isinstance(module, _CONV + _POOL):
            k, s = _first(module.kernel_size), _first(module.stride)
            d = _first(getattr(module, "dilation", 1))
            rf, jump = rf + (k - 1) * d * jump, jump * s
            layers.append(LayerRF(names.get(module, type(module).__name__), type(module).__name__, k, s, d, rf, jump))
            if rf > frontier[0]:
                frontier[:] = [rf, jump]
        known[id(out)] = (rf, jump)
        keep.append(out)

    for t in list(inputs) + list(kwargs.values()):
        known[id(t)] = (1, 1)
    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            model(*inputs, **kwargs)
    finally:
        for h in handles:
            h.remove()
    return frontier[0], layers, has_global


def stage_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The model's stages: its declared ``stages`` (+ head), else its top-level children (lists expanded)."""
    declared = list(getattr(model, "stages", ()) or ())
    if declared:
        out = [(n, model.get_submodule(n)) for n in declared]
        seen = {id(m) for _, m in out}
        out += [(n, m) for n, m in model.named_children() if id(m) not in seen and not any(
            id(sub) in seen for sub in m.modules())]
        return out
    out = []
    for name, child in model.named_children():
        if isinstance(child, (nn.ModuleList, nn.ModuleDict)):
            out += [(f"{name}.{n}", m) for n, m in child.named_children()]
        else:
            out.append((name, child))
    return out


def _shape(out: Any) -> str:
    if isinstance(out, torch.Tensor):
        return "×".join(str(s) for s in out.shape)
    if isinstance(out, (tuple, list)):
        return ", ".join(_shape(o) for o in out if isinstance(o, torch.Tensor))
    return type(out).__name__


def check_model(model: nn.Module, x: torch.Tensor, aux: dict[str, torch.Tensor] | None = None, *, kind: str = "image",
                motif_length: int | None = None, subject: str | None = None) -> Report:
    """Every model check on one dummy batch ``x`` (guide 7.3 ``check_model`` and 4.2 ``print_architecture``)."""
    aux = aux or {}
    report = Report("model", subject or type(model).__name__)
    stages = stage_modules(model)
    shapes: dict[str, str] = {}

    def record(name: str):  # noqa: ANN202
        def hook(module: nn.Module, args: tuple, out: Any) -> None:
            shapes.setdefault(name, _shape(out))  # a hook must return None, or it replaces the output
        return hook

    handles = [m.register_forward_hook(record(n)) for n, m in stages]
    model.eval()
    try:
        with torch.no_grad():
            out = model(x, **aux)
    except Exception as e:  # noqa: BLE001  the check reports any failure of the user's model
        report.add(Finding("forward pass", "fail", f"input {tuple(x.shape)}: {type(e).__name__}: {e}",
                           "fix the model or give the input it expects with --input-shape"))
        return report
    finally:
        for h in handles:
            h.remove()
    report.add(Finding("forward pass", "pass", f"input {tuple(x.shape)} → output {tuple(out.shape)}"))
    if not torch.isfinite(out).all():
        report.add(Finding("finite output", "fail", "the output has NaN/Inf on a normal dummy input",
                           "check weight initialization and any division/log in forward"))

    bad = [n for n, p in model.named_parameters() if not torch.isfinite(p).all()]
    report.add(Finding("weights finite", "fail" if bad else "pass",
                       f"NaN/Inf in {len(bad)} tensor(s): {', '.join(bad[:5])}" if bad else "no NaN or Inf in any weight",
                       "re-initialize or load good weights (a NaN weight poisons every output)" if bad else ""))
    _gradient_flow(model, x, aux, out.shape[-1], report)
    _receptive_field(model, x, aux, kind, motif_length, report)
    _stage_table(model, stages, shapes, report)
    return report


def _gradient_flow(model: nn.Module, x: torch.Tensor, aux: dict[str, torch.Tensor], n_out: int, report: Report) -> None:
    model.train()
    model.zero_grad(set_to_none=True)
    target = torch.arange(x.shape[0]) % max(n_out, 1)
    try:
        loss = F.cross_entropy(model(x, **aux), target)
        loss.backward()
    finally:
        model.eval()
    rows, zero, huge, frozen = [], [], [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            frozen.append(name)
            continue
        norm = None if p.grad is None else float(p.grad.norm())
        rows.append({"parameter": name, "grad_norm": norm})
        if norm is None or norm == 0.0:
            zero.append(name)
        elif not math.isfinite(norm) or norm > EXPLODING_GRAD:
            huge.append(f"{name} ({norm:.3g})")
    report.tables["gradients"] = rows
    model.zero_grad(set_to_none=True)
    if zero:
        report.add(Finding("gradient flow", "fail",
                           f"{len(zero)} parameter tensor(s) get no gradient (layer not learning): {', '.join(zero[:6])}"
                           + (" …" if len(zero) > 6 else ""),
                           "the layer's output does not reach the loss: look for .detach(), torch.no_grad(), "
                           "an unused module, or a branch whose output is dropped", {"zero": zero}))
    else:
        report.add(Finding("gradient flow", "pass", f"all {len(rows)} trainable tensors get a nonzero gradient"
                           + (f" ({len(frozen)} frozen)" if frozen else "")))
    if huge:
        report.add(Finding("gradient size", "warn", f"large gradients (> {EXPLODING_GRAD:g}) after one step: "
                           + ", ".join(huge[:6]), "lower the LR, keep gradient clipping on (train.grad_clip), add "
                           "normalization layers", {"large": huge}))


def _stage_table(model: nn.Module, stages: list[tuple[str, nn.Module]], shapes: dict[str, str], report: Report) -> None:
    rows = []
    order = list(shapes)  # stages in the order the forward pass called them; never-called ones last
    layers = report.tables.get("receptive_field", [])
    for name, m in sorted(stages, key=lambda s: order.index(s[0]) if s[0] in order else len(order)):
        n = sum(p.numel() for p in m.parameters())
        inside = [r["rf"] for r in layers if r["name"] == name or r["name"].startswith(name + ".")]
        mb = sum(p.numel() * p.element_size() for p in m.parameters()) / 1024**2
        rows.append({"stage": name, "output": shapes.get(name, "not called"), "params": n,
                     "trainable": sum(p.numel() for p in m.parameters() if p.requires_grad), "MB": round(mb, 3),
                     "rf": max(inside) if inside else None})
    report.tables["stages"] = rows
    total = sum(p.numel() for p in model.parameters())
    mb = sum(p.numel() * p.element_size() for p in model.parameters()) / 1024**2
    unused = [r["stage"] for r in rows if r["output"] == "not called" and r["params"]]
    report.add(Finding("parameters", "pass", f"{total:,} parameters, {mb:.2f} MB"
                       + (f"; stages never called in forward: {', '.join(unused)}" if unused else ""),
                       data={"params": total, "MB": round(mb, 3)}))


def _receptive_field(model: nn.Module, x: torch.Tensor, aux: dict[str, torch.Tensor], kind: str,
                     motif_length: int | None, report: Report) -> None:
    rf, layers, has_global = receptive_field(model, x, **aux)
    unit = task_class(kind).position_unit
    report.tables["receptive_field"] = [vars(layer) for layer in layers]
    if not layers:
        report.add(Finding("receptive field", "pass", "no convolution or pooling layers", data={"rf": None}))
        return
    length = int(x.shape[-1])
    detail = f"{rf} {unit} after {layers[-1].name} (input {length} {unit})"
    data = {"rf": rf, "unit": unit, "input": length, "global_context": has_global}
    if kind != "sequence":
        report.add(Finding("receptive field", "pass", detail + ("; global pooling then sees the whole image"
                                                               if rf < length else ""), data=data))
        return
    if motif_length and rf < motif_length:
        report.add(Finding("receptive field", "fail" if not has_global else "warn",
                           detail + f": smaller than the {motif_length}-base motifs it must detect",
                           "use a longer stem kernel (model.params.stem_kernel), more blocks or larger dilations "
                           "(model.params.blocks, model.params.dilations)", data))
    elif rf * 10 < length and not has_global:
        report.add(Finding("receptive field", "warn",
                           detail + f": each output sees under a tenth of the sequence; interactions further apart "
                           f"than {rf} bases are only combined by pooling",
                           "if long-range order matters: more blocks/dilations (--set model.params.blocks=…), "
                           "downsampling (model.params.downsample=true) or a CNN+RNN (--model cnn_bilstm_attention)", data))
    else:
        report.add(Finding("receptive field", "pass", detail + ("; the RNN/attention layers see the whole sequence"
                                                               if has_global else ""), data=data))


def doctor_model(name: str, *, input_shape: str | None = None, params: dict[str, Any] | None = None,
                 alphabet: str = "dna", num_classes: int = 2, motif_length: int | None = None, seed: int = 0) -> Report:
    """Build registered model ``name`` (with ``params``) and run every model check on a dummy batch (the model's
    task kind makes the batch: tokens ``(B, L)`` for sequences, normal floats ``(B, C, H, W)`` for images)."""
    spec = model_info(name)
    kind = task_class(spec.task)
    params = {k: v for k, v in (params or {}).items() if k not in ("vocab_size", "num_classes", "in_channels")}
    shape = kind.parse_shape(input_shape)
    torch.manual_seed(seed)
    model = kind.example_model(name, shape, num_classes, params, alphabet)
    if not isinstance(model, nn.Module):
        raise ModelError(f"model {name!r} did not build an nn.Module")
    x, aux = kind.example_input(model, shape, seed)
    return check_model(model, x, aux, kind=spec.task, motif_length=motif_length, subject=name)
