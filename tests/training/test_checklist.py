"""The pre-training checklist inside `biolens train`: saved in the run, a failure stops training unless forced."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from biolens.errors import ConfigError, DataError
from biolens.workflows.train import train
from tests.conftest import TINY_MODEL


def _cfg(data: Path, out: Path, **data_extra) -> dict:
    return {"data": {"path": str(data), **data_extra}, "model": {"name": "dilated_resnet", "params": TINY_MODEL},
            "train": {"epochs": 1, "batch_size": 64}, "out": str(out)}


def test_checklist_saved_in_run(planted_csv: Path, tmp_path: Path):
    result = train(_cfg(planted_csv, tmp_path / "run"))
    saved = json.loads((result.run_dir / "checklist.json").read_text())
    assert saved["status"] == "pass" and saved["forced"] is False
    assert [f["name"] for f in saved["findings"]] == ["splits separate", "augmentation on train only",
                                                      "loss matches the task", "seeds set", "checkpoint folder"]
    assert "MB for 2 checkpoint(s)" in saved["findings"][-1]["detail"]


@pytest.mark.filterwarnings("ignore:480 val/test sequences also occur")  # prepare's own leakage warning
def test_same_file_as_val_stops_training_unless_forced(planted_csv: Path, tmp_path: Path):
    out = tmp_path / "run"
    with pytest.raises(DataError, match=r"pre-training check 'splits separate' failed: 100% of val .*force=True"):
        train(_cfg(planted_csv, out, val=str(planted_csv), test=str(planted_csv)))
    assert not out.exists()
    result = train(_cfg(planted_csv, out, val=str(planted_csv), test=str(planted_csv)), force=True)
    saved = json.loads((result.run_dir / "checklist.json").read_text())
    assert saved["forced"] is True and saved["findings"][0]["status"] == "fail"


def test_no_disk_space_stops_training(planted_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import shutil

    from biolens.training import checklist

    monkeypatch.setattr(checklist.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(ConfigError, match="'checkpoint folder' failed: .*0.0 GB free"):
        train(_cfg(planted_csv, tmp_path / "run"))
