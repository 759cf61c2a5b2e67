"""The HTTP API's request and response bodies and the server settings, with their limits.

The limits are fixed here so the OpenAPI spec states them exactly; a request beyond them gets a
4xx with a message naming the field (422) or the body size (413).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

MAX_HISTORY = 200  # history entries per request
MAX_ENTRY_CHARS = 256  # characters per history entry (an item id or a title)
MAX_K = 100
MAX_CANDIDATES = 1000
MAX_BATCH = 1024  # requests per model call
MAX_BATCH_WAIT_MS = 1000

Entry = Annotated[str, Field(min_length=1, max_length=MAX_ENTRY_CHARS)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServeSettings(_Strict):
    """How `llmrec serve` batches, what requests it accepts and from whom."""

    max_batch: int = Field(16, ge=1, le=MAX_BATCH, description="requests per model call at most")
    batch_wait_ms: float = Field(
        5.0,
        ge=0,
        le=MAX_BATCH_WAIT_MS,
        description="ms a batch waits for more requests after its first",
    )
    max_body_bytes: int = Field(131_072, ge=1024, description="largest request body in bytes")
    read_timeout_s: float = Field(
        10.0, gt=0, allow_inf_nan=False, description="s a request body may stall before 408"
    )
    allowed_hosts: tuple[str, ...] | None = Field(
        None, description="Host header values answered (e.g. localhost); None: any (no check)"
    )
    api_key: SecretStr | None = Field(
        None, description="bearer token every route but /health needs; None: no key"
    )


class RecommendRequest(_Strict):
    history: list[Entry] = Field(
        max_length=MAX_HISTORY,
        description="the user's items, oldest first: item ids or free-text titles (an entry "
        "that is not an id is matched to the catalogue by title); may be empty",
        examples=[["B003H8180I", "my beauty diary caviar mask"]],
    )
    k: int = Field(10, ge=1, le=MAX_K, description="number of items to return")
    user: str | None = Field(
        None,
        max_length=200,
        description="the user's id in the training data, read by models with per-user "
        "parameters (CLLM4Rec); absent or unknown: the model's stand-in for a new user",
    )
    exclude: bool = Field(True, description="leave the history's own items out")
    candidates: list[Entry] | None = Field(
        None,
        min_length=1,
        max_length=MAX_CANDIDATES,
        description="rank only these item ids (all of them must be in the catalogue)",
    )


class RecommendedItemOut(_Strict):
    item_id: str
    score: float = Field(description="the model's score; higher is better")
    title: str


class HistoryEntryOut(_Strict):
    entry: str = Field(description="the history entry as given")
    item_id: str = Field(description="the catalogue item it was read as")
    title: str
    matched_by: Literal["id", "title", "bm25"] = Field(
        description="id: exact item id; title: exact title (case and spacing ignored); "
        "bm25: best BM25 match over item titles"
    )
    score: float | None = Field(None, description="BM25 score of a bm25 match")


class RecommendResponse(_Strict):
    model: str = Field(description="model kind, e.g. sasrec")
    items: list[RecommendedItemOut] = Field(
        description="best first; at most k (a generative model may name fewer)"
    )
    history: list[HistoryEntryOut] = Field(description="how each history entry was read")


class HealthResponse(_Strict):
    status: Literal["ok"] = "ok"
    model: str
    num_items: int
    llmrec_version: str


class ItemResponse(_Strict):
    item_id: str
    title: str
    categories: list[str]
    brand: str | None
    price: float | None
    description: str | None


class ErrorResponse(_Strict):
    detail: str = Field(description="what was wrong and what is allowed")
