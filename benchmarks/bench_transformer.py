"""The transformer against the dilated default on the bundled peptide sets (same splits, training options, seeds),
side by side; test accuracy per set and seed. Throughput at length 1,000 is ``bench_models.py``'s job:
``bench_models.py --models dilated_resnet,transformer,transformer:patch=8 --baseline dilated_resnet``.

Usage: PYTHONPATH=src python benchmarks/bench_transformer.py [--sets amp_antibp2,avp_amppred,hem_hemopi,cpp_cellppd]
       [--seeds 0,1] [--models dilated_resnet,transformer] [--epochs 20] [--out runs/bench-tf] [--json tf.json]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from _runs import fit, machine, quiet, write

PEPTIDES = "amp_antibp2,avp_amppred,hem_hemopi,cpp_cellppd"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", default=PEPTIDES)
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--models", default="dilated_resnet,transformer")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--out", default="runs/bench-tf")
    p.add_argument("--json")
    args = p.parse_args()
    quiet()
    rows = []
    models = args.models.split(",")
    for name in args.sets.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            for model in models:
                r = fit(Path(args.out) / f"{name}-{model}-s{seed}", data=f"builtin:{name}", model=model,
                        epochs=args.epochs, seed=seed)
                rows.append({"set": name, "model": model, "seed": seed, **r})
                print(f"{name:14s} {model:16s} seed {seed}: test acc {r['test_accuracy']:.4f}  auc "
                      f"{r['test_roc_auc']:.4f}  ({r['params']:,} params, {r['epochs']} epochs, {r['seconds']} s)",
                      flush=True)
    print("\nmean test accuracy over seeds")
    wins = 0
    for name in args.sets.split(","):
        means = {m: np.mean([r["test_accuracy"] for r in rows if r["set"] == name and r["model"] == m]) for m in models}
        line = "  ".join(f"{m} {v:.4f}" for m, v in means.items())
        if "transformer" in means and "dilated_resnet" in means and means["transformer"] >= means["dilated_resnet"]:
            wins += 1
        print(f"{name:14s} {line}")
    print(f"transformer ≥ dilated_resnet on {wins} of {len(args.sets.split(','))} sets")
    write(args.json, {"machine": machine(), "args": vars(args), "rows": rows})


if __name__ == "__main__":
    main()
