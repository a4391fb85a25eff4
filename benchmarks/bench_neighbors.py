"""Nearest-neighbour label transfer: each default run scored on its test split twice, with the fitted transfer (the
default) and with the same network alone (``model.attach_neighbors(None)``), so the two columns differ only in the
transfer. Bundled sequence sets and MFTP (from ``../shared/datasets``, not bundled).

Usage: PYTHONPATH=src:benchmarks python benchmarks/bench_neighbors.py [--sets amp_antibp2,mftp] [--seeds 0,1]
       [--out /tmp/bench-neighbors] [--json neighbors.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from _runs import machine, quiet, write

SETS = ["hem_hemopi", "amp_antibp2", "avp_amppred", "regulondb_promoters", "splice", "mftp"]
SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
MULTILABEL = ("subset_accuracy", "hamming_loss", "roc_auc")
CLASSES = ("accuracy", "roc_auc")


def _data(name: str, work: Path) -> dict[str, Any]:
    if name != "mftp":
        return {"data": f"builtin:{name}"}
    from bench_targets import MFTP_LABELS

    df = pd.read_csv(SHARED / "mftp_prmftp" / "derived" / "mftp.csv", dtype=str)
    csv = work / "mftp_kept.csv"
    df[df["prmftp_kept"] == "1"].drop(columns=["prmftp_kept"]).to_csv(csv, index=False)
    return {"data": str(csv), "target_cols": list(MFTP_LABELS)}


def _auc(metrics: dict[str, Any]) -> dict[str, Any]:
    """ROC AUC under one name: binary and multi-label ``roc_auc``, several classes macro one-vs-rest."""
    return {**metrics, "roc_auc": metrics.get("roc_auc", metrics.get("roc_auc_ovr"))}


def run(name: str, seed: int, work: Path) -> dict[str, Any]:
    import torch

    from biolens.tasks import Predictor, make_task
    from biolens.workflows.train import split_metrics, train

    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    res = train(out=work / f"{name}_s{seed}", overwrite=True, seed=seed, **_data(name, work))
    seconds = time.perf_counter() - start
    fit = json.loads((res.run_dir / "train_summary.json").read_text()).get("neighbor_transfer") or {}
    p = Predictor.load(res.run_dir)
    task = make_task(p.config)
    task.prepare()
    keys = MULTILABEL if p.contract.target_type == "multilabel" else CLASSES
    with_nn = _auc(split_metrics(p.model, task, p.contract, torch.device("cpu"), None, ("test",))["test"])
    p.model.attach_neighbors(None)
    alone = _auc(split_metrics(p.model, task, p.contract, torch.device("cpu"), None, ("test",))["test"])
    row = {"set": name, "seed": seed, "used": bool(fit.get("used")), "fit": fit, "seconds": round(seconds, 1),
           **{f"network_{k}": alone[k] for k in keys}, **{f"transfer_{k}": with_nn[k] for k in keys}}
    print(f"{name:20s} seed {seed}: " + ", ".join(f"{k} {alone[k]:.4f} → {with_nn[k]:.4f}" for k in keys)
          + f" (transfer {'on' if row['used'] else 'off'}, {seconds:.0f} s)", flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--out", default="/tmp/bench-neighbors")
    ap.add_argument("--json")
    args = ap.parse_args()
    quiet()
    rows = [run(name, int(s), Path(args.out)) for name in args.sets.split(",") for s in args.seeds.split(",")]
    print("\nmean over seeds, test split: network alone → with transfer (Δ)")
    for name in dict.fromkeys(r["set"] for r in rows):
        mine = [r for r in rows if r["set"] == name]
        keys = MULTILABEL if "network_subset_accuracy" in mine[0] else CLASSES
        parts = []
        for k in keys:
            a, b = (np.mean([r[f"{side}_{k}"] for r in mine]) for side in ("network", "transfer"))
            parts.append(f"{k} {a:.4f} → {b:.4f} ({b - a:+.4f})")
        print(f"{name:20s} " + "; ".join(parts) + f"; on in {sum(r['used'] for r in mine)}/{len(mine)} runs")
    if args.json:
        write(args.json, {"machine": machine(), "rows": rows})


if __name__ == "__main__":
    main()
