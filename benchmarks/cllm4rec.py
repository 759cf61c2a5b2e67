"""Benchmark: CLLM4Rec (a recipe config) beside baselines trained in the same run, on one seeded
sample of test users, under either protocol.

    # (a) leave-one-out, beside SASRec-CE (refit on train + valid as its config says)
    .venv/bin/python benchmarks/cllm4rec.py --config configs/cllm4rec_cpu_beauty.yaml \
        --baseline-config configs/sasrec_beauty.yaml --protocol a --name cllm4rec-beauty-a
    # (b) the paper's per-user random hold-out, beside Mult-VAE and SASRec-CE
    .venv/bin/python benchmarks/cllm4rec.py --config configs/cllm4rec_cpu_beauty.yaml \
        --baseline-config configs/multvae_beauty_holdout.yaml \
        --baseline-config configs/sasrec_beauty_holdout.yaml --protocol b --name cllm4rec-beauty-b
    # the same on Toys: --set-all data.source=toys (every model), --name cllm4rec-toys-b

Each model trains in its own `python -m llmrec` process (wall time, peak memory): CLLM4Rec with
`train` (fit only), each baseline with `run` (so a refit its config asks for happens). Models
already trained in benchmarks/results/tmp/NAME are reused and a killed training resumes: run the
same command again to continue (delete that folder to start over); each training shows its
progress bars here. Then every model is evaluated on the same test users and timed per user
(p50, p95). Writes
benchmarks/results/NAME.json and .md. Run it on an idle machine.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer
from baselines import DATA_DIR, RESULTS, DataDir, machine, publish, report_head, slice_table
from measure import evaluate, protocol_line, results_table, stage_throughput, train_one
from paired import pair_page, paired_metric, paired_note, rerun_command, stored_path

from llmrec.config import load_config
from llmrec.evaluation.config import EvalConfig
from llmrec.evaluation.slices import SliceBasis
from llmrec.experiment import load_run_data
from llmrec.models.registry import load_model

REPO = Path(__file__).resolve().parents[1]
METRICS = {
    "a": ("recall@1", "recall@5", "recall@10", "recall@20", "ndcg@10"),
    "b": ("recall@20", "recall@40", "ndcg@100"),
}


def main(
    config: Annotated[Path, typer.Option(help="CLLM4Rec run config")] = Path(
        "configs/cllm4rec_cpu_beauty.yaml"
    ),
    protocol: Annotated[str, typer.Option(help="a: leave-one-out; b: per-user hold-out")] = "a",
    baseline_config: Annotated[
        list[Path] | None, typer.Option(help="baseline run configs, trained in this run")
    ] = None,
    data_dir: DataDir = DATA_DIR,
    test_users: Annotated[int, typer.Option(help="seeded sample of test users")] = 2000,
    latency_users: Annotated[int, typer.Option(help="users timed one by one")] = 50,
    overrides: Annotated[list[str] | None, typer.Option("--set", help="CLLM4Rec overrides")] = None,
    overrides_all: Annotated[
        list[str] | None,
        typer.Option("--set-all", help="overrides for every model (e.g. data.source=toys)"),
    ] = None,
    name: Annotated[str, typer.Option(help="results file stem")] = "cllm4rec",
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    split: Literal["auto", "holdout"] = "auto" if protocol == "a" else "holdout"
    work = RESULTS / "tmp" / name
    work.mkdir(parents=True, exist_ok=True)
    common = [
        f"data.data_dir={data_dir.resolve()}",
        f"data.split={split}",
        f"output.dir={work}",
        f"seed={seed}",
        *(overrides_all or []),
    ]
    if split == "holdout":  # the hold-out protocol's early-stopping metric (its cut-offs)
        common.append("train.metric=recall@20")
    models = [(config, "train", [*common, *(overrides or [])])]
    models += [(path, "run", common) for path in baseline_config or []]
    runs = [
        (path, *train_one(path, command, sets, work, show_progress=True))
        for path, command, sets in models
    ]
    ks = [1, 5, 10, 20] if protocol == "a" else [20, 40, 100]
    eval_config = EvalConfig(ks=ks, sample_users=test_users, seed=seed)
    rows, data, dataset = [], None, None
    for path, run_dir, trained in runs:
        run_config = load_config(path, [*common, *(overrides or [])] if path == config else common)
        dataset = dataset or run_config.data.source
        data = data or load_run_data(run_config, run_dir)
        model = load_model(run_dir / "model")
        basis = SliceBasis.from_sequences(data.train, data.num_items)
        label = f"{model.name} ({path.stem})"
        ranks_dir = work / "ranks" / run_dir.name
        row = evaluate(
            model,
            label,
            data.test,
            eval_config,
            latency_users,
            slice_basis=basis,
            ranks_dir=ranks_dir,
        )
        fit = json.loads((run_dir / "fit.json").read_text(encoding="utf-8"))
        row.update(
            train=trained,
            stage_seconds=fit.get("stage_seconds") or {"fit": fit.get("train_seconds")},
            tokens_per_s=stage_throughput(run_dir),
            best_epoch=fit.get("best_epoch"),
        )
        rows.append(row)
    record = {
        "command": "python benchmarks/cllm4rec.py " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "dataset": dataset,
        "protocol": protocol,
        "split": data.split if data else None,
        "rows": rows,
    }
    pair_page(record)
    publish(record, name, write_markdown)


def write_markdown(record: dict, path: Path) -> None:
    on = f" on {record['dataset']}" if record.get("dataset") else ""  # older runs lack it
    title = f"CLLM4Rec beside baselines{on}, protocol ({record['protocol']}): {record['split']}"
    lines = report_head(title, record) + results_table(record["rows"], METRICS[record["protocol"]])
    lines += ["", "| model | wall (s) | peak RSS (GiB) | stage seconds | tokens/s | best epoch |"]
    lines += ["|---|--:|--:|---|---|--:|"]
    for row in record["rows"]:
        trained = row["train"]
        stages = ", ".join(f"{k} {v:.0f}" for k, v in (row["stage_seconds"] or {}).items() if v)
        rates = ", ".join(f"{k} {v:.0f}" for k, v in row["tokens_per_s"].items())
        lines.append(
            f"| {row['name']} | {trained.get('wall_s', float('nan')):.0f} | "
            f"{trained.get('peak_rss_gib', float('nan')):.2f} | {stages} | {rates} | "
            f"{'-' if row['best_epoch'] is None else row['best_epoch']} |"
        )
    lines += protocol_line(record["rows"], "Commands per row in the JSON.")
    sources: dict[str, list[dict]] = {}  # rows added by benchmarks/add_rows.py, per file
    for row in record["rows"]:
        if "added_from" in row:
            sources.setdefault(row["added_from"]["file"], []).append(row)
    for file, rows in sources.items():
        added = rows[0]["added_from"]
        lines += [
            ", ".join(row["name"] for row in rows) + f": measured by `{added['command']}` on "
            f"{added['machine']['cpu']}, {added['machine']['cores']} cores ({file}); their "
            "latency is not comparable with rows measured on another machine.",
            "",
        ]
    page = stored_path(path.with_suffix(".json"))
    lines += paired_note(record["rows"], name_of, lambda row: rerun_command(record, row), page)
    metric = paired_metric(record["rows"])
    lines += slice_table(record["rows"], metric, name_of, f"{metric} by slice")
    path.write_text("\n".join(lines), encoding="utf-8")


def name_of(row: dict) -> str:
    return row["name"]


if __name__ == "__main__":
    typer.run(main)
