"""Benchmark: Pop, BM25, SASRec-CE, EASE and item-kNN on full Beauty and Toys, and RecBole's
SASRec epoch time.

Each model runs as its own `python -m llmrec run` process (so wall time and peak memory are its
own); RecBole 1.2.1 runs in its separate venv (benchmarks/recbole/setup.sh) on the same sequences
in the same benchmark run, and the table reports our SASRec epoch time / RecBole's.

    .venv/bin/python benchmarks/baselines.py --data-dir ../shared/data

Writes benchmarks/results/baselines.json and baselines.md. Run it on an idle machine.
`--append` adds rows to the existing page (replacing rows of the same data set and model),
recording the command and machine of the rows it adds and `--note` (e.g. a busy machine).
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import psutil
import typer
from paired import (
    RESULTS,
    pair_page,
    paired_cells,
    paired_header,
    paired_note,
    rerun_command,
    store_ranks,
    stored_path,
)

REPO = Path(__file__).resolve().parents[1]
# The staged data sets, read by every benchmark (`--data-dir`).
DataDir = Annotated[Path, typer.Option(help="staged data root")]
DATA_DIR = REPO.parent / "shared" / "data"
CONFIGS = {
    "pop": "configs/pop_beauty.yaml",
    "bm25": "configs/bm25_beauty.yaml",
    "sasrec": "configs/sasrec_beauty.yaml",
    "ease": "configs/ease_beauty.yaml",
    "itemknn": "configs/itemknn_beauty.yaml",
    "multvae": "configs/multvae_beauty.yaml",
}
FOLDERS = {"beauty": "amazon-beauty", "toys": "amazon-toys"}
NAMES = {
    "pop": "Pop",
    "bm25": "BM25",
    "sasrec": "SASRec-CE",
    "ease": "EASE",
    "itemknn": "item-kNN",
    "multvae": "Mult-VAE",
}
# The strongest published SASRec on the P5 / S3-Rec leave-one-out splits, history filtered (the
# eSASRec benchmark's own runs, SASRec + sampled softmax: blondered/transformer_benchmark README).
PUBLISHED_FILTERED = {("beauty", "sasrec"): (0.0921, 0.0531), ("toys", "sasrec"): (0.0970, 0.0580)}
METRICS = ("recall@1", "recall@5", "recall@10", "recall@20", "ndcg@10", "ndcg@20", "mrr@10")


def run_measured(
    command: list[str], log_path: Path, show_progress: bool = False
) -> dict[str, float]:
    """Run a command, polling its RSS (children included) every 0.2 s; fail loudly on error.
    Its output goes to `log_path`; with `show_progress`, its stderr (progress bars, errors)
    comes to this terminal instead."""
    started = time.perf_counter()
    peak = 0
    with open(log_path, "w", encoding="utf-8") as log:
        stderr = None if show_progress else subprocess.STDOUT
        process = subprocess.Popen(command, stdout=log, stderr=stderr, cwd=REPO)
        watched = psutil.Process(process.pid)
        while process.poll() is None:
            try:
                members = [watched, *watched.children(recursive=True)]
                peak = max(peak, sum(member.memory_info().rss for member in members))
            except psutil.Error:
                pass
            time.sleep(0.2)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed; see {log_path}")
    return {"wall_s": time.perf_counter() - started, "peak_rss_gib": peak / 2**30}


# RecBole's SASRec settings (benchmarks/recbole/run_sasrec.py), for an epoch-time comparison at
# equal architecture; our tuned Beauty config (configs/sasrec_beauty.yaml) differs.
RECBOLE_ARCHITECTURE = (
    "model.hidden_size=64",
    "model.num_layers=2",
    "model.num_heads=2",
    "model.dropout=0.5",
    "train.batch_size=256",
)


def run_llmrec(
    model: str,
    dataset: str,
    data_dir: Path,
    threads: int,
    seed: int,
    work: Path,
    extra: tuple[str, ...] = (),
    suffix: str = "",
) -> dict:
    name = f"{model}-{dataset}{suffix}"
    overrides = [
        *extra,
        f"data.source={dataset}",
        f"data.data_dir={data_dir}",
        f"output.dir={work}",
        f"output.name={name}",
        f"seed={seed}",
        f"train.num_threads={threads}",
    ]
    command = [sys.executable, "-m", "llmrec", "run", CONFIGS[model], "-q"]
    for override in overrides:
        command += ["--set", override]
    measured = run_measured(command, work / f"{name}.log")
    run_dir = work / name
    filtered = history_filtered(run_dir, dataset, data_dir, threads)
    metrics = json.loads((run_dir / "metrics.json").read_text())["test"]
    fit = json.loads((run_dir / "fit.json").read_text())
    epochs = fit["epoch_seconds"]
    return {
        "model": model,
        "dataset": dataset,
        "seed": seed,
        "threads": threads,
        "command": "llmrec run " + CONFIGS[model] + " " + " ".join(f"--set {o}" for o in overrides),
        "metrics": metrics["metrics"],
        "ci": metrics["ci"],
        "protocol": metrics["protocol"],
        "slices": metrics.get("slices"),
        "ranks_dir": stored_path(run_dir / "test"),  # llmrec run keeps the per-user ranks
        "best_epoch": fit["best_epoch"],
        "chosen": chosen_setting(fit),
        "epochs_trained": len(epochs),
        "train_s": fit["train_seconds"],
        "median_epoch_s": statistics.median(epochs) if epochs else None,
        "filtered": {key: filtered[key] for key in ("metrics", "ci", "protocol")},
        **measured,
    }


def history_filtered(run_dir: Path, dataset: str, data_dir: Path, threads: int) -> dict:
    """The run's tested model on the same test users with each user's history items removed
    before ranking (`llmrec evaluate --filter-history`): the protocol of the eSASRec benchmark
    (RecTools' `filter_viewed=True`), whose SASRec rows are the published anchors on Beauty and
    Toys; this page's own protocol leaves the history in."""
    command = [sys.executable, "-m", "llmrec", "evaluate", str(run_dir / "model"), dataset]
    command += ["--data-dir", str(data_dir), "--split", "test", "--filter-history", "--json", "-q"]
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    printed = subprocess.run(
        command, capture_output=True, text=True, check=True, cwd=REPO, env=environment
    ).stdout
    return json.loads(printed)


def chosen_setting(fit: dict) -> dict[str, float]:
    """The options a closed-form model chose on validation (EASE's λ, item-kNN's neighbours),
    from the best point of its curve; {} for models trained by epochs."""
    if fit["best_epoch"] is not None or not fit["best_step"]:
        return {}
    point = fit["history"][fit["best_step"] - 1]
    return {key: value for key, value in point.items() if "@" not in key and key != "step"}


def run_recbole(data_dir: Path, epochs: int, threads: int, anomaly: str, work: Path) -> dict:
    venv = Path(os.environ.get("RECBOLE_VENV", REPO / ".venv-recbole"))
    if not (venv / "bin" / "python").is_file():
        raise RuntimeError(f"no RecBole venv at {venv}: run benchmarks/recbole/setup.sh first")
    out = work / f"recbole-{anomaly}.json"
    command = [
        str(venv / "bin" / "python"),
        "benchmarks/recbole/run_sasrec.py",
        "--sequences",
        str(data_dir / FOLDERS["beauty"] / "user_sequence.txt"),
        "--epochs",
        str(epochs),
        "--threads",
        str(threads),
        "--anomaly",
        anomaly,
        "--out",
        str(out),
        "--workdir",
        str(work / f"recbole-{anomaly}"),
    ]
    measured = run_measured(command, work / f"recbole-{anomaly}.log")
    return {
        "anomaly": anomaly,
        "command": " ".join(command[1:]),
        **json.loads(out.read_text()),
        **measured,
    }


def publish(
    record: dict, name: str, write_markdown: Callable[[dict, Path], None], folder: Path = RESULTS
) -> None:
    """Write FOLDER/NAME.json, then FOLDER/NAME.md with `write_markdown`, keeping the page's
    hand-written '## Reading' section (check it still holds), and print the page. The rows'
    per-user ranks go to the committed store first (paired.store_ranks)."""
    store_ranks(record)
    (folder / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    page = folder / f"{name}.md"
    reading = kept_reading(page)
    write_markdown(record, page)
    if reading:
        rendered = page.read_text(encoding="utf-8").rstrip("\n")
        page.write_text(f"{rendered}\n\n{reading}", encoding="utf-8")
    typer.echo(page.read_text(encoding="utf-8"))


def kept_reading(page: Path) -> str:
    """The page's hand-written '## Reading' section and what follows it ('' when none)."""
    text = page.read_text(encoding="utf-8") if page.is_file() else ""
    start = text.find("## Reading")
    return text[start:] if start >= 0 else ""


def machine() -> dict[str, str | int]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    described: dict[str, str | int] = {
        "cpu": cpu,
        "cores": os.cpu_count() or 0,
        "python": platform.python_version(),
    }
    import torch  # only here: nothing else in this module needs it

    if torch.cuda.is_available():
        described["gpu"] = torch.cuda.get_device_name(0)
    return described


def metric_cells(row: dict, keys: tuple[str, ...]) -> list[str]:
    """'value [low, high]' per metric, from a result's metrics and bootstrap intervals."""
    cells = []
    for key in keys:
        interval = row["ci"].get(key)
        ci = f" [{interval['low']:.4f}, {interval['high']:.4f}]" if interval else ""
        cells.append(f"{row['metrics'][key]:.4f}{ci}")
    return cells


def slice_table(
    rows: list[dict], metric: str, label: Callable[[dict], str], title: str
) -> list[str]:
    """A section with the table of `metric` by slice (docs/evaluation.md, section 11) for the
    rows that have slices, with each slice's users, naming the rows that have none."""
    measured = [row for row in rows if row.get("slices")]
    left_out = [label(row) for row in rows if not row.get("slices")]
    lines = [f"## {title}", ""]
    if left_out:
        lines += [
            f"No slices for {', '.join(left_out)}: measured before slices existed, and their "
            "per-user ranks were not kept (a rerun gives both: see the paired-test note above).",
            "",
        ]
    if not measured:
        return lines
    names = list(measured[0]["slices"])
    lines += [
        f"Test {metric} [95% CI] per slice.",
        "",
        "| model | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
        "| users | "
        + " | ".join(str(measured[0]["slices"][name]["users"]) for name in names)
        + " |",
    ]
    for row in measured:
        cells = [
            metric_cells(row["slices"][name], (metric,))[0] if row["slices"][name]["users"] else "-"
            for name in names
        ]
        lines.append(f"| {label(row)} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def report_head(title: str, record: dict) -> list[str]:
    """A results page's title, machine and command lines."""
    machine_used = record["machine"]
    return [
        f"# {title}",
        "",
        f"Machine: {machine_used['cpu']}, {machine_used['cores']} cores"
        + (f", GPU {machine_used['gpu']}." if "gpu" in machine_used else "."),
        f"Command: `{record['command']}`",
        "",
    ]


def write_markdown(record: dict, path: Path) -> None:
    models = ", ".join(
        dict.fromkeys(NAMES.get(run["model"], run["model"]) for run in record["runs"])
    )
    splits = ", ".join(dict.fromkeys(split_name(run) for run in record["runs"]))
    title = f"Baselines: {models} (full ranking, no history filter; test split {splits})"
    lines = [
        *report_head(title, record),
        "| data | model | " + " | ".join([*METRICS, *paired_header(record["runs"])]) + " |"
        " epochs (best) | s/epoch | wall s | peak GiB |",
        "|" + "---|" * (len(METRICS) + len(paired_header(record["runs"])) + 6),
    ]
    for run in record["runs"]:
        cells = metric_cells(run, METRICS)
        epoch_s = "" if run["median_epoch_s"] is None else f"{run['median_epoch_s']:.1f}"
        chosen = ", ".join(f"{key} {value:g}" for key, value in run.get("chosen", {}).items())
        lines.append(
            f"| {run['dataset']} | {run['model']} | "
            + " | ".join([*cells, *paired_cells(run, record["runs"])])
            + f" | {run['epochs_trained']} ({chosen or run['best_epoch'] or '-'}) | {epoch_s} |"
            f" {run['wall_s']:.0f} | {run['peak_rss_gib']:.2f} |"
        )
    lines += [
        "",
        "Cells: test value [95% bootstrap CI over users]. Epochs (best): epochs trained and "
        "the best one, or the setting chosen on validation for closed-form models. s/epoch: "
        "median training epoch time (validation excluded). Wall s: the whole `llmrec run` "
        "(data, training, refit, valid + test evaluation, report).",
        "",
    ]
    lines += [
        f"- {run['dataset']} / {run['model']}: test split `{run['protocol']['split']}`."
        for run in record["runs"]
    ]
    lines += ["", *added_notes(record["runs"])]
    lines += paired_note(
        record["runs"],
        lambda run: f"{run['dataset']} / {run['model']}",
        lambda run: rerun_command(record, run),
        stored_path(path.with_suffix(".json")),
    )
    for dataset in dict.fromkeys(run["dataset"] for run in record["runs"]):
        runs = [run for run in record["runs"] if run["dataset"] == dataset]
        title = f"recall@10 by slice on {dataset}"
        lines += slice_table(runs, "recall@10", lambda run: run["model"], title)
    lines += filtered_table(record["runs"])
    if record["recbole"]:
        lines += [
            "## SASRec epoch time against RecBole 1.2.1 (same data, same run, same threads)",
            "",
            "Both at RecBole's settings: hidden 64, 2 layers, 2 heads, dropout 0.5, batch 256, "
            "max length 50, full-softmax CE. RecBole trains on every prefix as its own sample "
            "(155k per epoch); llmrec trains every position of each sequence at once.",
            "",
            "| implementation | s per training epoch | ratio ours / it |",
            "|---|---|---|",
        ]
        ours = record["sasrec_beauty_epoch_s"]
        lines.append(f"| llmrec SASRec-CE at RecBole's settings | {ours:.1f} | 1 |")
        for peer in record["recbole"]:
            peer_s = statistics.median(e["train_time_s"] for e in peer["per_epoch"])
            lines.append(
                f"| RecBole SASRec CE (anomaly {peer['anomaly']}) | {peer_s:.1f} |"
                f" {ours / peer_s:.3f} |"
            )
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


def filtered_table(runs: list[dict]) -> list[str]:
    """The rows evaluated again with the history filter on, beside the eSASRec benchmark's
    SASRec (its protocol); nothing when no row was."""
    measured = [run for run in runs if run.get("filtered")]
    if not measured:
        return []
    keys = ("recall@1", "recall@10", "ndcg@10")
    lines = [
        "## Test with the history filter on (the eSASRec benchmark's protocol)",
        "",
        "The same tested models and test users, each user's history items removed before "
        "ranking (`llmrec evaluate RUN/model DATA --split test --filter-history`), as the eSASRec "
        "benchmark ranks (RecTools, `filter_viewed=True`); its SASRec with sampled softmax is "
        "the strongest published SASRec on these splits (blondered/transformer_benchmark, "
        "README).",
        "",
        "| data | model | " + " | ".join(keys) + " | R@10 / N@10 published |",
        "|---|---|" + "---|" * (len(keys) + 1),
    ]
    for run in measured:
        cells = metric_cells(run["filtered"], keys)
        published = PUBLISHED_FILTERED.get((run["dataset"], run["model"]))
        anchor = f"{published[0]:.4f} / {published[1]:.4f}" if published else "-"
        lines.append(
            f"| {run['dataset']} | {run['model']} | " + " | ".join(cells) + f" | {anchor} |"
        )
    return [*lines, ""]


def split_name(run: dict) -> str:
    """The split a row was tested on, without the refit note: `leave_one_out:test`,
    `files:test` (a data set's own split, by time on Games), `temporal(...):test`."""
    return run["protocol"]["split"].split(" (model refit")[0]


def added_notes(runs: list[dict]) -> list[str]:
    """Where the rows added by `--append` were measured, once per command, with its note."""
    by_command: dict[str, list[dict]] = {}
    for run in runs:
        if run.get("added_by"):
            by_command.setdefault(run["added_by"]["command"], []).append(run)
    lines = []
    for command, added in by_command.items():
        machine_used = added[0]["added_by"]["machine"]
        note = added[0]["added_by"].get("note")
        names = ", ".join(f"{run['dataset']} / {run['model']}" for run in added)
        lines += [
            f"Rows {names}: added by `{command}` on {machine_used['cpu']}, "
            f"{machine_used['cores']} cores" + (f"; {note}." if note else "."),
            "",
        ]
    return lines


def main(
    data_dir: DataDir = DATA_DIR,
    datasets: Annotated[str, typer.Option(help="comma-separated")] = "beauty,toys",
    models: Annotated[str, typer.Option(help="comma-separated")] = "pop,bm25,sasrec",
    recbole_epochs: Annotated[int, typer.Option(help="RecBole epochs per mode; 0 skips")] = 1,
    timing_epochs: Annotated[int, typer.Option(help="our epochs at RecBole's settings")] = 3,
    threads: Annotated[int, typer.Option(help="torch threads for every run")] = 2,
    seed: Annotated[int, typer.Option()] = 0,
    name: Annotated[str, typer.Option(help="results file stem")] = "baselines",
    append: Annotated[bool, typer.Option(help="add the rows to the existing page")] = False,
    note: Annotated[str, typer.Option(help="said of each added row, with --append")] = "",
    overrides: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="config override of every run, e.g. train.refit_before_test=true"
        ),
    ] = None,
) -> None:
    work = RESULTS / "tmp" / name
    work.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/baselines.py " + shlex.join(sys.argv[1:])
    runs = [
        run_llmrec(model, dataset, data_dir.resolve(), threads, seed, work, tuple(overrides or ()))
        for dataset in datasets.split(",")
        for model in models.split(",")
    ]
    if append:
        if recbole_epochs > 0:
            raise typer.BadParameter("--append adds model rows only: pass --recbole-epochs 0")
        added = {"command": command, "machine": machine(), "note": note}
        record = json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8"))
        record = appended(record, [{**run, "added_by": added} for run in runs])
        pair_page(record)
        publish(record, name, write_markdown)
        return
    recbole, timing = [], None
    if recbole_epochs > 0:
        extra = (*RECBOLE_ARCHITECTURE, f"train.epochs={timing_epochs}")
        timing = run_llmrec(
            "sasrec", "beauty", data_dir.resolve(), threads, seed, work, extra, "-recbole-settings"
        )
        recbole = [
            run_recbole(data_dir.resolve(), recbole_epochs, threads, anomaly, work)
            for anomaly in ("off", "stock")
        ]
    record = {
        "command": command,
        "machine": machine(),
        "runs": runs,
        "recbole": recbole,
        "timing_run": timing,
        "sasrec_beauty_epoch_s": timing["median_epoch_s"] if timing else None,
    }
    pair_page(record)
    publish(record, name, write_markdown)


def appended(record: dict, runs: list[dict]) -> dict:
    """The record with `runs` added: a run of a data set and model already on the page takes
    that row's place, the others go after their data set's rows (a new data set at the end)."""
    new = {(run["dataset"], run["model"]): run for run in runs}
    merged = [new.pop((run["dataset"], run["model"]), run) for run in record["runs"]]
    for run in new.values():
        same = [i for i, kept in enumerate(merged) if kept["dataset"] == run["dataset"]]
        merged.insert(same[-1] + 1 if same else len(merged), run)
    return {**record, "runs": merged}


if __name__ == "__main__":
    typer.run(main)
