"""The image device path: resident / pinned-staging / plain transfers give the same batches, the batched
augmentations match torchvision's per-image (v1) twins in distribution, and the speed defaults resolve per device."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from biolens.config import DataConfig, validate_config
from biolens.data.images.dataset import (ImageBatches, ImageSplit, decide_resident, resolve_transfer,
                                         split_nbytes)
from biolens.data.images.transforms import PRESETS, AugmentPreset, BatchAugment, center_crop, normalize
from biolens.errors import BiolensError, ConfigError
from biolens.models import SequenceClassifier
from biolens.models.image import ImageClassifier
from biolens.devices import loader_kwargs, resolve_channels_last, resolve_precision

GB = 1 << 30
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def store(n: int = 37, c: int = 1, s: int = 20, seed: int = 0) -> ImageSplit:
    """A split over every other row of a random uint8 store (rows ascending, as prepare makes them)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (2 * n, c, s, s), dtype=np.uint8)
    rows = np.arange(0, 2 * n, 2)
    return ImageSplit(images, rows, rng.integers(0, 2, n).astype(np.int64), np.array([f"i{i}" for i in range(n)]))


def batches(split: ImageSplit, *, transfer: str | None = None, augment: bool = False, device: str = "cpu",
            resident: bool | str = "auto", **kw) -> ImageBatches:
    aug = BatchAugment(PRESETS["natural"], 16) if augment else None
    return ImageBatches(split, 8, size=16, channels=3, mean=[0.5, 0.4, 0.3], std=[0.2, 0.25, 0.3], shuffle=True,
                        augment=aug, device=device, seed=3, transfer=transfer, resident=resident, **kw)


def collect(b: ImageBatches, epoch: int = 1) -> list[dict[str, torch.Tensor]]:
    b.set_epoch(epoch)
    return [{k: v.cpu() for k, v in batch.items()} for batch in b]  # kept: a reused buffer would show here


# ---- transfers: identical batches --------------------------------------------------------------------------------
@pytest.mark.parametrize("augment", [False, True])
def test_resident_staged_and_plain_give_identical_batches(augment):
    split = store()
    plain = collect(batches(split, transfer="plain", augment=augment))
    for transfer in ("resident", "staged"):
        b = batches(split, transfer=transfer, augment=augment)
        assert b.transfer == transfer
        other = collect(b)
        assert len(other) == len(plain) == 5
        for p, o in zip(plain, other):
            assert p.keys() == o.keys()
            for k in p:
                assert torch.equal(p[k], o[k]), (transfer, k)
    assert not torch.equal(plain[0]["x"], plain[1]["x"])  # batches differ: equality above is not vacuous


def test_batches_equal_the_per_item_slow_path_without_augmentation():
    split = store(n=19, c=1, s=20)
    b = batches(split, transfer="resident")
    mean, std = torch.tensor([0.5, 0.4, 0.3]), torch.tensor([0.2, 0.25, 0.3])
    seen = []
    for batch in collect(b, epoch=2):
        for pos, x in zip(batch["index"].tolist(), batch["x"]):
            raw = torch.from_numpy(split.images[split.rows[pos]]).float()[None] / 255  # one image at a time
            ref = normalize(center_crop(raw, 16).expand(-1, 3, -1, -1), mean, std)[0]
            torch.testing.assert_close(x, ref, rtol=0, atol=1e-6)
            seen.append(pos)
        assert torch.equal(batch["y"], torch.from_numpy(split.y[batch["index"].numpy()]))
    assert sorted(seen) == list(range(19))


def test_weighted_sampling_with_duplicates_is_identical_across_transfers():
    split = store(n=21)
    out = {}
    for transfer in ("plain", "staged", "resident"):
        b = batches(split, transfer=transfer, augment=True)
        b.sample_weights = torch.linspace(0.1, 1.0, 21, dtype=torch.float64)
        out[transfer] = collect(b)
    idx = torch.cat([x["index"] for x in out["plain"]])
    assert len(idx.unique()) < len(idx)  # drawn with replacement: duplicates inside batches
    for transfer in ("staged", "resident"):
        assert all(torch.equal(a["x"], c["x"]) for a, c in zip(out["plain"], out[transfer]))


