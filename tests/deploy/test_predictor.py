import numpy as np
import pandas as pd
import pytest

from biolens.tasks import Predictor
from biolens.errors import BundleError, DataError
from tests.conftest import planted_dna, write_fasta


def test_predict_list_matches_batch_size_and_probs_sum_to_one(trained_run):
    p = Predictor.load(trained_run, device="cpu")
    seqs, _ = planted_dna(n=40, seed=21, vary=True)
    a = p.predict(seqs, batch_size=7)
    b = p.predict(seqs, batch_size=64)
    np.testing.assert_allclose(a[["p_background", "p_promoter"]].to_numpy(), b[["p_background", "p_promoter"]].to_numpy(),
                               atol=1e-5)  # results do not depend on batch size (padding-invariant model)
    np.testing.assert_allclose(a[["p_background", "p_promoter"]].sum(axis=1), 1.0, atol=1e-6)
    assert (a["decision"] == (a["p_promoter"] >= 0.5)).all()


def test_predict_single_sequence_and_empty(trained_run):
    p = Predictor.load(trained_run, device="cpu")
    assert len(p.predict("ACGTTATAATGGCA")) == 1
    assert len(p.predict("ACGT" * 2000)) == 1  # too long to be a file name: still a sequence, truncated
    with pytest.raises(DataError, match="no sequences"):
        p.predict([])
    with pytest.raises(DataError, match="sequence 2: invalid character 'Z'"):
        p.predict(["ACGT", "ACZT"])


def test_incomplete_or_tampered_bundle(trained_run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(trained_run, copy)
    assert Predictor.load(copy).contract.class_names == ["background", "promoter"]  # a copied folder works
    (copy / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(BundleError, match="model.safetensors: SHA-256 does not match manifest.json"):
        Predictor.load(copy)
    with pytest.raises(BundleError, match="cannot load weights"):
        Predictor.load(copy, verify=False)  # without the checksums safetensors still refuses it
    (copy / "contract.json").unlink()
    with pytest.raises(BundleError, match=r"not a complete run folder \(missing contract.json\)"):
        Predictor.load(copy)


def test_predict_fasta_gz_and_paths(trained_run, tmp_path):
    p = Predictor.load(trained_run, device="cpu")
    seqs, labels = planted_dna(n=30, seed=8)
    fa = write_fasta(tmp_path / "x.fa", seqs, labels)
    gz = write_fasta(tmp_path / "x.fa.gz", seqs, labels, gz=True)
    a, b = p.predict(fa), p.predict(str(gz))
    assert list(a["id"]) == [f"s{i + 1}" for i in range(30)] and list(a["label"]) == labels
    np.testing.assert_allclose(a["p_promoter"], b["p_promoter"], atol=1e-7)
    c = p.predict(seqs)  # raw strings give the same probabilities as the file
    np.testing.assert_allclose(a["p_promoter"], c["p_promoter"], atol=1e-5)
    both = p.predict([fa, gz])  # a list of files
    assert len(both) == 60
    assert (a["prediction"] == np.where(a["p_promoter"] >= 0.5, "promoter", "background")).all()
    acc = (a["prediction"] == a["label"]).mean()
    assert acc > 0.8  # the planted motif is learnt
    with pytest.raises(DataError, match="file not found"):
        p.predict(tmp_path / "nope.fa")


def test_predict_files_streams_in_chunks_with_progress(trained_run, tmp_path):
    p = Predictor.load(trained_run, device="cpu")
    seqs, _ = planted_dna(n=50, seed=9)
    fa = write_fasta(tmp_path / "x.fa.gz", seqs, gz=True)
    calls = []
    n = p.predict_files([fa], tmp_path / "out.csv", chunk_size=16, progress=lambda done, total: calls.append((done, total)))
    assert n == 50 and calls == [(16, None), (32, None), (48, None), (50, None)]
    frame = pd.read_csv(tmp_path / "out.csv")
    np.testing.assert_allclose(frame["p_promoter"], p.predict(seqs)["p_promoter"], atol=2e-6)
    with pytest.raises(DataError, match="file not found"):
        p.predict_files([fa, tmp_path / "missing.fa"], tmp_path / "out2.csv")
    assert not (tmp_path / "out2.csv").exists()  # nothing half-written


def test_image_predict_folder_glob_and_in_memory(image_run, tmp_path):
    import torch
    from PIL import Image

    run, data = image_run
    p = Predictor.load(run, device="cpu")
    folder = p.predict(data / "test")
    assert len(folder) == 12 and set(folder.columns) >= {"id", "p_normal", "p_pneumonia", "prediction", "decision"}
    np.testing.assert_allclose(folder[["p_normal", "p_pneumonia"]].sum(axis=1), 1.0, atol=1e-6)
    glob = p.predict(str(data / "test" / "normal" / "*.png"))
    assert len(glob) == 6
    files = sorted((data / "test" / "normal").glob("*.png"))
    by_path = p.predict([str(f) for f in files[:3]])
    arrays = [np.asarray(Image.open(f)) for f in files[:3]]  # (H, W) uint8
    expected = by_path[["p_normal", "p_pneumonia"]].to_numpy()
    for inputs in (arrays, [Image.open(f) for f in files[:3]], np.stack(arrays)[..., None],  # (N, H, W, 1)
                   torch.tensor(np.stack(arrays))[:, None],  # (N, 1, H, W)
                   [torch.tensor(a)[None] for a in arrays],  # (1, H, W) tensors
                   [a.astype(np.float32) / 255 for a in arrays],  # floats in [0, 1]
                   [np.repeat(a[..., None], 3, axis=-1) for a in arrays]):  # RGB (H, W, 3) of a gray image
        got = p.predict(inputs)
        assert list(got["id"]) == ["image1", "image2", "image3"]
        np.testing.assert_allclose(got[["p_normal", "p_pneumonia"]].to_numpy(), expected, atol=1e-5)
    single = p.predict(arrays[0])
    np.testing.assert_allclose(single[["p_normal", "p_pneumonia"]].to_numpy(), expected[:1], atol=1e-5)
    with pytest.raises(DataError, match=r"image 1: image shape \(2, 4, 5\) is not \(H, W\)"):
        p.predict([np.zeros((2, 4, 5))])
    with pytest.raises(DataError, match="image 2: image has NaN"):
        p.predict([arrays[0], np.full((8, 8), np.nan)])
    calls = []
    n = p.predict_files([data / "test"], tmp_path / "img.csv", progress=lambda d, t: calls.append((d, t)))
    assert n == 12 and calls[-1] == (12, 12)
