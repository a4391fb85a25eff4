"""``biolens advise``: the guide's architecture decision tree (4.1) made executable, mapped to registered models.

From data type, training-set size, sequence length or image size and class balance it picks a model, the
regularization strength and the imbalance handling, explains why, and writes the exact ``biolens train`` command.
Every recommended model and option is checked here (the model is built, the train options validated), so the
command runs as printed.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from biolens.config import RunConfig, TrainConfig
from biolens.data.builtin import is_builtin
from biolens.errors import ConfigError
from biolens.doctor.model import receptive_field
from biolens.models import create_model, list_models
from biolens.models.label_sets import LABEL_SET_MIX, MAX_LABEL_SETS
from biolens.tasks import task_class

SMALL, LARGE = 1_000, 100_000  # guide 4.1: little < 1k, medium 1k-100k, large > 100k
SHORT, MEDIUM, LONG = 100, 1_000, 10_000  # sequence lengths of the decision tree
# short DNA/RNA (siRNAs, guides, short probes): a 5-wide stem instead of dilated_resnet's 15, which would span most
# of each input, and more dropout (0.3 in the blocks, 0.5 before the head: a few thousand 21-mers over-fit within
# 4-6 epochs at 0.1 / 0.3). Measured on Huesken siRNA (21 nt): the stem raised val Pearson 0.632 ± 0.017 → 0.667 ±
# 0.013 over 3 seeds; the dropout raised the 5-fold out-of-fold Pearson of the training pool 0.611 / 0.617 → 0.630 /
# 0.633 (2 seeds). On peptides the wide stem is better (avp_amppred val accuracy −3.8 points with 5), so proteins
# keep the defaults (BENCHMARKS.md)
SHORT_NUCLEIC = 32
SHORT_NUCLEIC_PARAMS = {"stem_kernel": 5, "dropout": 0.3, "head_dropout": 0.5}
SHORT_STEM = SHORT_NUCLEIC_PARAMS["stem_kernel"]
# short DNA/RNA regression: a linear term of the bases at each of the first 32 positions and the 2- and 3-mer
# frequencies, started at its ridge solution (training/linear_init). Huesken siRNAs, 5 seeds: test Pearson r
# 0.637 ± 0.004 → 0.654 ± 0.004; 5-fold OOF r 0.630 / 0.633 → 0.646 / 0.652 (BENCHMARKS.md, 2026-12-02). The
# squared G+C fraction of each 9-base window adds the inverted U of activity over local GC content that a linear
# model of bases cannot draw: 5-fold OOF r 0.646 / 0.652 → 0.654 / 0.656 (windows of 7 and 11: 0.647 / 0.654,
# 0.648 / 0.655), test r 0.654 ± 0.004 → 0.665 ± 0.003 (BENCHMARKS.md, 2026-12-02, fourth session)
SHORT_REGRESSION_PARAMS = {"linear_positions": SHORT_NUCLEIC, "linear_kmers": [2, 3], "linear_gc_window": 9}
# multi-label sequence targets with this many labels: a wider net with more dropout. Measured on MFTP (21 labels,
# 7,872 peptides), val macro AUC 0.851 → 0.878 with 64 channels (3 seeds); the dropout then raised val absolute true
# (subset accuracy) 0.520 / 0.558 → 0.534 / 0.571 and val macro AUC by 0.002-0.003 on both seeds (BENCHMARKS.md)
MANY_LABELS = 10
MANY_LABEL_PARAMS = {"channels": 64, "dropout": 0.3, "head_dropout": 0.5}
MANY_LABEL_CHANNELS = MANY_LABEL_PARAMS["channels"]
# nearest-neighbour label transfer (models/neighbors.py), fitted on val: measured on default runs, seeds 0 / 1
# (BENCHMARKS.md, 2026-12-03, fourth session), test accuracy / ROC AUC of the network → with transfer: amp_antibp2
# 0.900 / 0.969 → 0.940 / 0.990 and 0.930 / 0.979 → 0.960 / 0.993; avp_amppred 0.838 / 0.903 → 0.851 / 0.927 on
# seed 1 (not kept on seed 0); RegulonDB promoters 0.865 → 0.881, 0.871 → 0.886; MFTP test absolute true
# 0.570 → 0.633, 0.560 → 0.613; splice and hem_hemopi: not kept (val gain under two standard errors).
# DNA/RNA read 6-mers, proteins 3-mers.
NEIGHBOR_K = {"protein": 3, "nucleic": 6}
NEIGHBOR_COUNT = 10
LABEL_SET_REPEATS = 10  # the label-set head needs sets that repeat: at least this many train samples per set


def label_set_params(label_sets: list[list[int]] | None, n_train: int, given: Mapping[str, Any]
                     ) -> tuple[dict[str, Any], str]:
    """The label-set head for many labels (``{"label_sets": …}`` and the reason), when the train split's label
    sets repeat: 2 … ``MAX_LABEL_SETS`` distinct sets, each seen ``LABEL_SET_REPEATS`` times or more on average;
    nothing when the user gave ``label_sets`` (``[]`` turns it off)."""
    if "label_sets" in given or not label_sets:
        return {}, ""
    k = len(label_sets)
    if not 2 <= k <= MAX_LABEL_SETS or n_train < LABEL_SET_REPEATS * k:
        return {}, ""
    mix = float(given.get("label_set_mix", LABEL_SET_MIX))
    return {"label_sets": [list(s) for s in label_sets]}, (
        f"a label-set head over the {k} label sets of the {n_train:,} training samples (each seen "
        f"{n_train / k:.0f} times on average), weight {mix:g} against the per-label sigmoids: it learns which "
        "labels occur together (model.params.label_sets=[] turns it off)")


def _unset_params(preset: Mapping[str, Any], given: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The params of ``preset`` that ``given`` (the user's own) leaves unset, and how a reason names them
    (``"stem_kernel 5, dropout 0.3"``)."""
    added = {k: v for k, v in preset.items() if k not in given}
    return added, ", ".join(f"{k} {_fmt(v)}" for k, v in added.items())


