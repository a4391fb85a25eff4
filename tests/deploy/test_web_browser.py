"""The page in a real browser: headless Chromium (Debian's ``chromium``, driven by Playwright) against ``biolens
serve``'s app on loopback, for an image run and a sequence run: upload or paste, submit with the keyboard, read the
result and its explanation, and the server's one-line error for bad input. Screenshots go to
``$BIOLENS_SCREENSHOTS`` (default ``build/screenshots``).

Skipped, with the reason, where Playwright or a Chromium binary is missing: ``make test`` installs Debian's
``chromium`` when it can (``make browser``); ``BIOLENS_CHROMIUM`` points at another Chromium or Chrome binary.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.image_helpers import pattern, write_dicom

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("BIOLENS_SCREENSHOTS", ROOT / "build" / "screenshots"))
# the flags this machine's notes give for headless Chromium on a closed network, as root
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]
TIMEOUT_MS = 60_000


def find_chromium() -> tuple[str | None, str]:
    """A Chromium (or Chrome) binary, or None and how to get one."""
    given = os.environ.get("BIOLENS_CHROMIUM")
    if given:
        return (given, "") if Path(given).is_file() else (None, f"BIOLENS_CHROMIUM={given} is not a file")
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found, ""
    return None, ("no Chromium browser found: `make browser` installs Debian's chromium (needs root and apt), or set "
                  "BIOLENS_CHROMIUM to a Chromium/Chrome binary")


CHROMIUM, NO_CHROMIUM = find_chromium()
# decided before any fixture runs, so a machine without a browser does not train the test runs for nothing
pytestmark.append(pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM))


@contextlib.contextmanager
def serving(app) -> Iterator[str]:  # noqa: ANN001
    """The app under uvicorn on a free loopback port, in a thread; yields its base URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        if time.time() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def browser():  # noqa: ANN201
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):  # noqa: ANN001, ANN201
    context = browser.new_context(viewport={"width": 1180, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []  # script errors and console errors (a Content-Security-Policy violation is one)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" and "status of 422" not in m.text else None)
    pg.console_errors = errors
    yield pg
    context.close()


def shot(pg, name: str) -> Path:  # noqa: ANN001
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / name
    pg.screenshot(path=str(path), full_page=True)
    return path


def ready(pg, url: str) -> None:  # noqa: ANN001
    pg.goto(url + "/")
    pg.wait_for_selector("#submit:not([disabled])")


def check_accessible(pg) -> None:  # noqa: ANN001
    unlabeled = pg.evaluate("""() => Array.from(document.querySelectorAll('input, select, textarea'))
        .filter(e => !e.closest('[hidden]') && e.labels.length === 0).map(e => e.id)""")
    assert unlabeled == []
    assert pg.evaluate("document.documentElement.lang") == "en"


def submit_with_keyboard(pg) -> None:  # noqa: ANN001
    """Tab to the submit button (every control on the way is reachable) and press Enter."""
    pg.focus("body")
    for _ in range(12):
        pg.keyboard.press("Tab")
        if pg.evaluate("document.activeElement.id") == "submit":
            break
    assert pg.evaluate("document.activeElement.id") == "submit"
    pg.keyboard.press("Enter")


def test_image_run_upload_result_explanation(page, image_run, tmp_path):
    from biolens.workflows.serve import build_app

    run, data = image_run
    pngs = sorted((data / "test").rglob("*.png"))
    picks = [pngs[0], pngs[-1]]
    dcm = write_dicom(tmp_path / "scan.dcm", pattern(1, np.random.default_rng(3)).astype(np.uint16) * 12)
    manifest = json.loads((run / "manifest.json").read_text())
    with serving(build_app(run, device="cpu")) as url:
        ready(page, url)
        check_accessible(page)
        assert page.is_visible("#files") and not page.is_visible("#sequences")
        card = page.inner_text("#card-body")
        assert manifest["dataset_fingerprint"] in card and "normal, pneumonia" in card
        page.set_input_files("#files", [str(p) for p in picks] + [str(dcm)])
        submit_with_keyboard(page)
        sync_api.expect(page.locator(".result .explanation img")).to_have_count(3, timeout=TIMEOUT_MS)
        files = [("files", (p.name, p.read_bytes(), "image/png")) for p in picks]
        files.append(("files", ("scan.dcm", dcm.read_bytes(), "application/dicom")))
        expected = httpx.post(url + "/v1/predict", files=files, timeout=60).json()["predictions"]
        results = page.query_selector_all(".result")
        for res, want in zip(results, expected, strict=True):
            assert res.query_selector("h3").inner_text() == want["id"]
            assert res.query_selector(".prediction strong").inner_text() == want["prediction"]
            assert "Decision at the operating point" in res.query_selector(".decision").inner_text()
            assert len(res.query_selector_all(".bars .bar")) == 2
            img = res.query_selector(".explanation img")
            assert img.evaluate("i => i.complete && i.naturalWidth > 0") and "gradcam" in img.get_attribute("alt")
        shot(page, "web-image.png")

        broken = tmp_path / "broken.png"
        broken.write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
        page.set_input_files("#files", [str(broken)])
        page.click("#submit")
        page.wait_for_selector("#error:not([hidden])")
        error = page.inner_text("#error")
        server = httpx.post(url + "/v1/explain", files=[("files", ("broken.png", b"\x89PNG\r\n\x1a\ntruncated",
                                                                   "image/png"))], timeout=60).json()
        assert error == f"{server['error']} ({server['field']})" and "broken.png" in error
        shot(page, "web-image-error.png")
    assert page.console_errors == []


def test_sequence_run_paste_result_explanation(page, trained_run):
    from biolens.workflows.serve import build_app

    seqs = {"s1": "ACGTTATAATGCGCGTTTACGATCGATCGATCAGCTAGCA", "s2": "GGGGCCCCAAATTTACGTACGTTATAAT"}
    fasta = "".join(f">{k} pasted\n{v[:20]}\n{v[20:]}\n" for k, v in seqs.items())  # wrapped lines, as in files
    with serving(build_app(trained_run, device="cpu")) as url:
        ready(page, url)
        check_accessible(page)
        assert page.is_visible("#sequences") and not page.is_visible("#files")
        assert page.input_value("#method") == "ig"
        page.fill("#sequences", fasta)
        submit_with_keyboard(page)
        sync_api.expect(page.locator(".result .explanation svg")).to_have_count(2, timeout=TIMEOUT_MS)
        api = httpx.post(url + "/v1/explain", json={"sequences": list(seqs.values()), "ids": list(seqs)},
                         timeout=60).json()["predictions"]
        for res, want in zip(page.query_selector_all(".result"), api, strict=True):
            ex = want["explanation"]
            assert res.query_selector("h3").inner_text() == want["id"]
            assert res.query_selector(".prediction strong").inner_text() == want["prediction"]
            assert res.query_selector(".seq mark").inner_text() == ex["top_window"]["subsequence"]
            bars = res.query_selector_all("svg.track rect")
            assert len(bars) == len(seqs[want["id"]]) + 1  # one bar per base, plus the shaded top window
            label = res.query_selector("svg.track").get_attribute("aria-label")
            assert f"top window: bases {ex['top_window']['start'] + 1} to {ex['top_window']['end']}" in label
        shot(page, "web-sequence.png")

        page.fill("#sequences", ">bad\nACGTQQ\n")
        page.click("#submit")
        page.wait_for_selector("#error:not([hidden])")
        server = httpx.post(url + "/v1/explain", json={"sequences": ["ACGTQQ"], "ids": ["bad"]}, timeout=60).json()
        assert page.inner_text("#error") == f"{server['error']} ({server['field']})"
        assert "invalid character 'Q' at position 5" in server["error"]
        shot(page, "web-sequence-error.png")
    assert page.console_errors == []
