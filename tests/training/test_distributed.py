"""DDP with gloo on CPU: 2 processes match 1 process at the same global batch."""

import os
from pathlib import Path

import pytest
import torch
import torch.distributed as td
import torch.multiprocessing as mp
from torch import nn

from biolens.training.distributed import Dist, launch_command, wrap
from biolens.training.trainer import Trainer
from tests.training.helpers import TinyNet, batches

GLOBAL_BATCH, EPOCHS = 16, 3


def _fit(dist: Dist) -> tuple[dict, list, torch.Tensor]:
    torch.set_num_threads(1)
    model = TinyNet(seed=0)
    train, val = batches(96, GLOBAL_BATCH, seed=5), batches(32, GLOBAL_BATCH, seed=6, shuffle=False)
    for b in (train, val):
        b.rank, b.num_replicas = dist.rank, dist.world_size
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    trainer = Trainer(model, opt, nn.CrossEntropyLoss(), max_epochs=EPOCHS, grad_clip=1.0,
                      net=wrap(model, dist, torch.device("cpu")), dist=dist)
    history = trainer.fit(train, val)
    train.set_epoch(1)
    return model.state_dict(), history, torch.cat([b["index"] for b in train])


def _worker(rank: int, world: int, init_file: str, out: str) -> None:
    td.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        state, history, seen = _fit(Dist(rank, world, rank))
        torch.save({"state": state, "history": history, "seen": seen}, f"{out}.{rank}")
    finally:
        from biolens.training.distributed import shutdown

        shutdown()  # barrier, then destroy: both ranks leave the group together


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(tmp_path):
    single_state, single_history, _ = _fit(Dist())
    out = tmp_path / "ddp.pt"
    mp.spawn(_worker, args=(2, str(tmp_path / "rendezvous"), str(out)), nprocs=2, join=True)
    ddp, other = (torch.load(f"{out}.{r}", weights_only=True) for r in (0, 1))
    assert len(ddp["seen"]) == len(other["seen"]) == 48  # each process trains on its own half of every batch
    assert sorted(torch.cat([ddp["seen"], other["seen"]]).tolist()) == list(range(96))
    for k, v in ddp["state"].items():
        assert torch.equal(v, other["state"][k])  # DDP keeps the replicas identical
    # Tolerance: each rank averages the loss over its 8 samples and DDP averages the two gradients, which is the
    # mean over the same 16 samples the single process uses; only float32 summation order differs (~1e-7
    # relative per reduction). Over 18 SGD steps with momentum that stays below 1e-5; a sharding or scaling bug
    # (wrong samples, or gradients summed instead of averaged) moves weights by 1e-2 or more.
    for k, v in single_state.items():
        torch.testing.assert_close(ddp["state"][k], v, rtol=1e-5, atol=1e-5)
    for a, b in zip(single_history, ddp["history"]):  # metrics are all-reduced over both shards
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-5)
        assert a["val_acc"] == b["val_acc"]


def test_devices_flag_builds_a_torchrun_command():
    cmd = launch_command(2, ["train", "--data", "x.csv", "--devices", "2", "--out", "runs/x"])
    assert cmd[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    assert cmd[5:] == ["-m", "biolens", "train", "--data", "x.csv", "--out", "runs/x"]


@pytest.mark.slow
def test_devices_2_runs_torchrun_and_resumes(tmp_path):
    import json
    import subprocess
    import sys

    from tests.conftest import planted_dna, write_csv

    seqs, labels = planted_dna(n=200, seed=8)
    data = write_csv(tmp_path / "d.csv", seqs, labels)
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"), OMP_NUM_THREADS="1")
    base = [sys.executable, "-m", "biolens", "train", "--devices", "2", "--quiet"]
    subprocess.run(base + ["--data", str(data), "--out", str(out), "--epochs", "2", "--batch-size", "32",
                           "--set", "model.params.channels=8", "--set", "model.params.blocks=1"],
                   check=True, env=env, cwd=tmp_path, timeout=240)
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["world_size"] == 2 and summary["epochs_run"] == 2
    subprocess.run(base + ["--resume", str(out), "--epochs", "3"], check=True, env=env, cwd=tmp_path, timeout=240)
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3]  # written once, by rank 0
    assert json.loads((out / "train_summary.json").read_text())["resumed"] is True