def test_channels_last_batches_keep_values():
    split = store()
    a = collect(batches(split, transfer="plain"))[0]["x"]
    b = batches(split, transfer="resident", channels_last=True)
    b.set_epoch(1)
    x = next(iter(b))["x"]
    assert x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    assert torch.equal(x, a)


# ---- the residency decision --------------------------------------------------------------------------------------
def test_decide_resident_from_free_memory():
    assert decide_resident("auto", "cuda", 1 * GB, free=4 * GB)  # a quarter of free memory: keep it
    assert not decide_resident("auto", "cuda", 3 * GB, free=4 * GB)  # more than half: stream it
    assert decide_resident("auto", "cuda", 2 * GB, free=4 * GB)  # exactly half still fits
    assert not decide_resident("auto", "cuda", 1, free=None)
    assert decide_resident(True, "cuda", 10 * GB, free=1 * GB)  # forced
    assert not decide_resident(False, "cuda", 1, free=80 * GB)
    assert decide_resident("true", "cpu", 10 * GB, free=None) and not decide_resident("false", "cuda", 1, free=GB)
    assert not decide_resident("auto", "cpu", 1, free=None)  # CPU auto: stream from the memory map
    with pytest.raises(ConfigError, match="resident must be auto, true or false"):
        decide_resident("sometimes", "cuda", 1, free=GB)


def test_resolve_transfer_on_cpu_and_config_override():
    assert resolve_transfer("auto", "cpu", 10) == "plain"
    assert resolve_transfer(True, "cpu", 10) == "resident"
    split = store()
    assert split_nbytes(split) == 37 * 20 * 20
    b = batches(split, resident=True)
    assert b.transfer == "resident" and isinstance(b.store, torch.Tensor) and b.store.shape == (37, 1, 20, 20)
    assert torch.equal(b.store[5], torch.from_numpy(split.images[split.rows[5]]))
    assert DataConfig(path="x", image={"resident": True}).image.resident is True
    assert DataConfig(path="x").image.resident == "auto"
    with pytest.raises(ConfigError, match="data.image.resident"):
        validate_config({"data": {"path": "x", "image": {"resident": "sometimes"}}})


# ---- speed defaults per device ----------------------------------------------------------------------------------
def test_precision_and_channels_last_defaults_per_device():
    image, sequence = ImageClassifier.cuda_precision, SequenceClassifier.cuda_precision
    assert resolve_precision("auto", "cuda", image) == "bf16"
    assert resolve_precision("auto", "cpu", image) == "fp32"
    assert resolve_precision("auto", "cuda", sequence) == "fp32"  # LSTM-bound models keep fp32
    assert resolve_precision("fp32", "cuda", image) == "fp32"  # an explicit choice overrides
    assert resolve_precision("fp16", "cpu", sequence) == "fp16"
    assert resolve_channels_last("auto", "cuda", True) is True
    assert resolve_channels_last("auto", "cpu", True) is False
    assert resolve_channels_last("auto", "cuda", False) is False
    assert resolve_channels_last(True, "cpu", True) is True and resolve_channels_last(False, "cuda", True) is False
    assert validate_config({"data": {"path": "x"}}).train.precision == "auto"


def test_trainer_resolves_auto_precision_on_cpu():
    from biolens.models import create_model
    from biolens.training.trainer import Trainer

    model = create_model("simple_cnn", in_channels=1, num_classes=2)
    t = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), torch.nn.CrossEntropyLoss())
    assert t.precision == "fp32" and t.scaler is None
    with pytest.raises(BiolensError, match="unknown precision 'fp8'"):
        Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), torch.nn.CrossEntropyLoss(), precision="fp8")


