"""``biolens evaluate RUN``: metrics with confidence intervals, operating point, calibration, plots."""

from __future__ import annotations

from pathlib import Path

import typer

from biolens.cli._common import console, handle_errors, setup_logging
from biolens.cli.show import print_metrics


@handle_errors
def evaluate(
    run: Path = typer.Argument(..., help="run folder from `biolens train`"),
    data: list[str] = typer.Option(None, "--data", "-d", help="labelled file(s); default: the run's own split"),
    split: str = typer.Option("test", help="train, val or test (when --data is not given)"),
    out: Path = typer.Option(None, "--out", "-o", help="folder for metrics.json, plots/ and predictions.csv (default: the run)"),
    target_sensitivity: float = typer.Option(None, help="choose the threshold on val that reaches this sensitivity "
                                             "(multi-label runs: one threshold per label)"),
    target_specificity: float = typer.Option(None, help="choose the threshold on val that reaches this specificity"),
    optimize: str = typer.Option(None, help="choose the threshold on val maximising youden or f1 (multi-label runs: "
                                 "one threshold per label, saved in the contract)"),
    calibrate: bool = typer.Option(False, help="fit temperature scaling on val and save it with the model"),
    resamples: int = typer.Option(1000, help="bootstrap resamples for the confidence intervals"),
    seed: int = typer.Option(0, help="bootstrap seed"),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="write PNG figures"),
    batch_size: int = typer.Option(256, help="batch size"),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:N or mps"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="only warnings and the tables"),
) -> None:
    """Evaluate a trained run; a chosen threshold or temperature is saved in its contract for predict."""
    from biolens.errors import ConfigError
    from biolens.workflows.evaluate import EvalOptions, evaluate_run

    setup_logging(quiet)
    chosen = [(m, t) for m, t in (("sensitivity", target_sensitivity), ("specificity", target_specificity),
                                  (optimize, None)) if m is not None and (t is not None or m == optimize)]
    if len(chosen) > 1:
        raise ConfigError("give one of --target-sensitivity, --target-specificity or --optimize")
    method, target = chosen[0] if chosen else (None, None)
    options = EvalOptions(n_resamples=resamples, seed=seed, operating_point=method, target=target,
                          calibrate=calibrate, plots=plots)
    result = evaluate_run(run, data or None, split=split, out=out, options=options, batch_size=batch_size, device=device)
    if "operating_point" in result and "thresholds" in result["operating_point"]:  # multi-label: one per label
        op = result["operating_point"]
        console.print(f"per-label thresholds ({op['method']}{' ≥ ' + str(op['target']) if op['target'] else ''}) on "
                      "val: " + ", ".join(f"{n} {t:.3f}" for n, t in op["thresholds"].items()))
    elif "operating_point" in result:
        op = result["operating_point"]
        console.print(f"operating point ({op['method']}{' ≥ ' + str(op['target']) if op['target'] else ''}) on val: "
                      f"threshold {op['threshold']:.4f}, sensitivity {op['sensitivity']:.3f}, "
                      f"specificity {op['specificity']:.3f}")
    for key, title in (("metrics", "metrics"), ("at_0.5", "at threshold 0.5"), ("at_threshold", "at the chosen threshold")):
        if key in result:
            print_metrics(result[key], title=f"{result['evaluated']}: {title}")
    cal = result["calibration"]
    if "ece" in cal:
        console.print(f"calibration: ECE {cal['ece']:.4f}, Brier {cal['brier']:.4f}, NLL {cal['nll']:.4f}, "
                      f"temperature {cal['temperature']:.3f}")
    elif cal.get("brier") is not None:
        console.print(f"calibration: Brier {cal['brier']:.4f} over every (sample, label) pair")
