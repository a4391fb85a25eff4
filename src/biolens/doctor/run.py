"""``biolens doctor run RUN``: diagnose a finished run from its history, predictions and metrics (guide 5.1, 7.3).

Overfitting (a growing val − train gap), underfitting, an LR too high (spikes, divergence) or too low (flat loss),
always predicting one class, a plateau that early stopping should have cut, and val metrics far above test.
Each finding carries the guide's remedies as biolens flags. ``report_sections`` adds them to ``biolens report``.
"""

from __future__ import annotations

import html
import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from scipy.stats import norm

from biolens.bundle import REQUIRED_FILES, check_files
from biolens.doctor.targets import prediction_checks, shift_check
from biolens.errors import BiolensError, BundleError
from biolens.findings import Finding, Report
from biolens.metrics import monitor_direction

log = logging.getLogger(__name__)

SPIKE = 1.5  # a train loss 50% above the best so far
FLAT = 0.02  # less than 2% drop of the train loss over the run
GAP = 0.15  # the guide's overfitting gap (val − train loss)
SHIFT, SHIFT_P = 0.05, 0.01  # val accuracy above test by > 5 points, one-sided p < 0.01
MIN_PLATEAU = 5


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BundleError(f"{path}: not valid JSON ({e}); rerun `biolens train`/`biolens evaluate` to rewrite it") \
            from None


def read_history(run_dir: Path) -> list[dict[str, Any]]:
    """Rows of ``history.json`` (or ``history.csv``); BundleError when the run has neither."""
    if (run_dir / "history.json").is_file():
        rows = _load_json(run_dir / "history.json")
    elif (run_dir / "history.csv").is_file():
        rows = pd.read_csv(run_dir / "history.csv").to_dict("records")
    elif (run_dir / "ensemble.json").is_file():
        info = _load_json(run_dir / "ensemble.json")
        listed = info.get("members", []) if isinstance(info, dict) else []
        members = [m["run"] for m in listed if isinstance(m, dict) and m.get("run")]
        raise BundleError(f"{run_dir} is an ensemble bundle of {len(members)} runs, with no training history of its "
                          f"own; check a member instead, e.g. biolens doctor run {members[0] if members else 'MEMBER'}")
    else:
        raise BundleError(f"{run_dir}: no history.json or history.csv; give the --out folder of a `biolens train` run")
    if not isinstance(rows, list) or not rows or not all(
            isinstance(r, dict) and "train_loss" in r and "val_loss" in r for r in rows):
        raise BundleError(f"{run_dir}/history: needs rows with train_loss and val_loss; the file is empty or not a "
                          "biolens history")
    return rows


def _config(run_dir: Path) -> dict[str, Any]:
    p = run_dir / "config.yaml"
    try:
        return (yaml.safe_load(p.read_text()) or {}) if p.is_file() else {}
    except yaml.YAMLError:
        return {}


def _series(rows: list[dict[str, Any]], key: str) -> np.ndarray | None:
    if not all(key in r and r[key] is not None for r in rows):
        return None
    return np.array([float(r[key]) for r in rows])


def doctor_run(run: str | Path) -> Report:
    """Every run check; needs ``history.json``/``.csv``; uses ``predictions.csv``, ``metrics.json``, ``config.yaml``
    and ``data_report.json`` when present."""
    run_dir = Path(run)
    if not run_dir.is_dir():
        raise BundleError(f"run folder not found: {run_dir}; give the --out folder of a `biolens train` run")
    rows = read_history(run_dir)
    cfg = _config(run_dir)
    train_cfg = cfg.get("train", {})
    lr = train_cfg.get("lr", rows[0].get("lr"))
    report = Report("run", str(run_dir))
    _bundle(run_dir, report)
    tl, vl = _series(rows, "train_loss"), _series(rows, "val_loss")
    epochs = [int(r.get("epoch", i + 1)) for i, r in enumerate(rows)]
    if not (np.isfinite(tl).all() and np.isfinite(vl).all()):
        bad = next(e for e, a, b in zip(epochs, tl, vl) if not (math.isfinite(a) and math.isfinite(b)))
        report.add(Finding("learning rate (divergence)", "fail", f"the loss became NaN/Inf at epoch {bad}",
                           _lr_high_fix(lr)))
        return report
    _lr_checks(epochs, tl, lr, report)
    contract_path = run_dir / "contract.json"  # the resolved target type (data.target may say auto)
    resolved = _load_json(contract_path).get("target_type") if contract_path.is_file() else None
    target_type = resolved or (cfg.get("data") or {}).get("target") or "classification"
    _fit_checks(run_dir, rows, epochs, tl, vl, lr, report, target_type)
    _plateau(rows, epochs, train_cfg, report)
    _predictions(run_dir, report, target_type)
    _shift(run_dir, report, target_type)
    return report


