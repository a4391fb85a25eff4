"""Reverse-complement invariance: ``dilated_resnet_rc`` vs ``dilated_resnet`` (and the default with RC augmentation)
on the bundled splice and RegulonDB sets, same splits and training options, several seeds, side by side; each run is
also scored on its test split with every sequence reverse-complemented (the sequence as read from the other strand).

Usage: PYTHONPATH=src python benchmarks/bench_rc.py [--sets splice,regulondb_promoters] [--seeds 0,1,2]
       [--epochs 20] [--out runs/bench-rc] [--json rc.json]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from _runs import fit, machine, quiet, write

VARIANTS = {
    "dilated_resnet": {"model": "dilated_resnet"},
    "dilated_resnet_rc": {"model": "dilated_resnet_rc"},
    "dilated_resnet + RC augmentation": {"model": "dilated_resnet", "reverse_complement": True},
}


COMPLEMENT = str.maketrans("ACGTN", "TGCAN")


def rc_test_accuracy(run: Path, name: str) -> float:
    """Accuracy of a run on its test split with every sequence reverse-complemented: the strand-agnostic reading
    (a sequence whose strand is unknown). An RC-invariant model scores exactly as on the original test split."""
    from biolens.data.builtin import get_builtin
    from biolens.tasks import Predictor

    df = pd.read_csv(get_builtin(name).path, dtype=str)
    test = df[df["split"] == "test"]
    pred = Predictor.load(run).predict([s.translate(COMPLEMENT)[::-1] for s in test["sequence"]])
    return float((pred["prediction"].to_numpy() == test["label"].to_numpy()).mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", default="splice,regulondb_promoters")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--out", default="runs/bench-rc")
    p.add_argument("--json")
    args = p.parse_args()
    quiet()
    rows = []
    for name in args.sets.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            for variant in args.variants.split(","):
                tag = variant.replace(" + RC augmentation", "_rcaug")
                r = fit(Path(args.out) / f"{name}-{tag}-s{seed}", data=f"builtin:{name}", epochs=args.epochs,
                        seed=seed, **VARIANTS[variant])
                r["rc_test_accuracy"] = rc_test_accuracy(Path(r["run"]), name)
                rows.append({"set": name, "variant": variant, "seed": seed, **r})
                print(f"{name:22s} {variant:34s} seed {seed}: test acc {r['test_accuracy']:.4f}  "
                      f"bal {r['test_balanced_accuracy']:.4f}  reverse-complemented test {r['rc_test_accuracy']:.4f}  "
                      f"({r['params']:,} params, {r['seconds']} s)", flush=True)
    print("\nmean test accuracy over seeds")
    for name in args.sets.split(","):
        for variant in args.variants.split(","):
            accs = [r["test_accuracy"] for r in rows if r["set"] == name and r["variant"] == variant]
            rc = [r["rc_test_accuracy"] for r in rows if r["set"] == name and r["variant"] == variant]
            print(f"{name:22s} {variant:34s} {np.mean(accs):.4f} ± {np.std(accs):.4f}  "
                  f"({', '.join(f'{a:.4f}' for a in accs)}); reverse-complemented test {np.mean(rc):.4f}")
    write(args.json, {"machine": machine(), "args": vars(args), "rows": rows})


if __name__ == "__main__":
    main()
