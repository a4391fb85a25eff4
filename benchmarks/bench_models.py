"""Training throughput of registered sequence models: forward + backward + AdamW step, sequences per second.

Usage: python benchmarks/bench_models.py [--length 1000] [--batch 64] [--device cpu|cuda] [--json out.json]
       [--models dilated_resnet,transformer,transformer:patch=8] [--baseline dilated_resnet]

A model is ``name`` or ``name:param=value:param=value`` (hyperparameters, e.g. ``transformer:patch=8``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch
import torch.nn.functional as F

from biolens.models import create_model
from biolens.data.augment import gc_content

# Timed steps per model per round on CPU: the recurrent models take seconds per step at length 1,000.
CPU_STEPS = {"dilated_resnet": 5, "motif_cnn": 2, "cnn_bilstm_attention": 1, "promoter_predictor": 1,
             "transformer": 1, "dilated_resnet_rc": 3, "bigru": 1}
BASELINE = "cnn_bilstm_attention"


def _value(text: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


class Runner:
    """One model, its optimizer and a fixed random batch; ``run(n)`` times ``n`` training steps."""

    def __init__(self, spec: str, args: argparse.Namespace):
        self.name = spec
        self.base, *pairs = spec.split(":")
        params = {k: _value(v) for k, v in (pair.split("=", 1) for pair in pairs)}
        self.device = torch.device(args.device)
        torch.manual_seed(0)
        self.model = create_model(self.base, vocab_size=6, num_classes=2, **params).to(self.device).train()
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-3, weight_decay=0.01)
        self.x = torch.randint(1, 6, (args.batch, args.length), dtype=torch.uint8, device=self.device)
        self.y = torch.randint(0, 2, (args.batch,), device=self.device)
        self.kwargs = {"gc": gc_content(self.x)} if "gc" in self.model.aux_inputs else {}
        self.bf16 = self.device.type == "cuda" and not args.no_bf16
        self.seconds, self.steps = 0.0, 0

    def _step(self) -> None:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            loss = F.cross_entropy(self.model(self.x, **self.kwargs), self.y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def run(self, n: int, timed: bool = True) -> None:
        self._sync()
        t0 = time.perf_counter()
        for _ in range(n):
            self._step()
        self._sync()
        if timed:
            self.seconds += time.perf_counter() - t0
            self.steps += n

    def result(self, batch: int) -> dict:
        s_per_step = self.seconds / self.steps
        return {
            "model": self.name,
            "params": sum(p.numel() for p in self.model.parameters()),
            "steps": self.steps,
            "s_per_step": s_per_step,
            "seqs_per_s": batch / s_per_step,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="dilated_resnet,motif_cnn,cnn_bilstm_attention")
    parser.add_argument("--length", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per model")
    parser.add_argument("--steps", type=int, help="timed steps per model per round (default: CPU_STEPS, 10 on GPU)")
    parser.add_argument("--rounds", type=int, default=2, help="models take turns this many times (fair under load)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--no-bf16", action="store_true", help="on cuda, train in float32 instead of bf16 autocast")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch CPU threads")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--baseline", default=BASELINE, help="the model the speed ratios are relative to")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    if args.device == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("--device cuda given but no CUDA device is available")
        torch.backends.cudnn.benchmark = True
        hardware = torch.cuda.get_device_name()
    else:
        hardware = f"{platform.machine()} CPU, {args.threads} threads"

    names = [n.strip() for n in args.models.split(",") if n.strip()]
    runners = [Runner(name, args) for name in names]
    for r in runners:
        r.run(args.warmup, timed=False)
    for _ in range(args.rounds):  # interleaved, so background load affects every model alike
        for r in runners:
            r.run(args.steps or (CPU_STEPS.get(r.base, 2) if args.device == "cpu" else 10))
    results = [r.result(args.batch) for r in runners]

    base = next((r for r in results if r["model"] == args.baseline), None)
    precision = "bf16 autocast" if args.device == "cuda" and not args.no_bf16 else "float32"
    print(f"train step (fwd+bwd+AdamW), length {args.length}, batch {args.batch}, {hardware}, {precision}, "
          f"torch {torch.__version__}")
    print(f"{'model':<30}{'params':>12}{'steps':>7}{'s/step':>10}{'seqs/s':>10}{'vs ' + args.baseline:>28}")
    for r in results:
        r["speedup_vs_baseline"] = r["seqs_per_s"] / base["seqs_per_s"] if base else None
        ratio = f"{r['speedup_vs_baseline']:.1f}x" if base else "-"
        print(f"{r['model']:<30}{r['params']:>12,}{r['steps']:>7}{r['s_per_step']:>10.3f}{r['seqs_per_s']:>10.1f}"
              f"{ratio:>28}")
    if args.json:
        meta = {"length": args.length, "batch": args.batch, "device": args.device, "hardware": hardware,
                "precision": precision, "torch": torch.__version__}  # fmt: skip
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
