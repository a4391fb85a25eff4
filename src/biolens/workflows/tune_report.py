"""What ``biolens tune`` writes about its search: ``tune.json``, ``trials.csv``, the optimization history and
parameter importances (Optuna's fANOVA) as figures, and a one-page ``report.html``."""

from __future__ import annotations

import base64
import html
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from biolens.io import atomic_write_text, write_json

log = logging.getLogger(__name__)


def _image(path: Path) -> str:
    return f'<img src="data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}" style="max-width:100%">'


def write_report(out: Path, study: optuna.Study, objective: str, direction: str, space: dict[str, dict[str, Any]],
                  best_run: Path) -> None:
    """``tune.json``, ``trials.csv``, ``plots/optimization_history.png``, ``plots/param_importances.png``,
    ``report.html``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots = out / "plots"
    plots.mkdir(exist_ok=True)
    frame = study.trials_dataframe()
    frame.to_csv(out / "trials.csv", index=False)
    importances: dict[str, float] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            importances = {k: round(float(v), 4) for k, v in optuna.importance.get_param_importances(study).items()}
        except (RuntimeError, ValueError, ZeroDivisionError) as e:  # too few finished trials, a constant objective
            log.info("parameter importances not computed (%s)", str(e)[:120])
        from optuna.visualization import matplotlib as ovm

        ax = ovm.plot_optimization_history(study, target_name=objective)
        ax.figure.set_size_inches(8, 4.5)
        ax.figure.tight_layout()
        ax.figure.savefig(plots / "optimization_history.png", dpi=100)
        plt.close(ax.figure)
        if importances:
            fig, ax = plt.subplots(figsize=(7, 0.4 * len(importances) + 1.5))
            names = list(importances)[::-1]
            ax.barh(names, [importances[n] for n in names], color="tab:blue")
            ax.set(xlabel="importance (fANOVA)", title=f"parameter importances for {objective}")
            fig.tight_layout()
            fig.savefig(plots / "param_importances.png", dpi=100)
            plt.close(fig)
    states = {s.name.lower(): len(study.get_trials(deepcopy=False, states=(s,))) for s in
              (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    best = study.best_trial
    final = json.loads((best_run / "metrics.json").read_text()) if (best_run / "metrics.json").is_file() else {}
    summary = {
        "objective": objective, "direction": direction, "trials": states,
        "best": {"trial": best.number, "value": best.value, "params": best.params},
        "default": _trial_zero(study), "space": space, "importances": importances, "final_run": str(best_run),
        "final_metrics": {s: {k: v for k, v in (final.get(s) or {}).items() if isinstance(v, (int, float))}
                          for s in ("val", "test")},
    }
    write_json(out / "tune.json", summary)
    rows = "".join(f"<tr><td>{t.number}</td><td>{t.state.name.lower()}</td><td>"
                   f"{'' if t.value is None else f'{t.value:.4f}'}</td><td>{html.escape(json.dumps(t.params))}</td></tr>"
                   for t in study.trials)
    test = summary["final_metrics"]["test"]
    page = (f"<!doctype html><meta charset='utf-8'><title>biolens tune: {html.escape(str(out))}</title>"
            "<body style='font-family:sans-serif;max-width:960px;margin:auto'>"
            f"<h1>Hyperparameter search</h1><p>{sum(states.values())} trials ({states['complete']} complete, "
            f"{states['pruned']} pruned, {states['fail']} failed); objective <b>{objective}</b> "
            f"({'maximize' if direction == 'max' else 'minimize'}); the test split was never used for selection.</p>"
            f"<p>Best trial {best.number}: {objective} {best.value:.4f}"
            + (f"; trial 0 (the configuration as given): {summary['default']:.4f}" if summary["default"] is not None
               else "") + "</p>"
            f"<p>Final model <code>{html.escape(str(best_run))}</code>"
            + (f": test accuracy {test.get('accuracy', float('nan')):.4f}"
               + (f", ROC AUC {test['roc_auc']:.4f}" if test.get("roc_auc") is not None else "") if test else "")
            + "</p><h2>Optimization history</h2>" + _image(plots / "optimization_history.png")
            + ("<h2>Parameter importances</h2>" + _image(plots / "param_importances.png") if importances else "")
            + "<h2>Trials</h2><table border=1 cellpadding=4 style='border-collapse:collapse'><tr><th>trial</th>"
            f"<th>state</th><th>{objective}</th><th>parameters</th></tr>{rows}</table></body>")
    atomic_write_text(out / "report.html", page)


def _trial_zero(study: optuna.Study) -> float | None:
    first = next((t for t in study.trials if t.number == 0), None)
    return float(first.value) if first is not None and first.value is not None else None
