"""Benchmark: CALRec (a recipe config) on a target data set, every retrieval mode, side by side
with baselines trained in the same run, on the same seeded sample of test users.

    .venv/bin/python benchmarks/calrec.py --config configs/calrec_cpu_beauty.yaml \
        --data-dir ../shared/data --test-users 2000 --name calrec-cpu-beauty \
        --baseline-config configs/sasrec_beauty.yaml --baseline-config configs/bm25_beauty.yaml

CALRec trains with `python -m llmrec train` and each baseline with `python -m llmrec run`, each in
its own process (wall time, peak memory). Then the saved CALRec model is evaluated with each
retrieval mode and the baselines on one seeded user sample, and `recommend` is timed per user
(p50, p95). Writes benchmarks/results/NAME.json and .md.

Long runs continue where they stopped: models already trained in benchmarks/results/tmp/NAME are
reused, a killed training resumes from its last checkpoint, and each finished evaluation row is
kept in tmp/NAME/rows/ (delete that folder, or pass --fresh-rows, to evaluate again). bm25 and
hybrid read the same sampled lines (`generation.memo_size`), and latency is timed with the memo
off, so it includes the decoding.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
import typer
from baselines import DATA_DIR, RESULTS, DataDir, machine, publish, report_head, slice_table
from measure import (
    evaluate,
    latency,
    protocol_line,
    results_table,
    stage_throughput,
    train_one,
)
from paired import pair_page, paired_note, rerun_command, stored_path

from llmrec.config import load_config
from llmrec.data.registry import load_dataset
from llmrec.data.sequences import EvalSet, sample_users
from llmrec.evaluation.config import EvalConfig
from llmrec.evaluation.slices import SliceBasis
from llmrec.models.base import module_device
from llmrec.models.calrec.batches import build_examples, collate
from llmrec.models.calrec.losses import next_item_generation_loss
from llmrec.models.calrec.model import CALRec
from llmrec.models.registry import load_model

REPO = Path(__file__).resolve().parents[1]
MODES = ("bm25", "dense", "hybrid", "constrained")
METRICS = ("recall@1", "recall@5", "recall@10", "ndcg@10")


def main(
    config: Annotated[Path, typer.Option(help="CALRec run config")] = Path(
        "configs/calrec_cpu_beauty.yaml"
    ),
    data_dir: DataDir = DATA_DIR,
    test_users: Annotated[int, typer.Option(help="seeded sample of test users")] = 2000,
    latency_users: Annotated[int, typer.Option(help="users timed one by one")] = 50,
    baseline_config: Annotated[
        list[Path] | None, typer.Option(help="baseline run configs, trained in this run")
    ] = None,
    modes: Annotated[
        str,
        typer.Option(help="comma-separated retrieval modes (also bm25+history, hybrid+history)"),
    ] = ",".join(MODES),
    fresh_rows: Annotated[bool, typer.Option(help="evaluate again rows kept from a run")] = False,
    overrides: Annotated[list[str] | None, typer.Option("--set", help="CALRec overrides")] = None,
    name: Annotated[str, typer.Option(help="results file stem")] = "calrec",
    seed: Annotated[int, typer.Option()] = 0,
    threads: Annotated[
        int | None, typer.Option(help="torch threads for evaluation (training: the config's)")
    ] = None,
) -> None:
    if threads is not None:
        torch.set_num_threads(threads)
    work = RESULTS / "tmp" / name
    (work / "rows").mkdir(parents=True, exist_ok=True)
    common = [f"data.data_dir={data_dir.resolve()}", f"output.dir={work}", f"seed={seed}"]
    sets = [*common, *(overrides or [])]
    run_dir, trained = train_one(config, "train", sets, work)
    baselines = [(path, *train_one(path, "run", common, work)) for path in baseline_config or []]
    dataset = load_dataset(load_config(config, sets).data.source, data_dir=data_dir).dataset
    eval_config = EvalConfig(sample_users=test_users, seed=seed)
    model = load_model(run_dir / "model")
    measure = Measure(
        eval_config, SliceBasis.from_sequences(dataset.train, dataset.num_items), work / "ranks"
    )
    rows = []
    for mode in modes.split(","):
        rows.append(
            kept_row(
                work,
                f"calrec-{mode}",
                fresh_rows,
                lambda m=mode: calrec_row(model, m, dataset.test, measure, latency_users),
            )
        )
    for path, baseline_dir, baseline_trained in baselines:
        baseline = load_model(baseline_dir / "model")

        def baseline_row(baseline=baseline, trained=baseline_trained, key=path.stem) -> dict:
            row = evaluate(
                baseline,
                baseline.name,
                dataset.test,
                eval_config,
                latency_users,
                slice_basis=measure.slice_basis,
                ranks_dir=measure.ranks_root / key,
            )
            return {**row, "train": trained}

        rows.append(kept_row(work, f"baseline-{path.stem}", fresh_rows, baseline_row))
    fit = json.loads((run_dir / "fit.json").read_text(encoding="utf-8"))
    record = {
        "command": "python benchmarks/calrec.py " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "config": str(config),
        "train": trained,
        "stage_seconds": fit.get("stage_seconds"),
        "tokens_per_s": stage_throughput(run_dir),
        "test_target_token_loss": kept_row(
            work,
            "target-loss",
            fresh_rows,
            lambda: {
                "loss": target_token_loss(model, sample_users(dataset.test, test_users, seed))
            },
        )["loss"],
        "rows": rows,
    }
    pair_page(record)
    publish(record, name, write_markdown)


@dataclass(frozen=True)
class Measure:
    """How every row is evaluated: the user sample, the slices' basis, where ranks are kept."""

    eval_config: EvalConfig
    slice_basis: SliceBasis
    ranks_root: Path


