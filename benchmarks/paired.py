"""Paired tests on the benchmark pages: every row's per-user ranks are kept (an `EvalResult`
folder named by the row's `ranks_dir`: written beside its run under the uncommitted
benchmarks/results/tmp/, copied into the committed benchmarks/results/ranks/ when its page is
published), and every model is tested against the strongest baseline of its page on the same
users (`compare_results`: the paired sign-flip test of docs/evaluation.md, section 6).

The benchmarks call `pair_page` before they publish. For rows measured before ranks were kept,
rerun the model (cheap baselines: `llmrec run` with the page's evaluation settings) and attach the
rerun's ranks to the row; the rerun must reproduce every metric of the row exactly, or the ranks
would not be the row's. The page is then rewritten by the script that made it, with p-values and,
where the row had none, slices from the rerun; no other number of the row changes.

    .venv/bin/python benchmarks/paired.py benchmarks/results/cllm4rec-beauty-b.json \
        "ease (ease_beauty_holdout)" benchmarks/results/tmp/reruns/ease-beauty-b/test
    .venv/bin/python benchmarks/paired.py benchmarks/results/calrec-cpu-beauty.json  # pair again
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from llmrec.errors import DataError
from llmrec.evaluation.result import METRICS_FILE, RANKS_FILE, EvalResult, compare_results

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
# Where the benchmarks write their runs (not committed: models, checkpoints, logs), and where a
# published page's per-user ranks are kept for good, so that a fresh clone pairs the page again.
RUNS_ROOT = RESULTS / "tmp"
RANKS_STORE = RESULTS / "ranks"
# Models that are not the LLM recommenders a page is about: the page's strongest baseline is the
# best of these (by the paired metric) among its rows.
BASELINE_MODELS = frozenset({"pop", "bm25", "sasrec", "multvae", "ease", "itemknn"})
# The metric of the paired test: the first of these every row reports (recall@10 on next-item
# pages, recall@20 on the hold-out pages, whose cut-offs are 20, 40, 100).
PAIRED_METRICS = ("recall@10", "recall@20")
RESAMPLES = 10_000
# Protocol fields that decide the users, targets and catalogue a rerun must share with a row.
SAME_EVALUATION = ("protocol", "targets", "filter_history", "num_items", "num_users", "seed")
SAME_EVALUATION += ("user_sample", "num_negatives")

Label = Callable[[dict], str]


def keep_ranks(result: EvalResult, folder: Path) -> str:
    """Save `result` (metrics.json + ranks.jsonl) into `folder`; its path as rows record it."""
    result.save(folder)
    return stored_path(folder)


def stored_path(folder: Path) -> str:
    """`folder` relative to the repository when inside it (pages move with their clone)."""
    folder = folder.resolve()
    return str(folder.relative_to(REPO)) if folder.is_relative_to(REPO) else str(folder)


def paired_metric(rows: list[dict]) -> str:
    """The metric the page's rows are paired on: the first of PAIRED_METRICS they all have,
    else the first metric of the first row."""
    shared = [key for key in PAIRED_METRICS if all(key in row["metrics"] for row in rows)]
    return shared[0] if shared else next(iter(rows[0]["metrics"]))


def strongest_baseline(rows: list[dict], metric: str) -> dict | None:
    """The baseline row (BASELINE_MODELS) with the highest `metric`; None when there is none."""
    baselines = [row for row in rows if row["protocol"]["model"] in BASELINE_MODELS]
    return max(baselines, key=lambda row: row["metrics"][metric], default=None)


def pair_rows(rows: list[dict], label: Label) -> None:
    """Set each row's `paired`: its paired test against the strongest baseline of `rows`. Rows
    whose ranks (or the reference's) are no longer on disk keep a test of the same reference
    and metric computed before; otherwise `paired` is None (ranks not kept)."""
    if len(rows) < 2:  # nothing to compare
        for row in rows:
            row.pop("paired", None)
        return
    metric = paired_metric(rows)
    reference = strongest_baseline(rows, metric)
    if reference is None:
        return
    reference_result = load_ranks(reference)
    for row in rows:
        if row is reference:
            row["paired"] = {"reference": label(reference), "metric": metric, "is_reference": True}
            continue
        result = load_ranks(row)
        before = row.get("paired") or {}
        if result is not None and reference_result is not None:
            row["paired"] = paired_record(result, reference_result, label(reference), metric)
        elif (before.get("reference"), before.get("metric")) != (label(reference), metric):
            row["paired"] = None


def paired_record(result: EvalResult, reference: EvalResult, name: str, metric: str) -> dict:
    """The JSON record of one row's paired test against the reference row."""
    test = compare_results(result, reference, metric, num_resamples=RESAMPLES)
    return {
        "reference": name,
        "metric": metric,
        "mean_difference": test.mean_difference,
        "ci": {"low": test.ci_low, "high": test.ci_high},
        "p_value": test.p_value,
        "resamples": RESAMPLES,
    }


def pair_page(record: dict) -> None:
    """Pair the rows of a benchmark page: each data set of the baselines page on its own (its
    `runs`, labelled by model), the one table of a CALRec or CLLM4Rec page (labelled by name)."""
    if "runs" not in record:
        pair_rows(record["rows"], lambda row: row["name"])
        return
    for dataset in dict.fromkeys(run["dataset"] for run in record["runs"]):
        runs = [run for run in record["runs"] if run["dataset"] == dataset]
        pair_rows(runs, lambda run: run["model"])


def page_rows(record: dict) -> list[dict]:
    """The rows of any benchmark page (the baselines page calls them runs)."""
    return record["runs"] if "runs" in record else record["rows"]


def store_ranks(record: dict, runs_root: Path = RUNS_ROOT, store: Path = RANKS_STORE) -> None:
    """Copy each row's ranks kept under `runs_root` into `store` (same relative folder, so a row
    added to several pages is stored once) and point the row there; the benchmarks call it as
    they publish a page. Rows whose ranks are elsewhere or gone are left as they are."""
    runs_root = runs_root.resolve()
    for row in page_rows(record):
        source = (REPO / row["ranks_dir"]).resolve() if row.get("ranks_dir") else None
        if source is None or not source.is_relative_to(runs_root):
            continue
        if not (source / RANKS_FILE).is_file():  # gone with its run folder: nothing to keep
            continue
        kept = store / source.relative_to(runs_root)
        kept.mkdir(parents=True, exist_ok=True)
        for name in (METRICS_FILE, RANKS_FILE):
            shutil.copyfile(source / name, kept / name)
        row["ranks_dir"] = stored_path(kept)


def load_ranks(row: dict) -> EvalResult | None:
    """The row's kept per-user result, or None when it has none (or it is gone from disk)."""
    folder = row.get("ranks_dir")
    if not folder or not (REPO / folder / RANKS_FILE).is_file():
        return None
    return EvalResult.load(REPO / folder)


def paired_header(rows: list[dict]) -> list[str]:
    """The paired-test column's header: [] when no row was paired (a page of one row)."""
    metric = next((row["paired"]["metric"] for row in rows if row.get("paired")), None)
    return [f"Δ {metric} vs strongest baseline, p"] if metric else []


def paired_cells(row: dict, rows: list[dict]) -> list[str]:
    """A row's cell in the paired-test column of `rows` (none without the column): the mean
    difference and its p-value."""
    if not paired_header(rows):
        return []
    paired = row.get("paired")
    if not paired:
        return ["-"]
    if paired.get("is_reference"):
        return ["reference"]
    return [f"{paired['mean_difference']:+.4f}, p {paired['p_value']:.2g}"]


def paired_note(rows: list[dict], key: Label, rerun: Label, page: str) -> list[str]:
    """Lines under a table: what the paired-test column holds, and which rows lack per-user
    ranks, with the commands that would measure them again."""
    references = [row for row in rows if (row.get("paired") or {}).get("is_reference")]
    if not references:
        return []
    metric = references[0]["paired"]["metric"]
    named = ", ".join(dict.fromkeys(key(row) for row in references))
    lines = [
        f"Paired test (column Δ): each row's per-user {metric} minus that of the strongest "
        f"baseline here by {metric} ({named}) on the same users, and the two-sided paired "
        f"sign-flip p-value of that difference ({RESAMPLES:,} resamples, so p >= "
        f"1/{RESAMPLES + 1:,}; docs/evaluation.md, section 6).",
        "",
    ]
    missing: dict[str, list[str]] = {}
    for row in rows:
        if load_ranks(row) is None and not (row.get("paired") or {}).get("p_value"):
            missing.setdefault(rerun(row), []).append(key(row))
    if not missing:
        return lines
    lines[0] += " `-`: not computed (below)."
    unranked = [name for names in missing.values() for name in names]
    # on the baselines page each data set has its reference: name only those without ranks
    blocking = ", ".join(key(row) for row in references if key(row) in unranked)
    lines += [
        "Per-user ranks not kept (measured before the benchmarks kept them) for "
        f"{', '.join(unranked)}: their p-values, and their slices where the slice table "
        "lacks them, need a rerun"
        + (
            f" ({blocking} among them, so no row tested against it has a p-value until it is rerun)"
            if blocking
            else ""
        )
        + ":",
        "",
    ]
    lines += [f"- {', '.join(names)}: `{command}`" for command, names in missing.items()]
    lines += [
        "",
        "Such a rerun rewrites its page with ranks, p-values and slices. A row can also be "
        "measured again alone (a cheap baseline: `llmrec run` with this page's evaluation "
        f"settings) and given that rerun's ranks with `python benchmarks/paired.py {page} "
        "'ROW' RUN/test`, which checks the rerun reproduces every metric of the row "
        "(benchmarks/README.md).",
        "",
    ]
    return lines


def rerun_command(record: dict, row: dict) -> str:
    """The benchmark command that measured a row (the page's, or the one that added the row:
    add_rows.py's source page, baselines.py --append); it now keeps per-user ranks."""
    added = row.get("added_from") or row.get("added_by") or record
    return added["command"]


def attach(row: dict, folder: Path) -> None:
    """Give `row` the per-user ranks of a rerun in `folder` (and its slices when the row has
    none), after checking the rerun evaluated the same users and reproduced every metric."""
    result = EvalResult.load(folder)
    fields = [
        (key, protocol_field(result.protocol, key), protocol_field(row["protocol"], key))
        for key in SAME_EVALUATION
    ]
    differing = [f"{key} {rerun!r} vs {kept!r}" for key, rerun, kept in fields if rerun != kept]
    differing += [
        f"{key} {result.metrics.get(key)!r} vs {value!r}"
        for key, value in row["metrics"].items()
        if result.metrics.get(key) is None or abs(result.metrics[key] - value) > 1e-12
    ]
    if differing:
        raise DataError(f"the rerun does not reproduce the row: {'; '.join(differing)}", folder)
    row["ranks_dir"] = stored_path(folder)
    if not row.get("slices") and result.slices:
        row["slices"] = {name: part.to_json() for name, part in result.slices.items()}
        row["protocol"].setdefault("slice_basis", result.protocol.get("slice_basis"))


def protocol_field(protocol: dict, key: str) -> object:
    """A protocol field; rows measured before target sets existed have no "targets": they are
    next-item rows."""
    return protocol.get(key, "next_item" if key == "targets" else None)


def tests_against(rows: dict[str, dict], reference: str, metrics: list[str]) -> list[str]:
    """One line per row with kept ranks and metric: its paired test against the `reference`
    row (keyed as `rows`), which is not the page's own reference; the page is not changed."""
    reference_result = load_ranks(rows[reference]) if reference in rows else None
    if reference_result is None:
        raise typer.BadParameter(f"no row {reference!r} with kept ranks; rows: {', '.join(rows)}")
    lines = []
    for key, row in rows.items():
        result = load_ranks(row)
        if key == reference or result is None:
            continue
        for metric in metrics:
            test = paired_record(result, reference_result, reference, metric)
            low, high = test["ci"]["low"], test["ci"]["high"]
            lines.append(
                f"{key} vs {reference}, {metric}: {test['mean_difference']:+.4f} "
                f"[{low:+.4f}, {high:+.4f}], p {test['p_value']:.4f}"
            )
    return lines


def main(
    page: Annotated[Path, typer.Argument(help="results JSON of baselines, calrec or cllm4rec")],
    row_key: Annotated[
        str | None, typer.Argument(help="the row's name ('DATASET / MODEL' on baselines)")
    ] = None,
    rerun: Annotated[
        Path | None, typer.Argument(help="the rerun's split folder, with ranks.jsonl")
    ] = None,
    against: Annotated[
        str | None,
        typer.Option(help="print every row's paired test against this row instead (no rewrite)"),
    ] = None,
    metric: Annotated[
        list[str] | None, typer.Option(help="metrics of --against (default: the page's)")
    ] = None,
) -> None:
    """Give a row the ranks of a rerun, then pair and rewrite the page (with the page alone:
    pair and rewrite it; with --against ROW: print the tests against that row)."""
    # The page scripts import this module, so they are imported here, not at the top.
    import add_rows

    record = json.loads(page.read_text(encoding="utf-8"))
    rows = {add_rows.row_key(row): row for row in page_rows(record)}
    if against is not None:
        metrics = metric or [paired_metric(page_rows(record))]
        print("\n".join(tests_against(rows, against, metrics)))
        return
    if row_key is not None:
        if rerun is None:
            raise typer.BadParameter("give the rerun's split folder after the row")
        if row_key not in rows:
            raise typer.BadParameter(f"{page}: no row {row_key!r}; rows: {', '.join(rows)}")
        attach(rows[row_key], rerun)
    add_rows.republish(record, page)


if __name__ == "__main__":
    typer.run(main)
