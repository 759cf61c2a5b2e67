"""Peak memory of one training epoch and one evaluation pass of SASRec and CLLM4Rec (tiny
backbone) on synthetic catalogues of 10^4-10^6 items and 2x10^4-2x10^6 users.

The goal (issue 20): memory grows with the model and one batch, not with the data: batches are
made one at a time and CLLM4Rec's multinomial targets travel as index lists (training/batching.py),
so peak RSS is the model's tables (with their gradients and optimizer state in training) plus a
constant. Each point runs in a fresh subprocess, which reports its own peak RSS
(`resource.getrusage(RUSAGE_SELF).ru_maxrss`) and its RSS once the data exist. Training runs
through `model.fit` (the shared loop, its epoch-end checkpoint included) with `train.max_steps`
cutting the epoch to a few steps: memory, not time, is measured, and the steps left out would
reuse the same memory. Evaluation runs `evaluate_model` on a seeded sample of users (the
ranking batches are the same for every user; `--full-eval-users` evaluates every user of the
small points to show it). RSS is not a time, so a busy machine does not change it much.

    .venv/bin/python benchmarks/memory_scaling.py

Writes benchmarks/results/memory-scaling.json and .md.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from baselines import machine, publish

MODELS = ("sasrec", "cllm4rec")
PHASES = ("train", "eval")
MIB = 2**20
LENGTH = 8  # items per synthetic user


def synthetic_sequences(num_items: int, num_users: int, seed: int) -> list[np.ndarray]:
    """Users with LENGTH items each, drawn uniformly; views of one flat array (as a loader's).

    choice: one length, so every batch has the same shape: with lengths that vary, a batch's
    (positions x items) logits vary with the batches an epoch happens to start with, which at
    10^6 items moves the peak by hundreds of MiB between runs."""
    flat = np.random.default_rng(seed).integers(0, num_items, size=num_users * LENGTH)
    return list(flat.reshape(num_users, LENGTH))


def current_rss() -> int:
    """Resident bytes now (/proc/self/statm, Linux)."""
    import os

    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def _model(name: str, catalogue, cache_dir: Path | None):
    """A fresh SASRec, or a CLLM4Rec config for the tiny backbone (finetuning only)."""
    if name == "sasrec":
        from llmrec.models.sasrec import SASRec, SASRecConfig

        return SASRec(SASRecConfig(max_length=50, dropout=0.2), catalogue)
    from llmrec.models.cllm4rec.config import CLLM4RecConfig
    from llmrec.models.cllm4rec.model import CLLM4Rec

    backbone = {"source": "tiny", "cache_dir": str(cache_dir) if cache_dir else None}
    config = CLLM4RecConfig.model_validate(
        {
            "backbone": backbone,
            "pretrain": {"warmup_epochs": 0, "rounds": 0},
            "finetune_content_epochs": False,
            "mr_lambda": 1.0,
            "mr_include_targets": True,
            "score_batch_size": 64,
        }
    )
    return CLLM4Rec(config, catalogue)


def _table_bytes(network) -> tuple[int, int]:
    """(bytes of the trainable parameters: the tables, bytes of the frozen ones)."""
    trainable = sum(p.numel() * p.element_size() for p in network.parameters() if p.requires_grad)
    frozen = sum(p.numel() * p.element_size() for p in network.parameters() if not p.requires_grad)
    return trainable, frozen


def point(
    model_name: Annotated[str, typer.Option("--model")],
    phase: Annotated[str, typer.Option()],
    items: Annotated[int, typer.Option()],
    users: Annotated[int, typer.Option()],
    steps: Annotated[int, typer.Option()] = 3,
    batch_size: Annotated[int, typer.Option()] = 16,
    eval_users: Annotated[int, typer.Option(help="0 evaluates every user")] = 1024,
    eval_batch_size: Annotated[int, typer.Option()] = 64,
    cache_dir: Annotated[Path | None, typer.Option()] = None,
    seed: int = 0,
) -> None:
    """One measurement (run in its own process by `main`): prints one JSON record."""
    import torch

    from llmrec.data.catalogue import Catalogue, Item
    from llmrec.data.sequences import EvalSet
    from llmrec.evaluation.config import EvalConfig
    from llmrec.evaluation.ranking import evaluate_model
    from llmrec.models.base import RunContext
    from llmrec.training.config import TrainConfig

    torch.set_num_threads(1)
    started = time.perf_counter()
    rss_imports = current_rss()
    catalogue = Catalogue.from_items(Item(f"i{index}") for index in range(items))
    sequences = synthetic_sequences(items, users, seed)
    if phase == "eval":  # the evaluation data: last item of each sequence, after the rest
        user_ids = tuple(str(user) for user in range(users))  # CLLM4Rec's names of anonymous data
        histories = tuple(sequence[:-1] for sequence in sequences)
        eval_set = EvalSet(user_ids, histories, np.array([s[-1] for s in sequences]))
    rss_data = current_rss()
    model = _model(model_name, catalogue, cache_dir)
    if phase == "train":
        with tempfile.TemporaryDirectory(prefix="memory-scaling-") as run_dir:
            cfg = TrainConfig(
                epochs=1, batch_size=batch_size, max_steps=steps, tensorboard=False, num_threads=1
            )
            model.fit(sequences, None, RunContext(Path(run_dir), cfg, seed, show_progress=False))
    else:
        if model_name == "cllm4rec":
            torch.manual_seed(seed)
            model._build(user_ids, model.config.backbone, show_progress=False)
        config = EvalConfig(batch_size=eval_batch_size, sample_users=eval_users or None)
        evaluate_model(model, eval_set, config, show_progress=False)
    tables, frozen = _table_bytes(model.network)
    record = {
        "model": model_name,
        "phase": phase,
        "items": items,
        "users": users,
        "interactions": int(sum(len(s) for s in sequences)),
        "table_bytes": tables,
        "frozen_bytes": frozen,
        "rss_imports": rss_imports,
        "rss_data": rss_data,
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "seconds": time.perf_counter() - started,
        "eval_users": (eval_users or users) if phase == "eval" else None,
    }
    typer.echo(json.dumps(record))


def measure(args: list[str]) -> dict:
    """One point in a fresh subprocess; its last output line is the record."""
    command = [sys.executable, __file__, "point", *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": done.stderr[-2000:], "args": args, "returncode": done.returncode}
    return json.loads(done.stdout.strip().splitlines()[-1])


def old_dense_target_bytes(items: int, users: int) -> int:
    """What the replaced batches held for CLLM4Rec's finetuning, counted: a float32 (B, J) row
    per user for the whole epoch, built twice (epoch 0 to count its batches, then the epoch)."""
    return 2 * users * items * 4


def fit_line(x: list[float], y: list[float]) -> tuple[float, float]:
    """(slope, intercept) of the least-squares line y = slope * x + intercept."""
    slope, intercept = np.polyfit(np.asarray(x, dtype=float), np.asarray(y, dtype=float), 1)
    return float(slope), float(intercept)


def main(
    models: Annotated[
        str, typer.Option(help="comma-separated: sasrec,cllm4rec")
    ] = "sasrec,cllm4rec",
    items: Annotated[
        str, typer.Option(help="comma-separated catalogue sizes")
    ] = "10000,100000,1000000",
    users: Annotated[
        str, typer.Option(help="comma-separated user counts")
    ] = "20000,200000,2000000",
    steps: Annotated[int, typer.Option(help="optimizer steps of the cut training epoch")] = 3,
    batch_size: Annotated[int, typer.Option(help="training batch (sequences or prompts)")] = 16,
    eval_users: Annotated[int, typer.Option(help="users in each evaluation sample")] = 1024,
    eval_batch_size: Annotated[int, typer.Option(help="users per ranking batch")] = 64,
    full_eval_max_users: Annotated[
        int, typer.Option(help="also evaluate every user at the smallest catalogue, up to this")
    ] = 2 * 10**5,
    cache_dir: Annotated[
        Path | None, typer.Option(help="backbone cache (default: LLMREC_CACHE)")
    ] = None,
    name: Annotated[
        str, typer.Option(help="page name under benchmarks/results/")
    ] = "memory-scaling",
) -> None:
    """Every (model, phase, items, users) point of the grid, each in a fresh process."""
    settings = {
        "steps": steps,
        "batch_size": batch_size,
        "eval_users": eval_users,
        "eval_batch_size": eval_batch_size,
    }
    shared = ("steps", "batch_size", "eval_batch_size")  # the sample size is set per run
    common = [f"--{key.replace('_', '-')}={settings[key]}" for key in shared]
    if cache_dir is not None:
        common.append(f"--cache-dir={cache_dir}")
    grid = [(int(j), int(u)) for j in items.split(",") for u in users.split(",")]
    smallest = min(j for j, _ in grid)
    full = [(j, u) for j, u in grid if j == smallest and u <= full_eval_max_users]
    points = []
    for model in models.split(","):
        runs = [(phase, j, u, eval_users) for phase in PHASES for j, u in grid]
        runs += [("eval", j, u, 0) for j, u in full]
        for phase, j, u, sample in runs:
            args = [f"--model={model}", f"--phase={phase}", f"--items={j}", f"--users={u}"]
            record = measure([*args, *common, f"--eval-users={sample}"])
            record.update(model=model, phase=phase, items=j, users=u, every_user=sample == 0)
            typer.echo(json.dumps(record)[:300], err=True)
            points.append(record)
    record = {
        "command": "python benchmarks/memory_scaling.py " + " ".join(sys.argv[1:]),
        "commit": _commit(),
        "machine": machine(),
        "settings": settings,
        "points": points,
        "fits": _fits(points),
    }
    publish(record, name, write_markdown)


def _commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip()


def _fits(points: list[dict]) -> dict[str, dict[str, float]]:
    """Per model and phase, over the sampled points: peak RSS and what the phase adds to the
    data (peak - RSS with the data made) against table bytes."""
    fits = {}
    for model in MODELS:
        for phase in PHASES:
            chosen = [
                p
                for p in points
                if p["model"] == model
                and p["phase"] == phase
                and "error" not in p
                and not (phase == "eval" and p["every_user"])
            ]
            if len(chosen) < 2:
                continue
            tables = [p["table_bytes"] for p in chosen]
            peak_slope, peak_intercept = fit_line(tables, [p["peak_rss"] for p in chosen])
            added = [p["peak_rss"] - p["rss_data"] for p in chosen]
            added_slope, added_intercept = fit_line(tables, added)
            fits[f"{model}.{phase}"] = {
                "points": len(chosen),
                "peak_slope": peak_slope,
                "peak_intercept_mib": peak_intercept / MIB,
                "added_slope": added_slope,
                "added_intercept_mib": added_intercept / MIB,
            }
    return fits


def _mib(value: float) -> str:
    return f"{value / MIB:,.0f}"


def _point_rows(points: list[dict]) -> list[str]:
    rows = [
        "| model | phase | items | users | users ranked | tables MiB | RSS with data MiB "
        "| peak RSS MiB | peak - data MiB | (peak - data) / tables |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in points:
        if "error" in p:
            cells = [p["model"], p["phase"], f"{p['items']:,}", f"{p['users']:,}"]
            rows.append("| " + " | ".join(cells) + " | failed: " + _last_line(p["error"]) + " |")
            continue
        added = p["peak_rss"] - p["rss_data"]
        ranked = f"{p['eval_users']:,}" if p["eval_users"] else "-"
        cells = [
            p["model"],
            p["phase"],
            f"{p['items']:,}",
            f"{p['users']:,}",
            ranked,
            _mib(p["table_bytes"]),
            _mib(p["rss_data"]),
            _mib(p["peak_rss"]),
            _mib(added),
            f"{added / p['table_bytes']:.2f}",
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].replace("|", "/")[:160] if lines else "no output"


def _fit_rows(fits: dict[str, dict[str, float]]) -> list[str]:
    rows = [
        "| model, phase | points | peak RSS: slope on table bytes | intercept MiB "
        "| peak - data: slope | intercept MiB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, fit in fits.items():
        cells = [
            key.replace(".", ", "),
            str(fit["points"]),
            f"{fit['peak_slope']:.2f}",
            f"{fit['peak_intercept_mib']:,.0f}",
            f"{fit['added_slope']:.2f}",
            f"{fit['added_intercept_mib']:,.0f}",
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def _dense_rows(points: list[dict]) -> list[str]:
    sizes = sorted({(p["items"], p["users"]) for p in points})
    rows = ["| items | users | dense targets of one epoch, held twice |", "|---:|---:|---:|"]
    for items, users in sizes:
        size = old_dense_target_bytes(items, users)
        rows.append(f"| {items:,} | {users:,} | {size / 2**30:,.1f} GiB |")
    return rows


def write_markdown(record: dict, path: Path) -> None:
    settings = record["settings"]
    lines = [
        "# Memory scaling: peak RSS against the model's tables",
        "",
        f"Command: `{record['command']}` at commit {record['commit']}; machine: "
        f"{record['machine']['cpu']}, {record['machine']['cores']} cores, Python "
        f"{record['machine']['python']}; one torch thread. Synthetic data (seed 0): users with "
        f"{LENGTH} items each drawn uniformly, items without text. Each row is one fresh process; "
        "peak RSS is its `ru_maxrss`, 'RSS with data' its RSS once the catalogue and the "
        "sequences (and for evaluation the evaluation set) exist, imports included, before the "
        "model is built.",
        "",
        f"Training: `model.fit` on the shared loop, the epoch cut to {settings['steps']} "
        f"optimizer steps of {settings['batch_size']} sequences (SASRec) or prompts (CLLM4Rec: "
        "its finetuning stage alone, the multinomial item head with mutual regularisation "
        "including the targets, tiny backbone), then the epoch-end checkpoint. Evaluation: "
        f"`evaluate_model`, full ranking, {settings['eval_batch_size']} users per batch, on a "
        f"seeded sample of {settings['eval_users']:,} users, or every user where 'users ranked' "
        "equals 'users'. 'Tables' are the trainable parameters (SASRec: all, mostly the item "
        "table; CLLM4Rec: its four ID tables, two views of users + items); CLLM4Rec's frozen "
        "tiny backbone adds a constant.",
        "",
        *_point_rows(record["points"]),
        "",
        "## Fits",
        "",
        "Least squares over the rows of each model and phase (evaluations of every user left "
        "out: they repeat a sampled row's catalogue and users).",
        "",
        *_fit_rows(record["fits"]),
        "",
        "## The dense targets this replaced (counted, not run)",
        "",
        "Before batches streamed, a CLLM4Rec finetuning epoch was collated at once with a "
        "float32 (B, J) target row per user, and the loop built epoch 0 once more to count "
        "its batches: 2 x users x items x 4 bytes, before any model memory.",
        "",
        *_dense_rows(record["points"]),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:2] == ["point"]:  # one measurement, in a child process of `main`
        sys.argv.pop(1)
        typer.run(point)
    else:
        typer.run(main)
