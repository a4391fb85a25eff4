"""``biolens report RUN``: one self-contained HTML file (figures embedded) and its Markdown twin."""

from __future__ import annotations

import base64
import html
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from biolens.deploy.bundle import check_run_dir, refresh_manifest, verify_bundle

log = logging.getLogger(__name__)

HEADLINE = ("accuracy", "balanced_accuracy", "mcc", "sensitivity", "specificity", "precision", "npv", "f1",
            "roc_auc", "pr_auc", "roc_auc_ovr", "macro_f1")


def _headline(test: dict) -> dict:
    return test.get("at_threshold") or test.get("at_0.5") or test.get("metrics") or test


def _metric_rows(m: dict) -> list[tuple[str, str, str]]:
    ci = m.get("ci", {})
    rows = []
    for key in HEADLINE:
        if key in m:
            v = m[key]
            lo_hi = ci.get(key) or [None, None]
            rows.append((key, "undefined" if v is None else f"{v:.4f}",
                         "" if lo_hi[0] is None else f"{lo_hi[0]:.4f} – {lo_hi[1]:.4f}"))
    return rows


def _confident_mistakes(run_dir: Path, k: int = 10) -> list[dict[str, str]]:
    """The k most confident wrong test predictions, with the sequence where the task keeps one."""
    import pandas as pd

    path = run_dir / "predictions.csv"
    if not path.is_file():
        return []
    df = pd.read_csv(path, dtype={"id": str})
    if "label" not in df:
        return []
    prob_cols = [c for c in df.columns if c.startswith("p_")]
    wrong = df[df["label"] != df["prediction"]].copy()
    wrong["confidence"] = wrong[prob_cols].max(axis=1)
    wrong = wrong.sort_values("confidence", ascending=False).head(k)
    return [{"id": r.id, "label": r.label, "prediction": r.prediction, "confidence": f"{r.confidence:.3f}"}
            for r in wrong.itertuples()]


def _attach_examples(run_dir: Path, rows: list[dict[str, str]]) -> None:
    """Add the sequence (sequence runs) or a PNG thumbnail file (image runs) to each mistake row."""
    if not rows:
        return
    from PIL import Image

    from biolens.config import validate_config
    from biolens.training.tasks import make_task

    task = make_task(validate_config(yaml.safe_load((run_dir / "config.yaml").read_text())))
    task.prepare()
    views = task.preview("test", [r["id"] for r in rows])
    for k, row in enumerate(rows):
        view = views.get(row["id"], {})
        if "sequence" in view:
            row["sequence"] = view["sequence"]
        if "image" in view:
            path = run_dir / "plots" / f"mistake_{k + 1}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            img = Image.fromarray(np.asarray(view["image"], dtype=np.uint8))
            img.resize((96, 96), Image.NEAREST).save(path)
            row["thumbnail"] = str(path.relative_to(run_dir))


