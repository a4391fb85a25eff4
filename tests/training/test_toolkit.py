"""Schedules (per batch vs per epoch), accumulation equivalence, mixed precision, the LR finder and the NaN guard."""

import copy
import math

import pytest
import torch
from torch import nn

from biolens.errors import ConfigError
from biolens.training.callbacks import EarlyStopping, LRMonitor
from biolens.training.lr_finder import range_test, suggest
from biolens.training.optim import make_optimizer
from biolens.training.schedules import SCHEDULES, make_scheduler
from biolens.training.trainer import Callback, Trainer, TrainingError
from tests.training.helpers import TinyNet, batches


class StepCounter(Callback):
    def __init__(self):
        self.lrs = []  # (epoch, lr after the step)

    def on_batch_end(self, trainer, loss):
        self.lrs.append((trainer.epoch, trainer.lr))


@pytest.mark.parametrize("name", [s for s in SCHEDULES if s != "none"])
def test_schedule_steps_per_batch_or_per_epoch(name):
    model = TinyNet()
    opt = make_optimizer("adamw", model, lr=1e-2)
    epochs, spe = 3, 4
    sched = make_scheduler(name, opt, epochs=epochs, steps_per_epoch=spe, step_size=1, gamma=0.5,
                           warmup_epochs=1, plateau_patience=0)
    calls = []
    original = sched.step
    sched.step = lambda *a, **k: (calls.append(1), original(*a, **k))[1]
    rec = StepCounter()
    Trainer(model, opt, nn.CrossEntropyLoss(), scheduler=sched, max_epochs=epochs, callbacks=[rec]).fit(
        batches(32, 8), batches(16, 8, seed=1))
    assert len(rec.lrs) == epochs * spe
    per_epoch = [{round(lr, 12) for e, lr in rec.lrs if e == ep} for ep in range(1, epochs + 1)]
    if SCHEDULES[name] == "batch":
        assert len(calls) == epochs * spe  # one-cycle would raise past its last step
        assert all(len(s) >= 2 for s in per_epoch)  # LR changes inside every epoch
    else:
        assert len(calls) == epochs
        assert all(len(s) == 1 for s in per_epoch)  # constant within an epoch
        if name == "step":
            assert per_epoch[1].pop() == pytest.approx(5e-3)


def test_unknown_schedule_names_choices():
    with pytest.raises(ConfigError, match="unknown train.schedule 'linear'; expected one of: plateau, step"):
        make_scheduler("linear", make_optimizer("adamw", TinyNet(), lr=1e-3), epochs=1, steps_per_epoch=1)


def test_lr_monitor_logs_every_step(tmp_path):
    model = TinyNet()
    opt = make_optimizer("sgd", model, lr=0.1, lr_mult={"head": 10})
    sched = make_scheduler("onecycle", opt, epochs=2, steps_per_epoch=4)
    mon = LRMonitor(tmp_path)
    Trainer(model, opt, nn.CrossEntropyLoss(), scheduler=sched, max_epochs=2, callbacks=[mon]).fit(
        batches(32, 8), batches(16, 8))
    lines = (tmp_path / "lr.csv").read_text().splitlines()
    assert lines[0] == "step,epoch,lr_group0,lr_group1" and len(lines) == 9
    first = lines[1].split(",")
    assert float(first[3]) == pytest.approx(10 * float(first[2]))  # the head group keeps its own LR


