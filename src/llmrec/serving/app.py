"""`create_app(model_dir)`: the FastAPI app behind `llmrec serve` (POST /recommend, GET /health,
GET /items/{item_id}, the OpenAPI spec at /openapi.json). Every answer comes from
`llmrec.Recommender`.

No /docs page: FastAPI's loads Swagger UI from a CDN (blank offline, and third-party code in the
page), and no local copy of its assets is installed.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.middleware.trustedhost import TrustedHostMiddleware

from llmrec.errors import LlmrecError
from llmrec.recommender import Query, Recommender
from llmrec.serving.batcher import MicroBatcher
from llmrec.serving.limits import BodyLimits
from llmrec.serving.schemas import (
    ErrorResponse,
    HealthResponse,
    ItemResponse,
    RecommendRequest,
    RecommendResponse,
    ServeSettings,
)
from llmrec.serving.security import ApiKeyGuard
from llmrec.version import __version__

ERRORS = {
    400: {"model": ErrorResponse, "description": "an entry or candidate is not in the catalogue"},
    408: {"model": ErrorResponse, "description": "the request body stalled"},
    413: {"model": ErrorResponse, "description": "the request body is too large"},
}
UNAUTHORIZED = {401: {"model": ErrorResponse, "description": "missing or wrong API key"}}


def create_app(source: str | Path | Recommender, settings: ServeSettings | None = None) -> FastAPI:
    recommender = source if isinstance(source, Recommender) else Recommender.load(source)
    settings = settings or ServeSettings()
    batcher = MicroBatcher(recommender, settings.max_batch, settings.batch_wait_ms / 1000)
    _ = recommender.title_index  # built before the first request, not during it

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        batcher.start()
        yield
        await batcher.stop()  # uvicorn has finished the in-flight requests by now

    app = FastAPI(
        title="llmrec", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.add_middleware(
        BodyLimits, max_bytes=settings.max_body_bytes, read_timeout_s=settings.read_timeout_s
    )
    # Middleware added last runs first: the Host header, then the key, then the body limits.
    if settings.api_key is not None:
        app.add_middleware(ApiKeyGuard, key=settings.api_key, open_paths=("/health",))
    if settings.allowed_hosts is not None:  # DNS rebinding: a browser sends the attacker's name
        hosts = list(settings.allowed_hosts)
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts, www_redirect=False)
    denied = UNAUTHORIZED if settings.api_key else {}

    @app.exception_handler(LlmrecError)
    async def bad_input(request: Request, error: LlmrecError) -> JSONResponse:
        return JSONResponse({"detail": encodable(str(error))}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes the input, which may be NaN or hold a lone surrogate:
        # neither can be written as strict JSON in UTF-8, and the answer became a 500.
        return JSONResponse({"detail": encodable(jsonable_encoder(error.errors()))}, 422)

    @app.get("/health")
    async def health() -> HealthResponse:
        """Model kind, catalogue size and llmrec version."""
        model = recommender.model
        return HealthResponse(
            model=model.name, num_items=model.num_items, llmrec_version=__version__
        )

    @app.get(  # ids may hold "/"
        "/items/{item_id:path}",
        responses={404: {"model": ErrorResponse}, **denied},
    )
    async def get_item(item_id: str) -> ItemResponse:
        """One catalogue item's fields."""
        try:
            item = recommender.item(item_id)
        except LlmrecError as error:
            raise HTTPException(404, str(error)) from None
        return ItemResponse.model_validate(item.to_json())

    @app.post("/recommend", responses={**ERRORS, **denied})
    async def recommend(request: RecommendRequest) -> RecommendResponse:
        """Top-k items after a history of item ids or titles, and how each entry was read."""
        mapping = await asyncio.to_thread(recommender.resolve_history, request.history)
        query = Query(mapping.item_ids, request.exclude, request.candidates, request.user)
        items = await batcher.submit(query, request.k)
        return RecommendResponse.model_validate(
            {
                "model": recommender.model.name,
                "items": [asdict(item) for item in items],
                "history": [asdict(match) for match in mapping.matches],
            }
        )

    return app


def encodable(value: Any) -> Any:
    """`value` with what strict JSON in UTF-8 cannot carry made printable: a non-finite float
    becomes its name ("nan", "inf"), a lone surrogate its backslash escape ("\\ud800")."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {encodable(key): encodable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [encodable(item) for item in value]
    return value
