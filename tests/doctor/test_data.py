"""doctor data: each broken input is named; clean planted data passes every check."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from biolens.config import load_config
from biolens.doctor.data import doctor_data
from tests.conftest import planted_dna, write_csv
from tests.doctor.helpers import random_dna, split_csv
from tests.image_helpers import image_folder


def cfg(path: Path | str, **data):
    image = data.pop("image", {})
    train = data.pop("train", {})
    return load_config(None, {"data": {"path": str(path), **data, "image": image}, "train": train})


def test_clean_sequences_pass(planted_csv: Path):
    report = doctor_data(cfg(planted_csv))
    assert report.status == "pass", [(f.name, f.status, f.detail) for f in report.findings]
    names = {f.name for f in report.findings}
    assert {"batches", "NaN/Inf in inputs", "class balance", "classes in every split", "leakage across splits",
            "sequence length", "alphabet"} <= names
    assert report.tables["batches"][0]["x"].endswith("×40")


def _splits(n: int) -> list[str]:
    return ["train"] * (n - 40) + ["val"] * 20 + ["test"] * 20


def test_leaked_duplicate_is_named(tmp_path: Path):
    seqs, labels = planted_dna(n=200, seed=3)
    splits = _splits(200)
    seqs[-1] = seqs[0]  # a test sequence that is also in train
    labels[-1] = labels[0]
    report = doctor_data(cfg(split_csv(tmp_path / "leak.csv", seqs, labels, splits)))
    f = report.get("leakage across splits")
    assert f.status == "fail" and "test in train or val" in f.detail and "data.dedup=true" in f.fix
    assert report.exit_code() == 1
    fixed = doctor_data(cfg(split_csv(tmp_path / "leak.csv", seqs, labels, splits), dedup=True))
    assert fixed.get("leakage across splits").status == "pass" and "1 removed" in fixed.get("leakage across splits").detail


def test_missing_class_in_val_is_named(tmp_path: Path):
    seqs = random_dna(120, 30, seed=1)
    labels = ["a", "b"] * 60
    splits = ["train"] * 80 + ["val"] * 20 + ["test"] * 20
    for i in range(80, 100):
        labels[i] = "a"  # val holds only class a
    report = doctor_data(cfg(split_csv(tmp_path / "m.csv", seqs, labels, splits)))
    f = report.get("classes in every split")
    assert f.status == "fail" and "b missing from val" in f.detail


def test_alphabet_truncation_and_imbalance(tmp_path: Path, planted_csv: Path):
    prot = doctor_data(cfg(planted_csv, alphabet="protein"))
    assert prot.get("alphabet").status == "fail" and "--alphabet dna" in prot.get("alphabet").fix
    short = doctor_data(cfg(planted_csv, max_len=30))
    f = short.get("sequence length")
    assert f.status == "warn" and "truncated" in f.detail and "--max-len" in f.fix
    seqs = random_dna(300, 30, seed=2)
    labels = ["rare" if i % 10 == 0 else "common" for i in range(300)]
    path = write_csv(tmp_path / "imb.csv", seqs, labels)
    skewed = doctor_data(cfg(path))
    f = skewed.get("class balance")
    assert f.status == "warn" and "ratio 9.0" in f.detail
    assert "--class-weights inverse" in f.fix and "--sampler weighted" in f.fix and "--loss focal" in f.fix
    handled = doctor_data(cfg(path, train={"class_weights": "inverse"}))
    assert handled.get("class balance").status == "pass" and "--class-weights inverse" in handled.get("class balance").detail


def test_images_not_normalized_and_clean(tmp_path: Path):
    root = image_folder(tmp_path / "img", n=8)
    image = {"image_size": 32, "cache_dir": str(tmp_path / "cache")}
    good = doctor_data(cfg(root, image=image))
    assert good.status == "pass", [(f.name, f.status, f.detail) for f in good.findings]
    assert "sizes 32×32 (48); modes L 48" in good.get("image size and mode").detail
    raw = doctor_data(cfg(root, image={**image, "normalize": "none"}))
    f = raw.get("normalization")
    assert f.status == "warn" and "not normalized" in f.detail and "data.image.normalize=data" in f.fix


def test_unreadable_and_duplicate_images(tmp_path: Path):
    root = image_folder(tmp_path / "img", n=8)
    (root / "train" / "normal" / "broken.png").write_bytes(b"not a png")
    shutil.copy(root / "train" / "pneumonia" / "pneumonia_0.png", root / "test" / "pneumonia" / "copy.png")
    report = doctor_data(cfg(root, image={"image_size": 32, "cache_dir": str(tmp_path / "cache")}))
    assert report.get("unreadable files").status == "fail" and "broken.png" in report.get("unreadable files").detail
    leak = report.get("leakage across splits")
    assert leak.status == "fail" and "image" in leak.detail
    assert np.sum([f.status == "fail" for f in report.findings]) == 2
