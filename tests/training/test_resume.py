"""Exact resume: a run killed with SIGKILL and resumed ends bitwise equal to an uninterrupted one; atomic writes."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from biolens.errors import BundleError, ConfigError
from biolens.training.state import load_checkpoint, save_checkpoint
from tests.conftest import planted_dna, write_csv

ROOT = Path(__file__).resolve().parents[2]
EPOCHS = 6


def _cmd(*args):
    return [sys.executable, "-m", "biolens", "train", *map(str, args), "--quiet"]


def _env():
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    return env


def _epoch_of(ckpt: Path) -> int:
    try:
        return int(torch.load(ckpt, weights_only=True)["epoch"])
    except Exception:  # noqa: BLE001 - not there yet
        return 0


@pytest.mark.slow
def test_sigkill_after_epoch_then_resume_is_bitwise_identical(tmp_path):
    seqs, labels = planted_dna(n=600, seed=4)
    data = write_csv(tmp_path / "d.csv", seqs, labels)
    # substitution augmentation (device generator), dropout (torch RNG) and a plateau schedule all carry state
    common = ["--data", data, "--epochs", EPOCHS, "--batch-size", 16, "--lr", 3e-3, "--deterministic",
              "--set", "model.params.channels=16", "--set", "model.params.blocks=1",
              "--set", "data.augment.substitution_rate=0.02", "--set", "train.early_stopping_patience=null",
              "--set", "train.plateau_patience=0"]
    full, killed = tmp_path / "full", tmp_path / "killed"
    subprocess.run(_cmd(*common, "--out", full), check=True, env=_env(), cwd=tmp_path, timeout=300)

    proc = subprocess.Popen(_cmd(*common, "--out", killed), env=_env(), cwd=tmp_path)
    deadline = time.time() + 240
    while _epoch_of(killed / "checkpoints" / "last.pt") < 2 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    k = _epoch_of(killed / "checkpoints" / "last.pt")
    assert 2 <= k < EPOCHS, f"kill landed after epoch {k}; the run must be interrupted"

    subprocess.run(_cmd("--resume", killed), check=True, env=_env(), cwd=tmp_path, timeout=300)
    a = torch.load(full / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(killed / "checkpoints" / "last.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == EPOCHS and a["step"] == b["step"]
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name  # bitwise, not approximately
    assert (full / "model.safetensors").read_bytes() == (killed / "model.safetensors").read_bytes()
    strip = lambda rows: [{k: v for k, v in r.items() if k != "time_s"} for r in rows]  # noqa: E731
    assert strip(a["history"]) == strip(b["history"])
    assert (full / "lr.csv").read_text() == (killed / "lr.csv").read_text()


def test_crash_during_checkpoint_write_keeps_previous_checkpoint(tmp_path):
    path = tmp_path / "last.pt"
    good = {"epoch": 1, "model": {"w": torch.arange(4.0)}}
    save_checkpoint(good, path)

    def crash(obj, fh):  # half a file, then the process "dies"
        fh.write(b"\x80\x02partial")
        raise SystemExit("killed mid-write")

    original = torch.save
    torch.save = crash
    try:
        with pytest.raises(SystemExit):
            save_checkpoint({"epoch": 2, "model": {"w": torch.zeros(4)}}, path)
    finally:
        torch.save = original
    state = load_checkpoint(path)
    assert state["epoch"] == 1 and torch.equal(state["model"]["w"], good["model"]["w"])
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left behind


def test_truncated_checkpoint_is_a_bundle_error(tmp_path):
    path = tmp_path / "last.pt"
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(BundleError, match="cannot read checkpoint"):
        load_checkpoint(path)


def test_resume_needs_a_run_folder(tmp_path):
    from biolens.workflows.train import train

    with pytest.raises(ConfigError, match=r"resume .*not a run folder \(no config.yaml\)"):
        train(resume=tmp_path / "nope")
