"""Every malformed input of the corpus (``tests/fuzz/corpus.py``, over 300 of them) fed to every entry point that
takes it: train, predict, evaluate, explain, doctor data, export, serve (the app factory) and the HTTP API.

Each refusal must be exit code 2 with exactly one ``error:`` line and no traceback, must leave no output behind,
and must not touch the input. Cases that are valid for one entry point (a header-only FASTA can be predicted:
its empty records get empty cells and a warning; ``predict`` ignores labels it has no use for) are listed in
``ACCEPTED`` and must then succeed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from biolens.cli.main import app
from biolens.deploy.server import create_app
from biolens.errors import BiolensError
from tests.fuzz import corpus
from tests.image_helpers import image_folder

pytestmark = [pytest.mark.slow, pytest.mark.fuzz]

SEQ_ENTRIES = ("train", "predict", "evaluate", "explain", "doctor")
# (case, entry point) pairs that are valid input there: they must succeed
ACCEPTED = {
    **{(c, e): True for c in ("one_class.fa", "two_records.fa", "one_class.csv", "long_line.fa")
       for e in ("predict", "evaluate", "explain")},
    **{(c, "predict"): True for c in ("bad_split.fa", "partial_split.fa")},  # predict never reads split= headers
    **{(c, e): True for c in ("empty_label.fa", "no_label_col.csv") for e in ("predict", "explain")},
    **{(c, "predict"): True for c in ("header_only.fa", "one_header.fa", "space_seq.csv")},
    ("unknown_label.fa", "explain"): True,  # explain does not read labels
}


def _digest(root: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def _invoke(*args: object):  # noqa: ANN202
    return CliRunner().invoke(app, [str(a) for a in args])


def _refused(result, what: str) -> None:  # noqa: ANN001
    out = result.output
    assert "Traceback" not in out, f"{what}: traceback\n{out[-2000:]}"
    assert result.exception is None or isinstance(result.exception, SystemExit), f"{what}: {result.exception!r}"
    assert result.exit_code == 2, f"{what}: exit {result.exit_code}, expected 2\n{out[-1500:]}"
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, f"{what}: {len(errors)} error lines\n{out[-1500:]}"


@pytest.fixture(scope="module")
def fuzz_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def test_the_corpus_is_large_and_varied(fuzz_root: Path, trained_run: Path):
    seq = corpus.sequence_files(fuzz_root / "count_seq")
    conf = corpus.configs(fuzz_root / "count_cfg", fuzz_root / "x.fa")
    img = corpus.image_inputs(fuzz_root / "count_img", lambda d: image_folder(d, n=3))
    runs = corpus.run_folders(fuzz_root / "count_runs", trained_run)
    http = corpus.http_bodies() + corpus.http_image_bodies()
    labels = corpus.label_args(fuzz_root / "count_lab")
    n = len(seq) + len(conf) + len(img) + len(runs) + len(http) + len(labels)
    assert n >= 300, n
    assert {c.kind for c in seq + conf + img + runs + http + labels} >= {
        "seqfile", "config", "set", "image_folder", "manifest", "run", "http_json", "http_files", "args"}


def test_malformed_sequence_files_at_every_entry_point(fuzz_root: Path, trained_run: Path):
    cases = corpus.sequence_files(fuzz_root / "seq")
    before = _digest(fuzz_root / "seq") | _digest(trained_run)
    outs = fuzz_root / "seq_out"
    failures = []
    tiny = ["--epochs", 1, "--batch-size", 16, "--set", "model.params.channels=4", "--set", "model.params.blocks=1"]
    for case in cases:
        for entry in SEQ_ENTRIES:
            out = outs / f"{case.name}.{entry}"
            if entry == "train":
                r = _invoke("train", "--data", case.path, "--out", out, "-q", *tiny)
            elif entry == "predict":
                out = outs / f"{case.name}.{entry}.csv"
                r = _invoke("predict", trained_run, case.path, "--out", out, "-q")
            elif entry == "evaluate":
                r = _invoke("evaluate", trained_run, "--data", case.path, "--out", out, "--resamples", 10, "--no-plots", "-q")
            elif entry == "explain":
                r = _invoke("explain", trained_run, case.path, "--method", "saliency", "--out", out, "-q", "--top", 0)
            else:
                r = _invoke("doctor", "data", "--data", case.path)
            what = f"{entry} {case.name}"
            try:
                if ACCEPTED.get((case.name, entry)):
                    assert r.exit_code in (0, 1) and "Traceback" not in r.output, f"{what}: {r.output[-1500:]}"
                else:
                    _refused(r, what)
                    assert not out.exists(), f"{what}: left {out} behind"
            except AssertionError as e:
                failures.append(str(e).splitlines()[0] + "\n" + "\n".join(str(e).splitlines()[1:4]))
    assert not failures, f"{len(failures)} of {len(cases) * len(SEQ_ENTRIES)} invocations misbehaved:\n" + \
        "\n".join(failures)
    assert (_digest(fuzz_root / "seq") | _digest(trained_run)) == before  # no input was touched


def test_bad_labels_configs_and_set_values(fuzz_root: Path):
    data = fuzz_root / "cfg_data.fa"
    data.write_bytes(corpus.good_fasta())
    cases = corpus.configs(fuzz_root / "cfg", data) + corpus.label_args(fuzz_root / "lab")
    (fuzz_root / "lab" / "empty_dir").mkdir(exist_ok=True)
    before = _digest(fuzz_root / "cfg") | _digest(fuzz_root / "lab")
    failures = []
    for i, case in enumerate(cases):
        out = fuzz_root / "cfg_out" / f"{i}"
        if case.kind == "config":  # the file's own values, no flag overriding them
            r = _invoke("train", case.path, "--out", out, "-q")
        elif case.kind == "set":
            r = _invoke("train", "--data", data, "--out", out, "-q", "--epochs", 1, *case.args)
        else:
            r = _invoke("train", *case.args, "--out", out, "-q", "--epochs", 1)
        try:
            _refused(r, f"{case.kind} {case.name}")
            assert not out.exists(), f"{case.name}: left {out}"
        except AssertionError as e:
            failures.append(str(e)[:600])
    assert not failures, "\n".join(failures)
    assert not (Path("/tmp") / "owned").exists()  # no YAML payload ever ran
    assert (_digest(fuzz_root / "cfg") | _digest(fuzz_root / "lab")) == before


def test_bad_images_folders_and_manifests(fuzz_root: Path, image_run: tuple[Path, Path]):
    run, _ = image_run
    cases = corpus.image_inputs(fuzz_root / "img", lambda d: image_folder(d, n=3))
    before = _digest(fuzz_root / "img")
    failures = []
    for case in cases:
        out = fuzz_root / "img_out" / case.name
        r = _invoke("train", "--data", case.path, "--out", out, "-q", "--epochs", 1, "--image-size", 16,
                    "--set", "data.image.cache=false", "--set", "model.params.widths=[4,8]",
                    "--set", "model.params.blocks=[1,1]")
        try:
            _refused(r, f"train {case.name}")
            assert not out.exists(), f"{case.name}: left {out}"
        except AssertionError as e:
            failures.append(str(e)[:600])
        if case.kind == "image_folder" and case.name not in ("one_class", "empty_class", "no_train", "class_mismatch"):
            pred = fuzz_root / "img_out" / f"{case.name}.csv"
            r = _invoke("predict", run, case.path, "--out", pred, "-q")
            try:
                _refused(r, f"predict {case.name}")
                assert not pred.exists()
            except AssertionError as e:
                failures.append(str(e)[:600])
    assert not failures, "\n".join(failures)
    assert _digest(fuzz_root / "img") == before


def test_damaged_run_folders_are_refused_by_every_loader(fuzz_root: Path, trained_run: Path):
    cases = corpus.run_folders(fuzz_root / "runs", trained_run)
    data = fuzz_root / "runs_good.fa"
    data.write_bytes(corpus.good_fasta())
    failures = []
    for case in cases:
        before = _digest(case.path) if case.path.exists() else {}
        outs = fuzz_root / "runs_out" / case.name
        for what, args, out in (
            ("predict", ["predict", case.path, data, "--out", outs / "p.csv", "-q"], outs / "p.csv"),
            ("evaluate", ["evaluate", case.path, "--data", data, "--out", outs / "ev", "--no-plots", "-q"], outs / "ev"),
            ("export", ["export", case.path, "--out", outs / "m.onnx"], outs / "m.onnx"),
            ("explain", ["explain", case.path, data, "--method", "saliency", "--out", outs / "x", "-q"], outs / "x"),
        ):
            try:
                _refused(_invoke(*args), f"{what} {case.name}")
                assert not out.exists(), f"{what} {case.name}: left {out}"
            except AssertionError as e:
                failures.append(str(e)[:600])
        try:
            with pytest.raises(BiolensError):
                create_app(case.path, device="cpu")
        except BaseException as e:  # noqa: BLE001
            failures.append(f"serve {case.name}: {e!r}"[:300])
        if before:
            assert _digest(case.path) == before, f"{case.name}: a loader changed the run folder"
    assert not failures, "\n".join(failures)


def _json_4xx(r, what: str) -> None:  # noqa: ANN001
    assert 400 <= r.status_code < 500, f"{what}: HTTP {r.status_code}: {r.text[:300]}"
    body = r.json()
    assert set(body) == {"error", "field"} and "\n" not in body["error"], f"{what}: {body}"


def test_abusive_http_bodies_are_json_4xx(trained_run: Path, image_run: tuple[Path, Path]):
    failures = []
    for run, cases in ((trained_run, corpus.http_bodies()), (image_run[0], corpus.http_image_bodies())):
        with TestClient(create_app(run, device="cpu", max_batch=64, max_upload_bytes=8 * 2**20)) as c:
            for case in cases:
                if case.kind == "http_json":
                    r = c.post("/v1/predict", content=case.body, headers={"content-type": "application/json"})
                else:
                    r = c.post("/v1/predict", files=[("files", (n, b, "application/octet-stream")) for n, b in case.files])
                try:
                    _json_4xx(r, case.name)
                except (AssertionError, json.JSONDecodeError) as e:
                    failures.append(str(e)[:400])
            assert c.get("/v1/health").json()["status"] == "ok"  # the server survived all of it
    assert not failures, "\n".join(failures)


def test_the_fuzz_outputs_folder_holds_nothing_but_accepted_results(fuzz_root: Path):
    """Refused invocations left nothing; what is there comes from the accepted (valid) pairs only."""
    leftovers = [p for p in (fuzz_root / "seq_out").glob("*") if not any(
        p.name.startswith(f"{c}.{e}") for (c, e) in ACCEPTED)] if (fuzz_root / "seq_out").exists() else []
    assert leftovers == []
    shutil.rmtree(fuzz_root, ignore_errors=True)
