"""The HTTP server: every endpoint and every 4xx case for a sequence run and an image run, micro-batching, and a real
uvicorn over loopback."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from biolens.contract import softmax
from biolens.deploy.server import create_app
from biolens.errors import DataError
from biolens.tasks import Predictor
from tests.conftest import TINY_MODEL, planted_dna, write_csv
from tests.image_helpers import image_folder, pattern, write_dicom

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

ROOT = Path(__file__).resolve().parents[2]
SEQ_LIMITS = dict(max_upload_bytes=4096, max_batch=8)


@pytest.fixture(scope="module")
def seq_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from biolens.workflows.train import train

    root = tmp_path_factory.mktemp("serve_seq")
    seqs, labels = planted_dna(n=200, seed=3)
    train({"data": {"path": str(write_csv(root / "train.csv", seqs, labels))},
           "model": {"name": "dilated_resnet", "params": TINY_MODEL},
           "train": {"epochs": 2, "batch_size": 32, "lr": 3e-3, "precision": "fp32"}, "out": str(root / "run")})
    return root / "run"


@pytest.fixture(scope="module")
def image_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from biolens.workflows.train import train

    root = tmp_path_factory.mktemp("serve_img")
    data = image_folder(root / "data", n=4)
    train({"data": {"path": str(data), "image": {"image_size": 32, "cache_dir": str(root / "cache")}},
           "model": {"name": "resnet", "params": {"widths": [4, 8], "blocks": [1, 1]}},
           "train": {"epochs": 1, "batch_size": 8, "lr": 1e-2, "precision": "fp32"}, "out": str(root / "run")})
    return root / "run", data


def client_for(app):  # noqa: ANN001, ANN201
    from fastapi.testclient import TestClient

    return TestClient(app)


@pytest.fixture(scope="module")
def seq_predictor(seq_run: Path) -> Predictor:
    return Predictor.load(seq_run, device="cpu")


@pytest.fixture(scope="module")
def seq_client(seq_predictor: Predictor):  # noqa: ANN201
    with client_for(create_app(seq_predictor, **SEQ_LIMITS)) as c:
        yield c


@pytest.fixture(scope="module")
def img_client(image_run):  # noqa: ANN001, ANN201
    with client_for(create_app(image_run[0], device="cpu", max_upload_bytes=20_000, max_batch=4)) as c:
        yield c


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def assert_error(r, status: int, field: str, text: str) -> None:  # noqa: ANN001
    assert r.status_code == status, r.text
    body = r.json()
    assert body["field"] == field, body
    assert text in body["error"], body
    assert "\n" not in body["error"]


# ---------------------------------------------------------------------------------------------------------- sequences


def test_health_and_model_metadata(seq_client, seq_run):  # noqa: ANN001
    h = seq_client.get("/v1/health")
    assert h.status_code == 200 and h.json()["status"] == "ok" and h.json()["task"] == "sequence"
    m = seq_client.get("/v1/model").json()
    assert m["task"] == "sequence" and m["model"]["name"] == "dilated_resnet"
    assert m["classes"] == ["background", "promoter"] and m["positive_class"] == "promoter"
    assert m["threshold"] == 0.5 and m["contract"]["alphabet"] == "dna" and m["contract"]["max_len"] == 40
    import torch

    import biolens

    assert m["manifest"]["biolens"] == biolens.__version__ and m["manifest"]["torch"] == torch.__version__
    from biolens.io import sha256_file

    assert m["manifest"]["files"]["model.safetensors"] == sha256_file(seq_run / "model.safetensors")
    assert m["limits"] == {"max_upload_bytes": 4096, "max_batch": 8, "max_sequence_length": 40, "max_wait_ms": 5.0}
    docs = seq_client.get("/openapi.json").json()
    assert {"/v1/predict", "/v1/health", "/v1/model"} <= set(docs["paths"])
    body = docs["paths"]["/v1/predict"]["post"]["requestBody"]["content"]
    assert {"application/json", "multipart/form-data"} <= set(body)
    assert seq_client.get("/docs").status_code == 200


def test_predictions_equal_predictor(seq_client, seq_predictor):  # noqa: ANN001
    seqs, _ = planted_dna(n=8, seed=11, vary=True)
    ids = [f"r{i}" for i in range(8)]
    r = seq_client.post("/v1/predict", json={"sequences": seqs, "ids": ids})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["task"] == "sequence" and out["threshold"] == 0.5 and out["positive_class"] == "promoter"
    ref = seq_predictor.predict(seqs)
    got = out["predictions"]
    assert [g["id"] for g in got] == ids
    probs = np.array([[g["probabilities"]["background"], g["probabilities"]["promoter"]] for g in got])
    np.testing.assert_allclose(probs, ref[["p_background", "p_promoter"]].to_numpy(), atol=1e-5)
    assert [g["prediction"] for g in got] == list(ref["prediction"])
    assert [g["decision"] for g in got] == [bool(d) for d in ref["decision"]]
    assert all(g["decision"] == (g["probabilities"]["promoter"] >= 0.5) for g in got)
    default_ids = seq_client.post("/v1/predict", json={"sequences": seqs[:2]}).json()["predictions"]
    assert [g["id"] for g in default_ids] == ["seq1", "seq2"]


@pytest.mark.parametrize("body, status, field, text", [
    ({"sequences": ["ACGT", "ACZT"]}, 422, "sequences[1]", "invalid character 'Z' at position 3"),
    ({"sequences": ["ACGT", "A" * 41]}, 422, "sequences[1]", "length 41 is over the maximum of 40"),
    ({"sequences": []}, 422, "sequences", "empty list"),
    ({"sequences": ["ACGT"] * 9}, 413, "sequences", "9 sequences, over the limit of 8"),
    ({"sequences": "ACGT"}, 422, "sequences", "expected a list of strings, got str"),
    ({"sequences": ["ACGT", 7]}, 422, "sequences[1]", "expected a string, got int"),
    ({"sequences": ["ACGT", ""]}, 422, "sequences[1]", "empty sequence"),
    ({}, 422, "sequences", "missing field \"sequences\""),
    ({"seqs": ["ACGT"]}, 422, "seqs", "unknown field 'seqs'"),
    ({"sequences": ["ACGT"], "ids": ["a", "b"]}, 422, "ids", "2 ids for 1 sequences"),
    ({"sequences": ["ACGT"], "ids": "a"}, 422, "ids", "expected a list of strings"),
    (["ACGT"], 422, "body", "expected a JSON object"),
])
def test_sequence_input_errors(seq_client, body, status, field, text):  # noqa: ANN001
    assert_error(seq_client.post("/v1/predict", json=body), status, field, text)


def test_sequence_request_errors(seq_client):  # noqa: ANN001
    r = seq_client.post("/v1/predict", content=b"{not json", headers={"content-type": "application/json"})
    assert_error(r, 422, "body", "not valid JSON")
    r = seq_client.post("/v1/predict", content=b"ACGT", headers={"content-type": "text/plain"})
    assert_error(r, 415, "content-type", "'text/plain' is not accepted")
    assert_error(seq_client.post("/v1/predict", content=b"ACGT"), 415, "content-type", "'(none)'")
    r = seq_client.post("/v1/predict", files=[("files", ("a.png", png_bytes(np.zeros((8, 8), np.uint8)), "image/png"))])
    assert_error(r, 422, "files", "this is a sequence model")
    big = {"sequences": ["ACGT" * 10] * 8, "ids": ["x" * 500] * 8}  # > 4096 bytes
    assert_error(seq_client.post("/v1/predict", json=big), 413, "body", "over the limit of 4096 bytes")

    def chunked():  # no Content-Length: the streamed size is checked
        for _ in range(10):
            yield b" " * 1000

    r = seq_client.post("/v1/predict", content=chunked(), headers={"content-type": "application/json"})
    assert_error(r, 413, "body", "over the limit of 4096 bytes")
    assert_error(seq_client.get("/v1/nothing"), 404, "path", "Not Found")
    assert_error(seq_client.get("/v1/predict"), 405, "path", "Method Not Allowed")
    h = seq_client.get("/v1/health").json()
    assert h["status"] == "ok" and h["errors"] >= 5  # the server is still up and counted the refusals


def test_max_length_above_model_truncates_like_predictor(seq_predictor):  # noqa: ANN001
    seqs = [planted_dna(n=1, length=60, seed=5)[0][0], "ACGTTATAATGC"]
    with client_for(create_app(seq_predictor, max_sequence_length=60)) as c:
        r = c.post("/v1/predict", json={"sequences": seqs})
        assert r.status_code == 200, r.text
        got = [p["probabilities"]["promoter"] for p in r.json()["predictions"]]
        assert_error(c.post("/v1/predict", json={"sequences": ["A" * 61]}), 422, "sequences[0]", "maximum of 60")
    np.testing.assert_allclose(got, seq_predictor.predict(seqs)["p_promoter"], atol=1e-5)


@pytest.mark.parametrize(("error", "status", "field", "message"), [
    (DataError("model input: something the user sent is wrong; fix it"), 422, "body", "something the user sent"),
    (RuntimeError("CUDA out of memory\nlong detail"), 500, "server",
     "forward pass failed (RuntimeError: CUDA out of memory)"),
])
def test_forward_errors_become_json_and_the_worker_survives(seq_run, monkeypatch, error, status, field, message):  # noqa: ANN001
    """A BiolensError in the forward pass is the client's 4xx; anything else a JSON 500; the next request works."""
    predictor = Predictor.load(seq_run, device="cpu")
    with client_for(create_app(predictor)) as c:
        def fail(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            raise error

        monkeypatch.setattr(predictor, "logits", fail)
        assert_error(c.post("/v1/predict", json={"sequences": ["ACGT"]}), status, field, message)
        monkeypatch.undo()
        assert c.post("/v1/predict", json={"sequences": ["ACGT"]}).status_code == 200


def test_concurrent_requests_share_forward_passes(seq_predictor):  # noqa: ANN001
    seqs, _ = planted_dna(n=32, seed=17, vary=True)
    ref = seq_predictor.predict(seqs)["p_promoter"].to_numpy()
    app = create_app(seq_predictor, max_wait_ms=300, max_batch=64)
    with client_for(app) as c:
        batcher = app.state.batcher

        def one(i: int) -> list[float]:
            r = c.post("/v1/predict", json={"sequences": seqs[2 * i:2 * i + 2]})
            assert r.status_code == 200, r.text
            return [p["probabilities"]["promoter"] for p in r.json()["predictions"]]

        with ThreadPoolExecutor(16) as pool:
            got = list(pool.map(one, range(16)))
        assert batcher.batched_requests == 16 and batcher.batched_items == 32
        assert batcher.forward_passes < 16  # requests were gathered into shared forward passes
        np.testing.assert_allclose(np.concatenate(got), ref, atol=1e-5)
        assert c.get("/v1/health").json()["forward_passes"] == batcher.forward_passes

    small = create_app(seq_predictor, max_wait_ms=300, max_batch=4)  # never more than max_batch items per pass
    with client_for(small) as c:
        with ThreadPoolExecutor(16) as pool:
            got = list(pool.map(lambda i: c.post("/v1/predict", json={"sequences": seqs[2 * i:2 * i + 2]}), range(16)))
        assert all(r.status_code == 200 for r in got)
        b = small.state.batcher
        assert b.batched_items == 32 and b.forward_passes >= 8


class StubPredictor:
    """Records the rows of every forward pass; probabilities encode each row's value so results can be traced."""

    def __init__(self):
        self.contract = type("C", (), {"temperature": 1.0, "probabilities": lambda self, z: softmax(z, 1.0)})()
        self.calls: list[int] = []

    def logits(self, x, lengths, batch_size):  # noqa: ANN001, ANN201
        self.calls.append(len(x))
        return np.stack([x[:, 0].astype(np.float32), np.zeros(len(x), np.float32)], axis=1)


def run_batcher(max_batch: int, max_wait_ms: float, sizes: list[int]) -> tuple[list[int], list[np.ndarray], float]:
    import asyncio

    from biolens.deploy.server import MicroBatcher

    stub = StubPredictor()

    async def main() -> tuple[list[np.ndarray], float]:
        b = MicroBatcher(stub, max_batch=max_batch, max_wait_ms=max_wait_ms)  # type: ignore[arg-type]
        await b.start()
        t = time.perf_counter()
        jobs = [b.submit(np.full((n, 1), 10 * k, np.uint8), np.ones(n, np.int64)) for k, n in enumerate(sizes)]
        out = await asyncio.gather(*jobs)
        elapsed = time.perf_counter() - t
        await b.stop()
        return out, elapsed

    out, elapsed = asyncio.run(main())
    return stub.calls, out, elapsed


def test_batcher_respects_max_batch_and_never_splits_a_request():
    calls, out, _ = run_batcher(max_batch=4, max_wait_ms=50, sizes=[1, 1, 1, 1, 1, 3, 2])
    assert calls == [4, 4, 2]  # [1,1,1,1] | [1,3] | [2]: the 3-item request waits for the next pass, whole
    for k, (n, probs) in enumerate(zip([1, 1, 1, 1, 1, 3, 2], out)):
        assert probs.shape == (n, 2)
        expected = np.exp(10 * k) / (np.exp(10 * k) + 1)  # each request gets its own rows back
        np.testing.assert_allclose(probs[:, 0], expected, rtol=1e-5)


def test_batcher_waits_at_most_max_wait_for_company():
    calls, _, elapsed = run_batcher(max_batch=64, max_wait_ms=150, sizes=[1])
    assert calls == [1] and 0.14 <= elapsed < 2.0  # a lone request waits for max_wait, then runs alone
    calls, _, elapsed = run_batcher(max_batch=1, max_wait_ms=5000, sizes=[1])
    assert calls == [1] and elapsed < 2.0  # a full batch does not wait


def test_not_started_is_503(seq_predictor):  # noqa: ANN001
    from fastapi.testclient import TestClient

    c = TestClient(create_app(seq_predictor))  # no `with`: the lifespan (and the batcher) never started
    assert c.get("/v1/health").status_code == 503 and c.get("/v1/health").json()["status"] == "unavailable"
    assert_error(c.post("/v1/predict", json={"sequences": ["ACGT"]}), 503, "server", "not running")


def test_create_app_rejects_bad_limits(seq_predictor):  # noqa: ANN001
    from biolens.errors import ConfigError

    with pytest.raises(ConfigError, match="max_batch=0"):
        create_app(seq_predictor, max_batch=0)
    with pytest.raises(ConfigError, match="max_wait_ms=-1"):
        create_app(seq_predictor, max_wait_ms=-1)


# -------------------------------------------------------------------------------------------------------------- images


def test_image_endpoints_and_predictions_equal_predictor(img_client, image_run, tmp_path):  # noqa: ANN001
    run, data = image_run
    m = img_client.get("/v1/model").json()
    assert m["task"] == "image" and m["contract"]["image_size"] == 32 and m["classes"] == ["normal", "pneumonia"]
    assert img_client.get("/v1/health").json()["task"] == "image"
    paths = [data / "test" / "normal" / "normal_0.png", data / "test" / "pneumonia" / "pneumonia_1.png",
             data / "val" / "pneumonia" / "pneumonia_2.png"]
    r = img_client.post("/v1/predict", files=[("files", (p.name, p.read_bytes(), "image/png")) for p in paths])
    assert r.status_code == 200, r.text
    got = r.json()["predictions"]
    assert [g["id"] for g in got] == [p.name for p in paths]
    ref = Predictor.load(run, device="cpu").predict([str(p) for p in paths])
    probs = np.array([[g["probabilities"]["normal"], g["probabilities"]["pneumonia"]] for g in got])
    np.testing.assert_allclose(probs, ref[["p_normal", "p_pneumonia"]].to_numpy(), atol=1e-5)
    assert [g["prediction"] for g in got] == list(ref["prediction"])
    assert [g["decision"] for g in got] == [bool(d) for d in ref["decision"]]
    # a DICOM upload is recognised by its content even without a .dcm name
    dcm = write_dicom(tmp_path / "x.dcm", pattern(1, np.random.default_rng(0)))
    r = img_client.post("/v1/predict", files=[("files", ("scan", dcm.read_bytes(), "application/octet-stream"))])
    assert r.status_code == 200, r.text
    ref = Predictor.load(run, device="cpu").predict([str(dcm)])
    assert abs(r.json()["predictions"][0]["probabilities"]["pneumonia"] - ref["p_pneumonia"][0]) < 1e-5


def test_image_input_errors(img_client):  # noqa: ANN001
    good = png_bytes(pattern(0, np.random.default_rng(1)))
    r = img_client.post("/v1/predict", files=[("files", ("ok.png", good, "image/png")),
                                              ("files", ("broken.png", b"not an image", "image/png"))])
    assert_error(r, 422, "files[1]", "files[1] 'broken.png': not a readable image")
    assert "biolens-upload" not in r.json()["error"]  # no server paths leak
    r = img_client.post("/v1/predict", files=[("files", ("cut.png", good[: len(good) // 2], "image/png"))])
    assert_error(r, 422, "files[0]", "'cut.png'")
    r = img_client.post("/v1/predict", files=[("files", ("empty.png", b"", "image/png"))])
    assert_error(r, 422, "files[0]", "'empty.png': empty file")
    r = img_client.post("/v1/predict", files=[("files", (f"{i}.png", good, "image/png")) for i in range(5)])
    assert_error(r, 413, "files", "5 files, over the limit of 4")
    r = img_client.post("/v1/predict", files=[("files", ("big.png", b"\0" * 30_000, "image/png"))])
    assert_error(r, 413, "body", "over the limit of 20000 bytes")
    r = img_client.post("/v1/predict", files=[("image", ("a.png", good, "image/png"))])
    assert_error(r, 422, "image", "unexpected file field 'image'")
    r = img_client.post("/v1/predict", data={"note": "hi"}, files=[("files", ("a.png", good, "image/png"))])
    assert_error(r, 422, "note", "unexpected form field 'note'")
    r = img_client.post("/v1/predict", content=b"--xyz--\r\n",
                        headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert_error(r, 422, "files", "no image files in the request")
    r = img_client.post("/v1/predict", json={"sequences": ["ACGT"]})
    assert_error(r, 422, "sequences", "this is an image model")
    r = img_client.post("/v1/predict", content=good, headers={"content-type": "image/png"})
    assert_error(r, 415, "content-type", "'image/png' is not accepted")


# ------------------------------------------------------------------------------------------------------- real server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_biolens_serve_over_http(seq_run, seq_predictor):  # noqa: ANN001
    import httpx

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "biolens", "serve", str(seq_run), "--host", "127.0.0.1",
                             "--port", str(port), "--device", "cpu", "--max-wait-ms", "2", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read().decode()
            try:
                if httpx.get(f"{base}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not become healthy in 60 s"
            time.sleep(0.2)
        seqs = ["ACGTTATAATGGCATGCA", "GGGGCCCCAAAATTTT"]
        r = httpx.post(f"{base}/v1/predict", json={"sequences": seqs}, timeout=10)
        assert r.status_code == 200, r.text
        got = [p["probabilities"]["promoter"] for p in r.json()["predictions"]]
        np.testing.assert_allclose(got, seq_predictor.predict(seqs)["p_promoter"], atol=1e-5)
        r = httpx.post(f"{base}/v1/predict", json={"sequences": ["ACGU"]}, timeout=10)
        assert r.status_code == 422 and r.json()["field"] == "sequences[0]"
        assert httpx.get(f"{base}/v1/model", timeout=5).json()["model"]["name"] == "dilated_resnet"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, out.decode()
    assert b"serving" in out


def test_serve_cli_errors(tmp_path):  # noqa: ANN001
    from typer.testing import CliRunner

    from biolens.cli.main import app

    r = CliRunner().invoke(app, ["serve", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "error:" in r.output and "nope" in r.output
    r = CliRunner().invoke(app, ["serve", str(tmp_path / "nope"), "--max-upload-mb", "0"])
    assert r.exit_code == 2 and "--max-upload-mb" in r.output



def test_stop_answers_requests_held_by_the_worker():
    """A request inside a forward pass (or being gathered) when the server stops gets a 503, never a hung future."""
    import asyncio
    import threading

    from biolens.deploy.server import APIError, MicroBatcher

    release = threading.Event()

    class Slow(StubPredictor):
        def logits(self, x, lengths, batch_size):  # noqa: ANN001, ANN201
            release.wait(5)
            return super().logits(x, lengths, batch_size)

    async def main() -> list[BaseException | np.ndarray]:
        b = MicroBatcher(Slow(), max_batch=1, max_wait_ms=0)  # type: ignore[arg-type]
        await b.start()
        tasks = [asyncio.create_task(b.submit(np.ones((1, 1), np.uint8), None)) for _ in range(2)]
        await asyncio.sleep(0.2)  # the first is in its forward pass, the second carried or queued
        await asyncio.wait_for(b.stop(), 5)
        release.set()
        return await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)

    out = asyncio.run(main())
    assert len(out) == 2 and all(isinstance(r, APIError) and r.status == 503 for r in out), out


@pytest.mark.slow
def test_memory_returns_to_baseline_after_a_flood_of_refused_requests(tmp_path: Path):
    """benchmarks/bench_serve_abuse.py, small: 2 rounds of 32 concurrent 4 MB bodies, all refused with JSON 422."""
    out = tmp_path / "abuse.json"
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, str(root / "benchmarks" / "bench_serve_abuse.py"), "--concurrency", "32",
                    "--rounds", "2", "--body-mb", "4", "--json", str(out)], check=True, timeout=600,
                   env={**os.environ, "PYTHONPATH": str(root / "src")}, capture_output=True)
    result = json.loads(out.read_text())
    assert all(r["statuses"] == [422] for r in result["rounds"]) and result["still_serving"]
    assert result["growth_mb"] < 100, result
