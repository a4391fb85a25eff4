import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from biolens.data.alphabets import DNA
from biolens.data.dataset import SequenceBatches, SequenceData
from biolens.data.encoding import encode
from biolens.bundle import load_weights
from biolens.models import create_model
from biolens.training.callbacks import EarlyStopping
from biolens.training.trainer import Callback, Trainer, TrainingError
from tests.conftest import planted_dna


def _data(n=64, seed=0, vary=False):
    seqs, labels = planted_dna(n=n, seed=seed, vary=vary)
    x, lengths = encode(seqs, DNA)
    y = np.array([lab == "promoter" for lab in labels], dtype=np.int64)
    return SequenceData(np.arange(n), x, lengths, y, DNA)


def test_batches_dynamic_padding_and_full_coverage():
    data = _data(n=50, vary=True)
    batches = SequenceBatches(data, 16, shuffle=True, seed=1)
    seen = []
    for b in batches:
        width = int(data.lengths[b["index"].numpy()].max())
        assert b["x"].shape == (len(b["index"]), width)  # cut to the batch's longest sequence
        seen += b["index"].tolist()
    assert sorted(seen) == list(range(50)) and len(batches) == 4


def test_batches_shuffle_is_seeded_per_epoch():
    data = _data()
    a, b = SequenceBatches(data, 8, shuffle=True, seed=3), SequenceBatches(data, 8, shuffle=True, seed=3)
    order = lambda bs: torch.cat([x["index"] for x in bs]).tolist()  # noqa: E731
    assert order(a) == order(b)
    a.set_epoch(2)
    assert order(a) != order(b)


def test_batches_gc_and_rc_augmentation():
    data = _data()
    b = next(iter(SequenceBatches(data, 64, with_gc=True, reverse_complement=True, seed=0)))
    assert b["gc"].shape == (64,) and ((b["gc"] >= 0) & (b["gc"] <= 1)).all()
    original = torch.from_numpy(data.x[b["index"].numpy()]).to(b["x"].dtype)
    flipped = (b["x"] != original).any(dim=1)
    assert 10 < int(flipped.sum()) < 54  # about half the rows are reverse-complemented


class Recorder(Callback):
    def __init__(self):
        self.calls = []

    def on_fit_start(self, trainer):
        self.calls.append("fit_start")

    def on_epoch_start(self, trainer):
        self.calls.append("epoch_start")

    def on_batch_end(self, trainer, loss):
        self.calls.append("batch")

    def on_epoch_end(self, trainer, logs):
        self.calls.append("epoch_end")

    def on_fit_end(self, trainer):
        self.calls.append("fit_end")


def _trainer(model, **kw):
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    return Trainer(model, opt, nn.CrossEntropyLoss(), **kw)


def test_trainer_learns_and_calls_hooks_in_order():
    torch.manual_seed(0)
    model = create_model("dilated_resnet", vocab_size=6, num_classes=2, channels=32, blocks=1)
    rec = Recorder()
    train = SequenceBatches(_data(n=256), 32, shuffle=True)
    val = SequenceBatches(_data(n=64, seed=1), 64)
    history = _trainer(model, max_epochs=6, callbacks=[rec]).fit(train, val)
    assert len(history) == 6
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert rec.calls[0] == "fit_start" and rec.calls[-1] == "fit_end"
    assert rec.calls.count("epoch_start") == 6 and rec.calls.count("batch") == 6 * 8
    assert set(history[0]) >= {"epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "time_s"}


def test_early_stopping_stops():
    model = create_model("dilated_resnet", vocab_size=6, num_classes=2, channels=8, blocks=1)
    trainer = _trainer(model, max_epochs=50, callbacks=[EarlyStopping("val_loss", patience=1, min_delta=10.0)])
    history = trainer.fit(SequenceBatches(_data(), 32), SequenceBatches(_data(seed=1), 64))
    assert len(history) == 2  # epoch 1 sets the best, epoch 2 cannot improve by 10


def test_early_stopping_names_available_metrics():
    cb = EarlyStopping("val_auc")
    with pytest.raises(KeyError, match="metric 'val_auc' not available; available metrics are epoch, val_loss"):
        cb.on_epoch_end(None, {"epoch": 1, "val_loss": 0.3})


def test_nan_loss_raises_training_error():
    model = create_model("dilated_resnet", vocab_size=6, num_classes=2, channels=8, blocks=1)
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), lambda logits, y: logits.sum() * math.nan,
                      max_epochs=1)
    with pytest.raises(TrainingError, match="loss became nan at epoch 1, step 1; lower the learning rate"):
        trainer.fit(SequenceBatches(_data(), 32), SequenceBatches(_data(), 32))


def test_train_api_run_folder_and_reload(trained_run):
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert set(metrics) == {"best_epoch", "val", "test"}
    history = json.loads((trained_run / "history.json").read_text())
    assert metrics["best_epoch"] == min(history, key=lambda h: h["val_loss"])["epoch"]
    state = torch.load(trained_run / "checkpoints" / "best.pt", weights_only=True)  # no pickle needed
    assert state["epoch"] == metrics["best_epoch"]
    manifest = json.loads((trained_run / "manifest.json").read_text())
    assert "model.safetensors" in manifest["files"] and len(manifest["dataset_fingerprint"]) == 64
    model = create_model("dilated_resnet", vocab_size=6, num_classes=2, channels=16, blocks=1)
    load_weights(model, trained_run / "model.safetensors")
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, state["model"][k])