def _bundle(run_dir: Path, report: Report) -> None:
    """The run folder is a complete, unchanged bundle (every file the manifest lists, with its SHA-256)."""
    missing = [f for f in REQUIRED_FILES if not (run_dir / f).is_file()]
    if missing:
        report.add(Finding("bundle", "fail", f"{', '.join(missing)} missing: the run cannot be loaded",
                           "re-copy the whole run folder, or retrain"))
        return
    try:
        status = check_files(run_dir)
    except BundleError as e:
        report.add(Finding("bundle", "fail", str(e), "re-copy the whole run folder, or retrain"))
        return
    bad = {k: v for k, v in status.items() if v != "ok"}
    if bad:
        report.add(Finding("bundle", "fail", "; ".join(f"{k} {v}" for k, v in list(bad.items())[:5])
                           + (f" (+{len(bad) - 5} more)" if len(bad) > 5 else ""),
                           "re-copy the whole run folder, or retrain"))
    else:
        report.add(Finding("bundle", "pass", f"{len(status)} files match manifest.json"))


def _lr_high_fix(lr: Any) -> str:
    lower = f" (e.g. --lr {float(lr) / 10:.2g})" if lr else ""
    return (f"LR too high: try it 10× smaller{lower} or find it with `biolens lr-find`; keep gradient clipping "
            "(--set train.grad_clip=1.0); warm up (--schedule warmup_cosine)")


def _lr_checks(epochs: list[int], tl: np.ndarray, lr: Any, report: Report) -> None:
    spikes = [epochs[i] for i in range(1, len(tl))
              if tl[i] > SPIKE * tl[:i].min() and tl[i] - tl[:i].min() > 0.1]
    if len(tl) >= 3 and tl[-1] > tl[0] * 1.05:
        report.add(Finding("learning rate (divergence)", "fail", f"train loss rose from {tl[0]:.3f} (epoch {epochs[0]}) "
                           f"to {tl[-1]:.3f} (epoch {epochs[-1]}): training diverged", _lr_high_fix(lr),
                           {"spikes": spikes}))
    elif spikes:
        report.add(Finding("learning rate (divergence)", "warn", f"train loss jumped above {SPIKE}× its best at "
                           f"epoch(s) {', '.join(map(str, spikes))}", _lr_high_fix(lr), {"spikes": spikes}))
    else:
        report.add(Finding("learning rate (divergence)", "pass", "no loss spikes; train loss "
                           f"{tl[0]:.3f} → {tl[-1]:.3f}"))
    if len(tl) >= 3 and (tl[0] - tl.min()) / max(abs(tl[0]), 1e-12) < FLAT:
        higher = f" (e.g. --lr {float(lr) * 10:.2g})" if lr else ""
        report.add(Finding("learning rate (flat loss)", "warn", f"train loss barely moved over {len(tl)} epochs "
                           f"({tl[0]:.4f} → best {tl.min():.4f})",
                           f"LR too small: try it 10× larger{higher} or run `biolens lr-find`; check input "
                           "normalization (`biolens doctor data`), the labels and that the loss fits the task"))


def _chance(run_dir: Path) -> float | None:
    p = run_dir / "data_report.json"
    if not p.is_file():
        return None
    counts = _load_json(p).get("class_counts", {}).get("train", {})
    total = sum(counts.values())
    return max(counts.values()) / total if total else None


