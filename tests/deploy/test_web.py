"""The web page's server side: the page and its files, the model card, and /v1/explain (the same numbers as
``biolens explain``), every refusal a 4xx JSON with its field."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from biolens.interpret import explain as library_explain
from biolens.tasks import Predictor
from biolens.workflows.serve import build_app
from tests.image_helpers import pattern, write_dicom

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

SEQS = ["ACGTTATAATGCGCGTTTACGATCGATCGATCAGCTAGCA", "GGGGCCCCAAATTTACGT"]


def client(app):  # noqa: ANN001, ANN201
    from fastapi.testclient import TestClient

    return TestClient(app)


@pytest.fixture(scope="module")
def seq_predictor(trained_run) -> Predictor:
    return Predictor.load(trained_run, device="cpu")


@pytest.fixture(scope="module")
def seq_client(seq_predictor):  # noqa: ANN001, ANN201
    with client(build_app(seq_predictor, max_explain_items=4, max_batch=8)) as c:
        yield c


@pytest.fixture(scope="module")
def img_client(image_run):  # noqa: ANN001, ANN201
    with client(build_app(image_run[0], device="cpu", max_upload_bytes=200_000)) as c:
        yield c


def png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def test_page_and_assets_are_served_offline_with_a_strict_policy(seq_client):
    r = seq_client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    html = r.text
    assert '<script src="static/app.js"></script>' in html and 'href="static/style.css"' in html
    assert not re.search(r"(src|href)=\"(https?:)?//", html)  # nothing from another host (no CDN)
    assert re.search(r'<label for="sequences">', html) and re.search(r'<label for="files">', html)
    assert 'role="alert"' in html and 'aria-live="polite"' in html
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css")):
        r = seq_client.get(f"/static/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith(kind) and len(r.content) > 500
        text = r.text.replace('"http://www.w3.org/2000/svg"', "")  # the SVG namespace is a name, not a fetch
        assert "http://" not in text and "https://" not in text and "@import" not in text
    r = seq_client.get("/static/../server.py")
    assert r.status_code == 404 and r.json()["field"] == "path"
    assert seq_client.get("/static/secret.txt").json() == {"error": "no such file /static/secret.txt",
                                                          "field": "path"}
    assert seq_client.get("/favicon.ico").status_code == 204


def test_model_card(seq_client, trained_run):
    card = seq_client.get("/v1/card").json()
    manifest = json.loads((trained_run / "manifest.json").read_text())
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert card["task"] == "sequence" and card["classes"] == ["background", "promoter"]
    assert card["positive_class"] == "promoter" and card["accepts"] == "json"
    assert card["dataset_fingerprint"] == manifest["dataset_fingerprint"]
    assert card["inputs"]["alphabet"] == "dna" and card["inputs"]["max_len"] == 40
    test = {v["name"]: v for v in card["metrics"]["test"]["values"]}
    assert test["accuracy"]["value"] == metrics["test"]["accuracy"] and test["accuracy"]["description"]
    assert card["explain"] == {"methods": ["ism", "ig", "inputxgrad", "saliency"], "default": "ig", "max_items": 4}


def test_card_shows_cis_and_the_operating_point_after_evaluate(trained_run, tmp_path):
    from biolens.workflows.evaluate import EvalOptions, evaluate_run

    run = Path(shutil.copytree(trained_run, tmp_path / "run"))
    evaluate_run(run, options=EvalOptions(n_resamples=100, operating_point="youden"), device="cpu")
    with client(build_app(run, device="cpu", explain=False)) as c:
        card = c.get("/v1/card").json()
        assert c.post("/v1/explain", json={"sequences": SEQS}).status_code == 404
    assert card["explain"] is None
    assert card["operating_point"]["method"] == "youden" and card["threshold"] == card["operating_point"]["threshold"]
    acc = next(v for v in card["metrics"]["test"]["values"] if v["name"] == "accuracy")
    assert acc["ci"][0] <= acc["value"] <= acc["ci"][1] and card["metrics"]["test"]["ci_level"] == 0.95


def test_explain_sequences_matches_predict_and_biolens_explain(seq_client, seq_predictor, tmp_path):
    r = seq_client.post("/v1/explain", json={"sequences": SEQS, "ids": ["a", "b"]})
    assert r.status_code == 200, r.text
    body = r.json()
    predicted = seq_client.post("/v1/predict", json={"sequences": SEQS, "ids": ["a", "b"]}).json()
    assert body["method"] == "ig"
    for got, want, seq in zip(body["predictions"], predicted["predictions"], SEQS, strict=True):
        assert got["id"] == want["id"] and got["prediction"] == want["prediction"]
        assert got["probabilities"] == pytest.approx(want["probabilities"], abs=1e-5)
        ex = got["explanation"]
        assert ex["sequence"] == seq and len(ex["scores"]) == len(seq) and ex["explained_class"] == got["prediction"]
        tw = ex["top_window"]
        assert 0 <= tw["start"] < tw["end"] <= len(seq) and tw["subsequence"] == seq[tw["start"]:tw["end"]]
        assert tw["score"] == pytest.approx(sum(ex["scores"][tw["start"]:tw["end"]]), abs=1e-4)
    # the numbers of `biolens explain` for the same inputs and method
    summary = library_explain(seq_predictor, SEQS, "ig", tmp_path / "ig", top=0, n_perm=10)
    scores = np.load(tmp_path / "ig" / "scores.npy")
    for i, item in enumerate(body["predictions"]):
        ours = np.array(item["explanation"]["scores"])
        np.testing.assert_allclose(ours, scores[i, :len(SEQS[i])], atol=1e-4 * max(1e-3, np.abs(ours).max()) + 1e-6)
        assert item["explanation"]["explained_class"] == summary["explained_class"][i]


def test_explain_a_chosen_class_and_method(seq_client):
    r = seq_client.post("/v1/explain?method=saliency&class=background", json={"sequences": SEQS[:1]})
    ex = r.json()["predictions"][0]["explanation"]
    assert r.status_code == 200 and ex["method"] == "saliency" and ex["explained_class"] == "background"
    assert min(ex["scores"]) >= 0  # |gradient|


@pytest.mark.parametrize("url,body,status,field,text", [
    ("/v1/explain?method=attention", {"sequences": ["ACGT"]}, 422, "method", "cannot explain this model"),
    ("/v1/explain?method=gradcam", {"sequences": ["ACGT"]}, 422, "method", "choose one of ism, ig"),
    ("/v1/explain?class=tumour", {"sequences": ["ACGT"]}, 422, "class", "not a class of this model"),
    ("/v1/explain", {"sequences": ["ACGTZ"]}, 422, "sequences[0]", "invalid character 'Z' at position 5"),
    ("/v1/explain", {"sequences": []}, 422, "sequences", "empty list"),
    ("/v1/explain", {"sequences": ["ACGT"] * 5}, 413, "sequences", "over the limit of 4 explanations"),
    ("/v1/explain", {"seqs": ["ACGT"]}, 422, "seqs", "unknown field"),
])
def test_explain_refusals_are_one_line_json(seq_client, url, body, status, field, text):
    r = seq_client.post(url, json=body)
    assert r.status_code == status, r.text
    data = r.json()
    assert set(data) == {"error", "field"} and data["field"] == field and text in data["error"]
    assert "\n" not in data["error"]


def test_explain_refuses_files_for_a_sequence_model_and_other_content_types(seq_client):
    r = seq_client.post("/v1/explain", files={"files": ("x.png", png(np.zeros((8, 8), np.uint8)), "image/png")})
    assert r.status_code == 422 and r.json()["field"] == "files"
    r = seq_client.post("/v1/explain", content=b"ACGT", headers={"content-type": "text/plain"})
    assert r.status_code == 415 and r.json()["field"] == "content-type"


def test_explain_images_overlay_and_peak_match_biolens_explain(img_client, image_run, tmp_path):
    run, data = image_run
    paths = sorted((data / "test").rglob("*.png"))[:2]
    files = [("files", (p.name, p.read_bytes(), "image/png")) for p in paths]
    r = img_client.post("/v1/explain", files=files)
    assert r.status_code == 200, r.text
    body = r.json()
    predicted = img_client.post("/v1/predict", files=files).json()
    rows = library_explain(Predictor.load(run, device="cpu"), paths, "gradcam", tmp_path / "cam")
    for got, want, row, path in zip(body["predictions"], predicted["predictions"], rows, paths, strict=True):
        assert got["id"] == path.name and got["prediction"] == want["prediction"] == row["predicted"]
        assert got["probabilities"] == pytest.approx(want["probabilities"], abs=1e-5)
        ex = got["explanation"]
        assert ex["method"] == "gradcam" and ex["explained_class"] == row["target_class"]
        assert ex["peak"] == ([row["peak_row"], row["peak_col"]] if row["peak_row"] is not None else None)
        assert ex["map_max"] == pytest.approx(row["map_max"], rel=1e-4, abs=1e-7)
        assert ex["overlay_png"].startswith("data:image/png;base64,")
        overlay = Image.open(io.BytesIO(base64.b64decode(ex["overlay_png"].split(",", 1)[1])))
        assert overlay.size == Image.open(row["overlay"]).size and ex["image_size"] == [32, 32]


def test_explain_a_dicom_upload_and_refuse_a_broken_one(img_client, tmp_path):
    rng = np.random.default_rng(0)
    dcm = write_dicom(tmp_path / "scan.dcm", (pattern(1, rng).astype(np.uint16) * 10))
    r = img_client.post("/v1/explain?method=occlusion", files=[("files", ("scan.dcm", dcm.read_bytes(),
                                                                          "application/dicom"))])
    assert r.status_code == 200, r.text
    ex = r.json()["predictions"][0]["explanation"]
    assert ex["method"] == "occlusion" and ex["overlay_png"].startswith("data:image/png")
    r = img_client.post("/v1/explain", files=[("files", ("broken.png", b"\x89PNG\r\n\x1a\nnot really", "image/png"))])
    assert r.status_code == 422 and r.json()["field"] == "files[0]" and "broken.png" in r.json()["error"]
    r = img_client.post("/v1/explain", json={"sequences": ["ACGT"]})
    assert r.status_code == 422 and r.json()["field"] == "sequences"


def test_image_card(img_client):
    card = img_client.get("/v1/card").json()
    assert card["task"] == "image" and card["accepts"] == "files" and card["inputs"]["image_size"] == 32
    assert card["explain"]["default"] == "gradcam" and set(card["explain"]["methods"]) == {"gradcam", "saliency",
                                                                                           "occlusion"}
