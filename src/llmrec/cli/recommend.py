"""`llmrec recommend MODEL_DIR -H ID -H "a title" -k 10`: one user's top-k from a saved model."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer

from llmrec.cli.run import Device, ModelDir
from llmrec.recommender import Recommender

History = Annotated[
    list[str] | None,
    typer.Option(
        "--history",
        "-H",
        help="a history item, oldest first (repeatable): an item id, or a title matched to the "
        "catalogue by BM25",
    ),
]
TopK = Annotated[int, typer.Option("-k", "--k", min=1, help="number of items")]
KeepHistory = Annotated[bool, typer.Option(help="allow the history's own items")]
User = Annotated[
    str | None,
    typer.Option(help="the user's id in the training data (models with user tokens: CLLM4Rec)"),
]
AsJson = Annotated[bool, typer.Option("--json", help="print items and history mapping as JSON")]


def recommend(
    model_dir: ModelDir,
    history: History = None,
    k: TopK = 10,
    keep_history: KeepHistory = False,
    user: User = None,
    as_json: AsJson = False,
    device: Device = "auto",
) -> None:
    """Recommend k items after a history given by item ids or titles."""
    recommender = Recommender.load(model_dir, device)
    mapping = recommender.resolve_history(history or [])
    items = recommender.recommend(mapping.item_ids, k, exclude_history=not keep_history, user=user)
    if as_json:
        record = {
            "items": [asdict(item) for item in items],
            "history": [asdict(match) for match in mapping.matches],
        }
        typer.echo(json.dumps(record, indent=2, ensure_ascii=False))
        return
    for match in mapping.matches:
        if match.matched_by != "id":
            score = "" if match.score is None else f", score {match.score:.2f}"
            typer.echo(
                f"history {match.entry!r} -> {match.item_id} {match.title!r} "
                f"({match.matched_by}{score})"
            )
    typer.echo(f"{'rank':>4}  {'item_id':<16} {'score':>10}  title")
    for rank, item in enumerate(items, start=1):
        typer.echo(f"{rank:>4}  {item.item_id:<16} {item.score:>10.4f}  {item.title}")