def _fit_checks(run_dir: Path, rows: list[dict[str, Any]], epochs: list[int], tl: np.ndarray, vl: np.ndarray,
                lr: Any, report: Report, target_type: str = "classification") -> None:
    gap = vl - tl
    # multi-label runs log subset accuracy, which has no majority-class rate to compare with
    ta = _series(rows, "train_acc") if target_type in ("classification", "auto") else None
    chance = _chance(run_dir)
    if chance is None and ta is not None:
        chance = 0.5
    growing = len(gap) >= 3 and gap[-1] - gap.min() > 0.1
    rising = len(vl) >= 3 and vl[-1] > 1.1 * vl.min() and tl[-1] < tl[int(vl.argmin())]
    if gap[-1] >= GAP and (growing or rising):
        report.add(Finding("overfitting", "warn", f"val − train loss grew from {gap.min():.3f} to {gap[-1]:.3f}; "
                           f"val loss best {vl.min():.3f} at epoch {epochs[int(vl.argmin())]}, now {vl[-1]:.3f}",
                           "more regularization (--set train.weight_decay=0.05, more dropout via model.params), more "
                           "augmentation, a simpler model, early stopping (--set train.early_stopping_patience=5); "
                           "the best checkpoint (model.safetensors) is kept", {"gap": gap.round(4).tolist()}))
    else:
        verdict = "slight overfitting" if gap[-1] >= 0.05 and growing else "no overfitting"
        report.add(Finding("overfitting", "pass", f"{verdict}: val − train loss {gap[-1]:.3f} at the last epoch"))
    best_train = float(ta[-3:].max()) if ta is not None else None
    if chance is not None and best_train is not None and best_train < chance + 0.5 * (1 - chance):
        report.add(Finding("underfitting", "warn", f"train accuracy {best_train:.3f} is close to the majority-class "
                           f"rate {chance:.3f}: the model does not even fit the training data",
                           "add capacity (--set model.params.channels=… / blocks=…), train longer (--epochs), check "
                           "the LR (`biolens lr-find`), normalization (`biolens doctor data`) and the labels"))
    else:
        note = ""
        if len(vl) >= 3 and int(vl.argmin()) == len(vl) - 1 and vl[-3] - vl[-1] > 0.02 * vl[-3]:
            note = "; val loss still falling at the last epoch: more --epochs may help"
        what = f"train accuracy {best_train:.3f}" if best_train is not None else f"train loss {tl[-1]:.3f}"
        report.add(Finding("underfitting", "pass", what + (f" (majority class {chance:.3f})" if chance else "") + note))


def _plateau(rows: list[dict[str, Any]], epochs: list[int], train_cfg: dict[str, Any], report: Report) -> None:
    monitor = train_cfg.get("monitor", "val_loss")
    patience = train_cfg.get("early_stopping_patience", None) if train_cfg else None
    if any("best" in r for r in rows):
        flags = [str(r.get("best")).lower() in ("true", "1", "1.0") for r in rows]
        best_i = max((i for i, f in enumerate(flags) if f), default=0)
    else:
        series = _series(rows, monitor)
        mode = train_cfg.get("monitor_mode", "auto") if train_cfg else "auto"
        if series is None:  # the monitored value was not logged: judge by val_loss (lower is better)
            monitor, series, mode = "val_loss", _series(rows, "val_loss"), "auto"
        mode = monitor_direction(monitor, mode if mode in ("auto", "min", "max") else "auto")
        best_i = int(series.argmin() if mode == "min" else series.argmax())
    after = len(rows) - 1 - best_i
    if after >= MIN_PLATEAU and (not patience or after > patience):
        wasted = after / len(rows)
        report.add(Finding("plateau", "warn", f"{monitor} did not improve for the last {after} epochs (best at epoch "
                           f"{epochs[best_i]} of {epochs[-1]}): {wasted:.0%} of the training time bought nothing",
                           f"early stopping: --set train.early_stopping_patience={MIN_PLATEAU} (and a plateau "
                           "schedule: --schedule plateau lowers the LR first)", {"best_epoch": epochs[best_i]}))
    else:
        report.add(Finding("plateau", "pass", f"best {monitor} at epoch {epochs[best_i]} of {epochs[-1]}"
                           + (f"; early stopping (patience {patience}) ended the run" if patience and after >= patience
                              else "")))


