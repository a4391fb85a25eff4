"""Run folders as bundles: round trip, manifest metadata, checksum verification, and no unpickling on load."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from biolens.bundle import BUNDLE_FORMAT, describe_run, refresh_manifest, verify_bundle
from biolens.io import sha256_file
from biolens.tasks import Predictor
from biolens.errors import BundleError
from tests.conftest import planted_dna


@pytest.fixture
def run_copy(trained_run: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "bundle"
    shutil.copytree(trained_run, dst)
    return dst


def test_round_trip_in_a_copied_folder(trained_run, run_copy):
    seqs, _ = planted_dna(n=20, seed=5)
    a = Predictor.load(trained_run, device="cpu").predict(seqs)
    b = Predictor.load(run_copy, device="cpu").predict(seqs)
    cols = ["p_background", "p_promoter"]
    np.testing.assert_array_equal(a[cols].to_numpy(), b[cols].to_numpy())  # bit-identical after copying
    assert (a["prediction"] == b["prediction"]).all()


def test_manifest_metadata(run_copy):
    m = json.loads((run_copy / "manifest.json").read_text())
    assert m["bundle_format"] == BUNDLE_FORMAT and BUNDLE_FORMAT.count(".") == 2
    for key in ("created", "biolens", "torch", "git_commit", "dataset_fingerprint", "hardware", "files"):
        assert key in m, key
    assert len(m["dataset_fingerprint"]) == 64 and m["hardware"]["cpu_count"] >= 1
    assert {"model.safetensors", "config.yaml", "contract.json", "metrics.json"} <= set(m["files"])
    assert all(m["files"][f] == sha256_file(run_copy / f) for f in m["files"])


def test_refresh_keeps_creation_and_versions(run_copy):
    before = json.loads((run_copy / "manifest.json").read_text())
    before["torch"] = "9.9.9"  # as if trained with another torch: a refresh must not rewrite provenance
    (run_copy / "manifest.json").write_text(json.dumps(before))
    (run_copy / "notes.txt").write_text("hello")
    after = refresh_manifest(run_copy)
    assert after["created"] == before["created"] and after["torch"] == "9.9.9" and "updated" in after
    assert after["dataset_fingerprint"] == before["dataset_fingerprint"]
    assert after["files"]["notes.txt"] == sha256_file(run_copy / "notes.txt")
    verify_bundle(run_copy)


@pytest.mark.parametrize("name", ["model.safetensors", "contract.json", "config.yaml", "metrics.json",
                                  "checkpoints/last.pt"])
def test_tampered_file_refused(run_copy, name):
    p = run_copy / name
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit
    p.write_bytes(bytes(data))
    with pytest.raises(BundleError) as e:
        Predictor.load(run_copy)
    assert str(e.value) == (f"{p}: SHA-256 does not match manifest.json (file changed or corrupted); re-copy the "
                            "run folder or retrain")


def test_missing_listed_file_refused(run_copy):
    (run_copy / "metrics.json").unlink()
    with pytest.raises(BundleError, match=r"metrics.json is missing but listed in manifest.json \(incomplete bundle\)"):
        Predictor.load(run_copy)
    (run_copy / "manifest.json").unlink()
    with pytest.raises(BundleError, match="manifest.json is missing, so the bundle cannot be verified"):
        Predictor.load(run_copy)
    assert Predictor.load(run_copy, verify=False).contract.task == "sequence"  # explicit opt-out still works


def test_incomplete_core_files_and_bad_manifest(run_copy):
    m = json.loads((run_copy / "manifest.json").read_text())
    (run_copy / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="manifest.json: not valid JSON"):
        Predictor.load(run_copy)
    m2 = dict(m, files={k: v for k, v in m["files"].items() if k != "model.safetensors"})
    (run_copy / "manifest.json").write_text(json.dumps(m2))
    with pytest.raises(BundleError, match="does not list model.safetensors"):
        Predictor.load(run_copy)
    (run_copy / "manifest.json").write_text(json.dumps(dict(m, bundle_format="2.0.0")))
    with pytest.raises(BundleError, match="bundle format 2.0.0 is newer"):
        Predictor.load(run_copy)
    (run_copy / "manifest.json").write_text(json.dumps(dict(m, files={**m["files"], "../outside": "0" * 64})))
    with pytest.raises(BundleError, match="points outside the run folder"):
        Predictor.load(run_copy)


class _Boom:
    """Unpickling this creates the marker file: proof that a loader executed code from the bundle."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "pwned"))