def short_nucleic_params(alphabet: str | None, length: float | None, given: Mapping[str, Any],
                         target_type: str = "classification") -> tuple[dict[str, Any], str | None]:
    """The ``dilated_resnet`` params that DNA/RNA of this (median) length gets, less those in ``given`` (the user's
    own), and why; ``({}, None)`` when it keeps the defaults. Regression targets also get the linear term
    (``SHORT_REGRESSION_PARAMS``)."""
    if alphabet not in ("dna", "rna") or length is None or length > SHORT_NUCLEIC:
        return {}, None
    preset = {**SHORT_NUCLEIC_PARAMS, **(SHORT_REGRESSION_PARAMS if target_type == "regression" else {})}
    added, what = _unset_params(preset, given)
    if not added:
        return {}, None
    why = (f"{what}: median {alphabet.upper()} length {length:g} ≤ {SHORT_NUCLEIC} (the default 15-wide stem "
           "would span most of each sequence, and short sequences over-fit within a few epochs at the default "
           "dropout)")
    if any(k in added for k in SHORT_REGRESSION_PARAMS):
        why += ("; a linear term of the bases by position, the 2-/3-mer frequencies and the squared GC fraction "
                "of 9-base windows, started at its ridge solution, carries the position-specific effects the "
                "regularised network under-fits")
    return added, why


@dataclass
class Advice:
    kind: str
    measured: dict[str, Any]
    model: str
    params: dict[str, Any] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)  # train flags other than --data/--model/--out/--set model.params
    train_set: dict[str, Any] = field(default_factory=dict)  # --set train.X=V
    why: list[str] = field(default_factory=list)
    alternatives: list[str] = field(default_factory=list)
    command: list[str] = field(default_factory=list)

    @property
    def command_line(self) -> str:
        return shlex.join(self.command)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "command_line": self.command_line}


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_fmt(x) for x in v) + "]"
    return str(v)


