"""Baselines for a trained sequence run, on exactly its splits: a k-mer logistic regression (seconds) and, on request,
a BiGRU trained like the run (same data section, seed and train options, ``model.name=bigru``).

Results go to ``RUN/baselines.json`` (added to the manifest) and into ``biolens report`` as a table next to the
run's own model, so a user sees how much the deep model adds. ``report`` fits the k-mer baseline when it is missing;
the BiGRU is trained by ``biolens train --baselines`` or ``biolens report --baselines``.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from biolens.bundle import check_run_dir, read_yaml, refresh_manifest
from biolens.config import validate_config
from biolens.errors import a_or_an
from biolens.evaluation.baselines import (baseline_section, distillation_section, insert_before_data,
                                          kmer_logistic_regression, kmer_target_baseline)
from biolens.evaluation.report import headline
from biolens.io import write_json
from biolens.models import create_model
from biolens.tasks import make_task
from biolens.workflows.train import train

log = logging.getLogger(__name__)

BASELINES_FILE = "baselines.json"


def _load(run_dir: Path) -> dict[str, Any]:
    path = run_dir / BASELINES_FILE
    return json.loads(path.read_text()) if path.is_file() else {"baselines": []}


def model_row(run_dir: Path) -> dict[str, Any]:
    """The run's own model: name, parameters (rebuilt from config.yaml) and test metrics at its threshold."""
    cfg = validate_config(read_yaml(run_dir / "config.yaml"))
    n = sum(p.numel() for p in create_model(cfg.model.name, **dict(cfg.model.params)).parameters())
    metrics = json.loads((run_dir / "metrics.json").read_text()) if (run_dir / "metrics.json").is_file() else {}
    return {"name": cfg.model.name, "params": n, "test": headline(metrics.get("test", {}))}


def run_baselines(run: str | Path, *, kmer: bool = True, bigru: bool = False, refresh: bool = True) -> dict[str, Any]:
    """Fit the missing baselines of a sequence run on its own splits and write ``baselines.json``.

    Returns the file's content; an image run gets no baselines (an empty list)."""
    run_dir = check_run_dir(run)
    saved = _load(run_dir)
    have = {b["name"] for b in saved["baselines"]}
    cfg = validate_config(read_yaml(run_dir / "config.yaml"))
    kmer_name = {"regression": "kmer_ridge"}.get(cfg.data.target, "kmer_logreg")
    want = [n for n, on in ((kmer_name, kmer), ("bigru", bigru)) if on and n not in have]
    if not want:
        return saved
    task = make_task(cfg)
    if task.kind != "sequence":
        log.info("baselines are for sequence runs; %s is %s run", run_dir, a_or_an(task.kind))
        return saved
    task.prepare()
    d = task.data
    if kmer_name in want and task.target_type != "classification":
        saved["baselines"].append(kmer_target_baseline(d.splits, task.target_type, d.class_names, seed=cfg.train.seed))
    elif kmer_name in want:
        saved["baselines"].append(kmer_logistic_regression(d.splits, d.class_names, d.positive_class,
                                                           seed=cfg.train.seed))
    if "bigru" in want:
        saved["baselines"].append(_bigru(cfg))
    saved["test_n"] = int(task.size("test"))
    write_json(run_dir / BASELINES_FILE, saved)
    if refresh:
        refresh_manifest(run_dir, written=[run_dir / BASELINES_FILE])
    return saved


def _bigru(cfg: Any) -> dict[str, Any]:
    """Train ``bigru`` with the run's data and train sections into a temporary folder; keep its metrics."""
    tmp = Path(tempfile.mkdtemp(prefix="biolens-baseline-"))
    try:
        raw = cfg.model_dump(mode="json")
        raw["model"] = {"name": "bigru"}
        raw["out"] = str(tmp / "bigru")
        result = train(raw)
        model = create_model("bigru", **json.loads(json.dumps(result.predictor.model.config)))
        return {"name": "bigru", "description": "embedding + padding-invariant bidirectional GRU, mean+max pooling, "
                "trained with the run's data and train options", "params": sum(p.numel() for p in model.parameters()),
                "val": headline(result.metrics["val"]), "test": headline(result.metrics["test"]),
                "epochs": len(result.history)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def report_comparisons(run_dir: Path, md: str, page: str, *, bigru: bool = False) -> tuple[str, str, list[Path]]:
    """``biolens report``: a Baselines section (the k-mer baseline fitted when missing) and, for a distilled run, a
    Distillation section, before the Data section; returns the pages and the files written."""
    written: list[Path] = []
    before = (run_dir / BASELINES_FILE).read_bytes() if (run_dir / BASELINES_FILE).is_file() else None
    saved = run_baselines(run_dir, kmer=True, bigru=bigru, refresh=False)
    if (run_dir / BASELINES_FILE).is_file() and (run_dir / BASELINES_FILE).read_bytes() != before:
        written.append(run_dir / BASELINES_FILE)
    if saved["baselines"]:
        md, page = insert_before_data(md, page, *baseline_section(model_row(run_dir), saved["baselines"]))
    summary = run_dir / "train_summary.json"
    distilled = json.loads(summary.read_text()).get("distillation") if summary.is_file() else None
    if distilled:
        md, page = insert_before_data(md, page, *distillation_section(distilled))
    return md, page, written
