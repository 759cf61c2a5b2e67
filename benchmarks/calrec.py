"""Benchmark: CALRec (a recipe config) on a target data set, every retrieval mode, side by side
with SASRec-CE and BM25 on the same sampled test users.

    .venv/bin/python benchmarks/calrec.py --config configs/calrec_cpu_beauty.yaml \
        --data-dir ../shared/data --test-users 2000 \
        --baseline benchmarks/results/tmp/baselines/sasrec-beauty/model \
        --baseline benchmarks/results/tmp/baselines/bm25-beauty/model

Trains with `python -m llmrec train` in its own process (wall time, peak memory), then evaluates
the saved model with bm25 / dense / hybrid / constrained retrieval and the baselines on one seeded
user sample; times `recommend` per user (p50, p95). Writes benchmarks/results/NAME.json and .md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from baselines import RESULTS, machine, metric_cells, run_measured
from measure import evaluate, stage_throughput

from llmrec.config import load_config
from llmrec.data.registry import load_dataset
from llmrec.evaluation.config import EvalConfig
from llmrec.models.registry import load_model

REPO = Path(__file__).resolve().parents[1]
MODES = ("bm25", "dense", "hybrid", "constrained")
METRICS = ("recall@1", "recall@5", "recall@10", "ndcg@10")


def main(
    config: Annotated[Path, typer.Option(help="CALRec run config")] = Path(
        "configs/calrec_cpu_beauty.yaml"
    ),
    data_dir: Annotated[Path, typer.Option(help="staged data root")] = REPO.parent / "shared/data",
    test_users: Annotated[int, typer.Option(help="seeded sample of test users")] = 2000,
    latency_users: Annotated[int, typer.Option(help="users timed one by one")] = 50,
    baseline: Annotated[list[Path] | None, typer.Option(help="saved baseline model dirs")] = None,
    modes: Annotated[str, typer.Option(help="comma-separated retrieval modes")] = ",".join(MODES),
    train: Annotated[bool, typer.Option(help="train first (else reuse the run folder)")] = True,
    overrides: Annotated[list[str] | None, typer.Option("--set", help="config overrides")] = None,
    name: Annotated[str, typer.Option(help="results file stem")] = "calrec",
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    work = RESULTS / "tmp" / name
    work.mkdir(parents=True, exist_ok=True)
    sets = [
        f"data.data_dir={data_dir.resolve()}",
        f"output.dir={work}",
        f"seed={seed}",
        *(overrides or []),
    ]
    run_config = load_config(config, sets)
    run_dir = run_config.run_dir()
    command = [sys.executable, "-m", "llmrec", "train", str(config), "-q"]
    for item in sets:
        command += ["--set", item]
    trained = run_measured(command, work / "train.log") if train else {}
    dataset = load_dataset(run_config.data.source, data_dir=data_dir).dataset
    eval_config = EvalConfig(sample_users=test_users, seed=seed)
    model = load_model(run_dir / "model")
    sample = dataset.test.subset(
        np.sort(
            np.random.default_rng(seed).choice(
                len(dataset.test), min(test_users, len(dataset.test)), replace=False
            )
        )
    )
    held_out_loss = model.target_loss(sample)  # token CE of the test targets' lines
    rows = []
    for mode in modes.split(","):
        model.config = model.config.model_copy(update={"retrieval": mode})
        rows.append(evaluate(model, f"calrec ({mode})", dataset.test, eval_config, latency_users))
    for path in baseline or []:
        rows.append(
            evaluate(
                load_model(path), load_model(path).name, dataset.test, eval_config, latency_users
            )
        )
    fit = json.loads((run_dir / "fit.json").read_text()) if (run_dir / "fit.json").is_file() else {}
    record = {
        "command": "python benchmarks/calrec.py " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "config": str(config),
        "train": trained,
        "stage_seconds": fit.get("stage_seconds"),
        "tokens_per_s": stage_throughput(run_dir),
        "test_target_token_loss": held_out_loss,
        "rows": rows,
    }
    (RESULTS / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    write_markdown(record, RESULTS / f"{name}.md")
    typer.echo((RESULTS / f"{name}.md").read_text(encoding="utf-8"))


def write_markdown(record: dict, path: Path) -> None:
    lines = [
        f"# CALRec ({record['config']}) against baselines on the same test users",
        "",
        f"Machine: {record['machine']['cpu']}, {record['machine']['cores']} cores.",
        f"Command: `{record['command']}`",
        "",
        f"Training: {record['train']}; stage seconds {record['stage_seconds']}; "
        f"median tokens/s {record['tokens_per_s']}; held-out target-line token loss "
        f"{record['test_target_token_loss']:.3f}.",
        "",
        "| model | " + " | ".join(METRICS) + " | latency p50 / p95 (s) |",
        "|" + "---|" * (len(METRICS) + 2),
    ]
    for row in record["rows"]:
        cells = metric_cells(row, METRICS)
        lines.append(
            f"| {row['name']} | "
            + " | ".join(cells)
            + f" | {row['p50_s']:.3f} / {row['p95_s']:.3f} |"
        )
    protocol = record["rows"][0]["protocol"] if record["rows"] else {}
    lines += [
        "",
        f"Protocol: {protocol.get('user_sample')}; full catalogue; history filter "
        f"{'on' if protocol.get('filter_history') else 'off'}. Diagnostics per row in the JSON.",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    typer.run(main)
