"""Rendering the run leaderboard (``workflows/runs.py`` gathers it): CSV text, and one self-contained HTML page with
the table and every run's history curves on one figure (matplotlib, embedded as a PNG data URL; no network)."""

from __future__ import annotations

import base64
import csv
import html
import io
import math
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def render_csv(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows([{k: _csv_value(v) for k, v in r.items()} for r in rows])
    return buf.getvalue()


def _csv_value(v: Any) -> Any:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return "" if v is None else v


def history_figure(curves: dict[str, list[dict[str, Any]]]) -> bytes:
    """PNG bytes: validation loss (train loss dashed) and validation accuracy per epoch, one colour per run."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.2))
    cmap = plt.get_cmap("tab10" if len(curves) <= 10 else "tab20")
    for i, (name, hist) in enumerate(curves.items()):
        color = cmap(i % cmap.N)
        epochs = [h.get("epoch", k + 1) for k, h in enumerate(hist)]
        ax_loss.plot(epochs, [h.get("val_loss") for h in hist], color=color, lw=1.8, label=name)
        if any("train_loss" in h for h in hist):
            ax_loss.plot(epochs, [h.get("train_loss") for h in hist], color=color, lw=1, ls="--", alpha=0.7)
        if any("val_acc" in h for h in hist):
            ax_acc.plot(epochs, [h.get("val_acc") for h in hist], color=color, lw=1.8, label=name)
    ax_loss.set(title="loss (val solid, train dashed)", xlabel="epoch", ylabel="loss")
    ax_acc.set(title="validation accuracy", xlabel="epoch", ylabel="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if curves:
        ax_acc.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def _show(key: str, v: Any) -> str:
    """Identity cells as people read them: dates to the minute (UTC), everything else as is."""
    if key == "date" and isinstance(v, str) and "T" in v:
        return v[:16].replace("T", " ") + (" UTC" if v.endswith(("+00:00", "Z")) else "")
    return _fmt(v)


def _cell(row: dict[str, Any], key: str) -> str:
    """A metric cell: the value, and its CI below it when there is one; ``data-sort`` holds the raw value."""
    v = row.get(key)
    lo, hi = row.get(f"{key}_lo"), row.get(f"{key}_hi")
    ci = f'<br><small>{_fmt(lo)}–{_fmt(hi)}</small>' if lo is not None and hi is not None else ""
    sort = "" if v is None else html.escape(str(v))
    return f'<td class="num" data-sort="{sort}">{html.escape(_fmt(v))}{ci}</td>'


_SCRIPT = """
document.querySelectorAll('th button').forEach(function (button) {
  button.addEventListener('click', function () {
    var th = button.parentElement, table = th.closest('table'), col = Array.from(th.parentElement.children).indexOf(th);
    var asc = th.getAttribute('aria-sort') !== 'ascending';
    table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
    var rows = Array.from(table.tBodies[0].rows);
    rows.sort(function (a, b) {
      var x = a.cells[col].dataset.sort, y = b.cells[col].dataset.sort;
      if (x === '' || x === undefined) return 1;
      if (y === '' || y === undefined) return -1;
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return asc ? c : -c;
    });
    rows.forEach(function (r) { table.tBodies[0].appendChild(r); });
  });
});
"""


def render_html(title: str, rows: list[dict[str, Any]], metrics: Sequence[str], splits: Sequence[str],
                curves: dict[str, list[dict[str, Any]]], sort: str) -> str:
    """The leaderboard page: a table (click a header to re-sort) and the history figure."""
    e = html.escape
    ident = [("run", "run"), ("task", "task"), ("model", "model"), ("data_fingerprint", "data"), ("date", "date"),
             ("best_epoch", "best epoch")]
    cols = [(f"{s}_{m}", f"{s} {m}") for s in splits for m in metrics]
    head = "".join(f'<th scope="col"><button type="button">{e(label)}</button></th>' for _, label in ident + cols)
    body = []
    for r in rows:
        cells = "".join(f'<td data-sort="{e(str(r.get(k) or ""))}">{e(_show(k, r.get(k)))}</td>' for k, _ in ident)
        cells += "".join(_cell(r, k) for k, _ in cols)
        status = "" if r.get("status") == "ok" else f' title="{e(str(r.get("status")))}" class="muted"'
        body.append(f"<tr{status}>{cells}</tr>")
    figure = ""
    if curves:
        data = base64.b64encode(history_figure(curves)).decode()
        figure = (f'<h2>History</h2><figure><img src="data:image/png;base64,{data}" alt="validation loss and '
                  f'accuracy per epoch for {len(curves)} runs"><figcaption>one colour per run; loss of the '
                  "validation split (solid) and the training split (dashed)</figcaption></figure>")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em auto;max-width:1400px;color:#222;padding:0 1em}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}}
td.num{{text-align:right;font-variant-numeric:tabular-nums}}small{{color:#666}}tr.muted{{color:#888}}
th button{{font:inherit;font-weight:bold;background:none;border:0;cursor:pointer;padding:0}}
th[aria-sort=ascending] button::after{{content:" ▲"}}th[aria-sort=descending] button::after{{content:" ▼"}}
img{{max-width:100%}}</style></head><body>
<h1>{e(title)}</h1>
<p>{len(rows)} runs, sorted by {e(sort)}. Metrics at each run's decision threshold, with the bootstrap confidence
interval below a value where <code>biolens evaluate</code> computed one. Click a column header to sort.</p>
<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>
{figure}
<script>{_SCRIPT}</script>
</body></html>
"""
