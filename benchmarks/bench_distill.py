"""Knowledge distillation: a large teacher, the small student trained alone, and the student distilled from the
teacher, on the same data and split; accuracy, parameters and ``biolens bench`` latency side by side.

Usage: PYTHONPATH=src python benchmarks/bench_distill.py [--data builtin:splice] [--seeds 0,1,2]
       [--teacher-params channels=96,blocks=4] [--student-params ""] [--out runs/bench-distill] [--json d.json]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from _runs import fit, machine, quiet, write


def _params(text: str) -> dict:
    return {k: int(v) if v.isdigit() else v for k, v in (kv.split("=") for kv in text.split(",") if kv)}


def main() -> None:
    from biolens.deploy.latency import bench_run

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="builtin:splice")
    p.add_argument("--teacher-model", default="dilated_resnet")
    p.add_argument("--teacher-params", default="channels=96,blocks=4")
    p.add_argument("--student-model", default="dilated_resnet")
    p.add_argument("--student-params", default="")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--temperature", type=float, default=4.0)
    p.add_argument("--alpha", type=float, default=0.5)
    p.add_argument("--repeats", type=int, default=50)
    p.add_argument("--threads", type=int, default=1, help="CPU threads for biolens bench")
    p.add_argument("--out", default="runs/bench-distill")
    p.add_argument("--json")
    args = p.parse_args()
    quiet()
    out, rows = Path(args.out), []
    teacher = fit(out / "teacher", data=args.data, model=args.teacher_model, params=_params(args.teacher_params),
                  epochs=args.epochs, seed=0)
    print(f"teacher {args.teacher_model} {teacher['params']:,} params: test acc {teacher['test_accuracy']:.4f}", flush=True)
    for seed in (int(s) for s in args.seeds.split(",")):
        for arm, extra in (("alone", {}), ("distilled", {"teacher": str(out / "teacher"),
                                                          "distill_temperature": args.temperature,
                                                          "distill_alpha": args.alpha})):
            r = fit(out / f"student-{arm}-s{seed}", data=args.data, model=args.student_model,
                    params=_params(args.student_params), epochs=args.epochs, seed=seed, **extra)
            rows.append({"arm": arm, "seed": seed, **r})
            print(f"student {arm:9s} seed {seed}: test acc {r['test_accuracy']:.4f} ({r['params']:,} params)", flush=True)
    bench = {}
    for who, run in (("teacher", out / "teacher"), ("student", out / "student-distilled-s0")):
        bench[who] = bench_run(run, batch_sizes=(1, 64), repeats=args.repeats, threads=args.threads, devices=["cpu"])
    t_rows = {(r["backend"], r["batch_size"]): r for r in bench["teacher"]["rows"]}
    print(f"\nbiolens bench (CPU, {args.threads} thread(s), {args.repeats} repeats): p50 ms teacher / student, speed-up")
    speedups = []
    for r in bench["student"]["rows"]:
        t = t_rows[(r["backend"], r["batch_size"])]
        speedups.append({"backend": r["backend"], "batch_size": r["batch_size"], "teacher_p50_ms": t["p50_ms"],
                         "student_p50_ms": r["p50_ms"], "speedup": t["p50_ms"] / r["p50_ms"]})
        print(f"  {r['backend']:18s} batch {r['batch_size']:3d}: {t['p50_ms']:8.3f} / {r['p50_ms']:8.3f} ms  "
              f"{t['p50_ms'] / r['p50_ms']:.1f}x")
    for arm in ("alone", "distilled"):
        accs = [r["test_accuracy"] for r in rows if r["arm"] == arm]
        print(f"student {arm:9s}: mean test acc {np.mean(accs):.4f} ({', '.join(f'{a:.4f}' for a in accs)}); "
              f"{100 * np.mean(accs) / teacher['test_accuracy']:.1f}% of the teacher's")
    ratio = rows[0]["params"] / teacher["params"]
    print(f"student / teacher parameters: {rows[0]['params']:,} / {teacher['params']:,} = 1/{1 / ratio:.1f}")
    write(args.json, {"machine": machine(), "args": vars(args), "teacher": teacher, "students": rows,
                      "bench": speedups})


if __name__ == "__main__":
    main()