def advise(kind: str, n: int, *, length: int | None = None, image_size: int | None = None, classes: int = 2,
           imbalance: float = 1.0, data: list[str] | str | None = None, data_flags: list[str] | None = None,
           out: str = "runs/advised", alphabet: str = "dna") -> Advice:
    """Recommend a model, regularization and imbalance handling, with the ``biolens train`` command.

    Args:
        kind: ``sequence`` or ``image``.
        n: training examples.
        length: median sequence length (sequences).
        image_size: native image side in pixels (images).
        classes: number of classes; imbalance: largest / smallest train class.
        data: the ``--data`` value(s) for the command (default a placeholder ``DATA``).
        data_flags: extra data flags to repeat in the command (e.g. ``["--seq-col", "seq"]``).
    """
    if kind not in ("sequence", "image"):
        raise ConfigError(f"--kind {kind!r}: expected sequence or image")
    if n < 1 or classes < 2 or imbalance < 1:
        raise ConfigError(f"need --n ≥ 1, --classes ≥ 2 and --imbalance ≥ 1 (largest/smallest class); got n={n}, "
                          f"classes={classes}, imbalance={imbalance}")
    measured = {"kind": kind, "n": n, "classes": classes, "imbalance": imbalance}
    if kind == "sequence":
        if not length or length < 1:
            raise ConfigError("sequence advice needs the length: --length L (median sequence length) or --data FILE")
        measured["length"] = length
        a = _sequence(n, length, measured, alphabet)
    else:
        if not image_size or image_size < 1:
            raise ConfigError("image advice needs the native image size: --image-size PX or --data FOLDER")
        measured["image_size"] = image_size
        a = _image(n, image_size, measured)
    _regularize(a, n)
    _imbalance(a, imbalance)
    _validate(a, classes, alphabet)
    datas = [data] if isinstance(data, str) else list(data or ["DATA"])
    cmd = ["biolens", "train"] + [x for d in datas for x in ("--data", d)] + list(data_flags or [])
    cmd += ["--model", a.model, *a.flags]
    cmd += [x for k, v in a.train_set.items() for x in ("--set", f"train.{k}={_fmt(v)}")]
    cmd += [x for k, v in a.params.items() for x in ("--set", f"model.params.{k}={_fmt(v)}")]
    a.command = cmd + ["--out", out]
    return a


def _sequence(n: int, length: int, measured: dict[str, Any], alphabet: str = "dna") -> Advice:
    known = list_models("sequence")
    if length < SHORT:
        a = Advice("sequence", measured, "dilated_resnet")
        a.why.append(f"median length {length} < {SHORT}: the guide's short-sequence branch → a 1D CNN. dilated_resnet "
                     "is biolens's 1D CNN default (best of the registered models on bundled splice, length 60)")
        a.alternatives.append("motif_cnn: the guide's plain multi-kernel motif CNN (4.4)")
    elif length <= MEDIUM:
        if n < SMALL:
            a = Advice("sequence", measured, "dilated_resnet")
            a.why.append(f"median length {length} is the guide's medium branch (CNN + RNN), but with {n} sequences "
                         "cnn_bilstm_attention (~4.5M parameters) would overfit: a small dilated CNN instead")
            a.alternatives.append("cnn_bilstm_attention once you have more than 1,000 sequences")
        else:
            a = Advice("sequence", measured, "cnn_bilstm_attention")
            a.why.append(f"median length {length} in {SHORT}-{MEDIUM}: the guide's CNN + RNN/LSTM branch → "
                         "cnn_bilstm_attention (motif convolutions, a BiLSTM over the whole sequence, attention weights "
                         "you can inspect)")
            a.alternatives.append("dilated_resnet: several times faster on CPU, no recurrence")
    else:
        a = Advice("sequence", measured, "dilated_resnet",
                   params={"blocks": 7, "dilations": [1, 2, 4, 8, 16, 32, 64], "downsample": length > 2 * MEDIUM})
        a.why.append(f"median length {length} > {MEDIUM}: the guide's long branch → transformer or dilated CNN; "
                     "a dilated CNN with dilations up to 64 trains several times faster per sequence on CPU "
                     "(BENCHMARKS.md, length 1,000)")
        if "transformer" in known:
            a.alternatives.append("transformer over k-mer patches: --model transformer --set model.params.patch=8 "
                                  "(attention over L/8 tokens, relative positions: any length; pretrain it on "
                                  "unlabelled sequences with biolens pretrain)")
        if length > LONG:
            a.why.append(f"above {LONG}: the guide points to specialized architectures; consider cropping windows "
                         "around the region of interest (--max-len) first")
    if a.model == "dilated_resnet":
        short, reason = short_nucleic_params(alphabet, length, a.params)
        if reason:
            a.params.update(short)
            a.why.append(reason)
        rf = _rf(a, min(length, 4096))
        a.why.append(f"its convolutions see {rf} bases at once (receptive field measured on the layers); global "
                     "pooling combines them over the whole sequence")
    return a


