"""Image explanations through captum: Grad-CAM on the last conv stage, saliency and occlusion.

Images go through exactly the preprocessing of prediction (``tasks/image_inputs.py``: decode, resize to the contract's
``resize_to``, center crop ``image_size``, channels, mean/std). Each map is computed on that model input
``(S, S)`` and mapped back to the original file's pixels for the overlay and the peak.

- ``gradcam``: :class:`captum.attr.LayerGradCam` on ``model.cam_layer()`` (the last conv stage of every registered
  image model, torchvision backbones included), ReLU'd, then :meth:`LayerAttribution.interpolate` (bilinear) to
  ``(S, S)``.
- ``saliency``: :class:`captum.attr.Saliency`, ``|∂logit/∂x|`` with the maximum over channels.
- ``occlusion``: :class:`captum.attr.Occlusion`, a square window about ``S/7`` wide sliding by half its width (rounded
  up) over all channels at once; occluded pixels are set to 0 after normalization, i.e. the contract's mean. The map
  is the drop of the class logit (positive: the region supports the class), summed over channels.

Outputs per image in ``out_dir``, named from the input's stem (repeated stems get ``-2``…; an output that would
replace an input is refused):
``STEM.METHOD.png`` (the original, and the map over it with the peak marked) and ``STEM.METHOD.npy`` (the map,
float32 ``(S, S)`` in model-input coordinates), plus one summary ``METHOD.tsv`` with a row per image.
"""

from __future__ import annotations

import io
import logging
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib import colormaps
from PIL import Image, ImageDraw, ImageFont
from captum.attr import LayerAttribution, LayerGradCam, Occlusion, Saliency
from torch import nn

from biolens.contract import InputContract
from biolens.data.images.decode import Window, _pil_pixels, dicom_pixels, is_dicom, probe_channels
from biolens.tasks import Encoded
from biolens.tasks import image_inputs as image_io
from biolens.io import atomic_write
from biolens.errors import BiolensWarning, DataError, ModelError
from biolens.interpret.registry import Method, get_method, register_method, register_runner

log = logging.getLogger(__name__)

SUMMARY_COLUMNS = ["input", "predicted", "target_class", "probability", "peak_row", "peak_col", "map_max",
                   "overlay", "array"]


# ---- the maps --------------------------------------------------------------------------------------------------------
def cam_layer(model: nn.Module) -> nn.Module:
    """The layer Grad-CAM reads: ``model.cam_layer()``, else the last module holding a ``Conv2d``."""
    if hasattr(model, "cam_layer"):
        return model.cam_layer()
    last = None
    for module in model.children():
        if any(isinstance(m, nn.Conv2d) for m in module.modules()):
            last = module
    if last is None:
        raise ModelError(f"{type(model).__name__} has no Conv2d layer; Grad-CAM needs a convolutional image model")
    return last


def occlusion_window(size: int) -> tuple[int, int]:
    """Occlusion window side and stride for a ``size``-pixel input: about ``size/7`` wide, stride half of it."""
    window = max(2, round(size / 7))
    return window, (window + 1) // 2


@contextmanager
def _eval_with_input_grad(model: nn.Module, x: torch.Tensor) -> Iterator[torch.Tensor]:
    """Eval mode (restored after) and an input that carries gradients even when every weight is frozen."""
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            yield x.detach().clone().requires_grad_(True)
    finally:
        model.train(was_training)


@register_method("gradcam", "image", "Grad-CAM on the last conv stage (captum LayerGradCam), upsampled bilinearly")
def gradcam(model: nn.Module, x: torch.Tensor, targets: list[int]) -> torch.Tensor:
    h, w = x.shape[-2:]
    with _eval_with_input_grad(model, x) as xg:
        raw = LayerGradCam(model, cam_layer(model)).attribute(xg, target=targets, relu_attributions=True)
        if raw.shape[-2] * raw.shape[-1] == 1:
            warnings.warn(f"the Grad-CAM layer is 1×1 for a {h}×{w} input, so the map holds no position; "
                          "use a larger image_size, or saliency/occlusion", BiolensWarning, stacklevel=3)
        return LayerAttribution.interpolate(raw, (h, w), interpolate_mode="bilinear")[:, 0]


@register_method("saliency", "image", "|∂logit/∂x|, the maximum over channels (captum Saliency)")
def saliency(model: nn.Module, x: torch.Tensor, targets: list[int]) -> torch.Tensor:
    with _eval_with_input_grad(model, x) as xg:
        return Saliency(model).attribute(xg, target=targets, abs=True).amax(dim=1)


