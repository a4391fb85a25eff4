"""`biolens.pretrain` → `biolens.train(weights=...)`: a masked-token pretraining bundle on unlabelled sequences, and
fine-tuning from it with freezing, staged unfreezing and discriminative learning rates; one-line refusals."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from biolens.bundle import verify_bundle
from biolens.errors import BundleError, ConfigError
from biolens.tasks import Predictor
from biolens.workflows.pretrain import pretrain
from biolens.workflows.train import train
from tests.conftest import planted_dna, write_csv, write_fasta

TINY_TF = {"dim": 16, "depth": 1, "heads": 2}
TINY_CNN = {"channels": 8, "blocks": 1, "position_bins": 2}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(pretraining run of a tiny transformer on an unlabelled FASTA, a labelled CSV of the same kind of data)."""
    root = tmp_path_factory.mktemp("pretrain")
    seqs, labels = planted_dna(n=160, seed=2)
    fasta = write_fasta(root / "unlabelled.fa", seqs)  # no label= in the headers
    labelled = write_csv(root / "labelled.csv", seqs, labels)
    pretrain(data=str(fasta), model="transformer", params=TINY_TF, epochs=2, batch_size=32, out=root / "pre")
    return root / "pre", labelled


def test_pretraining_run_is_a_bundle_with_its_contract(pretrained):
    run, _ = pretrained
    manifest = verify_bundle(run)
    assert {"config.yaml", "contract.json", "model.safetensors", "pretrain.json", "history.json",
            "train_summary.json"} <= set(manifest["files"])
    contract = json.loads((run / "contract.json").read_text())
    assert contract["alphabet"] == "dna" and contract["max_len"] == 40 and contract["class_names"] == []
    info = json.loads((run / "pretrain.json").read_text())
    assert info["objective"] == "masked_token" and info["mask_rate"] == 0.15 and info["model"] == "transformer"
    assert info["n_train"] + info["n_val"] == 160 and 0 <= info["val_masked_accuracy"] <= 1
    assert 0.2 < info["val_most_frequent_symbol_rate"] < 0.5
    keys = set(load_file(str(run / "model.safetensors")))
    assert any(k.startswith("encoder.layers.0.") for k in keys) and any(k.startswith("mlm_head.") for k in keys)
    with pytest.raises(BundleError, match="is a pretraining run .*biolens train --data DATA --weights") as e:
        Predictor.load(run)
    assert "\n" not in str(e.value)


def test_finetune_from_pretraining_keeps_frozen_encoder(pretrained, tmp_path):
    run, labelled = pretrained
    encoder = {k.removeprefix("encoder."): v for k, v in load_file(str(run / "model.safetensors")).items()
               if k.startswith("encoder.") and not k.startswith("encoder.head.")}
    res = train(data=str(labelled), weights=str(run), freeze_until="all", epochs=2, out=tmp_path / "ft")
    cfg = (res.run_dir / "config.yaml").read_text()
    assert "name: transformer" in cfg and "dim: 16" in cfg  # the weights' architecture, without --model
    tuned = load_file(str(res.run_dir / "model.safetensors"))
    for k, v in encoder.items():
        assert np.array_equal(tuned[k].numpy(), v.numpy()), k  # frozen: exactly the pretrained encoder
    assert not np.array_equal(tuned["head.1.weight"].numpy()[:1], np.zeros((1, 16)))
    Predictor.load(res.run_dir).predict(["ACGTACGTAC"])  # an ordinary run: reloads offline


def test_staged_unfreeze_and_discriminative_lr(tmp_path, caplog):
    caplog.set_level("INFO", logger="biolens")
    seqs, labels = planted_dna(n=120, seed=4)
    pretrain(data=str(write_csv(tmp_path / "u.csv", seqs)), params=TINY_CNN, epochs=1, out=tmp_path / "pre")
    res = train(data=str(write_csv(tmp_path / "l.csv", seqs, labels)), weights=str(tmp_path / "pre"), epochs=3,
                head_epochs=1, lr=1e-3, backbone_lr_scale=0.1, out=tmp_path / "ft")
    with open(res.run_dir / "lr.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert float(rows[0]["lr_group0"]) == pytest.approx(1e-4) and float(rows[0]["lr_group1"]) == pytest.approx(1e-3)
    assert "epoch 2: unfroze the backbone" in caplog.text
    start = load_file(str(tmp_path / "pre" / "model.safetensors"))["encoder.stem.0.weight"]
    assert not np.array_equal(load_file(str(res.run_dir / "model.safetensors"))["stem.0.weight"].numpy(), start.numpy())


def test_refusals_name_the_field_in_one_line(pretrained, tmp_path):
    run, labelled = pretrained
    rng = np.random.default_rng(0)
    peptides = ["".join(rng.choice(list("ACDEFGHIKLMNPQRSTVWY"), size=30)) for _ in range(40)]
    protein = write_csv(tmp_path / "p.csv", peptides, ["background", "promoter"] * 20)
    cases = [
        (dict(data=str(protein), weights=str(run)), r"model.weights=.*: alphabet dna does not match the data \(protein\)"),
        (dict(data=str(labelled), weights=str(run), model="dilated_resnet"),
         r"model.weights=.*: the weights are a transformer but model.name is dilated_resnet"),
        (dict(data=str(labelled), weights=str(run), params={"dim": 32}), r"model.weights=.*shape"),
        (dict(data=str(labelled), pretrained="imagenet"), r"model.pretrained=imagenet is for image models"),
    ]
    for kwargs, match in cases:
        with pytest.raises(Exception, match=match) as e:
            train(epochs=1, out=tmp_path / "never", **kwargs)
        assert "\n" not in str(e.value)
        assert not (tmp_path / "never").exists()
    with pytest.raises(ConfigError, match="pretrain one of: dilated_resnet, dilated_resnet_rc, transformer"):
        pretrain(data=str(labelled), model="motif_cnn", epochs=1, out=tmp_path / "never")


def test_stored_path_windows_and_test_split(tmp_path):
    """Streamed from the memory-mapped store (a CSV without a label column); the test split is left out."""
    seqs, _ = planted_dna(n=90, seed=6)
    path = tmp_path / "u.csv"
    with open(path, "w") as fh:
        fh.write("id,sequence,split\n")
        fh.writelines(f"s{i},{s},{('train', 'val', 'test')[i % 3]}\n" for i, s in enumerate(seqs))
    res = pretrain(data=str(path), params=TINY_CNN, epochs=1, out=tmp_path / "pre", store="mmap",
                   store_dir=str(tmp_path / "cache"))
    assert res.metrics["store"]["rows"] == 90 and res.metrics["left_out"]["test_split"] == 30
    assert res.metrics["n_train"] + res.metrics["n_val"] == 60
    genome = write_fasta(tmp_path / "g.fa", ["".join(planted_dna(n=1, length=1000, seed=7)[0])])
    res = pretrain(data=str(genome), params=TINY_CNN, epochs=1, window=100, out=tmp_path / "win")
    assert res.metrics["n_train"] + res.metrics["n_val"] == 10 and res.metrics["max_len"] == 100