def build_report(run: str | Path, *, n_resamples: int = 1000) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md`` into the run; evaluates the test split first if needed."""
    from biolens.evaluation.runner import EvalOptions, evaluate_run

    run_dir = check_run_dir(run)
    verify_bundle(run_dir)  # a report describes the files as trained and evaluated, never a changed copy
    metrics = json.loads((run_dir / "metrics.json").read_text()) if (run_dir / "metrics.json").is_file() else {}
    if "ci" not in _headline(metrics.get("test", {})):
        evaluate_run(run_dir, options=EvalOptions(n_resamples=n_resamples))
        metrics = json.loads((run_dir / "metrics.json").read_text())
    test = metrics["test"]
    head = _headline(test)
    history = json.loads((run_dir / "history.json").read_text()) if (run_dir / "history.json").is_file() else []
    figures = []
    history_png = run_dir / "plots" / "history.png"  # written by training (four panels + the guide's verdict)
    written = [run_dir / "report.md", run_dir / "report.html"]
    if history and not history_png.is_file():
        written.append(history_png)
        from biolens.training.plots import plot_history

        plot_history(history, history_png)
    if history_png.is_file():
        figures.append(history_png)
    figures += [run_dir / p for p in test.get("plots", [])]
    config = (run_dir / "config.yaml").read_text()
    data_report = json.loads((run_dir / "data_report.json").read_text()) if (run_dir / "data_report.json").is_file() else {}
    mistakes = _confident_mistakes(run_dir)
    _attach_examples(run_dir, mistakes)
    contract = json.loads((run_dir / "contract.json").read_text())
    summary_file = run_dir / "train_summary.json"
    fit = json.loads(summary_file.read_text()).get("fit") if summary_file.is_file() else None
    summary = _summary_lines(test, contract, fit)
    md = _markdown(run_dir, summary, head, data_report, config, figures, mistakes)
    page = _html(run_dir, summary, head, data_report, config, figures, mistakes)
    from biolens.doctor.run import report_sections  # the doctor's findings on this run, before the Data section

    md, page = report_sections(run_dir, md, page)
    (run_dir / "report.md").write_text(md)
    (run_dir / "report.html").write_text(page)
    refresh_manifest(run_dir, written=written)
    return run_dir / "report.html", run_dir / "report.md"


def _summary_lines(test: dict, contract: dict, fit: dict | None = None) -> list[str]:
    lines = [f"Evaluated on the {test.get('evaluated', 'test split')} (n = {test.get('n')})."]
    if fit and fit.get("gap") is not None:
        lines.append(f"Training fit: {fit['verdict']} (val − train loss {fit['gap']:.3f}); {fit.get('advice', '')}.")
    op = test.get("operating_point")
    if op:
        lines.append(f"Operating point chosen on validation ({op['method']}"
                     + (f" ≥ {op['target']}" if op.get("target") else "") + f"): threshold {op['threshold']:.4f}.")
    elif contract.get("positive_class"):
        lines.append(f"Decision threshold {contract['threshold']:.4f} on P({contract['positive_class']}).")
    lines += test.get("warnings", [])
    return lines


def _markdown(run_dir: Path, summary: list[str], head: dict, data_report: dict, config: str,
              figures: list[Path], mistakes: list[dict]) -> str:
    out = [f"# biolens report: {run_dir.name}", ""] + [f"- {s}" for s in summary] + [""]
    out += ["## Metrics", "", f"| metric | value | {int(head.get('ci_level', 0.95) * 100)}% CI |", "|---|---:|---:|"]
    out += [f"| {a} | {b} | {c} |" for a, b, c in _metric_rows(head)]
    if head.get("clinical"):
        out += ["", "## Clinical reading", ""] + [f"- {s}" for s in head["clinical"]]
    out += ["", "## Figures", ""] + [f"![{p.stem}]({p.relative_to(run_dir)})" for p in figures if p.is_file()]
    if mistakes:
        out += ["", "## Most confident mistakes (test)", "", "| id | label | prediction | confidence | example |",
                "|---|---|---|---:|---|"]
        out += [f"| {r['id']} | {r['label']} | {r['prediction']} | {r['confidence']} | "
                + (f"![{r['id']}]({r['thumbnail']})" if "thumbnail" in r else f"`{r.get('sequence', '')}`") + " |"
                for r in mistakes]
    out += ["", "## Data", "", "```json", json.dumps(data_report, indent=1), "```", "", "## Configuration", "",
            "```yaml", config.rstrip(), "```", ""]
    return "\n".join(out)


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<figure><img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}"><figcaption>{html.escape(path.stem)}</figcaption></figure>'


def _thumb(path: Path) -> str:
    return f'<img class="thumb" alt="{html.escape(path.stem)}" src="data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}">'


def _html(run_dir: Path, summary_lines: list[str], head: dict, data_report: dict, config: str,
          figures: list[Path], mistakes: list[dict]) -> str:
    e = html.escape
    rows = "".join(f"<tr><td>{e(a)}</td><td>{e(b)}</td><td>{e(c)}</td></tr>" for a, b, c in _metric_rows(head))
    clinical = "".join(f"<li>{e(s)}</li>" for s in head.get("clinical", []))
    wrong = "".join(
        f"<tr><td>{e(r['id'])}</td><td>{e(r['label'])}</td><td>{e(r['prediction'])}</td><td>{e(r['confidence'])}</td>"
        + (f"<td>{_thumb(run_dir / r['thumbnail'])}</td></tr>" if "thumbnail" in r
           else f"<td><code>{e(r.get('sequence', ''))}</code></td></tr>") for r in mistakes)
    summary = "".join(f"<li>{e(s)}</li>" for s in summary_lines)
    figs = "".join(_img(p) for p in figures if p.is_file())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>biolens report: {e(run_dir.name)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 10px;text-align:left}}
figure{{display:inline-block;margin:6px}}img{{max-width:480px}}img.thumb{{width:96px}}pre{{background:#f6f6f6;padding:1em;overflow:auto}}
code{{font-size:0.85em;word-break:break-all}}</style></head><body>
<h1>biolens report: {e(run_dir.name)}</h1><ul>{summary}</ul>
<h2>Metrics</h2><table><tr><th>metric</th><th>value</th><th>{int(head.get('ci_level', 0.95) * 100)}% CI</th></tr>{rows}</table>
{f'<h2>Clinical reading</h2><ul>{clinical}</ul>' if clinical else ''}
<h2>Figures</h2>{figs}
{f'<h2>Most confident mistakes (test)</h2><table><tr><th>id</th><th>label</th><th>prediction</th><th>confidence</th><th>example</th></tr>{wrong}</table>' if wrong else ''}
<h2>Data</h2><pre>{e(json.dumps(data_report, indent=1))}</pre>
<h2>Configuration</h2><pre>{e(config)}</pre>
</body></html>
"""


def compare_runs(runs: list[str | Path]) -> list[dict[str, Any]]:
    """One row per run: name, model, test metrics (headline values at the run's threshold)."""
    rows = []
    for run in runs:
        run_dir = check_run_dir(run)
        metrics = json.loads((run_dir / "metrics.json").read_text()) if (run_dir / "metrics.json").is_file() else {}
        head = _headline(metrics.get("test", {}))
        cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
        row: dict[str, Any] = {"run": str(run_dir), "model": cfg.get("model", {}).get("name"), "n": head.get("n")}
        row.update({k: head.get(k) for k in HEADLINE if k in head})
        rows.append(row)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    return [{k: r.get(k) for k in keys} for r in rows]