def _one_epoch(bs, accumulate, clip):
    model = TinyNet(seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    Trainer(model, opt, nn.CrossEntropyLoss(), max_epochs=1, grad_clip=clip, accumulate=accumulate).fit(
        batches(128, bs, seed=2), batches(16, 16))
    return model.state_dict()


@pytest.mark.parametrize("clip", [None, 0.05])
def test_accumulation_4x8_equals_1x32(clip):
    # Same shuffled order (it depends on seed and epoch, not batch size), loss scaled by each micro-batch's share
    # of the window and clipping on the accumulated gradient: the only difference is float summation order.
    a, b = _one_epoch(8, 4, clip), _one_epoch(32, 1, clip)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_on_cpu(precision):
    torch.manual_seed(0)
    model = TinyNet()
    trainer = Trainer(model, torch.optim.AdamW(model.parameters(), lr=3e-3), nn.CrossEntropyLoss(), max_epochs=3,
                      precision=precision)
    history = trainer.fit(batches(128, 16), batches(32, 16, seed=1))
    assert all(math.isfinite(h["train_loss"]) for h in history)
    assert (trainer.scaler is not None) == (precision == "fp16")
    assert "scale" in trainer.state_dict()["scaler"] or precision == "bf16"


def test_lr_finder_restores_model_optimizer_and_rng_exactly():
    from biolens.models import create_model

    torch.manual_seed(0)
    model = create_model("dilated_resnet", vocab_size=6, num_classes=2, channels=8, blocks=1)  # BN + dropout
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    Trainer(model, opt, nn.CrossEntropyLoss(), max_epochs=1).fit(batches(32, 8), batches(16, 8))  # opt has state
    model.eval()
    before_model, before_opt = copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())
    before_rng = torch.get_rng_state()
    result = range_test(model, opt, nn.CrossEntropyLoss(), batches(64, 8), start_lr=1e-6, end_lr=100, num_iter=40)
    assert result.diverged and len(result.lrs) < 40  # LR 100 blows up: the test stops early
    assert result.steepest is not None and result.min_div10 is not None
    assert not model.training
    for k, v in before_model.items():
        assert torch.equal(v, model.state_dict()[k]), k
    after = opt.state_dict()
    assert after["param_groups"] == before_opt["param_groups"]
    for pid, st in before_opt["state"].items():
        for key, v in st.items():
            assert torch.equal(v, after["state"][pid][key])
    assert torch.equal(before_rng, torch.get_rng_state())


def test_lr_suggestions_on_a_known_curve():
    lrs = [10 ** (-6 + 0.1 * i) for i in range(60)]
    loss = [1.0 if lr < 1e-4 else max(0.2, 1.0 - 0.4 * math.log10(lr / 1e-4)) for lr in lrs]
    steepest, min10 = suggest(lrs, loss)
    assert 1e-4 <= steepest <= 1e-2 and min10 == pytest.approx(lrs[loss.index(min(loss))] / 10)


def test_nan_guard_names_the_layer_whose_gradients_blew_up_and_skips_the_update():
    model = TinyNet()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    class BlowUp(Callback):
        def on_batch_end(self, trainer, loss):
            if trainer.step == 2:
                model.conv.weight.register_hook(lambda g: g * math.inf)
                self.snapshot = copy.deepcopy(model.state_dict())

    cb = BlowUp()
    trainer = Trainer(model, opt, nn.CrossEntropyLoss(), max_epochs=1, callbacks=[cb])
    with pytest.raises(TrainingError, match=r"gradient norm became (inf|nan) at epoch 1, step 3; lower the learning "
                                            r"rate \(lr 1.00e-01: try train.lr=1.0e-02.*gradients blew up in conv.weight"):
        trainer.fit(batches(64, 8), batches(16, 8))
    for k, v in cb.snapshot.items():
        assert torch.equal(v, model.state_dict()[k])  # the bad step never reached the weights


def test_nan_loss_diagnosis_finds_first_nonfinite_layer():
    model = TinyNet()
    with torch.no_grad():
        model.conv.bias[0] = math.nan
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), max_epochs=1)
    with pytest.raises(TrainingError, match="loss became nan at epoch 1, step 1.*weights already non-finite in conv.bias"):
        trainer.fit(batches(16, 8), batches(16, 8))


def test_early_stopping_max_mode_on_any_metric():
    cb = EarlyStopping("val_auc", patience=1, mode="max")

    class T:
        epoch, should_stop = 1, False
    t = T()
    cb.on_epoch_end(t, {"val_auc": 0.8})
    cb.on_epoch_end(t, {"val_auc": 0.9})
    assert not t.should_stop
    cb.on_epoch_end(t, {"val_auc": 0.85})
    assert t.should_stop and cb.best == 0.9


@pytest.mark.parametrize("val, verdict", [(0.52, "good fit"), (0.6, "slight overfitting"), (0.8, "overfitting")])
def test_fit_verdict_uses_guide_thresholds_on_val_minus_train(val, verdict, tmp_path):
    from biolens.training.plots import fit_verdict, plot_history

    history = [{"epoch": 1, "lr": 1e-3, "train_loss": 0.6, "val_loss": 0.55, "train_acc": 0.7, "val_acc": 0.7},
               {"epoch": 2, "lr": 5e-4, "train_loss": 0.5, "val_loss": val, "train_acc": 0.8, "val_acc": 0.75}]
    assert fit_verdict(history)["verdict"] == verdict
    assert plot_history(history, tmp_path / "h.png").stat().st_size > 1000
