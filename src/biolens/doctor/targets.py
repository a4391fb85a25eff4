"""Doctor checks that only make sense for regression and multi-label targets.

``doctor data``: the target distribution per split, outliers (beyond 4 robust SDs of the train median), constant or
near-constant targets, skew that suggests a log transform or a Poisson loss, missing values, and for multi-label
data rare labels, labels missing from a split and label co-occurrence.

``doctor run``: predictions collapsed to a constant (the model learned the mean), labels never or always assigned,
and a val/test shift of the ranking (Fisher's z-test of the two Spearman correlations).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm, skew

from biolens.findings import Finding, Report
from biolens.tasks.outputs import read_target_predictions

OUTLIER_MADS = 4.0  # robust z-score (median, 1.4826 × MAD) beyond which a value is an outlier
NEAR_CONSTANT = 0.01  # share of train rows holding the most common value above 1 − this: near-constant
SKEW = 2.0
RARE_LABEL = 10
COLLAPSED = 0.1  # predicted SD below this share of the observed SD: the model predicts (about) the mean
SHIFT_RHO, SHIFT_P = 0.1, 0.01


def data_checks(task: Any, report: Report) -> None:
    """Target checks of ``doctor data`` for a prepared regression or multi-label task."""
    names = list(task.class_names)
    values = {s: np.asarray(task.labels(s), dtype=np.float64).reshape(task.size(s), -1) for s in ("train", "val", "test")}
    if task.target_type == "regression":
        _regression(names, values, report)
    else:
        _multilabel(names, values, report)


def _regression(names: list[str], values: dict[str, np.ndarray], report: Report) -> None:
    rows = []
    for j, name in enumerate(names):
        train = values["train"][:, j]
        seen = train[~np.isnan(train)]
        med = float(np.median(seen))
        mad = 1.4826 * float(np.median(np.abs(seen - med))) or float(seen.std()) or 1.0
        row = {"target": name}
        for s, v in values.items():
            col = v[:, j]
            ok = col[~np.isnan(col)]
            row[s] = f"{ok.mean():.4g} ± {ok.std():.3g} (n {ok.size})" if ok.size else "none"
        rows.append(row)
        top_share = float(pd.Series(seen).value_counts(normalize=True).iloc[0])
        if top_share > 1 - NEAR_CONSTANT or np.std(seen) < 1e-8 * max(abs(med), 1.0):
            report.add(Finding(f"target {name}: spread", "fail", f"{top_share:.1%} of train values are the same "
                               "number: the target is (near-)constant and there is little to learn",
                               "check the column (data.target_cols); drop the target or collect more varied data"))
        else:
            report.add(Finding(f"target {name}: spread", "pass", f"train median {med:.4g}, robust SD {mad:.3g}, "
                               f"range {seen.min():.4g} … {seen.max():.4g}"))
        z = {s: np.abs((v[:, j] - med) / mad) for s, v in values.items()}
        out = {s: int(np.nansum(zz > OUTLIER_MADS)) for s, zz in z.items()}
        if sum(out.values()):
            worst = max(np.nanmax(zz) if np.isfinite(zz).any() else 0 for zz in z.values())
            report.add(Finding(f"target {name}: outliers", "warn", f"{sum(out.values())} value(s) beyond "
                               f"{OUTLIER_MADS:g} robust SDs of the train median (train {out['train']}, val "
                               f"{out['val']}, test {out['test']}; the worst at {worst:.1f} SDs)",
                               "check them for unit or entry errors; a Huber loss (--loss huber) weighs them less",
                               {"outliers": out}))
        else:
            report.add(Finding(f"target {name}: outliers", "pass", f"none beyond {OUTLIER_MADS:g} robust SDs"))
        g = float(skew(seen)) if seen.size > 2 else 0.0
        if abs(g) > SKEW:
            counts = bool(np.all(seen >= 0) and np.allclose(seen, np.round(seen)))
            report.add(Finding(f"target {name}: skew", "warn", f"train skewness {g:.2f}",
                               "counts: a Poisson loss (--loss poisson)" if counts else
                               "log-transform the column before training, or a Huber loss (--loss huber)"))
        missing = {s: int(np.isnan(v[:, j]).sum()) for s, v in values.items()}
        if sum(missing.values()):
            report.add(Finding(f"target {name}: missing", "pass", f"{sum(missing.values())} missing value(s) (train "
                               f"{missing['train']}, val {missing['val']}, test {missing['test']}): masked in the "
                               "loss, left out of the metrics", data={"missing": missing}))
    report.tables["targets"] = rows


def _multilabel(names: list[str], values: dict[str, np.ndarray], report: Report) -> None:
    pos = {s: np.nansum(v > 0.5, axis=0).astype(int) for s, v in values.items()}
    rows = [{"label": n, **{s: int(pos[s][j]) for s in values}} for j, n in enumerate(names)]
    report.tables["labels"] = rows
    rare = [n for j, n in enumerate(names) if pos["train"][j] < RARE_LABEL]
    if rare:
        report.add(Finding("rare labels", "warn", f"{len(rare)} label(s) have fewer than {RARE_LABEL} train positives "
                           f"({', '.join(rare[:6])})", "weigh their positives (--class-weights inverse), collect more "
                           "examples, or merge rare labels; their metrics will be uncertain"))
    else:
        report.add(Finding("rare labels", "pass", f"every label has ≥ {RARE_LABEL} train positives (fewest: "
                           f"{names[int(pos['train'].argmin())]} {int(pos['train'].min())})"))
    absent = {s: [n for j, n in enumerate(names) if pos[s][j] == 0] for s in ("val", "test")}
    if any(absent.values()):
        report.add(Finding("labels in every split", "warn", "; ".join(f"{s}: no positives of {', '.join(v[:5])}"
                                                                     for s, v in absent.items() if v),
                           "their per-label AUC is undefined there; give more data or a split stratified by label"))
    else:
        report.add(Finding("labels in every split", "pass", "every label has positives in val and test"))
    train = np.nan_to_num(values["train"]) > 0.5
    co = train.T.astype(np.int64) @ train.astype(np.int64)
    card = float(train.sum(axis=1).mean())
    multi = float((train.sum(axis=1) > 1).mean())
    always = [n for j, n in enumerate(names) if co[j, j] and any(co[j, k] == co[j, j] for k in range(len(names))
                                                                  if k != j)]
    pairs = sorted(((int(co[a, b]), names[a], names[b]) for a in range(len(names)) for b in range(a + 1, len(names))
                    if co[a, b]), reverse=True)[:5]
    detail = (f"{card:.2f} labels per train sample, {multi:.0%} with several; most frequent pairs: "
              + (", ".join(f"{a}+{b} {n}" for n, a, b in pairs) if pairs else "none"))
    if always:
        report.add(Finding("label co-occurrence", "warn", detail + f"; {', '.join(always[:5])} never occur(s) "
                           "without another label", "a label that always comes with another may be redundant (or a "
                           "sub-type of it); check the annotation", {"pairs": pairs}))
    else:
        report.add(Finding("label co-occurrence", "pass", detail, {"pairs": pairs}))
    unknown = int(sum(np.isnan(v).sum() for v in values.values()))
    if unknown:
        report.add(Finding("unknown labels", "pass", f"{unknown} unknown (sample, label) entries: masked in the loss"))


def prediction_checks(frame: pd.DataFrame, names: list[str], target_type: str, report: Report) -> None:
    """``doctor run``: collapsed regression predictions, or labels never / always assigned."""
    y, out = read_target_predictions(frame, names, target_type)
    if target_type == "regression":
        for j, name in enumerate(names):
            p = out[:, j][np.isfinite(out[:, j])]
            obs = y[:, j][~np.isnan(y[:, j])] if y is not None else None
            if obs is None or not obs.size or not p.size:
                continue
            ratio = float(p.std() / obs.std()) if obs.std() > 0 else float("nan")
            if ratio < COLLAPSED:
                report.add(Finding(f"predictions of {name}", "fail", f"predicted SD is {ratio:.1%} of the observed SD: "
                                   f"the model predicts about the mean ({p.mean():.4g}) for everything",
                                   "an LR too small or too large (`biolens lr-find`), too few epochs, or a target the "
                                   "input does not determine; check the target column and `biolens doctor data`"))
            else:
                report.add(Finding(f"predictions of {name}", "pass", f"predicted SD {p.std():.4g} vs observed "
                                   f"{obs.std():.4g} ({ratio:.0%})"))
        return
    decided = frame["prediction"].fillna("").astype(str).str.split("|")
    counts = {n: int(sum(n in d for d in decided)) for n in names}
    never = [n for n, c in counts.items() if c == 0]
    always = [n for n, c in counts.items() if c == len(frame)]
    if len(never) == len(names):
        report.add(Finding("assigned labels", "fail", "no test sample gets any label: every probability is below its "
                           "threshold", "choose thresholds on val (biolens evaluate RUN --optimize f1), weigh the "
                           "positives (--class-weights inverse), or train longer"))
    elif never or always:
        report.add(Finding("assigned labels", "warn", (f"never assigned: {', '.join(never[:6])}" if never else "")
                           + ("; " if never and always else "") + (f"always assigned: {', '.join(always[:6])}"
                                                                   if always else ""),
                           "per-label thresholds chosen on val (biolens evaluate RUN --optimize f1); for rare labels "
                           "--class-weights inverse"))
    else:
        report.add(Finding("assigned labels", "pass", "every label is assigned to some test samples and not to all"))


def shift_check(val: dict[str, Any], test: dict[str, Any], target_type: str, report: Report) -> bool:
    """Val vs test ranking (regression: Spearman, Fisher's z) — True when it applied; multi-label runs use the
    proportion test of ``doctor/run.py`` on subset accuracy."""
    if target_type != "regression":
        return False
    a, b, na, nb = val.get("spearman"), test.get("spearman"), val.get("n"), test.get("n")
    if a is None or b is None or not na or not nb or na < 4 or nb < 4:
        return True
    za, zb = math.atanh(min(max(a, -0.9999), 0.9999)), math.atanh(min(max(b, -0.9999), 0.9999))
    se = math.sqrt(1 / (na - 3) + 1 / (nb - 3))
    p = float(norm.sf((za - zb) / se))
    detail = f"val spearman {a:.3f} (n {na}) vs test {b:.3f} (n {nb}); one-sided p = {p:.3g} (Fisher's z)"
    if a - b > SHIFT_RHO and p < SHIFT_P:
        report.add(Finding("val/test shift", "warn", detail + ": val is clearly easier than test",
                           "val and test differ (source, assay batch, target range) or val leaked into choices: split "
                           "from one pool, check leakage with `biolens doctor data`, and trust the test figure",
                           {"p": p}))
    else:
        report.add(Finding("val/test shift", "pass", detail, data={"p": p}))
    return True