def _evil_pickle(path: Path, marker: Path) -> None:
    path.write_bytes(pickle.dumps(_Boom(str(marker))))


def test_pickle_bearing_files_are_never_executed(run_copy, tmp_path):
    marker = tmp_path / "marker"
    # sanity: this payload really does run on unpickle
    probe = tmp_path / "probe.pkl"
    _evil_pickle(probe, tmp_path / "probe_marker")
    pickle.loads(probe.read_bytes())
    assert (tmp_path / "probe_marker").is_file()

    # 1. pickles dropped into the folder but not listed in the manifest (model.pt, a checkpoint-like file) are
    #    ignored: load works and never opens them
    _evil_pickle(run_copy / "model.pt", marker)
    _evil_pickle(run_copy / "checkpoints" / "extra.pt", marker)
    assert Predictor.load(run_copy, device="cpu").predict(["ACGTTATAATGG"]).shape[0] == 1
    # 2. a listed checkpoint replaced by the payload: refused by its checksum, never opened
    _evil_pickle(run_copy / "checkpoints" / "last.pt", marker)
    with pytest.raises(BundleError, match="checkpoints/last.pt: SHA-256 does not match"):
        Predictor.load(run_copy)
    # 3. the payload as the weights file, with the manifest re-made to match (a consistent but malicious bundle):
    #    safetensors refuses it without unpickling
    _evil_pickle(run_copy / "model.safetensors", marker)
    refresh_manifest(run_copy)
    with pytest.raises(BundleError, match="cannot load weights"):
        Predictor.load(run_copy)
    describe_run(run_copy)  # info reads metadata and hashes only
    assert not marker.exists()


def test_describe_run(run_copy):
    d = describe_run(run_copy)
    assert d["task"] == "sequence" and d["model"] == "dilated_resnet" and d["classes"] == ["background", "promoter"]
    assert d["threshold"] == 0.5 and d["contract"]["alphabet"] == "dna" and d["contract"]["max_len"] == 40
    assert d["checksums"]["status"] == "ok" and d["checksums"]["files"] >= 8
    assert 0.5 < d["metrics"]["test"]["accuracy"] <= 1 and len(d["dataset_fingerprint"]) == 64
    (run_copy / "metrics.json").write_text("{}")
    assert describe_run(run_copy)["checksums"] == {"status": "failed", "files": d["checksums"]["files"],
                                                   "problems": {"metrics.json": "changed"}}


def test_refresh_of_a_pre_format_manifest_keeps_its_provenance(run_copy):
    """A manifest from before bundle_format/hardware: a refresh must not claim the refreshing machine made it."""
    old = json.loads((run_copy / "manifest.json").read_text())
    for key in ("bundle_format", "hardware", "updated"):
        old.pop(key, None)
    (run_copy / "manifest.json").write_text(json.dumps(old))
    verify_bundle(run_copy)  # an unversioned manifest still verifies
    (run_copy / "notes.txt").write_text("hello")
    after = refresh_manifest(run_copy)
    assert "hardware" not in after and after["created"] == old["created"] and after["bundle_format"] == BUNDLE_FORMAT
    assert after["files"]["notes.txt"] == sha256_file(run_copy / "notes.txt")
    assert describe_run(run_copy)["hardware"] == {k: old.get(k) for k in ("platform", "cpu_count", "cuda")}


def test_run_killed_mid_training_is_named_as_such(run_copy):
    (run_copy / "manifest.json").unlink()  # training writes metrics.json and manifest.json only at its end
    (run_copy / "metrics.json").unlink()
    with pytest.raises(BundleError, match=r"manifest.json is missing, so the bundle cannot be verified: training of "
                                          r".* did not finish \(no metrics.json\); resume it with `biolens train "
                                          r"--resume"):
        Predictor.load(run_copy)
    assert describe_run(run_copy)["checksums"]["status"] == "unverifiable"


def test_refresh_with_written_never_blesses_other_changes(run_copy):
    (run_copy / "report.md").write_text("new report")  # what the caller wrote
    after = refresh_manifest(run_copy, written=["report.md"])
    assert after["files"]["report.md"] == sha256_file(run_copy / "report.md")
    (run_copy / "report.md").write_text("newer report")
    (run_copy / "metrics.json").write_text("{}")  # changed by someone else
    before = (run_copy / "manifest.json").read_text()
    with pytest.raises(BundleError, match=r"metrics.json is changed since manifest.json was written"):
        refresh_manifest(run_copy, written=[run_copy / "report.md"])
    assert (run_copy / "manifest.json").read_text() == before
