"""Plain baselines (guide 7.8, "start with a simple baseline"), and the tables that put a run next to them.

``kmer_logistic_regression``: counts of every k-mer (k = 1..4 for DNA/RNA, 1..2 for protein) as frequencies per
sequence, standardized, into an L2 logistic regression (scikit-learn, multinomial); C is picked on the validation
split from a small grid, then the test split is scored once. It reads a split's rows in blocks, so memory-mapped
data stays on disk. Counting is vectorized: each window's k-mer becomes one integer code (``Σ (x - 1) · A^j``),
windows with an unknown symbol or padding are skipped, and ``np.bincount`` over ``row · A^k + code`` counts all of
them at once.
"""

from __future__ import annotations

import html
import logging
import time
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler

from biolens.data.dataset import SequenceData
from biolens.metrics import HEADLINE, classification_metrics, summary_line, target_metrics

log = logging.getLogger(__name__)

C_GRID = (0.01, 0.1, 1.0, 10.0)
SHOWN = ("accuracy", "balanced_accuracy", "mcc", "macro_f1", "roc_auc", "pearson", "spearman", "r2", "rmse",
         "subset_accuracy", "hamming_loss")


def default_k(n_symbols: int) -> int:
    """Largest k-mer: 4 for nucleotides (340 features), 2 for amino acids (420)."""
    return 4 if n_symbols <= 4 else 2


def kmer_counts(x: np.ndarray, n_symbols: int, k: int) -> np.ndarray:
    """``(N, L)`` index rows → ``(N, A^k)`` counts of each k-mer of canonical symbols (``A = n_symbols``)."""
    n, length = x.shape
    width = n_symbols ** k
    if length < k or n == 0:
        return np.zeros((n, width), dtype=np.float32)
    x = x.astype(np.int64)
    canonical = (x >= 1) & (x <= n_symbols)
    windows = length - k + 1
    code = np.zeros((n, windows), dtype=np.int64)
    valid = np.ones((n, windows), dtype=bool)
    for j in range(k):  # k ≤ 4: one vectorized pass per offset
        code = code * n_symbols + (x[:, j:j + windows] - 1).clip(0)
        valid &= canonical[:, j:j + windows]
    rows = np.broadcast_to(np.arange(n)[:, None], code.shape)
    flat = (rows * width + code)[valid]
    return np.bincount(flat, minlength=n * width).reshape(n, width).astype(np.float32)


def kmer_features(part: SequenceData, k_max: int | None = None) -> np.ndarray:
    """k-mer frequencies for k = 1..k_max, each k normalized by that sequence's number of k-windows."""
    a = len(part.alphabet.symbols)
    k_max = k_max or default_k(a)
    blocks = []
    for block in part.blocks():
        per_k = []
        for k in range(1, k_max + 1):
            c = kmer_counts(block, a, k)
            per_k.append(c / np.maximum(c.sum(axis=1, keepdims=True), 1.0))
        blocks.append(np.concatenate(per_k, axis=1))
    return np.concatenate(blocks) if blocks else np.zeros((0, sum(a ** k for k in range(1, k_max + 1))), np.float32)


