"""Measurements shared by the LLM benchmarks: metrics with CIs on one user sample, per-user
`recommend` latency, and training throughput per stage from the run's logs."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import numpy as np

from llmrec.evaluation.config import EvalConfig
from llmrec.evaluation.ranking import evaluate_model


def latency(model, eval_set, users: int) -> dict[str, float]:
    """Seconds per single-history `recommend(k=10)` call over the first `users` rows (each with
    its own user id, which models with user tokens read)."""
    seconds = []
    for history, user in list(zip(eval_set.histories, eval_set.user_ids, strict=True))[:users]:
        started = time.perf_counter()
        model.recommend([history], k=10, users=[user])
        seconds.append(time.perf_counter() - started)
    return {"p50_s": float(np.percentile(seconds, 50)), "p95_s": float(np.percentile(seconds, 95))}


def evaluate(model, name: str, test, config: EvalConfig, latency_users: int) -> dict:
    started = time.perf_counter()
    result = evaluate_model(model, test, config, show_progress=True, split="test")
    return {
        "name": name,
        "metrics": result.metrics,
        "ci": {k: v.to_json() for k, v in result.ci.items()},
        "protocol": result.protocol,
        "eval_s": time.perf_counter() - started,
        **latency(model, test, latency_users),
    }


def stage_throughput(run_dir: Path) -> dict[str, float]:
    """Median training tokens/s per stage, from each stage's train_log.jsonl."""
    rates = {}
    for log in sorted(run_dir.glob("*/train_log.jsonl")):
        values = [json.loads(line).get("tokens_per_s", 0.0) for line in log.open()]
        if values:
            rates[log.parent.name] = statistics.median(values)
    return rates
