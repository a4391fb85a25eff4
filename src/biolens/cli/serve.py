"""``biolens serve RUN --host 127.0.0.1 --port 8000``: the HTTP inference server (FastAPI + uvicorn)."""

from __future__ import annotations

from pathlib import Path

import typer

from biolens.cli._common import console, handle_errors, setup_logging


@handle_errors
def serve(
    run: Path = typer.Argument(..., help="run folder from `biolens train`"),
    host: str = typer.Option("127.0.0.1", help="address to bind (0.0.0.0 exposes the server to the network)"),
    port: int = typer.Option(8000, help="TCP port"),
    max_batch: int = typer.Option(64, "--max-batch", help="most items per request and per forward pass"),
    max_wait_ms: float = typer.Option(5.0, "--max-wait-ms",
                                      help="how long the batcher waits for more requests to join a forward pass"),
    max_upload_mb: float = typer.Option(16.0, "--max-upload-mb", help="largest request body (MiB); 413 above"),
    max_length: int | None = typer.Option(None, "--max-length",
                                   help="longest sequence accepted (default: the model's max_len); longer ones "
                                        "are refused with 422, accepted ones above max_len are truncated"),
    batch_size: int = typer.Option(256, "--batch-size", help="rows per model call inside a forward pass"),
    max_pixels: int | None = typer.Option(None, "--max-pixels", help="largest uploaded image, width × height from its "
                                          "header (default: the run's data.image.max_pixels)"),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:N or mps"),
    threads: int = typer.Option(0, "--threads", help="torch CPU threads for the forward pass (0: torch's default); "
                                                     "1 often gives the lowest latency on a busy machine"),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level: critical, error, warning, info"),
    explain: bool = typer.Option(True, "--explain/--no-explain",
                                 help="offer explanations (POST /v1/explain, shown on the page) or predictions only"),
    max_explain: int = typer.Option(16, "--max-explain", help="most inputs per explanation request; 413 above"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="only warnings"),
) -> None:
    """Serve a run over HTTP: a page to try it at /, POST /v1/predict and /v1/explain, GET /v1/health, /v1/model,
    /v1/card, docs at /docs."""
    import uvicorn

    from biolens.workflows.serve import build_app as create_app  # the API, the page and explanations
    from biolens.errors import ConfigError

    setup_logging(quiet)
    if max_upload_mb <= 0:
        raise ConfigError(f"--max-upload-mb {max_upload_mb}: must be > 0")
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port {port}: must be a TCP port, 0..65535 (0: any free port)")
    if threads < 0:
        raise ConfigError(f"--threads {threads}: must be ≥ 0 (0: torch's default)")
    if max_explain < 1:
        raise ConfigError(f"--max-explain {max_explain}: must be at least 1")
    if threads:
        import torch

        torch.set_num_threads(threads)
    app = create_app(run, max_upload_bytes=int(max_upload_mb * 1024 * 1024), max_batch=max_batch,
                     max_sequence_length=max_length, max_wait_ms=max_wait_ms, batch_size=batch_size, device=device,
                     max_pixels=max_pixels, explain=explain, max_explain_items=max_explain)
    console.print(f"serving {run} at http://{host}:{port}  (page: http://{host}:{port}/, docs: "
                  f"http://{host}:{port}/docs)", soft_wrap=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level.lower(), access_log=not quiet)
