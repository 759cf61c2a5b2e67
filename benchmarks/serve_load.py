"""Benchmark: `llmrec serve` under N concurrent clients on localhost, for a bounded time.

Each model folder is served by its own `python -m llmrec serve` process on 127.0.0.1; N client
threads (one httpx connection each) POST /recommend with random histories of catalogue ids for
`--duration-s` seconds after a warm-up, and the table reports requests/s, latency p50/p95/p99 and
the error count (any answer but 200, or no answer).

    .venv/bin/python benchmarks/serve_load.py runs/quickstart/model --clients 8 --duration-s 30

Writes benchmarks/results/serve_load.json and serve_load.md. Clients and server share the
machine, so run it on an idle one.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Annotated

import httpx
import numpy as np
import typer
from baselines import RESULTS, machine, publish

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(model_dir: Path, port: int, options: list[str], threads: int, log: Path):
    """Start `llmrec serve` and wait (up to 10 minutes: an LLM loads slowly) for /health."""
    command = [sys.executable, "-m", "llmrec", "serve", str(model_dir), "--port", str(port)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}  # torch's intra-op threads
    with open(log, "w", encoding="utf-8") as handle:
        process = subprocess.Popen(
            command + options, stdout=handle, stderr=subprocess.STDOUT, env=env
        )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}; see {log}")
        try:
            return process, httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).json()
        except httpx.HTTPError:
            time.sleep(0.5)
    process.kill()
    raise TimeoutError(f"the server did not answer /health in 600 s; see {log}")


def client_loop(url: str, item_ids: list[str], args: dict, until: float, seed: int) -> dict:
    """POST random histories until `until`; the latency (s) of each 200, the other answers."""
    rng = np.random.default_rng(seed)
    latencies, errors = [], []
    with httpx.Client(timeout=120) as client:
        while time.monotonic() < until:
            history = [
                item_ids[i] for i in rng.integers(len(item_ids), size=args["history_length"])
            ]
            started = time.perf_counter()
            try:
                response = client.post(url, json={"history": history, "k": args["k"]})
            except httpx.HTTPError as error:
                errors.append(repr(error)[:200])
                continue
            if response.status_code == 200:
                latencies.append(time.perf_counter() - started)
            else:
                errors.append(f"{response.status_code}: {response.text[:200]}")
    return {"latencies": latencies, "errors": errors}


def run_load(url: str, item_ids: list[str], clients: int, seconds: float, args: dict) -> dict:
    """`clients` threads for `seconds`: requests/s, latency percentiles (ms), errors."""
    results: list[dict] = [{} for _ in range(clients)]
    started = time.monotonic()
    until = started + seconds

    def client(n: int) -> None:
        results[n] = client_loop(url, item_ids, args, until, args["seed"] * 1000 + n)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started  # includes the requests still running at `until`
    done = np.array([value for result in results for value in result["latencies"]]) * 1000
    failed = [message for result in results for message in result["errors"]]
    percentiles = np.percentile(done, [50, 95, 99]) if len(done) else [float("nan")] * 3
    return {
        "requests": len(done),
        "errors": len(failed),
        "error_examples": failed[:5],
        "seconds": elapsed,
        "requests_per_s": len(done) / elapsed,
        "p50_ms": float(percentiles[0]),
        "p95_ms": float(percentiles[1]),
        "p99_ms": float(percentiles[2]),
    }


def write_markdown(record: dict, path: Path) -> None:
    lines = [
        "# `llmrec serve` under concurrent load (localhost)",
        "",
        f"Machine: {record['machine']['cpu']}, {record['machine']['cores']} cores"
        " (clients and server share it).",
        f"Command: `{record['command']}`",
        "",
        "| model | folder | clients | max batch | wait ms | req/s | p50 ms | p95 ms | p99 ms |"
        " requests | errors |",
        "|" + "---|" * 11,
    ]
    settings = record["settings"]
    for run in record["runs"]:
        lines.append(
            f"| {run['model']} | `{run['model_dir']}` | {run['clients']} |"
            f" {settings['max_batch']} | {settings['batch_wait_ms']:g} |"
            f" {run['requests_per_s']:.1f} | {run['p50_ms']:.1f} | {run['p95_ms']:.1f} |"
            f" {run['p99_ms']:.1f} | {run['requests']} | {run['errors']} |"
        )
    lines += [
        "",
        f"Each run: {settings['warmup_s']:g} s warm-up, then {settings['duration_s']:g} s of"
        f" load; histories of {settings['history_length']} random catalogue ids, k ="
        f" {settings['k']}; {settings['threads']} torch thread(s) in the server. Latency is"
        " client-side, per request, in milliseconds.",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def main(
    model_dirs: Annotated[list[Path], typer.Argument(help="saved model folders, one run each")],
    clients: Annotated[int, typer.Option(help="concurrent client threads")] = 8,
    duration_s: Annotated[float, typer.Option(help="seconds of measured load per model")] = 30,
    warmup_s: Annotated[float, typer.Option(help="seconds of unmeasured load first")] = 3,
    k: Annotated[int, typer.Option(help="items per request")] = 10,
    history_length: Annotated[int, typer.Option(help="history entries per request")] = 10,
    max_batch: Annotated[int, typer.Option(help="server --max-batch")] = 16,
    batch_wait_ms: Annotated[float, typer.Option(help="server --batch-wait-ms")] = 5,
    threads: Annotated[int, typer.Option(help="torch threads in the server")] = 1,
    seed: Annotated[int, typer.Option()] = 0,
    name: Annotated[str, typer.Option(help="results file stem")] = "serve_load",
) -> None:
    work = RESULTS / "tmp" / name
    work.mkdir(parents=True, exist_ok=True)
    args = {"k": k, "history_length": history_length, "seed": seed}
    options = ["--max-batch", str(max_batch), "--batch-wait-ms", str(batch_wait_ms)]
    runs = []
    for index, model_dir in enumerate(model_dirs):
        items = (model_dir / "items.jsonl").read_text(encoding="utf-8").splitlines()
        item_ids = [json.loads(line)["item_id"] for line in items]
        port = free_port()
        process, health = start_server(model_dir, port, options, threads, work / f"{index}.log")
        try:
            url = f"http://127.0.0.1:{port}/recommend"
            run_load(url, item_ids, clients, warmup_s, {**args, "seed": seed + 1})
            measured = run_load(url, item_ids, clients, duration_s, args)
        finally:
            process.terminate()
            process.wait(timeout=60)
        runs.append(
            {"model": health["model"], "model_dir": str(model_dir), "clients": clients, **measured}
        )
        typer.echo(
            f"{model_dir}: {measured['requests_per_s']:.1f} req/s, "
            f"p50 {measured['p50_ms']:.1f} ms, {measured['errors']} errors"
        )
    record = {
        "command": "python benchmarks/serve_load.py " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "settings": {
            "duration_s": duration_s,
            "warmup_s": warmup_s,
            "max_batch": max_batch,
            "batch_wait_ms": batch_wait_ms,
            "threads": threads,
            **args,
        },
        "runs": runs,
    }
    publish(record, name, write_markdown)


if __name__ == "__main__":
    typer.run(main)
