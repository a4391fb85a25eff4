"""The report's content and rendering: one self-contained HTML page (figures embedded) and its Markdown twin.

``workflows/report.py`` gathers what goes in (metrics, figures, the doctor's findings) and writes the files."""

from __future__ import annotations

import base64
import html
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from PIL import Image

from biolens.bundle import split_headline
from biolens.config import validate_config
from biolens.metrics import headline as headline_names
from biolens.tasks import make_task

log = logging.getLogger(__name__)


def headline(split_metrics: dict) -> dict:
    """The headline metrics of a ``metrics.json`` split entry (at the run's threshold)."""
    return split_headline(split_metrics)


def _metric_rows(m: dict) -> list[tuple[str, str, str]]:
    ci = m.get("ci", {})
    rows = []
    for key in headline_names(m):
        v = m[key]
        lo_hi = ci.get(key) or [None, None]
        rows.append((key, "undefined" if v is None else f"{v:.4f}",
                     "" if lo_hi[0] is None else f"{lo_hi[0]:.4f} – {lo_hi[1]:.4f}"))
    return rows


def confident_mistakes(run_dir: Path, k: int = 10) -> list[dict[str, str]]:
    """The k most confident wrong test predictions, with the sequence where the task keeps one."""
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


def attach_examples(run_dir: Path, rows: list[dict[str, str]]) -> None:
    """Add the sequence (sequence runs) or a PNG thumbnail file (image runs) to each mistake row."""
    if not rows:
        return
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


def summary_lines(test: dict, contract: dict, fit: dict | None = None) -> list[str]:
    lines = [f"Evaluated on the {test.get('evaluated', 'test split')} (n = {test.get('n')})."]
    if fit and fit.get("gap") is not None:
        lines.append(f"Training fit: {fit['verdict']} (val − train loss {fit['gap']:.3f}); {fit.get('advice', '')}.")
    op = test.get("operating_point")
    if op and "thresholds" in op:  # multi-label: one threshold per label
        lines.append(f"Per-label thresholds chosen on validation ({op['method']}"
                     + (f" ≥ {op['target']}" if op.get("target") else "") + "): "
                     + ", ".join(f"{n} {t:.3f}" for n, t in op["thresholds"].items()) + ".")
    elif op:
        lines.append(f"Operating point chosen on validation ({op['method']}"
                     + (f" ≥ {op['target']}" if op.get("target") else "") + f"): threshold {op['threshold']:.4f}.")
    elif contract.get("positive_class"):
        lines.append(f"Decision threshold {contract['threshold']:.4f} on P({contract['positive_class']}).")
    kind = contract.get("target_type", "classification")
    if kind == "regression":
        std = contract.get("target_std") or []
        lines.append(f"Regression of {', '.join(contract.get('class_names', []))}: trained on standardized targets "
                     f"({'log link, scale' if contract.get('target_link') == 'log' else 'train std'} "
                     f"{', '.join(f'{v:.4g}' for v in std)}); predictions are in the original units.")
    elif kind == "multilabel" and not op:
        lines.append(f"Multi-label ({len(contract.get('class_names', []))} labels): a label is assigned when its "
                     "probability reaches its threshold (0.5 unless chosen on validation with biolens evaluate "
                     "--optimize f1).")
    lines += test.get("warnings", [])
    return lines


def reading_title(head: dict) -> str:
    """Classification: the guide's clinical reading; regression and multi-label runs: a reading of the figures."""
    kind = head.get("target_type")
    return {"regression": "Biological reading (regression)",
            "multilabel": "Reading (multi-label)"}.get(kind, "Clinical reading")


def markdown(run_dir: Path, summary: list[str], head: dict, data_report: dict, config: str,
              figures: list[Path], mistakes: list[dict]) -> str:
    out = [f"# biolens report: {run_dir.name}", ""] + [f"- {s}" for s in summary] + [""]
    out += ["## Metrics", "", f"| metric | value | {int(head.get('ci_level', 0.95) * 100)}% CI |", "|---|---:|---:|"]
    out += [f"| {a} | {b} | {c} |" for a, b, c in _metric_rows(head)]
    if head.get("clinical"):
        out += ["", f"## {reading_title(head)}", ""] + [f"- {s}" for s in head["clinical"]]
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


def html_page(run_dir: Path, summary_lines: list[str], head: dict, data_report: dict, config: str,
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
{f'<h2>{e(reading_title(head))}</h2><ul>{clinical}</ul>' if clinical else ''}
<h2>Figures</h2>{figs}
{f'<h2>Most confident mistakes (test)</h2><table><tr><th>id</th><th>label</th><th>prediction</th><th>confidence</th><th>example</th></tr>{wrong}</table>' if wrong else ''}
<h2>Data</h2><pre>{e(json.dumps(data_report, indent=1))}</pre>
<h2>Configuration</h2><pre>{e(config)}</pre>
</body></html>
"""