def _rf(a: Advice, length: int) -> int:
    model = create_model(a.model, vocab_size=6, num_classes=2, **a.params).eval()
    return receptive_field(model, torch.randint(1, 5, (2, max(length, 16))))[0]


def _image(n: int, side: int, measured: dict[str, Any]) -> Advice:
    small_px = side < 64
    if n < SMALL:
        a = Advice("image", measured, "resnet18", flags=["--pretrained", "imagenet", "--freeze-until", "all",
                                                        "--image-size", str(64 if small_px else 224)])
        a.why.append(f"{n} images < {SMALL}: the guide's small-data branch → transfer learning; with under 1,000 "
                     "images freeze the backbone and train the classifier only (guide 4.5)")
        a.alternatives.append("offline: --weights PATH (a state dict or a biolens run) instead of --pretrained imagenet")
        if small_px:
            a.why.append(f"native {side} px is far below ImageNet's 224: upsampled to 64 px to keep training cheap")
    elif n < LARGE:
        stem = "small" if small_px else "imagenet"
        a = Advice("image", measured, "resnet", params={"stem": stem},
                   flags=["--image-size", str(min(side, 224))])
        a.why.append(f"{n:,} images: the guide's medium branch → a custom CNN trained from scratch (resnet, "
                     f"{'small stem keeps detail in ' + str(side) + ' px images' if small_px else 'ImageNet-style stem'})")
        a.alternatives.append("fine-tune resnet18 --pretrained imagenet --freeze-until layer3 (guide 4.5: 1k-10k "
                              "images, freeze the early layers)")
    else:
        a = Advice("image", measured, "resnet50", flags=["--pretrained", "imagenet", "--image-size", "224"])
        a.why.append(f"{n:,} images > {LARGE:,}: the guide's large branch → fine-tune the entire network (or train "
                     "from scratch: resnet)")
        a.alternatives.append("resnet from scratch (--model resnet)")
    return a


def _regularize(a: Advice, n: int) -> None:
    if n < SMALL:
        a.train_set["weight_decay"] = 0.05
        a.params["dropout"] = max(a.params.get("dropout", 0.0), 0.5)  # at least: short DNA/RNA asked for 0.3
        if a.kind == "sequence":
            a.train_set["early_stopping_patience"] = 5
        a.why.append(f"regularization: strong ({n} examples < {SMALL}): weight decay 0.05, dropout 0.5, early stopping")
    elif n >= LARGE:
        a.train_set["weight_decay"] = 0.005
        a.why.append(f"regularization: light ({n:,} examples): weight decay 0.005, the model's default dropout")
    else:
        a.why.append("regularization: the defaults (weight decay 0.01, label smoothing 0.1, early stopping "
                     "patience 5) suit a medium data set")


def _imbalance(a: Advice, ratio: float) -> None:
    if ratio > 10:
        a.flags += ["--loss", "focal", "--class-weights", "effective"]
        a.why.append(f"imbalance {ratio:.1f}: severe → focal loss with effective-number class weights (guide 3.2); "
                     "--sampler weighted is the alternative")
    elif ratio > 3:
        a.flags += ["--class-weights", "inverse"]
        a.why.append(f"imbalance {ratio:.1f} > 3 → weighted loss (guide 3.2); judge by balanced accuracy and AUC")
    else:
        a.why.append(f"imbalance {ratio:.1f} ≤ 3: no reweighting needed")


