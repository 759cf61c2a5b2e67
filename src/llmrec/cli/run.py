"""`llmrec train | evaluate | run`: a config in, a model folder or a report folder out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer

from llmrec.cli.data import DataDir
from llmrec.config import load_config
from llmrec.evaluation.config import EvalConfig
from llmrec.experiment import evaluate_saved_model, run_experiment, saved_run_config, train_model

ConfigPath = Annotated[Path, typer.Argument(help="YAML run config", exists=True, dir_okay=False)]
Overrides = Annotated[
    list[str] | None,
    typer.Option("--set", help="override a config key, e.g. train.lr=3e-4 (repeatable)"),
]
Resume = Annotated[bool, typer.Option(help="continue from the run folder's last checkpoint")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")]
Device = Annotated[
    str,
    typer.Option(help="where the model ranks: auto (a CUDA GPU if torch sees one), cpu, cuda:N"),
]
# Not `exists=True`: loading checks the folder, recovers a save interrupted between its renames
# and names a partial copy (models/saved.py).
ModelDir = Annotated[Path, typer.Argument(help="a saved model folder")]
DataSource = Annotated[str, typer.Argument(help="named data set or folder the model was fit on")]
Split = Annotated[Literal["valid", "test"], typer.Option(help="valid or test")]
FilterHistory = Annotated[bool, typer.Option(help="remove history items before ranking")]
AsJson = Annotated[bool, typer.Option("--json", help="print metrics as JSON")]


def train(
    config: ConfigPath, overrides: Overrides = None, resume: Resume = False, quiet: Quiet = False
) -> None:
    """Train the configured model and save it in RUN_DIR/model."""
    run_config = load_config(config, overrides or [])
    _, _, fit, run_dir = train_model(run_config, resume=resume, show_progress=not quiet)
    best = "" if fit.best_metric is None else f" (best {run_config.train.metric}: "
    best += "" if fit.best_metric is None else f"{fit.best_metric:.4f})"
    typer.echo(f"model saved in {run_dir / 'model'}{best}")


def evaluate(
    model_dir: ModelDir,
    data: DataSource,
    split: Split = "test",
    data_dir: DataDir = None,
    filter_history: FilterHistory = False,
    as_json: AsJson = False,
    quiet: Quiet = False,
    device: Device = "auto",
) -> None:
    """Evaluate a saved model as its run evaluated it (history filter off unless asked)."""
    run = saved_run_config(model_dir)  # the run's own eval settings, as in its report
    config = (run.eval if run else EvalConfig()).model_copy(
        update={"filter_history": filter_history}
    )
    result = evaluate_saved_model(model_dir, data, split, data_dir, config, not quiet, device)
    typer.echo(json.dumps(result.to_json(), indent=2) if as_json else result.format_table())


def run(
    config: ConfigPath, overrides: Overrides = None, resume: Resume = False, quiet: Quiet = False
) -> None:
    """Train, evaluate (valid + test) and write a report folder."""
    result = run_experiment(
        load_config(config, overrides or []), resume=resume, show_progress=not quiet
    )
    typer.echo(result.results["test"].format_table())
    typer.echo(f"report: {result.run_dir / 'report.md'}")