def test_compile_failure_becomes_a_clear_training_error():
    from biolens.training.trainer import Trainer, TrainingError

    class BackendCompilerFailed(RuntimeError):
        pass

    BackendCompilerFailed.__module__ = "torch._dynamo.exc"

    class Broken(torch.nn.Module):
        def forward(self, x):  # noqa: ANN001, ANN201
            raise BackendCompilerFailed("backend='inductor' raised:\nCppCompileError: no compiler")

    model = torch.nn.Linear(4, 2)
    t = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), torch.nn.CrossEntropyLoss(), net=Broken())
    with pytest.raises(TrainingError, match=r"torch.compile failed .*BackendCompilerFailed.*set train.compile=false"):
        t.train_epoch([{"x": torch.randn(2, 4), "y": torch.tensor([0, 1])}])


def test_loader_kwargs():
    kw = loader_kwargs("cpu", workers=3)
    assert kw == {"num_workers": 3, "pin_memory": False, "persistent_workers": True, "prefetch_factor": 4}
    assert loader_kwargs("cuda", workers=0) == {"num_workers": 0, "pin_memory": True}
    assert loader_kwargs()["num_workers"] >= 0


# ---- augmentations vs their torchvision (v1, per image) twins, in distribution -----------------------------------
N = 2000


def test_flip_rate_is_p():
    """An asymmetric image (bright left half) through a flip-only preset: the bright half moves right at rate p."""
    img = torch.zeros(N, 1, 8, 8)
    img[..., :4] = 1.0
    for p in (0.5, 0.2):
        out = BatchAugment(AugmentPreset(hflip=p), 8)(img, torch.Generator().manual_seed(1))
        flipped = (out[..., 4:].mean(dim=(1, 2, 3)) > out[..., :4].mean(dim=(1, 2, 3))).float()
        unchanged = torch.isclose(out, img).flatten(1).all(1) | torch.isclose(out, img.flip(-1)).flatten(1).all(1)
        assert bool(unchanged.all())  # exact flips, no resampling blur
        assert abs(float(flipped.mean()) - p) < 4 * math.sqrt(p * (1 - p) / N)


def test_rotation_angles_and_crop_scale_stay_in_range():
    preset = PRESETS["natural"]  # scale (0.6, 1), ratio (3/4, 4/3), ±20°
    theta = BatchAugment(preset, 16).sample_theta(N, torch.Generator().manual_seed(2))
    w = torch.hypot(theta[:, 0, 0], theta[:, 0, 1])  # rows of theta: (w cos·f, −w sin), (h sin·f, h cos)
    h = torch.hypot(theta[:, 1, 0], theta[:, 1, 1])
    angle = torch.rad2deg(torch.atan2(-theta[:, 0, 1] / w, theta[:, 1, 1] / h))
    flip = torch.sign(theta[:, 0, 0] * theta[:, 1, 1])  # cos > 0 for |angle| < 90°
    assert abs(float((flip < 0).float().mean()) - preset.hflip) < 0.05
    assert float(angle.abs().max()) <= preset.degrees + 1e-4
    assert float(angle.min()) < -0.9 * preset.degrees and float(angle.max()) > 0.9 * preset.degrees
    assert stats.kstest(angle.numpy(), stats.uniform(-20, 40).cdf).pvalue > 1e-3  # uniform, like RandomRotation
    area = w * h
    unclamped = (w < 1) & (h < 1)
    assert float(area.max()) <= 1 + 1e-6 and float(area[unclamped].min()) >= preset.scale[0] - 1e-6
    ratio = (w / h)[unclamped]
    assert float(ratio.min()) >= preset.ratio[0] - 1e-5 and float(ratio.max()) <= preset.ratio[1] + 1e-5
    assert bool(((theta[:, 0, 2].abs() + w) <= 1 + 1e-6).all())  # the crop center keeps the crop inside
    # torchvision's RandomResizedCrop draws the same area scale (uniform) when the crop fits
    from torchvision import transforms

    rrc = transforms.RandomResizedCrop(16, scale=preset.scale, ratio=preset.ratio)
    torch.manual_seed(0)
    tv = []
    for _ in range(N):
        i, j, hh, ww = rrc.get_params(torch.zeros(1, 200, 200), rrc.scale, rrc.ratio)
        tv.append(hh * ww / 200**2)
    assert abs(float(area[unclamped].mean()) - float(np.mean(tv))) < 0.02