def _validate(a: Advice, classes: int, alphabet: str) -> None:
    """Build the model and validate the train options, so the printed command is valid."""
    shape = (2, 3 if "--pretrained" in a.flags else 1, 64, 64) if a.kind == "image" else (2, 64)
    task_class(a.kind).example_model(a.model, shape, classes, a.params, alphabet)
    pairs = {a.flags[i].lstrip("-").replace("-", "_"): a.flags[i + 1] for i in range(0, len(a.flags) - 1)
             if a.flags[i].startswith("--") and a.flags[i] in ("--loss", "--class-weights", "--sampler")}
    TrainConfig(**a.train_set, **pairs)


# ---- train.preset=auto: the decision above as the default of `biolens train` ---------------------------------------
PRESET_BUILTIN_IMAGE_SIZE = 32  # bundled 28 px MedMNIST sets: a 32 px canvas halves evenly through four stages
SMALL_RESNET = {"widths": [16, 32, 64, 128], "blocks": [1, 1, 1, 1]}
CPU_IMAGE_EPOCHS = 15
GPU_IMAGE_EPOCHS = 30


def _unset(section: Any, name: str) -> bool:
    return name not in section.model_fields_set


def preset_before_data(cfg: RunConfig, kind: str) -> tuple[RunConfig, list[str]]:
    """``train.preset=auto`` choices needed before the data are read (the image size of bundled image sets)."""
    why: list[str] = []
    if cfg.train.preset != "auto" or kind != "image":
        return cfg, why
    icfg = cfg.data.image
    if is_builtin(cfg.data.path) and _unset(icfg, "image_size") and icfg.image_size is None:
        icfg = icfg.model_copy(update={"image_size": PRESET_BUILTIN_IMAGE_SIZE})
        cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"image": icfg})})
        why.append(f"image_size {PRESET_BUILTIN_IMAGE_SIZE}: bundled 28 px images on a canvas that halves evenly")
    return cfg, why


