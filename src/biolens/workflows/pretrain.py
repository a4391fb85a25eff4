"""``biolens pretrain``: masked-token self-supervised pretraining on unlabelled sequences, written as a run bundle.

The run is an ordinary bundle (``config.yaml``, ``contract.json`` with alphabet and length, ``model.safetensors``,
``history``, ``train_summary.json``, ``manifest.json``) plus ``pretrain.json`` (objective, masking, data, and the
held-out masked-token accuracy next to the most-frequent-symbol rate). It has no classifier, so ``predict`` and
``serve`` refuse it; ``biolens train --weights RUN`` fine-tunes from it, with the freezing, staged unfreezing and
discriminative learning rates of image transfer learning, and refuses another alphabet or architecture.

Training is the ordinary ``Trainer`` (optimizer, schedule, checkpoints, early stopping on the held-out masked-token
loss): ``MaskedBatches`` turns each batch into masked inputs and targets, and ``MaskedTokenModel`` returns the
logits at the masked positions, so the loss is plain cross-entropy over masked tokens.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from biolens.bundle import load_weights, make_run_dir, write_manifest
from biolens.config import RunConfig
from biolens.contract import InputContract
from biolens.data.dataset import SequenceBatches
from biolens.data.masking import MaskedBatches
from biolens.data.unlabelled import Unlabelled, read_unlabelled
from biolens.devices import resolve_device, seed_everything
from biolens.errors import ConfigError, DataError, a_or_an
from biolens.io import atomic_write_text, write_json
from biolens.models import create_model
from biolens.models.finetune import PRETRAIN_FILE
from biolens.models.inference import min_input_length
from biolens.models.pretrain import MaskedTokenModel, can_pretrain, pretrainable_models
from biolens.models.registry import default_model, model_info
from biolens.training.build import build_trainer, preflight, write_summary
from biolens.training.distributed import Dist
from biolens.workflows.train import build_config

log = logging.getLogger(__name__)

OBJECTIVE = "masked_token"


@dataclass
class PretrainResult:
    """The pretraining run folder, its epoch history and ``pretrain.json`` (held-out masked-token metrics)."""

    run_dir: Path
    history: list[dict[str, Any]]
    metrics: dict[str, Any] = field(default_factory=dict)


def pretrain(
    config: RunConfig | dict | str | Path | None = None,
    *,
    data: Any = None,
    model: str | None = None,
    epochs: int | None = None,
    out: str | Path | None = None,
    mask_rate: float = 0.15,
    val_frac: float = 0.05,
    window: int | None = None,
    include_test: bool = False,
    reverse_complement: bool = False,
    progress: bool = False,
    overwrite: bool = False,
    **overrides: Any,
) -> PretrainResult:
    """Pretrain a sequence model by masked-token prediction on unlabelled sequences and write a run folder.

    From a notebook::

        pre = biolens.pretrain(data="proteome.fa", model="transformer", epochs=20, out="runs/pre")
        fine = biolens.train(data="labelled.csv", weights=pre.run_dir, head_epochs=2)

    Args:
        data: FASTA/CSV/TSV file(s) (.gz ok; labels, if any, are ignored), or ``builtin:NAME``.
        model: a model with per-token outputs (transformer, dilated_resnet, dilated_resnet_rc); default: the
            registry's default sequence model.
        mask_rate: fraction of tokens hidden (BERT: 0.15); 80% shown as N/X, 10% random, 10% unchanged.
        val_frac: fraction held out to measure the masked-token loss (early stopping, best checkpoint).
        window: cut every record into windows of this length first (genomes, chromosome-sized records).
        include_test: also use records whose split column says ``test`` (left out by default, so that a fine-tune
            on the same file is tested on sequences the encoder never saw).
        reverse_complement: random reverse-complement augmentation (strand-agnostic DNA/RNA only).
        overrides: config fields by name (``lr=3e-4``, ``batch_size=128``, ``params={...}``, ``max_len=...``).
    """
    if not 0 < mask_rate <= 0.5:
        raise ConfigError(f"mask_rate={mask_rate}: must be in (0, 0.5]; BERT uses 0.15")
    if not 0 < val_frac < 0.5:
        raise ConfigError(f"val_frac={val_frac}: must be in (0, 0.5)")
    if config is None and "label_smoothing" not in overrides and "train" not in overrides:
        overrides["label_smoothing"] = 0.0  # targets are exact symbols
    cfg = build_config(config, data, model, epochs, out, **overrides)
    name = cfg.model.name or default_model("sequence")
    if model_info(name).task != "sequence":
        raise ConfigError(f"model.name {name!r} is {a_or_an(model_info(name).task)} model; pretrain one of: "
                          f"{', '.join(pretrainable_models())}")
    unknown = [k for k in ("pretrained", "weights", "freeze_until", "teacher") if getattr(cfg.model, k, None)]
    if unknown or cfg.model.head_epochs:
        raise ConfigError(f"model.{(unknown or ['head_epochs'])[0]} is for `biolens train`; pretraining starts from "
                          "random weights")
    if cfg.out is None:
        cfg = cfg.model_copy(update={"out": tempfile.mkdtemp(prefix="biolens-pretrain-")})
    cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"name": name}),
                                 "train": cfg.train.model_copy(update={"sampler": "shuffle"})})
    seed_everything(cfg.train.seed, cfg.train.deterministic)
    device = resolve_device(cfg.train.device)

    seqs = read_unlabelled(cfg.data, window)
    train_rows, val_rows, left_out = _split_rows(seqs, val_frac, include_test, cfg.data_seed)
    k = len(seqs.alphabet.symbols)
    params = {p: v for p, v in cfg.model.params.items() if p not in ("vocab_size", "num_classes")}
    encoder = create_model(name, vocab_size=seqs.alphabet.vocab_size, num_classes=2, **params)
    if not can_pretrain(encoder):
        raise ConfigError(f"model {name!r} has no per-token output for masked-token pretraining; pretrain one of: "
                          f"{', '.join(pretrainable_models())}")
    net = MaskedTokenModel(encoder)
    cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"params": encoder.config})})
    symbols = np.arange(k)  # class counts for the loss: unweighted cross-entropy over the k symbols
    preflight(cfg, net, len(train_rows), symbols, k, Dist())
    if reverse_complement and not seqs.alphabet.is_nucleic:
        raise ConfigError("reverse_complement is for dna and rna; the data are protein")

    run_dir = make_run_dir(cfg.out, overwrite=overwrite)
    file_log = logging.FileHandler(run_dir / "log.txt")
    file_log.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("biolens").addHandler(file_log)
    try:
        return _pretrain_into(cfg, run_dir, seqs, net, train_rows, val_rows, left_out, device, mask_rate, window,
                              reverse_complement, progress)
    finally:
        logging.getLogger("biolens").removeHandler(file_log)
        file_log.close()


def _split_rows(seqs: Unlabelled, val_frac: float, include_test: bool, seed: int
                ) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Rows to pretrain on and to hold out: records with at least one canonical symbol, the test split left out
    unless ``include_test``; a seeded random ``val_frac`` is held out."""
    keep = _has_symbols(seqs)
    left_out = {"no_canonical_symbol": int((~keep).sum())}
    if seqs.splits is not None and not include_test:
        test = np.asarray(seqs.splits) == "test"
        left_out["test_split"] = int((test & keep).sum())
        keep &= ~test
    rows = np.flatnonzero(keep)
    if len(rows) < 2:
        raise DataError(f"{seqs.ids[0] if len(seqs) else 'the data'}: {len(rows)} usable sequence(s) for pretraining; "
                        "give at least 2 (test-split records are left out unless include_test)")
    order = np.random.default_rng(seed).permutation(rows)
    n_val = min(len(rows) - 1, max(1, int(round(val_frac * len(rows)))))
    return np.sort(order[n_val:]), np.sort(order[:n_val]), left_out