def test_brightness_and_contrast_match_colorjitter_in_distribution():
    from torchvision import transforms

    b, c = 0.3, 0.3
    # brightness: a flat gray image scales by the factor
    flat = torch.full((N, 1, 8, 8), 0.5)
    ours_b = BatchAugment(AugmentPreset(brightness=b), 8)(flat, torch.Generator().manual_seed(3)).mean(dim=(1, 2, 3))
    jit_b = transforms.ColorJitter(brightness=b)
    torch.manual_seed(3)
    tv_b = torch.stack([jit_b(flat[0]).mean() for _ in range(N)])
    assert stats.ks_2samp(ours_b.numpy(), tv_b.numpy()).pvalue > 1e-3
    assert abs(float(ours_b.mean()) - 0.5) < 0.01 and float(ours_b.min()) >= 0.5 * (1 - b) - 1e-6
    # contrast: a two-level image's spread scales by the factor, its mean stays
    two = torch.full((N, 1, 8, 8), 0.4)
    two[..., ::2, :] = 0.6
    ours_c = BatchAugment(AugmentPreset(contrast=c), 8)(two, torch.Generator().manual_seed(4))
    jit_c = transforms.ColorJitter(contrast=c)
    torch.manual_seed(4)
    tv_c = torch.stack([jit_c(two[0]).std() for _ in range(N)])
    assert stats.ks_2samp(ours_c.std(dim=(1, 2, 3)).numpy(), tv_c.numpy()).pvalue > 1e-3
    torch.testing.assert_close(ours_c.mean(dim=(1, 2, 3)), torch.full((N,), 0.5), rtol=0, atol=1e-5)


# ---- CUDA ----------------------------------------------------------------------------------------------------------
@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("augment", [False, True])
def test_cuda_transfers_match_the_cpu_path(augment):
    split = store(n=64, c=3, s=24)
    ref = collect(batches(split, transfer="plain", augment=augment))
    for transfer in ("resident", "staged"):
        b = batches(split, transfer=transfer, augment=augment, device="cuda")
        got = collect(b)
        for r, g in zip(ref, got):
            assert torch.equal(r["index"], g["index"]) and torch.equal(r["y"], g["y"])
            torch.testing.assert_close(g["x"], r["x"], rtol=0, atol=1e-4)  # same draws, GPU kernels
    assert resolve_transfer("auto", "cuda", 1024) == "resident"  # a few KB always fit


@pytest.mark.gpu
@cuda
def test_cuda_defaults_bf16_and_channels_last():
    from biolens.models import create_model
    from biolens.training.trainer import Trainer

    model = create_model("simple_cnn", in_channels=3, num_classes=2).cuda()
    t = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), torch.nn.CrossEntropyLoss())
    assert t.precision == "bf16"
    b = batches(store(), device="cuda", channels_last=True)
    out = t.train_epoch(b)
    assert math.isfinite(out["loss"])


# ---- end to end ---------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_training_is_identical_with_resident_pixels(tmp_path):
    from biolens.workflows.train import train
    from tests.image_helpers import image_folder

    root = image_folder(tmp_path / "data", n=4)
    hist = {}
    for resident in (False, True):
        cfg = {"data": {"path": str(root), "image": {"image_size": 16, "cache_dir": str(tmp_path / "cache"),
                                                     "resident": resident}},
               "model": {"name": "resnet", "params": {"widths": [4, 8], "blocks": [1, 1]}},
               "train": {"epochs": 2, "batch_size": 4, "lr": 1e-2, "device": "cpu"}, "out": str(tmp_path / f"r{resident}")}
        res = train(cfg)
        hist[resident] = [(h["train_loss"], h["val_loss"]) for h in res.history]
        summary = (res.run_dir / "train_summary.json").read_text()
        assert '"precision": "fp32"' in summary  # auto on CPU
    assert hist[True] == hist[False] and len(hist[True]) == 2
