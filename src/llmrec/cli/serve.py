"""`llmrec serve MODEL_DIR --port 8000`: the HTTP API (serving/app.py) on uvicorn."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
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
KeepAlive = Annotated[
    int, typer.Option("--timeout-keep-alive-s", min=1, help="s an idle connection is kept")
]
ReadTimeout = Annotated[
    float,
    typer.Option(
        "--timeout-read-s",
        min=0.1,
        help="s a client may take to send its headers, or stall its body",
    ),
]
MaxConnections = Annotated[
    int,
    typer.Option(
        min=2, help="open connections at most; a new one closes the longest idle, else gets 503"
    ),
]
AllowedHosts = Annotated[
    str | None,
    typer.Option(help="comma-separated Host headers answered, e.g. localhost,127.0.0.1 (else 400)"),
]
ApiKeyFile = Annotated[
    Path | None,
    typer.Option(
        exists=True, dir_okay=False, help="file holding a key every route but /health requires"
    ),
]


def serve(
    model_dir: ModelDir,
    host: Host = "127.0.0.1",
    port: Port = 8000,
    max_batch: MaxBatch = 16,
    batch_wait_ms: BatchWait = 5.0,
    max_body_bytes: MaxBody = 131_072,
    timeout_keep_alive_s: KeepAlive = 5,
    timeout_read_s: ReadTimeout = 10.0,
    max_connections: MaxConnections = 100,
    allowed_hosts: AllowedHosts = None,
    api_key_file: ApiKeyFile = None,
    device: Device = "auto",
) -> None:
    """Serve a saved model over HTTP: POST /recommend, GET /health, GET /items/{id},
    GET /openapi.json."""
    try:
        import uvicorn

        from llmrec.serving.app import create_app
        from llmrec.serving.connections import server_config
        from llmrec.serving.security import read_api_key
    except ImportError as error:
        raise ConfigError(f"{error.name} is missing: pip install 'llmrec[serve]'") from None
    settings = ServeSettings(
        max_batch=max_batch,
        batch_wait_ms=batch_wait_ms,
        max_body_bytes=max_body_bytes,
        read_timeout_s=timeout_read_s,
        allowed_hosts=None if allowed_hosts is None else tuple(allowed_hosts.split(",")),
        api_key=None if api_key_file is None else read_api_key(api_key_file),
    )
    app = create_app(Recommender.load(model_dir, device), settings)
    typer.echo(f"serving {model_dir} on http://{host}:{port} (spec at /openapi.json; Ctrl-C stops)")
    level = logging.getLevelName(logging.getLogger().getEffectiveLevel()).lower()
    server = uvicorn.Server(
        server_config(
            app,
            host,
            port,
            timeout_keep_alive_s=timeout_keep_alive_s,
            timeout_read_s=timeout_read_s,
            max_connections=max_connections,
            log_level=level,
        )
    )
    with contextlib.suppress(SystemExit):  # uvicorn exits (status 3) when it cannot start
        server.run()
    if not server.started:  # uvicorn has logged why (e.g. the port is in use)
        raise ConfigError(f"could not listen on {host}:{port}")