@register_method("occlusion", "image", "drop of the class logit when a window of about S/7 is occluded (captum)")
def occlusion(model: nn.Module, x: torch.Tensor, targets: list[int]) -> torch.Tensor:
    b, c, h, w = x.shape
    window, stride = occlusion_window(min(h, w))
    n_pos = ((h - window) // stride + 1) * ((w - window) // stride + 1)
    with _eval_with_input_grad(model, x) as xg:
        return Occlusion(model).attribute(
            xg, sliding_window_shapes=(c, window, window), strides=(c, stride, stride), baselines=0.0,
            target=targets, perturbations_per_eval=max(1, min(n_pos, 256 // b))).sum(dim=1)


def attribute(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, method: str | Method) -> torch.Tensor:
    """Maps ``(B, S, S)`` float32 for normalized inputs ``x`` ``(B, C, S, S)`` and class indices ``targets`` ``(B,)``
    with a registered image method. The model is put in eval mode for the call (its mode is restored)."""
    m = get_method("image", method) if isinstance(method, str) else method
    return m.compute(model, x, targets.long().tolist()).detach().float().cpu()


# ---- geometry: model input ↔ original pixels -------------------------------------------------------------------------
def crop_box(contract: InputContract) -> tuple[int, int, int]:
    """``(resized side R, crop top, crop left)``: decode resizes to ``R×R``, eval crops ``S×S`` from its center."""
    r, s = contract.resize_to or contract.image_size, contract.image_size
    off = int(round((r - s) / 2.0))  # torchvision center_crop's offset
    return r, off, off


def to_original(row: int, col: int, shape: tuple[int, int], contract: InputContract) -> tuple[int, int]:
    """A model-input pixel ``(row, col)`` → the nearest pixel of the original ``(H, W)`` image."""
    r, top, left = crop_box(contract)
    h0, w0 = shape
    y = (row + top + 0.5) * h0 / r - 0.5
    x = (col + left + 0.5) * w0 / r - 0.5
    return int(np.clip(np.floor(y + 0.5), 0, h0 - 1)), int(np.clip(np.floor(x + 0.5), 0, w0 - 1))


def map_on_original(amap: np.ndarray, shape: tuple[int, int], contract: InputContract) -> np.ndarray:
    """The ``(S, S)`` map resampled (bilinear) onto the original ``(H, W)`` pixels; NaN where the crop cut it off."""
    r, top, left = crop_box(contract)
    s = amap.shape[0]
    h0, w0 = shape
    ys = (np.arange(h0) + 0.5) * r / h0 - 0.5 - top  # each original pixel's position in model-input pixels
    xs = (np.arange(w0) + 0.5) * r / w0 - 0.5 - left
    gy = torch.from_numpy((ys + 0.5) / s * 2 - 1).float()
    gx = torch.from_numpy((xs + 0.5) / s * 2 - 1).float()
    grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1)[None]  # (1, H, W, 2) as (x, y)
    out = F.grid_sample(torch.from_numpy(amap).float()[None, None], grid, mode="bilinear", padding_mode="border",
                        align_corners=False)[0, 0].numpy()
    inside = (np.abs(gy.numpy()) <= 1)[:, None] & (np.abs(gx.numpy()) <= 1)[None, :]
    return np.where(inside, out, np.nan)


def read_original(path: Path, contract: InputContract) -> np.ndarray:
    """The file's pixels for display: ``(H, W)`` or ``(H, W, 3)`` uint8, decoded as in training but not resized."""
    if is_dicom(path):
        prep = contract.image_preprocessing
        return dicom_pixels(path, Window(prep.get("window_center"), prep.get("window_width")))
    return _pil_pixels(path, probe_channels(path))


# ---- outputs ---------------------------------------------------------------------------------------------------------
def output_stems(paths: Sequence[Path]) -> list[str]:
    """The inputs' stems; a repeated stem gets ``-2``, ``-3``… so no output overwrites another."""
    seen: Counter[str] = Counter()
    stems = []
    for p in paths:
        seen[p.stem] += 1
        stems.append(p.stem if seen[p.stem] == 1 else f"{p.stem}-{seen[p.stem]}")
    return stems


def _save_npy(path: Path, arr: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    atomic_write(path, lambda fh: fh.write(buf.getvalue()))


def _display_size(shape: tuple[int, int]) -> tuple[int, int]:
    """The overlay's panel size: small images scaled up to 256 px on the short side, large ones down to 1024 px."""
    h, w = shape
    scale = 256 / min(h, w) if min(h, w) < 256 else (1024 / max(h, w) if max(h, w) > 1024 else 1.0)
    return max(1, round(h * scale)), max(1, round(w * scale))


def save_overlay(path: Path, original: np.ndarray, amap: np.ndarray, contract: InputContract,
                 peak: tuple[int, int] | None, header: str) -> None:
    """Write :func:`overlay_png` to ``path`` (atomically)."""
    data = overlay_png(original, amap, contract, peak, header)
    atomic_write(path, lambda fh: fh.write(data))


def overlay_png(original: np.ndarray, amap: np.ndarray, contract: InputContract, peak: tuple[int, int] | None,
                header: str) -> bytes:
    """PNG bytes: the original | the map over it (transparent outside the model's crop, peak marked ``+``) | colour
    bar.

    Signed maps (occlusion) use a diverging scale centred on 0; the others run from 0 to their maximum.
    """
    h0, w0 = original.shape[:2]
    h, w = _display_size((h0, w0))
    rgb = np.repeat(original[..., None], 3, axis=-1) if original.ndim == 2 else original
    base = np.asarray(Image.fromarray(rgb).resize((w, h), Image.Resampling.NEAREST if h >= h0 else Image.Resampling.BILINEAR),
                      dtype=np.float32)
    heat = map_on_original(amap, (h, w), contract)  # the map on the display grid: smooth at any scale
    finite = np.isfinite(heat)
    values = heat[finite]
    signed = bool(values.size) and float(values.min()) < 0
    top = float(np.abs(values).max()) if values.size else 0.0
    top = top if top > 0 else 1.0
    cmap = colormaps["RdBu_r" if signed else "jet"]
    norm = (np.where(finite, heat, 0) + top) / (2 * top) if signed else np.where(finite, heat, 0) / top
    color = cmap(np.clip(norm, 0, 1))[..., :3] * 255
    alpha = np.where(finite, 0.45, 0.0)[..., None]
    blend = base * (1 - alpha) + color * alpha

    bar_w, gap, head = 14, 8, 22
    canvas = Image.new("RGB", (2 * w + 3 * gap + bar_w + 40, h + head + gap), "white")
    canvas.paste(Image.fromarray(base.astype(np.uint8)), (gap, head))
    canvas.paste(Image.fromarray(np.round(blend).astype(np.uint8)), (2 * gap + w, head))
    ramp = cmap(np.linspace(1, 0, h))[:, None, :3].repeat(bar_w, axis=1) * 255
    bar_x = 3 * gap + 2 * w
    canvas.paste(Image.fromarray(np.round(ramp).astype(np.uint8)), (bar_x, head))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=12)
    draw.text((gap, 4), header, fill="black", font=font)
    for text, y in ((f"{top:.2g}", head), (f"{-top:.2g}" if signed else "0", head + h - 12)):
        draw.text((bar_x + bar_w + 3, y), text, fill="black", font=font)
    if peak is not None:
        y = head + (peak[0] + 0.5) * h / h0
        x = 2 * gap + w + (peak[1] + 0.5) * w / w0
        arm = max(5, min(h, w) // 25)
        for fill, width in (("black", 4), ("white", 2)):
            draw.line([(x - arm, y), (x + arm, y)], fill=fill, width=width)
            draw.line([(x, y - arm), (x, y + arm)], fill=fill, width=width)
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    return buf.getvalue()


def class_index(contract: InputContract, target_class: str | None) -> int | None:
    """The class index of ``target_class`` (None: each image's predicted class)."""
    if target_class is None:
        return None
    if target_class not in contract.class_names:
        raise DataError(f"--class {target_class!r} is not a class of this model; "
                        f"valid classes: {', '.join(contract.class_names)}")
    return contract.class_names.index(target_class)


def image_maps(predictor, images: np.ndarray, method: Method, fixed: int | None = None,  # noqa: ANN001
               batch_size: int = 32) -> Iterator[tuple[int, np.ndarray, np.ndarray, int, int]]:
    """``(index, map (S, S), probabilities (C,), predicted, explained class)`` for decoded uint8 images
    ``(N, C, R, R)``, preprocessed by the run's codec exactly as for prediction; the explained class is ``fixed``
    or each image's predicted class (the contract's threshold and temperature)."""
    contract, model = predictor.contract, predictor.model
    for batch in predictor.codec.batches(Encoded(images), batch_size, predictor.device):
        x = batch["x"]
        with torch.no_grad():
            logits = model(x).float().cpu().numpy()
        probs = contract.probabilities(logits)
        pred = contract.explained_index(probs)
        targets = np.full(len(pred), fixed) if fixed is not None else pred
        maps = attribute(model, x, torch.as_tensor(targets), method).numpy()
        for j, i in enumerate(batch["index"].cpu().tolist()):
            yield i, maps[j], probs[j], int(pred[j]), int(targets[j])


def peak_of(amap: np.ndarray, shape: tuple[int, int], contract: InputContract) -> tuple[int, int] | None:
    """The map's maximum in the original image's pixels ``(row, col)``; None when nothing is positive."""
    if float(amap.max()) <= 0:
        return None
    r, c = np.unravel_index(int(np.argmax(amap)), amap.shape)
    return to_original(int(r), int(c), shape, contract)


# ---- the public entry point ------------------------------------------------------------------------------------------
@register_runner("image")
def explain_images(predictor, inputs: str | Path | Sequence[str | Path], method: str | Method,  # noqa: ANN001
                   out_dir: str | Path, target_class: str | None = None, batch_size: int = 32, chunk_size: int = 256
                   ) -> list[dict[str, Any]]:
    """Explain an image run's predictions: a map per image for ``target_class`` (default: the predicted class).

    Args:
        predictor: a loaded :class:`biolens.tasks.Predictor` of an image run.
        inputs: image files, folders (searched recursively) and glob patterns, as for ``predict``.
        method: ``gradcam``, ``saliency`` or ``occlusion``.
        out_dir: where the PNG overlays, ``.npy`` maps and ``METHOD.tsv`` go (created if needed).
        target_class: the class to explain, by name.

    Returns:
        One dict per image, in input order: ``input``, ``predicted``, ``target_class``, ``probability`` (of the
        target class, the contract's temperature applied), ``peak_row``/``peak_col`` (the map's maximum in original
        pixels; None when the map is zero everywhere), ``map_max``, ``overlay``, ``array`` (output paths).

    Raises:
        ConfigError: unknown method. ModelError: not an image run. DataError: unknown class name, missing or
        unreadable images (all checked before anything is written), an output that would overwrite an input.
    """
    contract = predictor.contract
    if contract.task != "image":
        raise ModelError(f"{predictor.run_dir} is a {contract.task} run; {getattr(method, 'name', method)} explains "
                         "image runs")
    method = get_method("image", method) if isinstance(method, str) else method
    method.validate(predictor)
    fixed = class_index(contract, target_class)
    paths = image_io.expand_inputs(inputs)
    out_dir = Path(out_dir)
    stems = output_stems(paths)
    outputs = [(out_dir / f"{s}.{method.name}.png", out_dir / f"{s}.{method.name}.npy") for s in stems]
    summary = out_dir / f"{method.name}.tsv"
    taken = {p.resolve() for p in paths}
    clash = next((o for pair in outputs for o in pair if o.resolve() in taken), None)
    if clash is None and summary.resolve() in taken:
        clash = summary
    if clash is not None:
        raise DataError(f"{clash}: the output would overwrite an input image; choose another --out folder")
    chunks = None
    if len(paths) <= chunk_size:
        chunks = [(paths, image_io.decode_for_model(paths, contract))]
    else:  # decode everything once first, so an unreadable file fails before any output is written
        for _ in image_io.chunks(paths, contract, chunk_size):
            pass
    out_dir.mkdir(parents=True, exist_ok=True)

    rows: list[dict[str, Any] | None] = [None] * len(paths)
    offset = 0
    for part, images in chunks or image_io.chunks(paths, contract, chunk_size):
        for i, amap, probs, pred, target in image_maps(predictor, images, method, fixed, batch_size):
            rows[offset + i] = _explain_one(part[i], amap, probs, pred, target, outputs[offset + i], contract,
                                            method.name)
        offset += len(part)
        log.info("%s: explained %d/%d images", method.name, offset, len(paths))
    frame = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    atomic_write(summary, lambda fh: fh.write(frame.to_csv(sep="\t", index=False, float_format="%.6g").encode()))
    return rows


def _explain_one(path: Path, amap: np.ndarray, probs: np.ndarray, pred: int, target: int,
                 outputs: tuple[Path, Path], contract: InputContract, method: str) -> dict[str, Any]:
    overlay, array = outputs
    amap = amap.astype(np.float32)
    original = read_original(path, contract)
    shape = original.shape[:2]
    top = float(amap.max())
    peak = peak_of(amap, shape, contract)
    if peak is None:
        warnings.warn(f"{path}: the {method} map for {contract.class_names[target]!r} has no positive value, so it "
                      "has no peak (nothing in the image raises that class's score)", BiolensWarning, stacklevel=3)
    names = contract.class_names
    _save_npy(array, amap)
    save_overlay(overlay, original, amap, contract, peak,
                 f"{path.name}: predicted {names[pred]}; {method} for {names[target]} (p={probs[target]:.3f})")
    return {"input": str(path), "predicted": names[pred], "target_class": names[target],
            "probability": round(float(probs[target]), 6),
            "peak_row": None if peak is None else peak[0], "peak_col": None if peak is None else peak[1],
            "map_max": top, "overlay": str(overlay), "array": str(array)}
