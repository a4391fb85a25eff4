"""Kill tests: trainings killed with SIGKILL at random points resume to bitwise-identical weights; checkpoint
writes killed at random moments never leave a truncated checkpoint; a full disk or a read-only folder is one line
and keeps the previous checkpoint.

The trainings run in forked children of the test process (torch is imported once, so 20 kills take seconds, not
minutes); every child trains single-threaded and deterministically on the CPU.
"""

from __future__ import annotations

import os
import random
import resource
import signal
import time
from pathlib import Path

import pytest
import torch

from biolens.errors import BiolensError
from biolens.training import state as state_mod
from biolens.training.state import load_checkpoint, save_checkpoint
from biolens.workflows.train import train
from tests.conftest import planted_dna, write_csv

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")
EPOCHS = 4


def _config(data: Path, out: Path) -> dict:
    return {"data": {"path": str(data), "augment": {"substitution_rate": 0.02}},
            "model": {"name": "dilated_resnet", "params": {"channels": 8, "blocks": 1}},
            "train": {"epochs": EPOCHS, "batch_size": 16, "lr": 3e-3, "deterministic": True,
                      "early_stopping_patience": None, "plateau_patience": 0},
            "out": str(out)}


def _in_child(fn, slow_checkpoints: bool = False) -> int:  # noqa: ANN001
    """Run ``fn`` in a forked child; its pid."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            torch.set_num_threads(1)
            if slow_checkpoints:  # hold every checkpoint write open a while, so kills land inside writes
                original = state_mod.atomic_write

                def slow(path, write):  # noqa: ANN001, ANN202
                    def chunked(fh):  # noqa: ANN001, ANN202
                        write(fh)
                        fh.flush()
                        time.sleep(0.05)
                    return original(path, chunked)

                state_mod.atomic_write = slow
            fn()
        except BaseException:  # noqa: BLE001
            code = 3
        os._exit(code)
    return pid


def _wait(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _first_checkpoint(run: Path) -> None:
    """Wait until the training writing to ``run`` has written its first checkpoint."""
    deadline = time.time() + 120
    while not (run / "checkpoints" / "last.pt").exists() and time.time() < deadline:
        time.sleep(0.005)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run / "checkpoints" / "last.pt")["model"]


@pytest.mark.slow
def test_twenty_random_sigkills_resume_to_bitwise_identical_weights(tmp_path: Path):
    seqs, labels = planted_dna(n=160, seed=6)
    data = write_csv(tmp_path / "d.csv", seqs, labels)
    ref = tmp_path / "ref"
    pid = _in_child(lambda: train(_config(data, ref)))
    _first_checkpoint(ref)
    t0 = time.time()
    assert _wait(pid) == 0
    span = time.time() - t0  # from the first checkpoint to the end: the window in which kills land mid-training
    reference = _weights(ref)
    rng = random.Random(2026)
    outcomes = {"resumed": 0, "finished_before_kill": 0, "inside_checkpoint_write": 0}
    for k in range(20):
        out = tmp_path / f"kill{k}"
        slow = k % 3 == 0
        pid = _in_child(lambda: train(_config(data, out)), slow_checkpoints=slow)
        _first_checkpoint(out)  # from here on every moment is a fair kill point
        time.sleep(rng.uniform(0, span * 0.7))
        os.kill(pid, signal.SIGKILL)
        code = _wait(pid)
        if code == 0:
            outcomes["finished_before_kill"] += 1
        else:
            assert code == -signal.SIGKILL, code
            temps = list((out / "checkpoints").glob(".*.tmp"))
            outcomes["inside_checkpoint_write"] += bool(temps)
            assert _wait(_in_child(lambda: train(resume=out))) == 0
            outcomes["resumed"] += 1
            assert not list(out.rglob(".*.tmp")), "a resumed run still holds an interrupted write's temp file"
        got = _weights(out)
        assert got.keys() == reference.keys()
        for name, tensor in reference.items():
            assert torch.equal(tensor, got[name]), f"kill {k}: {name} differs after resume"
        assert (out / "model.safetensors").read_bytes() == (ref / "model.safetensors").read_bytes()
    assert outcomes["resumed"] >= 15, outcomes  # most kills landed inside training
    assert outcomes["inside_checkpoint_write"] >= 1, outcomes


def test_a_hundred_kills_during_checkpoint_writes_never_truncate_one(tmp_path: Path):
    path = tmp_path / "last.pt"
    save_checkpoint({"k": 0, "w": torch.zeros(20_000)}, path)
    rng = random.Random(7)

    def writer() -> None:
        for k in range(1, 10_000):
            save_checkpoint({"k": k, "w": torch.full((20_000,), float(k))}, path)

    for _ in range(100):
        pid = _in_child(writer)
        time.sleep(rng.uniform(0.0, 0.03))
        os.kill(pid, signal.SIGKILL)
        _wait(pid)
        state = load_checkpoint(path)  # never truncated, never mixed
        assert torch.equal(state["w"], torch.full((20_000,), float(state["k"])))
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "last.pt"]
    assert all(p.startswith(".last.pt.") and p.endswith(".tmp") for p in leftovers)  # only a write's own temp files


def test_disk_full_is_one_line_and_keeps_the_previous_checkpoint(tmp_path: Path):
    seqs, labels = planted_dna(n=160, seed=6)
    data = write_csv(tmp_path / "d.csv", seqs, labels)
    out = tmp_path / "run"
    result = tmp_path / "result.txt"

    def limited() -> None:
        cfg = _config(data, out)
        cfg["train"]["epochs"] = 1
        train(cfg)  # one epoch: a complete checkpoint to keep
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversize write fails with EFBIG instead of killing us
        size = (out / "checkpoints" / "last.pt").stat().st_size
        resource.setrlimit(resource.RLIMIT_FSIZE, (size // 2, resource.RLIM_INFINITY))
        try:
            cfg["train"]["epochs"] = 3
            train(cfg | {"out": str(out)}, resume=out)
        except BiolensError as e:
            resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            result.write_text(str(e))

    assert _wait(_in_child(limited)) == 0
    message = result.read_text()
    assert "\n" not in message and "cannot write" in message and "File too large" in message, message
    assert "previous checkpoint is unchanged" in message
    assert load_checkpoint(out / "checkpoints" / "last.pt")["epoch"] == 1  # the complete one from before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders, so the check cannot be observed")
def test_read_only_run_folder_is_refused_before_training(tmp_path: Path):
    seqs, labels = planted_dna(n=160, seed=6)
    data = write_csv(tmp_path / "d.csv", seqs, labels)
    cfg = _config(data, tmp_path / "run")
    cfg["train"]["epochs"] = 1
    train(cfg)
    os.chmod(tmp_path / "run", 0o555)
    try:
        with pytest.raises(BiolensError, match="read-only"):
            train(resume=tmp_path / "run")
    finally:
        os.chmod(tmp_path / "run", 0o755)
