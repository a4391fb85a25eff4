"""Per-step overhead of ``biolens`` Trainer against a minimal hand-written loop: same model, data, optimizer.

Both loops do forward, cross-entropy, backward, gradient clipping, an AdamW step and ``loss.item()`` on the same
device-resident batches (``SequenceBatches`` of bundled splice, batch 64). The Trainer adds what a run uses:
accumulation bookkeeping, the NaN guard, per-batch schedule check, accuracy counting, and the ``LRMonitor`` and
``EarlyStopping`` callbacks. Both loops run the same pre-cut batches in alternating chunks of steps, and the
ratio is the median of the per-chunk ratios, so background load on a shared machine hits both alike.

Usage: python benchmarks/bench_trainer.py [--epochs 6] [--chunk 10] [--threads 1] [--device cpu|cuda] [--model dilated_resnet] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time

import torch
from torch import nn

from biolens.data.dataset import SequenceBatches
from biolens.data.prepare import prepare_sequences
from biolens.config import DataConfig
from biolens.models import create_model
from biolens.training.callbacks import EarlyStopping, LRMonitor
from biolens.training.trainer import Trainer


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def minimal_steps(model, opt, loss_fn, batches, device) -> float:
    model.train()
    start = time.perf_counter()
    for batch in batches:
        logits = model(batch["x"])
        loss = loss_fn(logits, batch["y"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        loss.item()
    sync(device)
    return time.perf_counter() - start


def trainer_steps(trainer, batches, device) -> float:
    start = time.perf_counter()
    trainer.train_epoch(batches)  # per-epoch work (train mode, metric reduction) counted once per chunk
    sync(device)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=6, help="timed epochs per loop (after one warm-up each)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--model", default="dilated_resnet")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--chunk", type=int, default=10, help="steps per timed chunk; the loops alternate per chunk")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (default 1: overhead is per step, and one thread is far less disturbed by "
                         "other load on a shared machine); 0 = torch's default")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    data = prepare_sequences(DataConfig(path="builtin:splice"), seed=0)
    train = data.splits["train"]
    make = lambda: create_model(args.model, vocab_size=data.alphabet.vocab_size,  # noqa: E731
                                num_classes=len(data.class_names)).to(device)
    torch.manual_seed(0)
    m_model, t_model, c_model = make(), make(), make()
    t_model.load_state_dict(m_model.state_dict())
    c_model.load_state_dict(m_model.state_dict())
    m_opt = torch.optim.AdamW(m_model.parameters(), lr=1e-3, weight_decay=0.01)
    c_opt = torch.optim.AdamW(c_model.parameters(), lr=1e-3, weight_decay=0.01)
    t_opt = torch.optim.AdamW(t_model.parameters(), lr=1e-3, weight_decay=0.01)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    m_b = SequenceBatches(train, args.batch, shuffle=True, device=device)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(t_model, t_opt, loss_fn, grad_clip=1.0,
                          callbacks=[LRMonitor(tmp), EarlyStopping("val_loss", 5)])
        chunks = [list(m_b)[i:i + args.chunk] for i in range(0, len(m_b), args.chunk)]
        minimal_steps(m_model, m_opt, loss_fn, chunks[0], device)  # warm-up
        trainer_steps(trainer, chunks[0], device)
        m_times, t_times, ratios, control = [], [], [], []
        for epoch in range(1, args.epochs + 1):
            m_b.set_epoch(epoch)
            trainer.epoch = epoch
            batches = list(m_b)  # the same device-resident batches for both loops
            for j in range(0, len(batches), args.chunk):
                chunk = batches[j:j + args.chunk]
                # A/A control: a second copy of the minimal loop measures the noise floor of this machine
                runs = {"m": lambda: minimal_steps(m_model, m_opt, loss_fn, chunk, device),
                        "t": lambda: trainer_steps(trainer, chunk, device),
                        "c": lambda: minimal_steps(c_model, c_opt, loss_fn, chunk, device)}
                order = ["m", "t", "c"] if (j // args.chunk + epoch) % 2 else ["c", "t", "m"]  # alternate positions
                timed = {k: runs[k]() for k in order}
                m, t = timed["m"], timed["t"]
                control.append(timed["m"] / timed["c"])
                m_times.append(m / len(chunk))
                t_times.append(t / len(chunk))
                ratios.append(m / t)
    steps = len(m_b)
    m_step, t_step = statistics.median(m_times), statistics.median(t_times)
    result = {
        "device": torch.cuda.get_device_name(0) if device.type == "cuda" else f"{platform.machine()} CPU",
        "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "model": args.model,
        "batch": args.batch, "steps_per_epoch": steps, "epochs": args.epochs,
        "minimal_ms_per_step": round(1000 * m_step, 3), "trainer_ms_per_step": round(1000 * t_step, 3),
        "trainer_speed_ratio": round(statistics.median(ratios), 4), "chunk": args.chunk, "pairs": len(ratios),
        "ratio_of_totals": round(sum(m_times) / sum(t_times), 4),
        "control_minimal_vs_minimal": round(statistics.median(control), 4),
        "control_spread": [round(min(control), 3), round(max(control), 3)],
    }
    print(f"{'loop':<10} {'ms/step (median chunk)':>24}")
    print(f"{'minimal':<10} {result['minimal_ms_per_step']:>24.3f}")
    print(f"{'Trainer':<10} {result['trainer_ms_per_step']:>24.3f}")
    print(f"Trainer speed / minimal loop speed: {result['trainer_speed_ratio']:.3f}x median of {len(ratios)} paired "
          f"chunks of {args.chunk} steps, {result['ratio_of_totals']:.3f}x of totals (goal >= 0.98x)")
    print(f"noise floor (minimal vs an identical minimal loop): {result['control_minimal_vs_minimal']:.3f}x, "
          f"per-chunk range {result['control_spread'][0]}-{result['control_spread'][1]}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