def _predictions(run_dir: Path, report: Report, target_type: str = "classification") -> None:
    p = run_dir / "predictions.csv"
    if not p.is_file():
        return
    df = pd.read_csv(p, dtype={"label": str, "prediction": str})
    if target_type in ("regression", "multilabel"):
        contract = _load_json(run_dir / "contract.json") if (run_dir / "contract.json").is_file() else {}
        names = list(contract.get("class_names") or [])
        if names and not df.empty:
            prediction_checks(df, names, target_type, report)
        return
    if "label" not in df or df.empty:
        return
    pred, true = df["prediction"].astype(str), df["label"].astype(str)
    share = pred.value_counts(normalize=True)
    top, top_share = str(share.index[0]), float(share.iloc[0])
    true_share = float((true == top).mean())
    fix = ("class imbalance: weighted loss (--class-weights inverse) or --sampler weighted; an LR too small "
           "(`biolens lr-find`); bad initialization; check the labels (guide 7.3)")
    if true.nunique() > 1 and pred.nunique() == 1:
        report.add(Finding("predicts one class", "fail", f"every test prediction is {top!r} ({len(df)} rows; "
                           f"{true_share:.0%} of labels are {top!r})", fix))
        return
    missed = [c for c in sorted(true.unique()) if not ((pred == c) & (true == c)).any()]
    if top_share >= 0.95 and true_share <= 0.7:
        report.add(Finding("predicts one class", "warn", f"{top_share:.0%} of test predictions are {top!r} but only "
                           f"{true_share:.0%} of labels", fix))
    elif missed:
        report.add(Finding("predicts one class", "warn", f"no test example of {', '.join(map(repr, missed))} is "
                           "predicted correctly", fix))
    else:
        report.add(Finding("predicts one class", "pass", "test predictions: " + ", ".join(
            f"{c} {v:.0%}" for c, v in share.items())))


def _head(m: dict[str, Any]) -> dict[str, Any]:
    return m.get("at_threshold") or m.get("at_0.5") or m.get("metrics") or m


def _shift(run_dir: Path, report: Report, target_type: str = "classification") -> None:
    p = run_dir / "metrics.json"
    if not p.is_file():
        return
    metrics = _load_json(p)
    raw_val, raw_test = metrics.get("val", {}), metrics.get("test", {})
    val = {"n": raw_val.get("n"), **_head(raw_val)}  # after `biolens evaluate`, n stays at the top level
    test = {"n": raw_test.get("n"), **_head(raw_test)}
    if shift_check(val, test, target_type, report):
        return
    key = "balanced_accuracy" if "balanced_accuracy" in val and "balanced_accuracy" in test else "accuracy"
    if target_type == "multilabel":
        key = "subset_accuracy"
    if val.get(key) is None or test.get(key) is None or not val.get("n") or not test.get("n"):
        return
    a, b, na, nb = float(val[key]), float(test[key]), int(val["n"]), int(test["n"])
    pooled = (a * na + b * nb) / (na + nb)
    se = math.sqrt(max(pooled * (1 - pooled), 1e-12) * (1 / na + 1 / nb))
    pval = float(norm.sf((a - b) / se))
    detail = f"val {key} {a:.3f} (n {na}) vs test {b:.3f} (n {nb}); one-sided p = {pval:.3g}"
    if a - b > SHIFT and pval < SHIFT_P:
        report.add(Finding("val/test shift", "warn", detail + ": val is clearly easier than test",
                           "val and test differ in distribution (source, batch, time) or val leaked into choices: "
                           "split from one pool (biolens stratifies when no split is given), check leakage with "
                           "`biolens doctor data`, and trust the test figure", {"p": pval}))
    else:
        report.add(Finding("val/test shift", "pass", detail, data={"p": pval}))


def report_sections(run_dir: str | Path, md: str, page: str) -> tuple[str, str]:
    """``biolens report``: insert a "Doctor" section (this run's findings) before the Data section of both pages."""
    try:
        findings = doctor_run(run_dir).findings
    except BiolensError as e:
        log.info("doctor section left out of the report: %s", e)
        return md, page
    lines = ["## Doctor", "", "| check | status | finding | what to do |", "|---|---|---|---|"]
    lines += [f"| {f.name} | {f.status} | {f.detail.replace('|', '/')} | {f.fix.replace('|', '/')} |" for f in findings]
    e = html.escape
    rows = "".join(f"<tr><td>{e(f.name)}</td><td>{e(f.status)}</td><td>{e(f.detail)}</td><td>{e(f.fix)}</td></tr>"
                   for f in findings)
    block = ("<h2>Doctor</h2><table><tr><th>check</th><th>status</th><th>finding</th><th>what to do</th></tr>"
             f"{rows}</table>\n")
    md = md.replace("\n## Data\n", "\n" + "\n".join(lines) + "\n\n## Data\n", 1)
    page = page.replace("<h2>Data</h2>", block + "<h2>Data</h2>", 1)
    return md, page
