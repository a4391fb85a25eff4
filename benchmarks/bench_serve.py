"""Bounded load test of ``biolens serve`` on loopback: requests/s, p50/p99 latency and errors per concurrency.

Starts ``biolens serve`` in a subprocess on 127.0.0.1 (a free port), sends a fixed number of requests (one sequence
each, real sequences from the bundled UCI splice set) at each concurrency level with ``httpx.AsyncClient``, reads the
server's forward-pass counter to show how many requests shared a forward pass, then stops the server. Nothing leaves
the machine and the run ends by itself.

Usage: python benchmarks/bench_serve.py [--run RUN] [--requests 400] [--concurrency 1 8 32] [--max-wait-ms 5]
                                        [--max-batch 64] [--threads 1] [--epochs 2] [--json out.json]

Without ``--run`` it first trains the default model on ``builtin:splice`` for ``--epochs`` epochs in a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_tiny(out: Path, epochs: int) -> Path:
    from biolens.workflows.train import train

    train({"data": {"path": "builtin:splice"}, "train": {"epochs": epochs, "precision": "fp32"}, "out": str(out)})
    return out


def splice_sequences() -> list[str]:
    from biolens.data.builtin import get_builtin
    from biolens.data.readers import read_table

    return list(read_table(get_builtin("builtin:splice").path).seqs)


def start_server(run: Path, port: int, max_wait_ms: float, max_batch: int, threads: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "biolens", "serve", str(run), "--host", "127.0.0.1", "--port", str(port),
           "--device", "cpu", "--max-wait-ms", str(max_wait_ms), "--max-batch", str(max_batch),
           "--threads", str(threads), "--quiet", "--log-level", "warning"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {proc.stdout.read().decode()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not become healthy within 120 s")


def stop_server(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return proc.returncode


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process (Linux /proc), or None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


async def load(base: str, seqs: list[str], n: int, concurrency: int, server_pid: int) -> dict:
    """``n`` requests, ``concurrency`` in flight at a time; per-request latency in ms.

    Each in-flight slot has its own keep-alive connection (one ``httpx.AsyncClient`` per slot: a single client's pool
    costs the load generator more CPU per request as connections grow). The CPU seconds of the load generator and of
    the server are reported, to show which side was the limit.
    """
    latencies: list[float] = []
    errors = 0
    next_i = 0
    async with httpx.AsyncClient(base_url=base, timeout=30) as probe:
        before = (await probe.get("/v1/health")).json()
    server_cpu0, client_cpu0 = process_cpu_s(server_pid), time.process_time()

    async def worker() -> None:
        nonlocal next_i, errors
        async with httpx.AsyncClient(base_url=base, timeout=30, limits=httpx.Limits(max_connections=1)) as client:
            while next_i < n:
                i = next_i
                next_i += 1
                t = time.perf_counter()
                try:
                    r = await client.post("/v1/predict", json={"sequences": [seqs[i % len(seqs)]]})
                    ok = r.status_code == 200 and len(r.json()["predictions"]) == 1
                except httpx.HTTPError:
                    ok = False
                latencies.append((time.perf_counter() - t) * 1000)
                errors += not ok

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - start
    client_cpu, server_cpu1 = time.process_time() - client_cpu0, process_cpu_s(server_pid)
    async with httpx.AsyncClient(base_url=base, timeout=30) as probe:
        after = (await probe.get("/v1/health")).json()
    lat = np.array(latencies)
    passes = after["forward_passes"] - before["forward_passes"]
    return {"concurrency": concurrency, "requests": n, "errors": errors, "wall_s": round(wall, 3),
            "requests_per_s": round(n / wall, 1), "p50_ms": round(float(np.percentile(lat, 50)), 2),
            "p99_ms": round(float(np.percentile(lat, 99)), 2), "forward_passes": passes,
            "requests_per_forward_pass": round(n / passes, 2) if passes else None,
            "client_cpu_s": round(client_cpu, 2),
            "server_cpu_s": round(server_cpu1 - server_cpu0, 2) if server_cpu0 is not None else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, help="run folder to serve (default: train one on builtin:splice)")
    ap.add_argument("--requests", type=int, default=400, help="requests per concurrency level")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--max-wait-ms", type=float, default=5.0)
    ap.add_argument("--max-batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1,
                    help="server torch threads (0: torch's default); 1 leaves a core to the load generator")
    ap.add_argument("--epochs", type=int, default=2, help="epochs for the run trained when --run is not given")
    ap.add_argument("--warmup", type=int, default=20, help="requests sent before each level, not counted")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        run = args.run
        if run is None:
            t = time.perf_counter()
            run = train_tiny(Path(tmp) / "splice", args.epochs)
            print(f"trained {run} ({args.epochs} epochs on builtin:splice) in {time.perf_counter() - t:.1f} s")
        seqs = splice_sequences()
        port = free_port()
        proc = start_server(run, port, args.max_wait_ms, args.max_batch, args.threads)
        base = f"http://127.0.0.1:{port}"
        rows = []
        try:
            for c in args.concurrency:
                asyncio.run(load(base, seqs, args.warmup, c, proc.pid))
                rows.append(asyncio.run(load(base, seqs, args.requests, c, proc.pid)))
        finally:
            code = stop_server(proc)
    import torch

    import biolens

    print(f"\nbiolens serve load test: {args.requests} requests per level, 1 sequence each, loopback, "
          f"max_wait_ms={args.max_wait_ms}, max_batch={args.max_batch}, threads={args.threads}; "
          f"server exit code {code}")
    print(f"{'concurrency':>11} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'req/pass':>8} "
          f"{'client cpu s':>12} {'server cpu s':>12}")
    for r in rows:
        print(f"{r['concurrency']:>11} {r['requests_per_s']:>8.1f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
              f"{r['errors']:>6} {r['requests_per_forward_pass'] or 0:>8.2f} {r['client_cpu_s']:>12.2f} "
              f"{r['server_cpu_s'] if r['server_cpu_s'] is not None else float('nan'):>12.2f}")
    if args.json:
        result = {"benchmark": "serve", "results": rows, "server_exit_code": code,
                  "settings": {"requests": args.requests, "max_wait_ms": args.max_wait_ms,
                               "max_batch": args.max_batch, "threads": args.threads,
                               "run": str(args.run) if args.run else
                               f"builtin:splice, default model, {args.epochs} epochs"},
                  "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                              "python": platform.python_version(), "torch": torch.__version__,
                              "biolens": biolens.__version__}}
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")
    if code != 0 or any(r["errors"] for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