def preset_after_data(cfg: RunConfig, kind: str, n_train: int, class_counts: np.ndarray, device_type: str,
                      target_type: str = "classification", *, alphabet: str | None = None,
                      median_length: float | None = None, labels: int | None = None,
                      label_sets: list[list[int]] | None = None) -> tuple[RunConfig, list[str]]:
    """``train.preset=auto``: model size, epochs, schedule, batch size and class weights from the data size, input
    size, class balance and device, for every field the config leaves unset (what is set is never changed).

    Images trained from scratch with the default resnet get a small residual net (widths 16…128, one block per
    stage) on CPU or under 20,000 images, a cosine schedule over a fixed number of epochs (15 on CPU, 30 on GPU;
    no early stopping, which a cosine schedule does not need), and inverse class weights when the classes are 2×
    or more out of balance; sequences get inverse class weights above 3× imbalance, batches of 32 below 1,000
    sequences, DNA/RNA with a median train length of at most 32 ``SHORT_NUCLEIC_PARAMS`` (a 5-wide dilated_resnet
    stem, dropout 0.3 / 0.5; regression also ``SHORT_REGRESSION_PARAMS``, the ridge-started linear term), and
    multi-label targets with ``MANY_LABELS`` or more labels (``labels``)
    ``MANY_LABEL_PARAMS`` (a 64-channel dilated_resnet, dropout 0.3 / 0.5) and, when the train split's label sets
    (``label_sets``) repeat, a label-set head over them (:func:`label_set_params`); multi-label targets train
    without label smoothing. Sequence classes and label sets with the default net ask for nearest-neighbour label
    transfer (``model.params.neighbors``, k from ``NEIGHBOR_K``), which training fits on val after the last epoch. Returns the config with the choices written in and one reason per choice."""
    why: list[str] = []
    if cfg.train.preset != "auto":
        return cfg, why
    t, m = cfg.train, cfg.model
    train_up: dict[str, Any] = {}
    model_up: dict[str, Any] = {}
    counts = np.asarray(class_counts)
    imbalance = float(counts.max() / max(counts.min(), 1)) if target_type == "classification" and counts.size else 1.0
    if kind == "image":
        scratch = not (m.pretrained or m.weights)
        default_model = m.name in (None, "resnet") and _unset(m, "params") and not m.params
        if scratch and default_model and (device_type != "cuda" or n_train < 20_000):
            model_up["params"] = dict(SMALL_RESNET)
            why.append(f"model resnet widths {SMALL_RESNET['widths']}, one block per stage: {n_train:,} training images"
                       f"{' on CPU' if device_type != 'cuda' else ''} (the ResNet-18 layout is 40× the compute)")
        if scratch:
            epochs = CPU_IMAGE_EPOCHS if device_type != "cuda" else GPU_IMAGE_EPOCHS
            if _unset(t, "epochs"):
                train_up["epochs"] = epochs
            if _unset(t, "schedule"):
                train_up["schedule"] = "cosine"
                if _unset(t, "early_stopping_patience"):
                    train_up["early_stopping_patience"] = None
                why.append(f"{train_up.get('epochs', t.epochs)} epochs with a cosine schedule, no early stopping "
                           "(the schedule anneals to the end; the best val epoch is kept)")
        if imbalance >= 2 and _unset(t, "class_weights") and _unset(t, "sampler") and _unset(t, "loss"):
            train_up["class_weights"] = "inverse"
            why.append(f"inverse class weights: train classes {imbalance:.1f}× out of balance")
    else:
        if imbalance > 3 and _unset(t, "class_weights") and _unset(t, "sampler") and _unset(t, "loss"):
            train_up["class_weights"] = "inverse"
            why.append(f"inverse class weights: train classes {imbalance:.1f}× out of balance")
        if n_train < SMALL and _unset(t, "batch_size"):
            train_up["batch_size"] = 32
            why.append(f"batch size 32: {n_train} training sequences (more optimizer steps per epoch)")
        default_net = m.name in (None, "dilated_resnet") and not m.weights
        short, reason = short_nucleic_params(alphabet, median_length, m.params, target_type)
        if reason and default_net:
            model_up["params"] = {**m.params, **short}
            why.append(reason)
        if target_type == "multilabel" and (labels or 0) >= MANY_LABELS and default_net:
            params = model_up.get("params", m.params)
            wide, what = _unset_params(MANY_LABEL_PARAMS, params)
            if wide:
                model_up["params"] = {**params, **wide}
                why.append(f"{what}: {labels} labels share one learned representation (wider), which over-fits "
                           "within a few epochs at the default dropout")
            sets, reason = label_set_params(label_sets, n_train, model_up.get("params", m.params))
            if sets:
                model_up["params"] = {**model_up.get("params", m.params), **sets}
                why.append(reason)
        if target_type in ("classification", "multilabel") and default_net and "neighbors" not in m.params:
            k = NEIGHBOR_K["protein" if alphabet == "protein" else "nucleic"]
            model_up["params"] = {**model_up.get("params", m.params), "neighbors": {"k": k, "count": NEIGHBOR_COUNT}}
            why.append(f"nearest-neighbour label transfer ({k}-mer Jaccard to every training sequence, up to "
                       f"{NEIGHBOR_COUNT} neighbours), its weight fitted on val after training and left off where it "
                       "does not lower the val loss (model.params.neighbors={} turns it off)")
    if target_type == "multilabel" and _unset(t, "label_smoothing") and t.label_smoothing:
        train_up["label_smoothing"] = 0.0
        why.append(f"no label smoothing (was {t.label_smoothing:g}): it moves every label's 0/1 target toward 0.5, "
                   "which blurs the ranking of rare labels")
    if train_up:
        cfg = cfg.model_copy(update={"train": t.model_copy(update=train_up)})
    if model_up:
        cfg = cfg.model_copy(update={"model": m.model_copy(update=model_up)})
    return cfg, why