def _has_symbols(seqs: Unlabelled) -> np.ndarray:
    k = len(seqs.alphabet.symbols)
    out = np.empty(len(seqs), dtype=bool)
    part = seqs.part(np.arange(len(seqs)))
    start = 0
    for block in part.blocks():
        out[start:start + len(block)] = ((block >= 1) & (block <= k)).any(axis=1)
        start += len(block)
    return out


def _fingerprint(parts: list[Any]) -> str:
    h = hashlib.sha256()
    for part in parts:
        for block in part.blocks():
            h.update(block.tobytes())
        h.update(np.ascontiguousarray(part.lengths).tobytes())
    return h.hexdigest()


def _most_frequent_rate(part: Any, k: int) -> float:
    """How often the commonest canonical symbol occurs: the accuracy of always guessing it."""
    counts = np.zeros(k, dtype=np.int64)
    for block in part.blocks():
        counts += np.bincount(block.ravel(), minlength=k + 2)[1:k + 1]
    return float(counts.max() / max(counts.sum(), 1))


def _pretrain_into(cfg: RunConfig, run_dir: Path, seqs: Unlabelled, net: MaskedTokenModel, train_rows: np.ndarray,
                   val_rows: np.ndarray, left_out: dict[str, int], device: torch.device, mask_rate: float,
                   window: int | None, reverse_complement: bool, progress: bool) -> PretrainResult:
    encoder, k = net.encoder, net.symbols
    contract = InputContract(task="sequence", class_names=[], alphabet=seqs.alphabet.name, max_len=seqs.max_len)
    atomic_write_text(run_dir / "config.yaml", cfg.to_yaml())
    contract.save(run_dir / "contract.json")
    train_part, val_part = seqs.part(train_rows), seqs.part(val_rows)
    info: dict[str, Any] = {
        "objective": OBJECTIVE, "model": cfg.model.name, "alphabet": seqs.alphabet.name, "max_len": seqs.max_len,
        "token_stride": net.stride, "mask_rate": mask_rate, "mask_fractions": {"unknown": 0.8, "random": 0.1, "kept": 0.1},
        "n_train": int(len(train_rows)), "n_val": int(len(val_rows)), "left_out": left_out, "window": window,
        "reverse_complement": reverse_complement, "data": cfg.data.path, "store": seqs.stored,
    }
    write_json(run_dir / PRETRAIN_FILE, info)
    width = min_input_length(encoder)
    t = cfg.train
    net.to(device)
    raw_train = SequenceBatches(train_part, t.batch_size, shuffle=True, device=device, seed=t.seed,
                                reverse_complement=reverse_complement, min_width=width)
    raw_val = SequenceBatches(val_part, t.batch_size, device=device, min_width=width)
    train_b = MaskedBatches(raw_train, k, mask_rate, net.stride, seed=t.seed)
    val_b = MaskedBatches(raw_val, k, mask_rate, net.stride, seed=t.seed, fixed=True)
    log.info("pretraining %s (%s parameters) by masked-token prediction on %d sequences (%d held out), "
             "alphabet %s, max length %d, mask rate %.2f", cfg.model.name,
             f"{sum(p.numel() for p in encoder.parameters()):,}", len(train_rows), len(val_rows),
             seqs.alphabet.name, seqs.max_len, mask_rate)
    dist = Dist()
    trainer, checkpoint = build_trainer(cfg, net, train_b, np.arange(k), k, run_dir=run_dir, device=device,
                                        dist=dist, progress=progress)
    history = trainer.fit(train_b, val_b)
    write_summary(cfg, trainer, dist, run_dir, resumed=False)
    load_weights(net, run_dir / "model.safetensors")
    held_out = trainer.evaluate(val_b)
    info.update({
        "best_epoch": checkpoint.best_epoch if checkpoint is not None else None,
        "val_masked_loss": round(float(held_out["loss"]), 6),
        "val_masked_accuracy": round(float(held_out["acc"]), 6),
        "val_most_frequent_symbol_rate": round(_most_frequent_rate(val_part, k), 6),
        "epochs_run": trainer.epoch,
    })
    write_json(run_dir / PRETRAIN_FILE, info)
    write_manifest(run_dir, dataset_fingerprint=_fingerprint([train_part, val_part]))
    log.info("masked-token accuracy on held-out sequences %.4f (most frequent symbol: %.4f); run folder %s",
             info["val_masked_accuracy"], info["val_most_frequent_symbol_rate"], run_dir)
    return PretrainResult(run_dir, history, info)