def target_token_loss(model: CALRec, eval_set: EvalSet, batch_size: int = 16) -> float:
    """Mean token cross-entropy of held-out target lines given their histories (L_NIG on
    evaluation data): a smooth measure of how well the model writes the next item, where
    small runs give rankings too sparse to compare (e.g. the CPU recipe's cuts)."""
    sequences = [np.append(h, t) for h, t in zip(eval_set.histories, eval_set.targets, strict=True)]
    examples = build_examples(sequences, model.lines, "last")
    network = model.network.eval()
    device, head = module_device(network), network.language_model.get_output_embeddings()
    total, tokens = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(examples), batch_size):
            batch = collate(examples[start : start + batch_size], model.tokenizer.pad_token_id)
            batch = {key: value.to(device) for key, value in batch.items()}
            hidden = network.hidden_states(batch["input_ids"], batch["attention_mask"])
            count = int(batch["label_mask"][:, 1:].sum())
            loss = next_item_generation_loss(hidden, head, batch["input_ids"], batch["label_mask"])
            total += loss.item() * count
            tokens += count
    return total / max(tokens, 1)


def calrec_row(model, mode: str, test, measure: Measure, latency_users: int) -> dict:
    """One retrieval mode's metrics, slices and grounding diagnostics (in the protocol; sampled
    lines remembered, so bm25 and hybrid share them), and latency with the memo off.
    `MODE+history` (bm25 or hybrid) adds the history's own BM25 list first
    (`extensions.history_list`)."""
    generation = model.config.generation
    memo_size = measure.eval_config.sample_users or len(test)
    remembering = generation.model_copy(update={"memo_size": memo_size})
    retrieval, _, history = mode.partition("+")
    extensions = {"retrieval": retrieval, "history_list": "first" if history else "off"}
    model.config = model.config.with_extensions(**extensions).model_copy(
        update={"generation": remembering}
    )
    row = evaluate(
        model,
        f"calrec ({mode})",
        test,
        measure.eval_config,
        latency_users=0,
        slice_basis=measure.slice_basis,
        ranks_dir=measure.ranks_root / f"calrec-{mode}",
    )
    remembered = model._sampler  # the timing below builds a sampler without the memo
    model.config = model.config.model_copy(update={"generation": generation})
    timed = latency(model, test, latency_users)
    model._sampler = remembered  # so the next mode reuses this one's sampled lines
    return {**row, **timed}


def kept_row(work: Path, key: str, fresh: bool, compute) -> dict:
    """`compute()`'s row, kept in WORK/rows/KEY.json so that a rerun does not redo it."""
    path = work / "rows" / f"{key}.json"
    if path.is_file() and not fresh:
        return json.loads(path.read_text(encoding="utf-8"))
    row = compute()
    path.write_text(json.dumps(row, indent=1) + "\n", encoding="utf-8")
    return row


def write_markdown(record: dict, path: Path) -> None:
    train = record["train"]
    lines = report_head(
        f"CALRec ({record['config']}) against baselines on the same test users", record
    )
    lines += [
        f"Training: {train['wall_s']:.0f} s wall in {train['parts']} part(s), peak RSS "
        f"{train['peak_rss_gib']:.2f} GiB; stage seconds {record['stage_seconds']}; median "
        f"tokens/s {record['tokens_per_s']}; held-out target-line token loss "
        f"{record['test_target_token_loss']:.3f}.",
        "",
        *results_table(record["rows"], METRICS),
        *protocol_line(record["rows"], "Diagnostics per row in the JSON."),
        *paired_note(
            record["rows"],
            lambda row: row["name"],
            # kept rows (tmp/NAME/rows/) predate kept ranks: evaluate them again
            lambda row: rerun_command(record, row) + " --fresh-rows",
            stored_path(path.with_suffix(".json")),
        ),
        *slice_table(record["rows"], "recall@10", lambda row: row["name"], "recall@10 by slice"),
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    typer.run(main)
