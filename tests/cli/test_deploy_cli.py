"""End-to-end CLI: biolens info, export, bench and predict (folders, FASTA, gz, progress, constant-memory streaming)."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from biolens.cli.main import app
from tests.conftest import planted_dna, write_fasta

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def run_copy(trained_run, tmp_path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(trained_run, dst)
    return dst


def test_info_table_json_and_tampered(run_copy):
    r = invoke("info", run_copy)
    assert r.exit_code == 0, r.output
    for text in ("dilated_resnet", "background, promoter", "dna sequences, max length 40", "bundle format",
                 "git commit", "dataset fingerprint", "test metrics", "ok ("):
        assert text in r.output, text
    r = invoke("info", run_copy, "--json")
    d = json.loads(r.output)
    assert d["model"] == "dilated_resnet" and d["checksums"]["status"] == "ok" and d["bundle_format"] == "1.0.0"
    (run_copy / "contract.json").write_text((run_copy / "contract.json").read_text().replace("0.5", "0.9"))
    r = invoke("info", run_copy, "--json")
    assert r.exit_code == 2 and json.loads(r.output)["checksums"]["problems"] == {"contract.json": "changed"}
    r = invoke("predict", run_copy, "x.fa", "--out", run_copy / "p.csv")
    assert r.exit_code == 2 and "contract.json: SHA-256 does not match manifest.json" in " ".join(r.output.split())
    assert "Traceback" not in r.output


def test_export_cli_onnx_int8_and_torchscript(run_copy, tmp_path):
    r = invoke("export", run_copy, "--format", "onnx", "--quantize", "int8", "--out", tmp_path / "m.int8.onnx")
    assert r.exit_code == 0, r.output
    assert "parity vs PyTorch eager" in r.output and "pass" in r.output and "agreement" in r.output
    parity = json.loads((tmp_path / "m.int8.onnx.parity.json").read_text())
    assert parity["fp32"]["passed"] and parity["int8"]["passed"]
    r = invoke("export", run_copy, "--format", "torchscript", "--fuse-bn")
    assert r.exit_code == 0, r.output
    assert (run_copy / "model.torchscript.pt").is_file() and "fused 1 conv+BN pairs" in " ".join(r.output.split())
    assert invoke("info", run_copy).exit_code == 0  # the export joined the manifest
    r = invoke("export", run_copy, "--format", "tflite")
    assert r.exit_code == 2 and "unknown export format 'tflite'" in r.output


def test_bench_cli(run_copy, tmp_path):
    r = invoke("bench", run_copy, "--batch-sizes", "1,4", "--repeats", "2", "--warmup", "0", "--json", tmp_path / "b.json")
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "b.json").read_text())
    assert {(row["backend"], row["batch_size"]) for row in res["rows"]} == {
        (b, s) for b in ("eager", "torchscript", "onnxruntime", "onnxruntime-int8") for s in (1, 4)}
    assert "p50 ms" in r.output and "onnxruntime-int8" in r.output
    r = invoke("bench", run_copy, "--batch-sizes", "1,x")
    assert r.exit_code == 2 and "--batch-sizes '1,x'" in r.output


def test_predict_cli_fasta_gz_and_progress(run_copy, tmp_path):
    seqs, labels = planted_dna(n=40, seed=4)
    fa = write_fasta(tmp_path / "a.fa", seqs[:20], labels[:20])
    gz = write_fasta(tmp_path / "b.fa.gz", seqs[20:], labels[20:], gz=True)
    r = invoke("predict", run_copy, fa, gz, "--out", tmp_path / "p.csv", "--batch-size", "8", "--chunk-size", "16",
               "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert "wrote 40 predictions" in r.output and "predicting" in r.output  # the progress bar was drawn
    rows = list(csv.DictReader(open(tmp_path / "p.csv")))
    assert len(rows) == 40 and [row["label"] for row in rows] == labels
    assert set(rows[0]) == {"id", "label", "p_background", "p_promoter", "prediction", "decision"}
    assert np.mean([row["prediction"] == row["label"] for row in rows]) > 0.8
    r = invoke("predict", run_copy, tmp_path / "missing.fa", "--out", tmp_path / "q.csv")
    assert r.exit_code == 2 and "file not found" in r.output and not (tmp_path / "q.csv").exists()


def test_predict_cli_image_folder(tmp_path):
    from biolens.workflows.train import train
    from tests.image_helpers import image_folder

    data = image_folder(tmp_path / "data", n=4)
    train({"data": {"path": str(data), "image": {"image_size": 32, "cache_dir": str(tmp_path / "cache")}},
           "model": {"name": "resnet", "params": {"widths": [4, 8], "blocks": [1, 1]}},
           "train": {"epochs": 1, "batch_size": 8}, "out": str(tmp_path / "run")})
    r = invoke("predict", tmp_path / "run", data / "test", str(data / "val" / "normal" / "*.png"),
               "--out", tmp_path / "p.csv", "--no-progress")
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(open(tmp_path / "p.csv")))
    assert len(rows) == 8 + 4 and rows[0]["id"].endswith(".png")


def _peak_rss_mb(args: list[str]) -> float:
    """Peak RSS (MB) of one CLI run in a fresh child process (ru_maxrss of the children of a wrapper process)."""
    code = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
            "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code, sys.executable, "-m", "biolens", *args], capture_output=True,
                         text=True, check=True)
    rc, kb = out.stdout.split()[-2:]
    assert rc == "0", out.stderr[-500:]
    return int(kb) / 1024


@pytest.mark.slow
def test_predict_streams_in_constant_memory(trained_run, tmp_path):
    """Peak RSS does not grow with the input: N and 4N sequences stream in the same memory, while reading 4N at once
    (one huge chunk) needs far more. Long sequences (truncated to the model's max_len) make the input large."""
    rng = np.random.default_rng(0)
    block = "".join(rng.choice(list("ACGT"), 20_000))

    def fasta(path: Path, n: int) -> Path:
        with open(path, "w") as fh:
            for i in range(n):
                fh.write(f">r{i}\n{block[i % 97:]}{block[:i % 97]}\n")
        return path

    small, large = fasta(tmp_path / "n.fa", 1000), fasta(tmp_path / "4n.fa", 4000)  # 20 MB and 80 MB
    common = ["--quiet", "--chunk-size", "100", "--batch-size", "100", "--device", "cpu"]
    rss_n = _peak_rss_mb(["predict", str(trained_run), str(small), "--out", str(tmp_path / "a.csv"), *common])
    rss_4n = _peak_rss_mb(["predict", str(trained_run), str(large), "--out", str(tmp_path / "b.csv"), *common])
    whole = ["--quiet", "--chunk-size", "1000000000", "--device", "cpu"]
    rss_whole = _peak_rss_mb(["predict", str(trained_run), str(large), "--out", str(tmp_path / "c.csv"), *whole])
    assert sum(1 for _ in open(tmp_path / "b.csv")) == 4001
    # streaming: no growth with N (typically 1-3 MB; one suite run saw the N run's baseline 30 MB lower, so the bound
    # is 45 MB: well under the 60 MB of extra input, and the non-streaming read below grows by about 160 MB)
    assert rss_4n - rss_n < 45, (rss_n, rss_4n)
    assert rss_whole - rss_4n > 100, (rss_4n, rss_whole)  # a non-streaming read of the same file would exceed it


def test_info_on_a_corrupted_contract_is_one_line(run_copy):
    (run_copy / "contract.json").write_text('{"task": "sequ')
    r = invoke("info", run_copy)
    assert r.exit_code == 2 and "contract.json: not valid JSON" in " ".join(r.output.split())
    assert "Traceback" not in r.output
