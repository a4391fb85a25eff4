"""Sequence batches from the memory-mapped store vs from the in-RAM (device-resident) split.

Builds a store from a synthetic FASTA (streamed, chunk by chunk), then times one shuffled epoch of
``SequenceBatches`` for each path, with and without augmentation (reverse complement, substitutions, shift), and
checks that both paths give identical batches. The store is read from the page cache here (it was just written),
so this is the cost of the read path itself, not of a disk.

Usage: python benchmarks/bench_seqstore.py [--n 100000] [--length 1000] [--batch 256] [--rounds 3] [--device cpu]
       [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from biolens.data.dataset import SequenceBatches, SequenceData
from biolens.data.store import Source, open_or_build
from biolens.data.synthetic import write_random_fasta


def epoch_rate(batches: SequenceBatches, epochs: int = 2) -> tuple[float, list[torch.Tensor]]:
    """Samples/s over ``epochs`` shuffled epochs (the device is synchronized at the end) and the first epoch's x."""
    first: list[torch.Tensor] = []
    t0 = time.perf_counter()
    n = 0
    for epoch in range(epochs):
        batches.set_epoch(epoch)
        for batch in batches:
            n += len(batch["x"])
            if epoch == 0 and len(first) < 50:
                first.append(batch["x"].cpu())
    if batches.device.type == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - t0), first


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--length", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fa = Path(tmp) / "seqs.fa"
        write_random_fasta(fa, args.n, args.length)
        t0 = time.perf_counter()
        store = open_or_build([Source(fa)], cache_dir=Path(tmp) / "store")
        build_s = time.perf_counter() - t0
        rows = np.arange(len(store))
        mapped = SequenceData(store.ids, store.x, store.lengths, store.labels, store.alphabet, rows=rows)
        in_ram = SequenceData(store.ids, np.asarray(store.x).copy(), store.lengths, store.labels, store.alphabet)
        results = {"n": args.n, "length": args.length, "batch": args.batch, "device": args.device,
                   "file_mb": round(fa.stat().st_size / 2**20, 1), "build_s": round(build_s, 2),
                   "build_records_per_s": round(args.n / build_s), "torch": torch.__version__,
                   "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads", "rows": []}
        for aug in ({}, {"reverse_complement": True, "substitution_rate": 0.01, "shift": 10}):
            rates, firsts = {}, {}
            for _ in range(args.rounds):  # the paths take turns, so background load hits both alike; best round kept
                for name, data in (("in-memory (resident)", in_ram), ("mmap store (streamed)", mapped)):
                    b = SequenceBatches(data, args.batch, shuffle=True, device=args.device, seed=0, **aug)
                    rate, firsts[name] = epoch_rate(b)
                    rates[name] = max(rate, rates.get(name, 0.0))
            same = all(torch.equal(a, b) for a, b in zip(*firsts.values()))
            for name, rate in rates.items():
                results["rows"].append({"path": name, "augment": bool(aug), "samples_per_s": round(rate),
                                        "identical_batches": same})
        print(f"file {results['file_mb']} MB, {args.n} × {args.length}; store built in {build_s:.1f} s "
              f"({results['build_records_per_s']:,} records/s)")
        print(f"{'path':24} {'augment':8} {'samples/s':>10}  identical")
        for r in results["rows"]:
            print(f"{r['path']:24} {str(r['augment']):8} {r['samples_per_s']:>10,}  {r['identical_batches']}")
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
