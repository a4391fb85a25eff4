"""Image data: decoding (PIL, DICOM), bad-file policy, decode-once cache, splits, transforms, bundled sets."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from biolens.config import DataConfig
from biolens.data.images import cache as cache_mod
from biolens.data.images.cache import decode_all
from biolens.data.images.decode import DecodeError, Window, decode_image, dicom_pixels
from biolens.data.images.prepare import prepare_images
from biolens.data.images.transforms import PRESETS, BatchAugment
from biolens.errors import DataError
from tests.image_helpers import image_folder, pattern, write_dicom, write_png


def cfg(path, tmp_path, **image) -> DataConfig:
    return DataConfig(path=str(path), image={"image_size": 32, "cache_dir": str(tmp_path / "cache"), **image})


# ---- DICOM -------------------------------------------------------------------------------------------------------
def test_dicom_rescale_and_window(tmp_path):
    raw = np.array([[0, 864, 1064, 1264, 4000]], dtype=np.uint16).repeat(5, axis=0)  # HU = raw - 1024
    p = write_dicom(tmp_path / "ct.dcm", raw, intercept=-1024, window=(40, 400))
    img = dicom_pixels(p)
    assert img.dtype == np.uint8
    assert list(img[0]) == [0, 0, 128, 255, 255]  # HU -1024, -160 (window floor), 40 (center), 240 (top), 2976
    # an explicit window overrides the file's
    wide = dicom_pixels(p, Window(center=976, width=4000))
    assert wide[0, 0] == 0 and wide[0, -1] == 255 and 0 < wide[0, 2] < 255


def test_dicom_16bit_minmax_and_monochrome1(tmp_path):
    ramp = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)  # 16-bit range, no window: min-max
    mono2 = dicom_pixels(write_dicom(tmp_path / "m2.dcm", ramp))
    mono1 = dicom_pixels(write_dicom(tmp_path / "m1.dcm", ramp, photometric="MONOCHROME1"))
    assert mono2.min() == 0 and mono2.max() == 255 and mono2[0, 0] == 0
    np.testing.assert_array_equal(mono1, 255 - mono2)  # MONOCHROME1: low values are bright
    out = decode_image(tmp_path / "m2.dcm", 4, channels=3)
    assert out.shape == (3, 4, 4) and out.dtype == np.uint8


def test_dicom_without_pixel_data_is_unreadable(tmp_path):
    p = write_dicom(tmp_path / "empty.dcm", np.zeros((4, 4), np.uint16), with_pixels=False)
    with pytest.raises(DecodeError, match="no pixel data"):
        decode_image(p, 8, 1)


# ---- bad files ---------------------------------------------------------------------------------------------------
def bad_files(folder):
    """Four unreadable files of the kinds users meet; returns their names."""
    folder.mkdir(parents=True, exist_ok=True)
    jpg = folder / "truncated.jpg"
    from PIL import Image

    Image.fromarray(pattern(0, np.random.default_rng(0), 64)).save(jpg, quality=90)
    jpg.write_bytes(jpg.read_bytes()[: len(jpg.read_bytes()) // 2])
    (folder / "zero.png").write_bytes(b"")
    (folder / "text.png").write_text("this is not an image\n")
    write_dicom(folder / "nopixels.dcm", np.zeros((4, 4), np.uint16), with_pixels=False)
    return {"truncated.jpg", "zero.png", "text.png", "nopixels.dcm"}


def test_decode_all_collects_every_bad_file(tmp_path):
    names = bad_files(tmp_path / "bad")
    good = write_png(tmp_path / "good.png", pattern(1, np.random.default_rng(1)))
    paths = sorted((tmp_path / "bad").iterdir()) + [good]
    out = decode_all(paths, 16, cache_dir=None)
    assert {paths[i].name for i in out.bad} == names
    assert out.images.shape == (5, 1, 16, 16) and out.images[-1].max() > 0


def test_bad_files_fail_with_one_line_listing_all(tmp_path):
    root = image_folder(tmp_path / "data", n=4)
    names = bad_files(root / "train" / "normal")
    with pytest.raises(DataError) as e:
        prepare_images(cfg(root, tmp_path))
    msg = str(e.value)
    assert "\n" not in msg and "4 unreadable" in msg and "data.image.skip_bad=true" in msg
    assert all(n in msg for n in names)


def test_skip_bad_skips_counts_and_records(tmp_path):
    root = image_folder(tmp_path / "data", n=4)
    names = bad_files(root / "train" / "normal")
    with pytest.warns(UserWarning, match="skipped 4 unreadable"):
        data = prepare_images(cfg(root, tmp_path, skip_bad=True))
    assert {os.path.basename(r["id"]) for r in data.filtered} == names
    assert all(r["reason"] for r in data.filtered)
    assert len(data.splits["train"]) == 8 and data.report["unreadable_skipped"] == 4


# ---- cache -------------------------------------------------------------------------------------------------------
def test_decode_once_cache_is_reused(tmp_path):
    root = image_folder(tmp_path / "data", n=4)
    before = cache_mod.decode_count()
    first = prepare_images(cfg(root, tmp_path))
    assert cache_mod.decode_count() - before == 24  # 2 classes × 4 × 3 splits, each decoded once
    before = cache_mod.decode_count()
    second = prepare_images(cfg(root, tmp_path))  # a new run over unchanged files
    from biolens.data.images.dataset import ImageBatches

    b = ImageBatches(second.splits["train"], 4, size=32, channels=1, mean=[0.5], std=[0.5], shuffle=True,
                     augment=BatchAugment(PRESETS["medical"], 32))
    for epoch in (1, 2):
        b.set_epoch(epoch)
        assert sum(len(batch["y"]) for batch in b) == 8
    assert cache_mod.decode_count() == before  # neither the second run nor its epochs decoded anything
    assert isinstance(second.splits["train"].images, np.memmap)
    np.testing.assert_array_equal(np.asarray(first.splits["test"].read(np.arange(8))),
                                  np.asarray(second.splits["test"].read(np.arange(8))))
    # a changed file (new mtime) is a new cache entry
    f = next((root / "train" / "normal").iterdir())
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    prepare_images(cfg(root, tmp_path))
    assert cache_mod.decode_count() > before


# ---- layout, splits, manifest ------------------------------------------------------------------------------------
def test_stratified_seeded_split_without_val_and_test(tmp_path):
    root = image_folder(tmp_path / "flat", n=20, splits=())
    a = prepare_images(cfg(root, tmp_path))
    b = prepare_images(cfg(root, tmp_path))
    for s in ("train", "val", "test"):
        assert set(a.splits[s].y) == {0, 1}
        np.testing.assert_array_equal(a.splits[s].rows, b.splits[s].rows)
    assert len(a.splits["train"]) + len(a.splits["val"]) + len(a.splits["test"]) == 40


def test_manifest_with_relative_paths(tmp_path):
    root = image_folder(tmp_path / "data", n=3)
    rows = ["path,label,split"] + [f"{p.relative_to(tmp_path)},{p.parent.name},{p.parent.parent.name}"
                                   for p in sorted(root.rglob("*.png"))]
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    data = prepare_images(cfg(tmp_path / "m.csv", tmp_path))
    assert data.class_names == ["normal", "pneumonia"] and len(data.splits["val"]) == 6


def test_rgb_images_and_channel_choice(tmp_path):
    rng = np.random.default_rng(0)
    for split in ("train", "val", "test"):
        for k, c in enumerate(("a", "b")):
            for i in range(3):
                write_png(tmp_path / "rgb" / split / c / f"{i}.png", np.stack([pattern(k, rng)] * 3, axis=-1))
    data = prepare_images(cfg(tmp_path / "rgb", tmp_path))
    assert data.channels == 3 and data.splits["train"].images.shape[1] == 3
    gray = prepare_images(cfg(tmp_path / "rgb", tmp_path, channels=1))
    assert gray.channels == 1 and len(gray.mean) == 1
    transfer = prepare_images(cfg(image_folder(tmp_path / "g", n=3), tmp_path), transfer=True)
    assert transfer.channels == 3 and transfer.mean == [0.485, 0.456, 0.406]  # ImageNet statistics


# ---- transforms --------------------------------------------------------------------------------------------------
def test_augment_draws_parameters_per_image():
    x = torch.rand(1, 1, 32, 32).expand(8, -1, -1, -1).contiguous()  # one image, eight times
    out = BatchAugment(PRESETS["natural"], 28)(x, torch.Generator().manual_seed(0))
    assert out.shape == (8, 1, 28, 28)
    assert len({round(float(v), 5) for v in out.sum(dim=(1, 2, 3))}) == 8  # each copy transformed differently
    same = BatchAugment(PRESETS["none"], 32)(x, torch.Generator().manual_seed(0))
    torch.testing.assert_close(same, x, atol=1e-5, rtol=0)  # identity map reproduces the input


def test_transforms_only_on_train(tmp_path):
    from biolens.config import RunConfig
    from biolens.tasks.image import ImageTask

    root = image_folder(tmp_path / "data", n=4)
    task = ImageTask(RunConfig(data=cfg(root, tmp_path).model_dump(), model={"name": "simple_cnn"}, train={"batch_size": 4}))
    task.prepare()
    dev = torch.device("cpu")
    train = task.batches("train", train=True, device=dev)
    val = task.batches("val", train=False, device=dev)
    assert train.augment is not None and val.augment is None
    v1 = torch.cat([b["x"] for b in val])
    val.set_epoch(5)
    torch.testing.assert_close(v1, torch.cat([b["x"] for b in val]))  # eval is deterministic
    epochs = []
    for e in (1, 2):
        train.set_epoch(e)
        epochs.append(torch.cat([b["x"][b["index"].argsort()] for b in train]).sum())
    assert epochs[0] != epochs[1]


# ---- bundled sets ------------------------------------------------------------------------------------------------
def test_builtin_image_sets():
    pn = prepare_images(DataConfig(path="builtin:pneumoniamnist"))
    assert [len(pn.splits[s]) for s in ("train", "val", "test")] == [4708, 524, 624]
    assert pn.class_names == ["normal", "pneumonia"] and pn.positive_class == "pneumonia" and pn.size == 28
    assert np.bincount(pn.splits["test"].y).tolist() == [234, 390]
    br = prepare_images(DataConfig(path="builtin:breastmnist"))
    assert br.class_names == ["malignant", "normal_or_benign"] and br.positive_class == "malignant"
    assert np.bincount(br.splits["train"].y).tolist() == [147, 399]  # MedMNIST label 0 = malignant
