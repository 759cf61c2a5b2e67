"""Measurements shared by the LLM benchmarks: metrics with CIs on one user sample, per-user
`recommend` latency, and training throughput per stage from the run's logs."""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from baselines import metric_cells, run_measured
from paired import keep_ranks, paired_cells, paired_header

from llmrec.config import load_config
from llmrec.evaluation.config import EvalConfig
from llmrec.evaluation.ranking import evaluate_model
from llmrec.evaluation.slices import SliceBasis


def latency(model, eval_set, users: int) -> dict[str, float]:
    """Seconds per single-history `recommend(k=10)` call over the first `users` rows (each with
    its own user id, which models with user tokens read)."""
    seconds = []
    for history, user in list(zip(eval_set.histories, eval_set.user_ids, strict=True))[:users]:
        started = time.perf_counter()
        model.recommend([history], k=10, users=[user])
        seconds.append(time.perf_counter() - started)
    return {"p50_s": float(np.percentile(seconds, 50)), "p95_s": float(np.percentile(seconds, 95))}


def evaluate(
    model,
    name: str,
    test,
    config: EvalConfig,
    latency_users: int,
    split: str = "test",
    slice_basis: SliceBasis | None = None,
    ranks_dir: Path | None = None,
) -> dict:
    """Metrics with CIs on `config`'s user sample of `split` (`test`: the rows of the eval set),
    by slice when given the training data's `slice_basis`, then per-user latency (0 users:
    none). The per-user ranks are kept in `ranks_dir` (for paired tests, paired.py)."""
    started = time.perf_counter()
    result = evaluate_model(
        model, test, config, show_progress=True, split=split, slice_basis=slice_basis
    )
    eval_s = time.perf_counter() - started
    return {
        "name": name,
        "metrics": result.metrics,
        "ci": {k: v.to_json() for k, v in result.ci.items()},
        "protocol": result.protocol,
        "slices": {name: part.to_json() for name, part in result.slices.items()} or None,
        "ranks_dir": keep_ranks(result, ranks_dir) if ranks_dir else None,
        "eval_s": eval_s,
        **(latency(model, test, latency_users) if latency_users else {}),
    }


def results_table(rows: list[dict], metrics: tuple[str, ...]) -> list[str]:
    """Markdown table: each model's metrics with CIs, its paired test against the strongest
    baseline (paired.py) and its per-user latency."""
    lines = [
        "| model | " + " | ".join([*metrics, *paired_header(rows)]) + " | latency p50 / p95 (s) |",
        "|" + "---|" * (len(metrics) + len(paired_header(rows)) + 2),
    ]
    for row in rows:
        cells = " | ".join([*metric_cells(row, metrics), *paired_cells(row, rows)])
        lines.append(f"| {row['name']} | {cells} | {row['p50_s']:.4f} / {row['p95_s']:.4f} |")
    return lines


def protocol_line(rows: list[dict], note: str) -> list[str]:
    """The test users and history filter of the evaluation, then `note`."""
    protocol = rows[0]["protocol"] if rows else {}
    history = "on" if protocol.get("filter_history") else "off"
    return [
        "",
        f"Test users: {protocol.get('user_sample', 'all')}; full catalogue; history filter "
        f"{history}. {note}",
        "",
    ]


def train_one(
    config: Path, command: str, sets: list[str], work: Path, show_progress: bool = False
) -> tuple[Path, dict]:
    """Train one model with `python -m llmrec COMMAND` in its own process (wall time, peak
    memory), unless its run folder already holds a model: then its recorded measurement is
    reused. A run killed part-way resumes from its last checkpoint (`--resume`), so a long
    benchmark can be continued by running the same command again; the parts' wall times add up.
    Each part is recorded when it starts, so a part killed with the benchmark still counts: from
    its start to its last checkpoint (work after that is lost and redone by the next part).
    `show_progress`: say which model starts, and show its progress bars on this terminal.
    """
    run_dir = load_config(config, sets).run_dir()
    record = work / f"{run_dir.name}.train.json"
    parts = json.loads(record.read_text(encoding="utf-8")) if record.is_file() else []
    _settle_killed_part(parts, run_dir)
    if not (run_dir / "model").is_dir():
        argv = [sys.executable, "-m", "llmrec", command, str(config)]
        argv += [] if show_progress else ["-q"]
        for item in sets:
            argv += ["--set", item]
        resume = any(run_dir.glob("**/checkpoints/last"))
        log = work / f"{run_dir.name}{f'.part{len(parts) + 1}' if parts else ''}.log"
        parts.append({"started": time.time(), "resumed": resume})
        _write_parts(record, parts)
        if show_progress:
            print(f"{command} {run_dir.name} ({config}; log {log})", file=sys.stderr, flush=True)
        parts[-1].update(run_measured(argv + ["--resume"] * resume, log, show_progress))
        _write_parts(record, parts)
    return run_dir, {
        "command": f"llmrec {command} {config} " + " ".join(sets),
        "wall_s": sum(part["wall_s"] for part in parts) if parts else float("nan"),
        "peak_rss_gib": max(
            (part["peak_rss_gib"] for part in parts if "peak_rss_gib" in part), default=float("nan")
        ),
        "parts": len(parts),
    }


def _write_parts(record: Path, parts: list[dict]) -> None:
    record.write_text(json.dumps(parts, indent=1) + "\n", encoding="utf-8")


def _settle_killed_part(parts: list[dict], run_dir: Path) -> None:
    """A part that never finished (no `wall_s`: the benchmark was killed) counts from its start
    to the last checkpoint it wrote. Called before the next part starts, so the checkpoints in
    the run folder are still its own."""
    if not parts or "wall_s" in parts[-1]:
        return
    started = parts[-1]["started"]
    saved = [path.stat().st_mtime for path in run_dir.glob("**/checkpoints/last/state.json")]
    last_saved = max((moment for moment in saved if moment >= started), default=started)
    parts[-1].update(wall_s=last_saved - started, killed=True)


def stage_throughput(run_dir: Path) -> dict[str, float]:
    """Median training tokens/s per stage, from each stage's train_log.jsonl."""
    rates = {}
    for log in sorted(run_dir.glob("*/train_log.jsonl")):
        values = [json.loads(line).get("tokens_per_s", 0.0) for line in log.open()]
        if values:
            rates[log.parent.name] = statistics.median(values)
    return rates
