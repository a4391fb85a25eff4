"""The README's screenshots of the `biolens serve` page: the demo runs (`make demo`) served on loopback, driven by
headless Chromium (Debian's `chromium`, `make browser`) through Playwright.

    .venv/bin/python tools/web_screenshots.py            # writes docs/images/web-image.png and web-sequence.png
"""

from __future__ import annotations

import argparse
import socket
import threading
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
import pandas as pd
import uvicorn
from PIL import Image
from playwright.sync_api import expect, sync_playwright

from biolens.workflows.serve import build_app

ROOT = Path(__file__).resolve().parents[1]
BUILTIN = ROOT / "src" / "biolens" / "data" / "builtin"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def serve(run: Path) -> tuple[uvicorn.Server, threading.Thread, str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = uvicorn.Server(uvicorn.Config(build_app(run, device="cpu"), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}/"


def xrays(folder: Path) -> list[str]:
    """Two PneumoniaMNIST test images (one per class), upscaled to 112 px as PNG files."""
    d = np.load(BUILTIN / "pneumoniamnist.npz")
    images, labels = d["test_images"], d["test_labels"][:, 0]
    out = []
    for label, name in ((1, "xray_a.png"), (0, "xray_b.png")):
        i = int(np.flatnonzero(labels == label)[3])
        Image.fromarray(images[i]).resize((112, 112), Image.Resampling.BICUBIC).save(folder / name)
        out.append(str(folder / name))
    return out


def splice_fasta() -> str:
    df = pd.read_csv(BUILTIN / "splice.csv.gz")
    rows = df[df["split"] == "test"].groupby("label").head(1).head(2)
    return "".join(f">{r.id}\n{r.sequence}\n" for r in rows.itertuples())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image-run", type=Path, default=ROOT / "runs" / "demo-pneumonia")
    ap.add_argument("--sequence-run", type=Path, default=ROOT / "runs" / "demo-splice")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=FLAGS)
        server, thread, url = serve(args.image_run)
        page = browser.new_page(viewport={"width": 1100, "height": 1300})
        page.goto(url)
        page.wait_for_selector("#submit:not([disabled])")
        page.set_input_files("#files", xrays(Path(tmp)))
        page.click("#submit")
        expect(page.locator(".result .explanation img")).to_have_count(2, timeout=60_000)
        page.screenshot(path=str(args.out / "web-image.png"))
        server.should_exit = True
        thread.join(10)

        server, thread, url = serve(args.sequence_run)
        page = browser.new_page(viewport={"width": 1100, "height": 1150})
        page.goto(url)
        page.wait_for_selector("#submit:not([disabled])")
        page.fill("#sequences", splice_fasta())
        page.click("#submit")
        expect(page.locator(".result .explanation svg")).to_have_count(2, timeout=60_000)
        page.screenshot(path=str(args.out / "web-sequence.png"))
        server.should_exit = True
        thread.join(10)
        browser.close()
    print(f"wrote {args.out / 'web-image.png'} and {args.out / 'web-sequence.png'}")


if __name__ == "__main__":
    main()
