"""Validation sweeps: variants of one base run config, each trained in its own process and scored
on one seeded sample of validation users beside a reference model. Test users are never read:
a sweep chooses, and the chosen config's test numbers come from its benchmark.

    .venv/bin/python benchmarks/sweep.py benchmarks/sweeps/sasrec_beauty.yaml \
        --data-dir ../shared/data

A sweep file (benchmarks/sweeps/*.yaml) names the base config, the reference (name and config),
the metrics (the first one chooses), the validation users (null: all), overrides of every run
(`sets`, e.g. the data set) and the variants, each a list of `--set` overrides of the base
config. Each model trains with `python -m llmrec train`
(wall time, peak memory) and is evaluated with the base config's `eval` settings. Trained runs in
benchmarks/results/tmp/NAME are reused (delete the folder to start over). `--variant` runs some
variants only; `--threads` caps torch's threads (two sweeps side by side: the wall times then
say little, the metrics change only by float rounding). Writes benchmarks/results/NAME.json and
.md (NAME: the sweep file's stem). Run it on an idle machine.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import torch
import typer
import yaml
from baselines import DATA_DIR, RESULTS, DataDir, machine, metric_cells, publish, report_head
from measure import evaluate, train_one
from pydantic import BaseModel, ConfigDict, PositiveInt

from llmrec.config import load_config
from llmrec.experiment import load_run_data
from llmrec.models.registry import load_model


class Reference(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    config: Path


class Sweep(BaseModel):
    """A sweep file: what is trained, against what, and how it is read."""

    model_config = ConfigDict(extra="forbid")
    title: str
    config: Path
    reference: Reference
    metrics: tuple[str, ...]
    valid_users: PositiveInt | None
    sets: list[str] = []  # overrides of every run, the reference's too (e.g. the data set)
    variants: dict[str, list[str]]


def main(
    sweep_file: Annotated[Path, typer.Argument(help="benchmarks/sweeps/NAME.yaml")],
    variant: Annotated[
        list[str] | None, typer.Option(help="variants to run (default: all, in order)")
    ] = None,
    data_dir: DataDir = DATA_DIR,
    seed: Annotated[int, typer.Option()] = 0,
    threads: Annotated[
        int | None, typer.Option(help="torch threads of every run and of the evaluation")
    ] = None,
) -> None:
    sweep = Sweep.model_validate(yaml.safe_load(sweep_file.read_text(encoding="utf-8")))
    unknown = sorted(set(variant or ()) - set(sweep.variants))
    if unknown:
        raise typer.BadParameter(f"unknown variants {unknown}; known: {sorted(sweep.variants)}")
    name = sweep_file.stem
    work = RESULTS / "tmp" / name
    work.mkdir(parents=True, exist_ok=True)
    common = [f"data.data_dir={data_dir.resolve()}", f"output.dir={work}", f"seed={seed}"]
    common += sweep.sets
    if threads is not None:  # e.g. two sweeps side by side, one core each
        common.append(f"train.num_threads={threads}")
        torch.set_num_threads(threads)
    reference = sweep.reference
    runs = [(reference.name, reference.config, [f"output.name={reference.name}"])]
    runs += [
        (key, sweep.config, [f"output.name={key}", *sweep.variants[key]])
        for key in variant or sweep.variants
    ]
    eval_config = load_config(sweep.config, common).eval.model_copy(
        update={"sample_users": sweep.valid_users, "seed": seed}
    )
    rows, data = [], None
    for key, path, sets in runs:
        run_dir, trained = train_one(path, "train", [*common, *sets], work)
        data = data or load_run_data(load_config(path, [*common, *sets]), run_dir)
        model = load_model(run_dir / "model")
        row = evaluate(model, key, data.valid, eval_config, latency_users=0, split="valid")
        fit = json.loads((run_dir / "fit.json").read_text(encoding="utf-8"))
        best = {k: fit.get(k) for k in ("best_step", "best_epoch") if fit.get(k) is not None}
        rows.append({**row, "overrides": sets[1:], "train": trained, **best})
        typer.echo(f"{key}: {sweep.metrics[0]} {row['metrics'][sweep.metrics[0]]:.4f}")
    record = {
        "command": "python benchmarks/sweep.py " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "title": sweep.title,
        "config": str(sweep.config),
        "metrics": list(sweep.metrics),
        "split": data.split if data else None,
        "rows": rows,
    }
    publish(record, name, write_markdown)


def write_markdown(record: dict, path: Path) -> None:
    metrics = tuple(record["metrics"])
    choosing, rows = metrics[0], record["rows"]
    reference = rows[0]
    best = max(rows[1:], key=lambda row: row["metrics"][choosing], default=None)
    lines = [
        *report_head(f"{record['title']}: {record['split']}", record),
        f"Base config: `{record['config']}`. Validation users (never test): "
        f"{reference['protocol'].get('user_sample', 'all')}; full catalogue. Highest "
        f"{choosing}: **{best['name'] if best else '-'}**.",
        "",
        "| variant | overrides | " + " | ".join(metrics) + f" | {choosing} / {reference['name']}"
        " | best epoch / step | train wall (s) |",
        "|" + "---|" * (len(metrics) + 5),
    ]
    for row in rows:
        cells = " | ".join(metric_cells(row, metrics))
        base = reference["metrics"][choosing]
        ratio = row["metrics"][choosing] / base if base else float("nan")
        overrides = ", ".join(f"`{item}`" for item in row["overrides"]) or "-"
        when = row.get("best_epoch") or row.get("best_step") or "-"
        wall = row["train"]["wall_s"]
        lines.append(
            f"| {row['name']} | {overrides} | {cells} | {ratio:.2f} | {when} | {wall:.0f} |"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    typer.run(main)