def kmer_logistic_regression(splits: dict[str, SequenceData], class_names: list[str], positive_class: str | None,
                             k_max: int | None = None, seed: int = 0) -> dict[str, Any]:
    """Fit on train, pick C on val (log loss), score val and test; metrics at threshold 0.5."""
    start = time.perf_counter()
    feats = {s: kmer_features(splits[s], k_max) for s in ("train", "val", "test")}
    scaler = StandardScaler().fit(feats["train"])
    feats = {s: scaler.transform(f) for s, f in feats.items()}
    y = {s: np.asarray(splits[s].y) for s in feats}
    best: tuple[float, float, LogisticRegression] | None = None
    for c in C_GRID:
        clf = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(feats["train"], y["train"])
        p = np.clip(clf.predict_proba(feats["val"]), 1e-7, 1.0)
        cols = np.searchsorted(clf.classes_, y["val"])
        valid = np.isin(y["val"], clf.classes_)
        loss = float(-np.log(p[np.flatnonzero(valid), cols[valid]]).mean()) if valid.any() else float("inf")
        if best is None or loss < best[0]:
            best = (loss, c, clf)
    _, c, clf = best
    out: dict[str, Any] = {"name": "kmer_logreg", "description": f"k-mer (k = 1..{k_max or default_k(len(splits['train'].alphabet.symbols))}) "
                           "frequencies, standardized, L2 logistic regression (C picked on val)",
                           "features": int(feats["train"].shape[1]), "C": c,
                           "params": int(clf.coef_.size + clf.intercept_.size)}
    for s in ("val", "test"):
        probs = np.zeros((len(y[s]), len(class_names)))
        probs[:, clf.classes_] = clf.predict_proba(feats[s])
        out[s] = classification_metrics(y[s], probs, class_names, positive_class, 0.5)
    out["seconds"] = round(time.perf_counter() - start, 2)
    log.info("baseline kmer_logreg: test accuracy %.4f (%d features, C=%g)", out["test"]["accuracy"],
             out["features"], c)
    return out


ALPHA_GRID = (0.1, 1.0, 10.0, 100.0, 1000.0)


def kmer_target_baseline(splits: dict[str, SequenceData], target_type: str, names: list[str],
                         k_max: int | None = None, seed: int = 0) -> dict[str, Any]:
    """Regression: a ridge regression per target (alpha picked on val by MSE); multi-label: an L2 logistic
    regression per label (C picked on val by log loss); on the same standardized k-mer frequencies, each fitted on
    the rows where its target is observed. Metrics from the registry (``target_metrics``, thresholds 0.5)."""
    start = time.perf_counter()
    feats = {s: kmer_features(splits[s], k_max) for s in ("train", "val", "test")}
    scaler = StandardScaler().fit(feats["train"])
    feats = {s: scaler.transform(f) for s, f in feats.items()}
    y = {s: np.asarray(splits[s].y, dtype=np.float64).reshape(len(feats[s]), -1) for s in feats}
    out_val, out_test = np.full(y["val"].shape, np.nan), np.full(y["test"].shape, np.nan)
    picked, params = [], 0
    for j in range(len(names)):
        tr, va = ~np.isnan(y["train"][:, j]), ~np.isnan(y["val"][:, j])
        best: tuple[float, float, Any] | None = None
        for c in (ALPHA_GRID if target_type == "regression" else C_GRID):
            if target_type == "regression":
                model = Ridge(alpha=c).fit(feats["train"][tr], y["train"][tr, j])
                loss = float(np.mean((model.predict(feats["val"][va]) - y["val"][va, j]) ** 2)) if va.any() else 0.0
            else:
                model = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(feats["train"][tr],
                                                                                       y["train"][tr, j] > 0.5)
                p = np.clip(model.predict_proba(feats["val"][va])[:, 1], 1e-7, 1 - 1e-7)
                t = y["val"][va, j] > 0.5
                loss = float(-np.mean(np.where(t, np.log(p), np.log(1 - p)))) if va.any() else 0.0
            if best is None or loss < best[0]:
                best = (loss, c, model)
        _, c, model = best
        picked.append(c)
        params += int(np.size(model.coef_) + np.size(model.intercept_))
        for s, out in (("val", out_val), ("test", out_test)):
            out[:, j] = model.predict(feats[s]) if target_type == "regression" else model.predict_proba(feats[s])[:, 1]
    k = k_max or default_k(len(splits["train"].alphabet.symbols))
    name = "kmer_ridge" if target_type == "regression" else "kmer_logreg"
    what = ("ridge regression per target (alpha picked on val)" if target_type == "regression"
            else "L2 logistic regression per label (C picked on val)")
    res: dict[str, Any] = {"name": name, "description": f"k-mer (k = 1..{k}) frequencies, standardized, {what}",
                           "features": int(feats["train"].shape[1]), "params": params,
                           ("alpha" if target_type == "regression" else "C"): picked}
    res["val"] = target_metrics(target_type, y["val"], out_val, names)
    res["test"] = target_metrics(target_type, y["test"], out_test, names)
    res["seconds"] = round(time.perf_counter() - start, 2)
    log.info("baseline %s: test %s", name, summary_line(res["test"], target_type))
    return res


