"""``biolens ensemble RUN… --out DIR``: one bundle averaging the probabilities of runs with the same input contract.

The bundle is an ordinary run folder (``config.yaml`` with ``model.name: ensemble``, the shared ``contract.json``,
every member's weights in one ``model.safetensors``, ``ensemble.json``, a manifest), so ``predict``, ``evaluate``,
``explain``, ``export`` (one ONNX graph) and ``serve`` take it like any run. Members are combined as
``Σ w_i softmax(z_i / T_i)`` with each member's own temperature; an ensemble given as a member contributes its
members. Runs whose contracts differ in any input field (classes, alphabet, max_len, image size, channels,
normalization, TTA…) are refused, naming the field.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.torch import load_file

from biolens.bundle import (check_run_dir, check_run_dir_writable, make_run_dir, read_yaml, save_weights, verify_bundle,
                            write_manifest)
from biolens.config import RunConfig, validate_config
from biolens.contract import InputContract
from biolens.errors import BiolensError, BundleError, ConfigError
from biolens.io import atomic_write_text, write_json
from biolens.metrics import summary_line
from biolens.models import create_model
from biolens.models.ensemble import output_kind
from biolens.tasks import Predictor, make_task
from biolens.workflows.train import split_metrics

log = logging.getLogger(__name__)

# contract fields that calibrate a model's outputs rather than describe its inputs: they may differ between members
# (and, for regression, each member's own train standardization, which the ensemble maps onto one scale)
CALIBRATION_FIELDS = ("threshold", "temperature", "label_thresholds", "at_least_one_label", "target_mean",
                      "target_std")
_TRAINING_ONLY = ("augment_train",)  # image_preprocessing keys that describe training, not what inputs look like


def _input_fields(contract: InputContract) -> dict[str, Any]:
    d = asdict(contract)
    for f in CALIBRATION_FIELDS:
        d.pop(f, None)
    d["image_preprocessing"] = {k: v for k, v in (d.get("image_preprocessing") or {}).items() if k not in _TRAINING_ONLY}
    return d


def contract_difference(a: InputContract, b: InputContract) -> tuple[str, Any, Any] | None:
    """The first input field in which two contracts differ, with both values (None when they agree)."""
    da, db = _input_fields(a), _input_fields(b)
    for key in da:
        if da[key] != db.get(key):
            if isinstance(da[key], dict) and isinstance(db.get(key), dict):
                sub = next(k for k in sorted(set(da[key]) | set(db[key])) if da[key].get(k) != db[key].get(k))
                return f"{key}.{sub}", da[key].get(sub), db[key].get(sub)
            return key, da[key], db.get(key)
    return None


class Member:
    """A run read for combining: its config, contract, weights and val metrics."""

    def __init__(self, run: str | Path):
        self.run = check_run_dir(run)
        verify_bundle(self.run)
        self.contract = InputContract.load(self.run / "contract.json")
        try:
            self.config: RunConfig = validate_config(read_yaml(self.run / "config.yaml"), str(self.run / "config.yaml"))
        except BiolensError as e:
            raise BundleError(str(e)) from None
        self.state = load_file(str(self.run / "model.safetensors"))
        metrics_path = self.run / "metrics.json"
        self.metrics = _read_json(metrics_path) if metrics_path.is_file() else {}

    def parts(self) -> list[tuple[dict[str, Any], float, dict[str, Any]]]:
        """``(member spec, weight, state dict)`` of the trained networks inside this run (itself, or an ensemble's
        members)."""
        m = self.config.model
        if m.name != "ensemble":
            return [({"name": m.name, "params": dict(m.params), "temperature": self.contract.temperature}, 1.0,
                     self.state)]
        specs, weights = m.params["members"], m.params.get("weights") or [1.0] * len(m.params["members"])
        out = []
        for i, (spec, w) in enumerate(zip(specs, weights)):
            prefix = f"members.{i}."
            out.append((dict(spec), float(w), {k[len(prefix):]: v for k, v in self.state.items() if k.startswith(prefix)}))
        return out


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}


def _auto_weight_metric(contract: InputContract) -> str:
    if contract.target_type == "regression":
        return "spearman"
    if contract.target_type == "multilabel" or contract.positive_index is not None:
        return "roc_auc"
    return "accuracy"


def member_weights(members: list[Member], metric: str | None) -> tuple[list[float], str | None]:
    """Equal weights, or each run's val value of ``metric`` (default: the task's headline metric)."""
    if metric is None:
        return [1.0] * len(members), None
    values = []
    for m in members:
        name = metric if metric != "auto" else _auto_weight_metric(m.contract)
        v = (m.metrics.get("val") or {}).get(name)
        if not isinstance(v, (int, float)) or not np.isfinite(v) or v <= 0:
            raise ConfigError(f"{m.run}/metrics.json has no positive val {name!r} to weight by; evaluate the run on "
                              f"val (biolens evaluate {m.run} --split val) or combine with equal weights")
        values.append(float(v))
    return values, name


def build_ensemble(runs: list[str | Path], out: str | Path, *, weight_by: str | None = None, overwrite: bool = False,
                   evaluate: bool = True, device: str = "auto") -> Path:
    """Write an ensemble bundle of ``runs`` into a new folder ``out`` and return its path.

    Args:
        weight_by: None for equal weights, ``"auto"`` for each run's val headline metric (ROC AUC for binary tasks,
            accuracy otherwise), or a metric name from ``metrics.json``'s val entry.
        evaluate: afterwards score the bundle on the val and test splits of the members' data (``metrics.json``;
            skipped with a warning when the data cannot be read).
    """
    members = _members(runs)
    check_run_dir_writable(out, overwrite)
    out = make_run_dir(out, overwrite=overwrite)
    write_ensemble(members, out, weight_by=weight_by)
    if evaluate:
        evaluate_ensemble(out, device)
    return out


def _members(runs: list[str | Path] | list[Member]) -> list[Member]:
    if len(runs) < 2:
        raise ConfigError(f"an ensemble needs at least 2 runs; got {len(runs)}")
    members = [r if isinstance(r, Member) else Member(r) for r in runs]
    first = members[0]
    for m in members[1:]:
        diff = contract_difference(first.contract, m.contract)
        if diff is not None:
            field, a, b = diff
            raise ConfigError(f"{m.run}: its contract differs from {first.run}'s in {field} ({b!r} vs {a!r}); an "
                              "ensemble combines runs with the same input contract (retrain on the same data settings)")
    return members


def write_ensemble(runs: list[str | Path] | list[Member], out: Path, *, weight_by: str | None = None,
                   extra: dict[str, Any] | None = None, fingerprint: str | None = None,
                   label_threshold: float | None = None) -> Path:
    """The bundle files (config, contract, weights, ``ensemble.json``, manifest) in the existing folder ``out``;
    ``fingerprint``: the dataset fingerprint of the data the bundle is evaluated on (default: the members' shared
    one); ``label_threshold``: multi-label, every label's threshold (default: the members' thresholds where they
    agree, else 0.5)."""
    members = _members(runs)
    first = members[0]
    weights, metric = member_weights(members, weight_by)
    specs, flat_weights, states = [], [], []
    for m, w in zip(members, weights):
        for spec, inner, state in m.parts():
            specs.append(_on_scale_of(spec, m.contract, first.contract))
            flat_weights.append(w * inner)
            states.append(state)
    output = output_kind(first.contract.target_type, first.contract.target_link)
    model = create_model("ensemble", members=specs, weights=flat_weights, output=output)
    for i, state in enumerate(states):
        model.members[i].load_state_dict(state, strict=True)

    thresholds = sorted({m.contract.threshold for m in members})
    threshold = thresholds[0] if len(thresholds) == 1 else 0.5
    if len(thresholds) > 1:
        log.warning("the members' thresholds differ (%s); the ensemble decides at 0.5: choose its own on val with "
                    "biolens evaluate DIR --target-sensitivity …", thresholds)
    label_thresholds = _label_thresholds(members, label_threshold)
    # the empty-set rule follows the data: kept only when every member's training label sets were never empty
    contract = replace(first.contract, temperature=1.0, threshold=threshold,
                       label_thresholds=list(label_thresholds) if label_thresholds else None,
                       at_least_one_label=all(m.contract.at_least_one_label for m in members))
    cfg = first.config.model_copy(update={"model": first.config.model.model_copy(update={
        "name": "ensemble", "params": model.config, "pretrained": None, "weights": None, "teacher": None,
        "freeze_until": None, "head_epochs": 0}), "out": str(out)})
    if cfg.data.split.assignment is not None:  # cv folds: the ensemble's own data are the whole data, not a fold
        cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={
            "split": cfg.data.split.model_copy(update={"assignment": None})})})
    atomic_write_text(out / "config.yaml", cfg.to_yaml())
    contract.save(out / "contract.json")
    save_weights(model, out / "model.safetensors")
    info = {"members": [{"run": str(m.run), "weight": round(w / sum(weights), 6),
                         "val": {k: v for k, v in (m.metrics.get("val") or {}).items()
                                 if isinstance(v, (int, float))}} for m, w in zip(members, weights)],
            "weighted_by": metric, "networks": len(specs), **(extra or {})}
    write_json(out / "ensemble.json", info)
    fingerprint = fingerprint or _shared_fingerprint(members)
    write_manifest(out, **({"dataset_fingerprint": fingerprint} if fingerprint else {}))
    log.info("ensemble of %d runs (%d networks) written to %s", len(members), len(specs), out)
    return out


def _label_thresholds(members: list[Member], given: float | None) -> tuple[float, ...] | None:
    """Multi-label: the ensemble's threshold per label (None: 0.5 each). ``given`` sets every label's; else the
    members' thresholds where they agree, and where they differ each label's median over the members (0.5 for a
    member without its own).

    Why the median: each member chose its thresholds on its own val split, and the members' val splits differ
    (the split is seeded by ``train.seed``), so no data are left that none of them trained on. On MFTP, every one of
    the 26 ensembles of 2–5 of the default runs of seeds 0–4 (shared thresholds 0.80, 0.55, 0.60, 0.80, 0.80)
    scored a higher test absolute true at the median than at 0.5: 0.631 → 0.643 on average over the pairs, 0.644 →
    0.654 for all five (BENCHMARKS.md, 2026-12-04, second session)."""
    if members[0].contract.target_type != "multilabel":
        return None
    n = len(members[0].contract.class_names)
    if given is not None:
        return None if given == 0.5 else (float(given),) * n
    per_member = np.array([m.contract.label_thresholds or [0.5] * n for m in members], dtype=np.float64)
    if (per_member == per_member[0]).all():
        return None if (per_member[0] == 0.5).all() else tuple(float(t) for t in per_member[0])
    median = tuple(round(float(t), 6) for t in np.median(per_member, axis=0))
    log.info("the members' label thresholds differ; the ensemble decides each label at its median over the "
             "members (%s); choose its own on val with biolens evaluate DIR --optimize f1",
             ", ".join(f"{name} {t:.3g}" for name, t in zip(members[0].contract.class_names, median)))
    return median


def _on_scale_of(spec: dict[str, Any], run: InputContract, target: InputContract) -> dict[str, Any]:
    """A regression member's spec with ``scale``/``shift`` that map its standardized outputs (in its run's
    standardization, after any scale/shift it already carries) onto ``target``'s; other specs unchanged."""
    if run.target_type != "regression" or (run.target_mean == target.target_mean and
                                           run.target_std == target.target_std and "scale" not in spec):
        return spec
    n = run.num_classes
    s = np.asarray(spec.get("scale") or [1.0] * n, dtype=np.float64)
    b = np.asarray(spec.get("shift") or [0.0] * n, dtype=np.float64)
    std_r = np.asarray(run.target_std or [1.0] * n, dtype=np.float64)
    std_t = np.asarray(target.target_std or [1.0] * n, dtype=np.float64)
    mean_r = np.asarray(run.target_mean or [0.0] * n, dtype=np.float64)
    mean_t = np.asarray(target.target_mean or [0.0] * n, dtype=np.float64)
    if run.target_link == "log":  # value = exp(z) · std: only the scale moves
        return {**spec, "scale": (s * std_r / std_t).tolist(), "shift": [0.0] * n}
    return {**spec, "scale": (s * std_r / std_t).tolist(), "shift": ((b * std_r + mean_r - mean_t) / std_t).tolist()}


def _shared_fingerprint(members: list[Member]) -> str | None:
    prints = set()
    for m in members:
        try:
            prints.add(_read_json(m.run / "manifest.json").get("dataset_fingerprint"))
        except OSError:
            prints.add(None)
    return prints.pop() if len(prints) == 1 else None


def evaluate_ensemble(run: Path, device: str = "auto") -> dict[str, Any] | None:
    """Metrics of the bundle on its data's val and test splits (``metrics.json`` as ``train`` writes it,
    ``predictions.csv``); None, with a warning, when the data cannot be read."""
    predictor = Predictor.load(run, device=device)
    try:
        task = make_task(predictor.config)
        task.prepare()
    except (BiolensError, OSError) as e:
        log.warning("the ensemble was not evaluated on its data (%s); evaluate it with biolens evaluate %s --data FILE",
                    str(e)[:200], run)
        return None
    metrics = split_metrics(predictor.model, task, predictor.contract, predictor.device, run)
    write_json(run / "metrics.json", metrics)
    write_manifest(run, dataset_fingerprint=task.fingerprint())
    kind = predictor.contract.target_type
    log.info("ensemble: val %s; test %s", summary_line(metrics["val"], kind), summary_line(metrics["test"], kind))
    return metrics
