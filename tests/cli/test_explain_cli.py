"""``biolens explain``: end-to-end runs on tiny data through the CLI runner, and its errors."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from biolens.cli.main import app
from tests.conftest import planted_dna, write_csv

runner = CliRunner()
pytestmark = pytest.mark.slow  # uses the session's trained run (about 10-20 s once)


def _invoke(*args: str):  # noqa: ANN202
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def explain_inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], list[str]]:
    seqs, labels = planted_dna(n=40, seed=11)  # TATAAT planted in even rows
    path = write_csv(tmp_path_factory.mktemp("explain") / "input.csv", seqs, labels)
    return path, seqs, labels


def test_explain_ig_writes_tables_arrays_and_logos(trained_run: Path, explain_inputs,  # noqa: ANN001
                                                   tmp_path: Path) -> None:
    path, seqs, labels = explain_inputs
    out = tmp_path / "ig"
    res = _invoke("explain", trained_run, path, "--method", "ig", "--out", out, "--top", "2",
                  "--motifs", "TATAAT_box=TATAAT", "--filters")
    assert res.exit_code == 0, res.output
    assert "explained 40 sequences with ig" in res.output and "TATAAT_box" in res.output
    for name in ("regions.tsv", "regions.bed", "top_windows.tsv", "top_windows.bed", "motif_hits.tsv",
                 "motif_hits.bed", "enrichment.tsv", "ig.npy", "scores.npy", "ids.txt", "filters.meme"):
        assert (out / name).stat().st_size > 0, name
    logos = sorted(out.glob("logo_*.png"))
    assert [p.name for p in logos] == ["logo_1_s1.png", "logo_2_s2.png"]
    assert logos[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ig = np.load(out / "ig.npy")
    assert ig.shape == (40, 40, 4) and np.isfinite(ig).all()
    top = pd.read_csv(out / "top_windows.tsv", sep="\t")
    assert list(top.columns) == ["id", "label", "prediction", "explained_class", "p_explained", "start", "end",
                                 "score", "subsequence"]
    planted = np.array([s.find("TATAAT") for s in seqs])
    ok = (top["label"] == "promoter") & (top["prediction"] == "promoter")
    overlap = (top["start"] < planted + 6) & (planted < top["end"])
    assert ok.sum() >= 15 and overlap[ok].mean() >= 0.75  # plumbing check; the 90% validation is tests/interpret
    enr = pd.read_csv(out / "enrichment.tsv", sep="\t").set_index("motif")
    assert list(enr.index) == ["TATA_box", "CAAT_box", "GC_box", "TATAAT_box"]
    assert bool(enr.loc["TATAAT_box", "significant"])
    hits = pd.read_csv(out / "motif_hits.tsv", sep="\t")
    assert {"id", "motif", "start", "end", "strand", "score", "matched", "in_region"} <= set(hits.columns)
    row = hits[hits.motif == "TATAAT_box"].iloc[0]
    assert seqs[int(row["id"][1:]) - 1][row["start"]:row["end"]] == "TATAAT" or row["strand"] == "-"
    bed = pd.read_csv(out / "regions.bed", sep="\t", header=None)
    assert bed.shape[1] == 6 and (bed[1] < bed[2]).all() and bed[4].between(0, 1000).all()


def test_explain_ism_raw_sequences_and_class(trained_run: Path, explain_inputs, tmp_path: Path) -> None:  # noqa: ANN001
    _, seqs, _ = explain_inputs
    out = tmp_path / "ism"
    res = _invoke("explain", trained_run, seqs[0], seqs[1], "--method", "ism", "--out", out, "--class", "promoter",
                  "--top", "1")
    assert res.exit_code == 0, res.output
    ism = np.load(out / "ism.npy")
    assert ism.shape == (2, 40, 4)
    assert (out / "ism_1_seq1.png").exists() and not (out / "ism_2_seq2.png").exists()
    top = pd.read_csv(out / "top_windows.tsv", sep="\t")
    assert top["explained_class"].tolist() == ["promoter", "promoter"] and top["id"].tolist() == ["seq1", "seq2"]


def test_explain_with_no_region_above_the_threshold_writes_empty_tables(trained_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "none"  # no position is strictly above its sequence's 100th percentile
    res = _invoke("explain", trained_run, "ACGTACGTTATAATACGTAC", "--method", "ig", "--threshold", "percentile:100",
                  "--out", out)
    assert res.exit_code == 0, res.output
    assert "0 regions" in res.output and "Traceback" not in res.output
    regions = pd.read_csv(out / "regions.tsv", sep="\t")
    assert regions.empty and list(regions.columns) == ["id", "start", "end", "subsequence", "weight", "class"]
    assert (out / "regions.bed").read_text() == ""
    assert len(pd.read_csv(out / "top_windows.tsv", sep="\t")) == 1  # the top window is still reported


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "attention"], "has no attention"),
        (["--method", "gradcam"], "--method 'gradcam' is not valid for sequence runs (a method for image runs"),
        (["--method", "ig", "--class", "tumour"], "--class 'tumour' is not a class of this model; classes: "
                                                  "background, promoter"),
        (["--method", "lime"], "--method 'lime' is not valid for sequence runs; choose one of"),
        (["--method", "ig", "--motifs", "TAJA"], "non-IUPAC letters J"),
        (["--method", "ig", "--threshold", "top3"], "expected mean+std or percentile:Q"),
    ],
)
def test_explain_errors(trained_run: Path, tmp_path: Path, args: list[str], message: str) -> None:
    res = _invoke("explain", trained_run, "ACGTACGTTATAATACGTAC", "--out", tmp_path / "o", *args)
    assert res.exit_code == 2, res.output
    assert message in " ".join(res.output.split())
    assert "Traceback" not in res.output
    assert not (tmp_path / "o").exists()  # bad input fails before any output folder is made


def test_explain_missing_input_file(trained_run: Path, tmp_path: Path) -> None:
    res = _invoke("explain", trained_run, "nowhere/seqs.fa", "--method", "ig", "--out", tmp_path / "o")
    assert res.exit_code == 2 and "nowhere/seqs.fa: no such file" in res.output


def test_explain_attention_run(tmp_path: Path) -> None:
    from biolens.workflows.train import train

    seqs, labels = planted_dna(n=80, seed=2)
    data = write_csv(tmp_path / "train.csv", seqs, labels)
    params = {"embedding_dim": 8, "filters": 8, "kernel_sizes": [7], "hidden_dim": 8, "num_layers": 1,
              "attention_dim": 8, "head_hidden": 8}
    train({"data": {"path": str(data)}, "model": {"name": "cnn_bilstm_attention", "params": params},
           "train": {"epochs": 1, "batch_size": 32}, "out": str(tmp_path / "run")})
    out = tmp_path / "att"
    res = _invoke("explain", tmp_path / "run", data, "--method", "attention", "--out", out, "--top", "1",
                  "--threshold", "percentile:90", "--flank", "2")
    assert res.exit_code == 0, res.output
    weights = np.load(out / "attention.npy")
    assert weights.shape == (80, 20)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-4)
    regions = pd.read_csv(out / "regions.tsv", sep="\t")
    assert list(regions.columns) == ["id", "start", "end", "subsequence", "weight", "class"]
    assert len(regions) > 0 and (regions["end"] - regions["start"] == regions["subsequence"].str.len()).all()


def test_image_runs_dispatch_to_explain_images(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Image runs go to the registered image runner (``interpret.images.explain_images``) with the image method;
    sequence-only methods are refused first."""
    from biolens.interpret import registry

    calls = []
    assert registry._RUNNERS["image"].__name__ == "explain_images"
    fake = lambda predictor, inputs, method, out_dir, target_class=None: calls.append(  # noqa: E731
        (inputs, method.name, out_dir, target_class)) or [{"input": i} for i in inputs]
    monkeypatch.setitem(registry._RUNNERS, "image", fake)
    predictor = types.SimpleNamespace(contract=types.SimpleNamespace(task="image"))
    monkeypatch.setattr("biolens.tasks.predictor.Predictor.load",
                        classmethod(lambda cls, run, device="auto": predictor))
    res = _invoke("explain", tmp_path, "a.png", "b.png", "--method", "gradcam", "--out", tmp_path / "o",
                  "--class", "pneumonia")
    assert res.exit_code == 0, res.output
    assert calls == [(["a.png", "b.png"], "gradcam", tmp_path / "o", "pneumonia")]
    assert "explained 2 images with gradcam" in res.output
    res = _invoke("explain", tmp_path, "a.png", "--method", "ism", "--out", tmp_path / "o")
    assert res.exit_code == 2 and "not valid for image runs" in res.output
