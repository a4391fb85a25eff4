import numpy as np
import pytest

from biolens.deploy.predictor import Predictor
from biolens.errors import BundleError, DataError
from tests.conftest import planted_dna


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
    with pytest.raises(BundleError, match="cannot load weights"):
        Predictor.load(copy)
    (copy / "contract.json").unlink()
    with pytest.raises(BundleError, match=r"not a complete run folder \(missing contract.json\)"):
        Predictor.load(copy)
