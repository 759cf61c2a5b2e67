"""Probes behind the CALRec CPU recipe (docs/calrec.md sec. 12, configs/calrec_cpu_beauty.yaml),
on full Beauty with the whole SmolLM2 and the recipe's text cuts, each a ratio measured in the
same run:

1. training seconds per step (batch 16, Adam) with every weight trained and with only the top
   `--trainable` layers (`model.extensions.trainable_layers`);
2. seconds per user of sampling + BM25 (G lines, `model.generation`) and of constrained decoding
   (`model.constrained`), with prompts decoded one by one and in batches of `--batch-prompts`.

    .venv/bin/python benchmarks/calrec_probes.py --data-dir ../shared/data --threads 2

Writes benchmarks/results/calrec_probes.json and .md. Run it on an idle machine.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
import typer
from baselines import DATA_DIR, DataDir, machine, publish

from llmrec.config import load_config
from llmrec.data.registry import load_dataset
from llmrec.models.backbone import train_top_layers
from llmrec.models.calrec.batches import build_examples, collate
from llmrec.models.registry import build_model

REPO = Path(__file__).resolve().parents[1]


def step_seconds(model, sequences, steps: int, batch_size: int, trainable: int | None) -> dict:
    """Median seconds per Adam step (the first, which touches fresh memory, is not timed)."""
    network = model.network.train()
    if trainable is not None:
        train_top_layers(network.language_model, trainable)
    examples = build_examples(sequences[: (steps + 1) * batch_size], model.lines, "last")
    parameters = [p for p in network.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=1e-4)
    seconds, tokens = [], 0
    for step in range(steps + 1):
        batch = collate(
            examples[step * batch_size : (step + 1) * batch_size], model.tokenizer.pad_token_id
        )
        started = time.perf_counter()
        out = network(batch)
        out.total.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step:
            seconds.append(time.perf_counter() - started)
            tokens += out.num_tokens
    return {
        "trainable_layers": trainable,
        "trainable_parameters": sum(p.numel() for p in parameters),
        "s_per_step": float(np.median(seconds)),
        "tokens_per_s": tokens / sum(seconds),
    }


def per_user_seconds(model, histories, mode: str, batch_prompts: int) -> float:
    """Seconds per user of `recommend(k=10)` over `histories` in one call (after a warm-up)."""
    batched = {"batch_prompts": batch_prompts}
    constrained = model.config.extensions.constrained.model_copy(update=batched)
    model.config = model.config.with_extensions(retrieval=mode, constrained=constrained).model_copy(
        update={"generation": model.config.generation.model_copy(update=batched)}
    )
    model.recommend(histories[:2], k=10)
    started = time.perf_counter()
    model.recommend(histories[2:], k=10)
    return (time.perf_counter() - started) / (len(histories) - 2)


def main(
    config: Annotated[Path, typer.Option(help="CALRec CPU recipe")] = Path(
        "configs/calrec_cpu_beauty.yaml"
    ),
    data_dir: DataDir = DATA_DIR,
    threads: Annotated[int, typer.Option(help="torch threads")] = 2,
    steps: Annotated[int, typer.Option(help="timed training steps per variant")] = 6,
    trainable: Annotated[int, typer.Option(help="top layers trained in the cut variant")] = 10,
    users: Annotated[int, typer.Option(help="test users timed per generation variant")] = 34,
    batch_prompts: Annotated[int, typer.Option(help="prompts per batch")] = 16,
) -> None:
    torch.set_num_threads(threads)
    run_config = load_config(config, [f"data.data_dir={data_dir.resolve()}"])
    dataset = load_dataset(run_config.data.source, data_dir=data_dir).dataset
    model_config = run_config.model.with_extensions(trainable_layers=None)
    batch_size = run_config.train.batch_size
    training = []
    for variant in (None, trainable):
        torch.manual_seed(0)
        model = build_model(model_config, dataset.catalogue)
        training.append(step_seconds(model, dataset.train, steps, batch_size, variant))
    model.network.eval()
    rows = np.sort(np.random.default_rng(0).choice(len(dataset.test), users, replace=False))
    histories = dataset.test.subset(rows).histories
    generation = {
        "bm25, one prompt at a time": per_user_seconds(model, histories, "bm25", 1),
        f"bm25, {batch_prompts} prompts per batch": per_user_seconds(
            model, histories, "bm25", batch_prompts
        ),
        "constrained, one prompt at a time": per_user_seconds(model, histories, "constrained", 1),
        f"constrained, {batch_prompts} prompts per batch": per_user_seconds(
            model, histories, "constrained", batch_prompts
        ),
    }
    record = {
        "command": "python benchmarks/calrec_probes.py " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "threads": threads,
        "config": str(config),
        "batch_size": batch_size,
        "training": training,
        "training_speedup": training[0]["s_per_step"] / training[1]["s_per_step"],
        "generation_s_per_user": generation,
        "users": users - 2,
    }
    publish(record, "calrec_probes", write_markdown)


def write_markdown(record: dict, path: Path) -> None:
    lines = [
        "# CALRec CPU recipe probes (full Beauty, whole SmolLM2, the recipe's text cuts)",
        "",
        f"Machine: {record['machine']['cpu']}, {record['machine']['cores']} cores, "
        f"{record['threads']} torch threads. Config: `{record['config']}`.",
        f"Command: `{record['command']}`",
        "",
        f"| trained | parameters | s / step (batch {record['batch_size']}) | tokens/s |",
        "|---|--:|--:|--:|",
    ]
    for row in record["training"]:
        which = row["trainable_layers"] or "all"
        label = "every weight" if which == "all" else f"top {which} layers"
        lines.append(
            f"| {label} | {row['trainable_parameters'] / 1e6:.1f} M | {row['s_per_step']:.2f} | "
            f"{row['tokens_per_s']:.0f} |"
        )
    lines += [
        "",
        f"Training speed-up of the cut: {record['training_speedup']:.2f}x.",
        "",
        f"| ranking ({record['users']} test users in one call) | s / user |",
        "|---|--:|",
    ]
    lines += [f"| {k} | {v:.2f} |" for k, v in record["generation_s_per_user"].items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    typer.run(main)
