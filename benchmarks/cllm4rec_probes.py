"""Probes behind the CLLM4Rec CPU recipe (docs/cllm4rec.md sec. 9, configs/cllm4rec_cpu_beauty):

1. training throughput per task and ranking latency, whole SmolLM2 on the 300-user fixture;
2. the scale of SmolLM2's last hidden states and of the ID tables, and the collaborative LM's
   cross-entropy on Beauty after `--steps` Adam steps at each learning rate (uniform: ln J).

    .venv/bin/python benchmarks/cllm4rec_probes.py --data-dir ../shared/data --lrs 1e-4,1e-3,1e-2

Writes benchmarks/results/cllm4rec_probes.json and .md. Run it on an idle machine.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
import typer
from baselines import DATA_DIR, RESULTS, DataDir, machine

from llmrec.data.registry import load_dataset
from llmrec.models.cllm4rec.config import CLLM4RecConfig
from llmrec.models.cllm4rec.documents import DocumentBatches
from llmrec.models.cllm4rec.model import CLLM4Rec

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "data" / "amazon-beauty-mini"


def built(dataset, **fields) -> CLLM4Rec:
    config = CLLM4RecConfig(content_fields=("title",), max_history_items=20, **fields)
    model = CLLM4Rec(config, dataset.catalogue)
    torch.manual_seed(0)
    model._build(dataset.user_ids, config.backbone, show_progress=False)
    return model


def task_batches(model: CLLM4Rec, dataset, task: str) -> list[dict]:
    content = model.templates.item_documents(model.catalogue.items)
    return list(DocumentBatches((task,), model.templates, dataset.train, content, 20, 0).batches(0))


def throughput(steps: int) -> dict:
    """Tokens/s of `steps` Adam steps per task, and ranking ms per user (batches of 64)."""
    dataset = load_dataset(FIXTURE).dataset
    model = built(dataset, max_content_tokens=24)
    network = model.network.train()
    optimizer = torch.optim.Adam([p for p in network.parameters() if p.requires_grad], lr=1e-4)
    rows = {}
    for task in ("content", "collaborative", "recommend"):
        batches = task_batches(model, dataset, task)
        tokens, started = 0, time.perf_counter()
        for batch in batches[:steps]:
            out = network(batch)
            out.total.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            tokens += out.num_tokens
        seconds = time.perf_counter() - started
        rows[task] = {
            "tokens_per_s": tokens / seconds,
            "epoch_s_estimate": seconds / steps * len(batches),
        }
    users = dataset.test.subset(np.arange(64))
    started = time.perf_counter()
    model.score(users.histories, users.user_ids)
    rows["ranking_ms_per_user"] = (time.perf_counter() - started) / 64 * 1000
    return rows


def learning_rates(data_dir: Path, lrs: list[float], steps: int, init_std: float) -> dict:
    """Collaborative cross-entropy over the last 25 of `steps` steps on Beauty, per lr."""
    dataset = load_dataset("beauty", data_dir=data_dir).dataset
    rows = {"uniform_ce": math.log(dataset.num_items), "init_std": init_std, "steps": steps}
    for lr in lrs:
        model = built(dataset, init_std=init_std, mr_lambda=0.0)
        network = model.network.train()
        batches = task_batches(model, dataset, "collaborative")[:steps]
        with torch.no_grad():
            hidden = network.hidden_states(
                batches[0]["input_ids"], batches[0]["attention_mask"], "collaborative"
            )
        rows["hidden_norm"] = float(hidden.norm(dim=-1).mean())
        parameters = [p for p in network.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(parameters, lr=lr)
        losses = []
        for batch in batches:
            out = network(batch)
            out.total.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(out.total.item())
        rows[f"ce_at_lr_{lr:g}"] = float(np.mean(losses[-25:]))
    return rows


def main(
    data_dir: DataDir = DATA_DIR,
    lrs: Annotated[str, typer.Option(help="comma-separated learning rates")] = "1e-4,1e-3,1e-2",
    steps: Annotated[int, typer.Option(help="Adam steps per learning rate")] = 200,
    throughput_steps: Annotated[int, typer.Option(help="steps timed per task")] = 4,
    init_std: Annotated[float, typer.Option(help="ID table init std")] = 0.02,
    threads: Annotated[int, typer.Option()] = 2,
) -> None:
    torch.set_num_threads(threads)
    record = {
        "command": "python benchmarks/cllm4rec_probes.py " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "threads": threads,
        "throughput": throughput(throughput_steps),
        "learning_rates": learning_rates(
            data_dir, [float(x) for x in lrs.split(",")], steps, init_std
        ),
    }
    (RESULTS / "cllm4rec_probes.json").write_text(json.dumps(record, indent=1) + "\n", "utf-8")
    lines = [
        "# CLLM4Rec probes (SmolLM2-135M whole, frozen, fp32)",
        "",
        f"Machine: {record['machine']['cpu']}, {record['machine']['cores']} cores, "
        f"{threads} threads. Command: `{record['command']}`",
        "",
        "| task (fixture, batch 20) | tokens/s | one epoch over the fixture (s) |",
        "|---|--:|--:|",
    ]
    for task in ("content", "collaborative", "recommend"):
        row = record["throughput"][task]
        lines.append(f"| {task} | {row['tokens_per_s']:.0f} | {row['epoch_s_estimate']:.0f} |")
    rates = record["learning_rates"]
    lines += [
        "",
        f"Ranking: {record['throughput']['ranking_ms_per_user']:.0f} ms per user (batches of 64).",
        "",
        f"Beauty, collaborative LM, {rates['steps']} Adam steps, init std {rates['init_std']}; "
        f"last hidden state norm {rates['hidden_norm']:.1f}; uniform CE {rates['uniform_ce']:.2f}.",
        "",
        "| lr | CE (mean of the last 25 steps) |",
        "|--:|--:|",
    ]
    lines += [
        f"| {key.removeprefix('ce_at_lr_')} | {value:.2f} |"
        for key, value in rates.items()
        if key.startswith("ce_at_lr_")
    ]
    (RESULTS / "cllm4rec_probes.md").write_text("\n".join(lines) + "\n", "utf-8")
    typer.echo("\n".join(lines))


if __name__ == "__main__":
    typer.run(main)