# ---- the report's tables ---------------------------------------------------------------------------------------


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def table(title: str, headers: list[str], rows: list[list[Any]], notes: list[str]) -> tuple[str, str]:
    """A Markdown and an HTML section (heading, notes, table)."""
    md = [f"## {title}", ""] + [f"- {n}" for n in notes] + ([""] if notes else [])
    md += ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    md += ["| " + " | ".join(_fmt(v) for v in r) + " |" for r in rows]
    e = html.escape
    body = "".join("<tr>" + "".join(f"<td>{e(_fmt(v))}</td>" for v in r) + "</tr>" for r in rows)
    page = (f"<h2>{e(title)}</h2>" + ("<ul>" + "".join(f"<li>{e(n)}</li>" for n in notes) + "</ul>" if notes else "")
            + "<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in headers) + f"</tr>{body}</table>\n")
    return "\n".join(md) + "\n", page


def insert_before_data(md: str, page: str, section_md: str, section_html: str) -> tuple[str, str]:
    """Put a section before the report's Data section (both pages)."""
    md = md.replace("\n## Data\n", "\n" + section_md + "\n## Data\n", 1)
    page = page.replace("<h2>Data</h2>", section_html + "<h2>Data</h2>", 1)
    return md, page


def baseline_section(model: dict[str, Any], baselines: list[dict[str, Any]]) -> tuple[str, str]:
    """This run's model next to the baselines, on the same test split."""
    shown = [m for m in SHOWN if m in model.get("test", {}) or any(m in b.get("test", {}) for b in baselines)]
    headers = ["model", "parameters"] + [f"test {m}" for m in shown]
    rows = [[f"{model['name']} (this run)", model.get("params")] + [model["test"].get(m) for m in shown]]
    rows += [[b["name"], b.get("params")] + [b["test"].get(m) for m in shown] for b in baselines]
    notes = [f"{b['name']}: {b['description']}" for b in baselines]
    key = HEADLINE.get(model.get("test", {}).get("target_type", "classification"), "accuracy")
    scored = [b for b in baselines if isinstance(b["test"].get(key), (int, float))]
    if scored and isinstance(model["test"].get(key), (int, float)):
        best = max(scored, key=lambda b: b["test"][key])
        gain = 100 * (model["test"][key] - best["test"][key])
        notes.append(f"{model['name']} is {gain:+.1f} {key} points from the best baseline ({best['name']}) on the "
                     f"same {model['test'].get('n')} test sequences.")
    return table("Baselines", headers, rows, notes)


def distillation_section(d: dict[str, Any]) -> tuple[str, str]:
    """Student vs teacher: parameters, test accuracy, CPU latency and speed-up."""
    headers = ["", "model", "parameters", "test accuracy"] + [
        f"{r['backend']} batch {r['batch_size']} p50 ms" for r in d.get("latency_cpu", [])]
    lat = d.get("latency_cpu", [])
    rows = [["student (this run)", d["student_model"], d["student_params"], d["student_test_accuracy"]]
            + [r["student_p50_ms"] for r in lat],
            ["teacher", d["teacher_model"], d["teacher_params"], d["teacher_test_accuracy"]]
            + [r["teacher_p50_ms"] for r in lat]]
    kept = d.get("accuracy_kept")
    notes = [f"teacher: {d['teacher']}; temperature {d['temperature']}, alpha {d['alpha']}",
             f"the student has {100 * d['params_ratio']:.1f}% of the teacher's parameters and keeps "
             + (f"{100 * kept:.1f}%" if kept is not None else "–") + " of its test accuracy",
             "throughput speed-up (student / teacher): "
             + ", ".join(f"{r['backend']} batch {r['batch_size']}: {r['speedup']}x" for r in lat)]
    return table("Distillation", headers, rows, notes)
