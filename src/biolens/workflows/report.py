"""``biolens report RUN`` and ``biolens compare RUN…``: the run's evaluation, figures and doctor findings as one
self-contained HTML page and its Markdown twin; a side-by-side table of several runs (``workflows/compare.py``, with
the checks that the runs were tested on the same data and the paired tests)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from biolens.bundle import check_run_dir, refresh_manifest, verify_bundle
from biolens.doctor.run import report_sections
from biolens.evaluation.evaluate import EvalOptions
from biolens.evaluation.report import (attach_examples, confident_mistakes, headline, html_page, markdown, summary_lines)
from biolens.training.plots import plot_history
from biolens.workflows.compare import Comparison, compare_runs  # noqa: F401  (biolens compare)
from biolens.workflows.baselines import report_comparisons
from biolens.workflows.evaluate import evaluate_run

log = logging.getLogger(__name__)


def build_report(run: str | Path, *, n_resamples: int = 1000, baselines: bool = False) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md`` into the run; evaluates the test split first if needed.

    Sequence runs get a Baselines table (a k-mer logistic regression, fitted when missing; ``baselines=True`` also
    trains a BiGRU, see ``workflows/baselines.py``); distilled runs a Distillation table."""
    run_dir = check_run_dir(run)
    verify_bundle(run_dir)  # a report describes the files as trained and evaluated, never a changed copy
    metrics = json.loads((run_dir / "metrics.json").read_text()) if (run_dir / "metrics.json").is_file() else {}
    if "ci" not in headline(metrics.get("test", {})):
        evaluate_run(run_dir, options=EvalOptions(n_resamples=n_resamples))
        metrics = json.loads((run_dir / "metrics.json").read_text())
    test = metrics["test"]
    head = headline(test)
    history = json.loads((run_dir / "history.json").read_text()) if (run_dir / "history.json").is_file() else []
    figures = []
    history_png = run_dir / "plots" / "history.png"  # written by training (four panels + the guide's verdict)
    written = [run_dir / "report.md", run_dir / "report.html"]
    if history and not history_png.is_file():
        written.append(history_png)
        plot_history(history, history_png)
    if history_png.is_file():
        figures.append(history_png)
    figures += [run_dir / p for p in test.get("plots", [])]
    config = (run_dir / "config.yaml").read_text()
    data_report = json.loads((run_dir / "data_report.json").read_text()) if (run_dir / "data_report.json").is_file() else {}
    mistakes = confident_mistakes(run_dir)
    attach_examples(run_dir, mistakes)
    contract = json.loads((run_dir / "contract.json").read_text())
    summary_file = run_dir / "train_summary.json"
    fit = json.loads(summary_file.read_text()).get("fit") if summary_file.is_file() else None
    summary = summary_lines(test, contract, fit)
    md = markdown(run_dir, summary, head, data_report, config, figures, mistakes)
    page = html_page(run_dir, summary, head, data_report, config, figures, mistakes)
    md, page = report_sections(run_dir, md, page)  # the doctor's findings on this run, before the Data section
    md, page, extra = report_comparisons(run_dir, md, page, bigru=baselines)  # baselines, teacher vs student
    written += extra
    (run_dir / "report.md").write_text(md)
    (run_dir / "report.html").write_text(page)
    refresh_manifest(run_dir, written=written)
    return run_dir / "report.html", run_dir / "report.md"
