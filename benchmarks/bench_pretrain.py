"""Masked-token pretraining, then fine-tuning on 10% of the labels, against training from scratch on the same 10%.

For each set: pretrain on the unlabelled sequences of its train and val splits (the test split is left out), then
train twice on the same labelled subset (a seeded, stratified ``--fraction`` of train and of val; the full test
split): from scratch, and from the pretraining run (``weights=``, the default fine-tuning options; for sequences the
backbone trains at the full LR). Same model, seed, epochs (60 by default: 10% of the data is a few steps per epoch)
and test split; side by side.

Usage: PYTHONPATH=src python benchmarks/bench_pretrain.py [--sets splice,regulondb_promoters] [--model dilated_resnet]
       [--fraction 0.1] [--seeds 0,1,2] [--pretrain-epochs 30] [--epochs 60] [--out runs/bench-pre] [--json pre.json]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from _runs import fit, machine, quiet, write


def subset(name: str, fraction: float, seed: int, out: Path) -> Path:
    """The set with only a stratified ``fraction`` of its train and val rows (test kept whole), as a CSV."""
    from biolens.data.builtin import get_builtin

    df = pd.read_csv(get_builtin(name).path, dtype=str)
    rng = np.random.default_rng(seed)
    keep = []
    for (split, _), part in df.groupby(["split", "label"]):
        idx = part.index.to_numpy()
        keep += list(idx) if split == "test" else list(rng.choice(idx, max(1, round(fraction * len(idx))), replace=False))
    out.parent.mkdir(parents=True, exist_ok=True)
    df.loc[sorted(keep)].to_csv(out, index=False)
    return out


def main() -> None:
    from biolens.workflows.pretrain import pretrain

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", default="splice,regulondb_promoters")
    p.add_argument("--model", default="dilated_resnet")
    p.add_argument("--params", default="", help="model params as k=v,k=v")
    p.add_argument("--fraction", type=float, default=0.1)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--pretrain-epochs", type=int, default=30)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--out", default="runs/bench-pre")
    p.add_argument("--json")
    args = p.parse_args()
    quiet()
    params = {k: int(v) if v.isdigit() else v for k, v in (kv.split("=") for kv in args.params.split(",") if kv)}
    out, rows, pre_info = Path(args.out), [], {}
    for name in args.sets.split(","):
        start = time.perf_counter()
        pre = pretrain(data=f"builtin:{name}", model=args.model, params=params, epochs=args.pretrain_epochs,
                       out=out / f"{name}-pretrain", overwrite=True)
        pre_info[name] = {**pre.metrics, "seconds": round(time.perf_counter() - start, 1)}
        print(f"{name}: pretrained {args.model} on {pre.metrics['n_train'] + pre.metrics['n_val']} unlabelled "
              f"sequences: held-out masked accuracy {pre.metrics['val_masked_accuracy']:.4f} (most frequent symbol "
              f"{pre.metrics['val_most_frequent_symbol_rate']:.4f}), {pre_info[name]['seconds']} s", flush=True)
        for seed in (int(s) for s in args.seeds.split(",")):
            data = str(subset(name, args.fraction, seed, out / f"{name}-{int(100 * args.fraction)}pct-s{seed}.csv"))
            for arm, extra in (("scratch", {}), ("pretrained", {"weights": str(pre.run_dir)})):
                r = fit(out / f"{name}-{arm}-s{seed}", data=data, model=args.model, params=params,
                        epochs=args.epochs, seed=seed, **extra)
                rows.append({"set": name, "arm": arm, "seed": seed, **r})
                print(f"  seed {seed} {arm:10s}: test acc {r['test_accuracy']:.4f}  bal {r['test_balanced_accuracy']:.4f}"
                      f"  ({r['epochs']} epochs, {r['seconds']} s)", flush=True)
    print(f"\nmean test accuracy with {int(100 * args.fraction)}% of the labels")
    for name in args.sets.split(","):
        m = {a: np.mean([r["test_accuracy"] for r in rows if r["set"] == name and r["arm"] == a])
             for a in ("scratch", "pretrained")}
        print(f"{name:22s} scratch {m['scratch']:.4f}  pretrained {m['pretrained']:.4f}  "
              f"({100 * (m['pretrained'] - m['scratch']):+.1f} points)")
    write(args.json, {"machine": machine(), "args": vars(args), "pretrain": pre_info, "rows": rows})


if __name__ == "__main__":
    main()
