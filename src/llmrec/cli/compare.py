"""`llmrec compare`: a paired test between two runs' per-user results on the same evaluation
set (same users, histories and targets, checked by the fingerprint each result records)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmrec.cli.run import Split
from llmrec.evaluation.result import EvalResult, compare_results

RunDir = Annotated[
    Path, typer.Argument(help="a run folder written by `llmrec run`", exists=True, file_okay=False)
]


def compare(
    run_a: RunDir,
    run_b: RunDir,
    split: Split = "test",
    metric: Annotated[str, typer.Option(help="per-user metric, e.g. ndcg@10")] = "ndcg@10",
    resamples: Annotated[int, typer.Option(min=1, help="bootstrap / sign-flip resamples")] = 10_000,
) -> None:
    """Is A better than B? Mean difference (A - B), its bootstrap CI, and a paired p-value."""
    result_a, result_b = EvalResult.load(run_a / split), EvalResult.load(run_b / split)
    test = compare_results(result_a, result_b, metric, num_resamples=resamples)
    typer.echo(
        f"{metric} ({split}): A {result_a.metrics[metric]:.4f}, B {result_b.metrics[metric]:.4f}; "
        f"A - B = {test.mean_difference:+.4f} [{test.ci_low:+.4f}, {test.ci_high:+.4f}], "
        f"paired sign-flip p = {test.p_value:.4g}"
    )
