"""Add rows measured by another benchmark run to a CLLM4Rec or CALRec results page, when both
evaluated exactly the same test users: protocol (a) asks for CALRec beside CLLM4Rec, and CALRec's
rows come from benchmarks/calrec.py, which takes hours of its own; a CALRec run on the leased GPU
takes its SASRec-CE row from the CPU page (benchmarks/device/README.md).

    .venv/bin/python benchmarks/add_rows.py benchmarks/results/cllm4rec-beauty-a.json \
        benchmarks/results/calrec-cpu-beauty.json --prefix "calrec ("

Refuses unless every protocol field that decides the users, targets and catalogue is equal, and
unless an added row's ranking (`rank_cutoff`, when a model ranks only its top k) reaches the
page's largest k. The added rows keep the source run's machine, command and training costs
(latency measured on another machine is not comparable with the page's own: the page says so).
Rewrites the page's JSON and Markdown; a hand-written "## Reading" section of the page is kept.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import baselines
import calrec
import cllm4rec
import typer
from paired import SAME_EVALUATION, pair_page

# What must agree for two rows to be measured on the same test users, targets and catalogue.
SAME_USERS = (*SAME_EVALUATION, "split")


def main(
    target: Annotated[
        Path, typer.Argument(help="results JSON of benchmarks/cllm4rec.py or calrec.py")
    ],
    source: Annotated[Path, typer.Argument(help="results JSON whose rows are added")],
    prefix: Annotated[str, typer.Option(help="add only rows whose name starts with this")] = "",
) -> None:
    record = json.loads(target.read_text(encoding="utf-8"))
    other = json.loads(source.read_text(encoding="utf-8"))
    added = [row for row in other["rows"] if row["name"].startswith(prefix)]
    if not added:
        raise typer.BadParameter(f"{source}: no row's name starts with {prefix!r}")
    reference = record["rows"][0]["protocol"]
    for row in added:
        differing = [k for k in SAME_USERS if row["protocol"].get(k) != reference.get(k)]
        # a model ranked only to a depth (CALRec's top-k) still measures every k up to it exactly
        cutoff = row["protocol"].get("rank_cutoff")
        if cutoff is not None and cutoff < max(reference["ks"]):
            differing.append("rank_cutoff")
        if differing:
            raise typer.BadParameter(
                f"{source}: row {row['name']!r} was not evaluated like {target}: "
                + ", ".join(
                    f"{k} {row['protocol'].get(k)!r} vs {reference.get(k)!r}" for k in differing
                )
            )
    names = {row["name"] for row in added}
    record["rows"] = [row for row in record["rows"] if row["name"] not in names]
    record["rows"] += [with_source_costs(row, other, source) for row in added]
    republish(record, target)


def republish(record: dict, page: Path) -> None:
    """Pair the page's rows (paired.py), then rewrite it with the script that made it, named by
    its stem (baselines*, calrec-*, cllm4rec-*)."""
    pair_page(record)
    if page.stem.startswith("baselines"):
        script = baselines
    else:
        script = calrec if page.stem.startswith("calrec") else cllm4rec
    baselines.publish(record, page.stem, script.write_markdown, folder=page.parent)


def row_key(row: dict) -> str:
    """How a row is named on its page: 'DATASET / MODEL' on the baselines page, else its name."""
    return f"{row['dataset']} / {row['model']}" if "dataset" in row else row["name"]


def with_source_costs(row: dict, other: dict, source: Path) -> dict:
    """The row with the training costs its page shows, taken from the source run's record."""
    # A paired test belongs to its page's reference row: the target page pairs the row again.
    return {
        **{key: value for key, value in row.items() if key != "paired"},
        "train": row.get("train", other.get("train", {})),
        "stage_seconds": row.get("stage_seconds", other.get("stage_seconds")),
        "tokens_per_s": row.get("tokens_per_s", other.get("tokens_per_s", {})),
        "best_epoch": row.get("best_epoch"),
        "added_from": {
            "file": source.name,
            "command": other["command"],
            "machine": other["machine"],
        },
    }


if __name__ == "__main__":
    typer.run(main)
