"""`llmrec serve MODEL_DIR --port 8000`: the HTTP API (serving/app.py) on uvicorn."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from llmrec.cli.run import Device, ModelDir
from llmrec.errors import ConfigError
from llmrec.recommender import Recommender
from llmrec.serving.schemas import MAX_BATCH, MAX_BATCH_WAIT_MS, ServeSettings

Host = Annotated[str, typer.Option(help="address to listen on (127.0.0.1: this machine only)")]
Port = Annotated[int, typer.Option(min=1, max=65535, help="TCP port")]
MaxBatch = Annotated[
    int, typer.Option(min=1, max=MAX_BATCH, help="concurrent requests per model call at most")
]
BatchWait = Annotated[
    float,
    typer.Option(
        "--batch-wait-ms", min=0, max=MAX_BATCH_WAIT_MS, help="ms a batch waits for more requests"
    ),
]
MaxBody = Annotated[int, typer.Option("--max-body-bytes", min=1024, help="largest body, bytes")]


def serve(
    model_dir: ModelDir,
    host: Host = "127.0.0.1",
    port: Port = 8000,
    max_batch: MaxBatch = 16,
    batch_wait_ms: BatchWait = 5.0,
    max_body_bytes: MaxBody = 131_072,
    device: Device = "auto",
) -> None:
    """Serve a saved model over HTTP: POST /recommend, GET /health, GET /items/{id}, /docs."""
    try:
        import uvicorn

        from llmrec.serving.app import create_app
    except ImportError as error:
        raise ConfigError(f"{error.name} is missing: pip install 'llmrec[serve]'") from None
    settings = ServeSettings(
        max_batch=max_batch, batch_wait_ms=batch_wait_ms, max_body_bytes=max_body_bytes
    )
    app = create_app(Recommender.load(model_dir, device), settings)
    typer.echo(f"serving {model_dir} on http://{host}:{port} (API docs at /docs; Ctrl-C stops)")
    level = logging.getLevelName(logging.getLogger().getEffectiveLevel()).lower()
    uvicorn.run(app, host=host, port=port, log_level=level, timeout_graceful_shutdown=30)
