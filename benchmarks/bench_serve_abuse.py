"""The server under abuse: resident memory before and after floods of oversize requests that are all refused.

Starts ``biolens serve`` on a tiny sequence run in a subprocess, reads its RSS from /proc, then sends rounds of
concurrent requests whose bodies are just under the upload limit but invalid (sequences far over the model's
length, 422), and reads the RSS again after each round and after a pause. Also checks that every refusal is a JSON
4xx and that a normal request still works afterwards.

Usage: python benchmarks/bench_serve_abuse.py [--concurrency 64 128] [--body-mb 15] [--rounds 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_run(root: Path) -> Path:
    import biolens
    from tests.conftest import TINY_MODEL, planted_dna

    seqs, labels = planted_dna(n=200, seed=1)
    return biolens.train(data=(seqs, labels), epochs=1, params=TINY_MODEL, out=root / "run").run_dir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--concurrency", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--body-mb", type=float, default=15.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = tiny_run(Path(tmp))
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-c", "from biolens.cli.main import run; run()", "serve", str(run),
                                 "--port", str(port), "-q", "--log-level", "warning"],
                                env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(120):
                try:
                    if httpx.get(f"{url}/v1/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.5)
            seq = "ACGT" * 100
            ok = httpx.post(f"{url}/v1/predict", json={"sequences": [seq[:40]]}, timeout=30)
            assert ok.status_code == 200, ok.text
            time.sleep(1)
            base = rss_mb(proc.pid)
            long_seq = "A" * int(args.body_mb * 2**20 / 4)
            body = json.dumps({"sequences": [long_seq] * 3}).encode()[: int(args.body_mb * 2**20)]
            body = json.dumps({"sequences": ["A" * (len(body) - 20)]}).encode()
            rows = []
            with httpx.Client(timeout=120) as client:
                def send(_: int) -> int:
                    r = client.post(f"{url}/v1/predict", content=body, headers={"content-type": "application/json"})
                    assert r.headers["content-type"].startswith("application/json") and 400 <= r.status_code < 500
                    return r.status_code
                for conc in args.concurrency:
                    for k in range(args.rounds):
                        with ThreadPoolExecutor(conc) as pool:
                            codes = list(pool.map(send, range(conc)))
                        time.sleep(1.0)
                        rows.append({"concurrency": conc, "round": k + 1, "statuses": sorted(set(codes)),
                                     "rss_mb": round(rss_mb(proc.pid), 1)})
                        print(rows[-1], flush=True)
            time.sleep(3)
            after = rss_mb(proc.pid)
            again = httpx.post(f"{url}/v1/predict", json={"sequences": [seq[:40]]}, timeout=30)
            result = {"body_mb": round(len(body) / 2**20, 2), "rss_before_mb": round(base, 1),
                      "rss_after_mb": round(after, 1), "growth_mb": round(after - base, 1), "rounds": rows,
                      "still_serving": again.status_code == 200}
            print(json.dumps(result, indent=2))
            if args.json:
                args.json.write_text(json.dumps(result, indent=2) + "\n")
        finally:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    main()
