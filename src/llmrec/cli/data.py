"""`llmrec data ...`: look at data sets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmrec.data.registry import load_dataset
from llmrec.data.stats import compute_stats, format_stats

app = typer.Typer(help="Inspect data sets.", no_args_is_help=True)

Source = Annotated[str, typer.Argument(help="a named data set (beauty, toys, ...) or a folder")]
DataDir = Annotated[
    Path | None, typer.Option(help="root of named data sets [default: $LLMREC_DATA]")
]
Format = Annotated[str, typer.Option("--format", help="p5, unisrec, dealrec, byo, recbole")]
SkipBad = Annotated[bool, typer.Option(help="skip malformed input and report the counts")]


@app.command("stats")
def stats(
    source: Source,
    data_dir: DataDir = None,
    data_format: Format = "auto",
    skip_bad: SkipBad = False,
) -> None:
    """Print users / items / interactions / sequence-length statistics."""
    loaded = load_dataset(source, data_format=data_format, data_dir=data_dir, skip_bad=skip_bad)
    typer.echo(format_stats(compute_stats(loaded.dataset, loaded.full_sequences)))
    if skip_bad:
        typer.echo(str(loaded.report))
