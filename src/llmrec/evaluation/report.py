"""Run report: every split's metrics in `metrics.json` and `report.md`, per-user ranks per split,
the validation curve as `validation_curve.png`, the metrics by slice as `slices.png` and, when
baselines ran beside the model, one comparison plot `comparison.png` (matplotlib, Agg canvas, no
display).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from llmrec.evaluation.result import (
    METRICS_FILE,
    EvalResult,
    describe_diagnostics,
    describe_protocol,
    format_estimate,
    interval_errors,
)
from llmrec.evaluation.slices import format_slice_table, plot_slices

if TYPE_CHECKING:  # matplotlib is imported when a plot is drawn (~0.4 s), not with the package
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

REPORT_FILE = "report.md"
CURVE_FILE = "validation_curve.png"
SLICES_FILE = "slices.png"
COMPARISON_FILE = "comparison.png"
BASELINES_FOLDER = "baselines"

# split -> result, for one model
SplitResults = Mapping[str, EvalResult]


@dataclass(frozen=True)
class RunSummary:
    """What a report is about, for its header: model, data, split and the training behind it."""

    model: str
    data_name: str  # e.g. "amazon-beauty-10k"
    data: str  # e.g. "`data/amazon-beauty-10k`: 10,000 users, 11,913 items"
    split: str
    train_seconds: float
    best_epoch: int | None = None  # epochs done at the chosen checkpoint; None: not validated
    best_step: int | None = None
    epochs_run: int | None = None
    metric: str | None = None  # the validation metric that chose the checkpoint
    best_metric: float | None = None
    refit: str | None = None  # e.g. "refit on train + valid items for 7 epochs (21 s)"
    baseline_seconds: dict[str, float] = field(default_factory=dict)  # name -> fit seconds

    def format(self) -> str:
        """Markdown bullet lines."""
        lines = [
            f"- Model: `{self.model}` (every setting in `config.resolved.yaml`).",
            f"- Data: {self.data_name} ({self.data}).",
            f"- Split: `{self.split}`.",
            f"- Training: {self.train_seconds:.1f} s" + self._stopping() + ".",
        ]
        if self.refit:
            lines.append(f"- Test model: {self.refit}.")
        if self.baseline_seconds:
            fits = ", ".join(f"`{name}` ({s:.1f} s)" for name, s in self.baseline_seconds.items())
            lines.append(
                f"- Baselines, fit on the same split and ranked for the same users: {fits}."
            )
        return "\n".join(lines) + "\n"

    def _stopping(self) -> str:
        if self.best_epoch is None:
            return " (no validation: nothing chosen by epoch)"
        ran = "" if self.epochs_run is None else f", {self.epochs_run} epochs run"
        chosen = f"{self.metric} {self.best_metric:.4f}" if self.best_metric is not None else ""
        return f"; best epoch {self.best_epoch} (step {self.best_step}; validation {chosen}){ran}"


@dataclass(frozen=True)
class ReportFiles:
    """Paths `write_report` wrote."""

    metrics: Path
    report: Path
    curve: Path | None
    split_directories: dict[str, Path]  # split -> directory with its metrics.json and ranks.jsonl
    slices: Path | None = None  # the plot of the metrics by slice
    comparison: Path | None = None
    baseline_directories: dict[str, Path] = field(default_factory=dict)  # name -> its splits


def write_report(
    run_dir: str | Path,
    results: SplitResults,
    curve: Sequence[Mapping[str, float]] | None = None,
    summary: RunSummary | None = None,
    baselines: Mapping[str, SplitResults] | None = None,
) -> ReportFiles:
    """Write the report for `results` (split name -> result, e.g. "valid", "test") to `run_dir`.

    `curve` is the validation curve: one dict per evaluation with "step" and metric values
    (e.g. "ndcg@10"); every key containing "@" is drawn. `summary` heads the report and marks
    the chosen checkpoint on the curve. `baselines` (model name -> split -> result, ranked on
    the same users) are saved under RUN_DIR/baselines/NAME/ and compared with the model.
    """
    run_dir = Path(run_dir)
    baselines = baselines or {}
    split_directories = _save_splits(run_dir, results)
    baseline_directories = {}
    for name, baseline in baselines.items():
        baseline_directories[name] = run_dir / BASELINES_FOLDER / name
        _save_splits(baseline_directories[name], baseline)
    record: dict = {split: result.to_json() for split, result in results.items()}
    if baselines:
        record[BASELINES_FOLDER] = {
            name: {split: result.to_json() for split, result in baseline.items()}
            for name, baseline in baselines.items()
        }
    metrics_path = run_dir / METRICS_FILE
    metrics_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    curve_path = comparison_path = None
    if curve:
        curve_path = run_dir / CURVE_FILE
        if summary:
            title = f"Validation curve: {summary.model} on {summary.data_name}"
            plot_validation_curve(curve, curve_path, summary.best_step, title, summary.best_epoch)
        else:
            plot_validation_curve(curve, curve_path)
    if baselines and "test" in results:
        comparison_path = run_dir / COMPARISON_FILE
        title = f"{summary.data_name}: test recall@K" if summary else "Test recall@K"
        plot_comparison(_by_model("test", results, baselines), comparison_path, title)
    text = format_report(results, curve_path is not None, summary, baselines)
    report_path = run_dir / REPORT_FILE
    report_path.write_text(text, encoding="utf-8")
    return ReportFiles(
        metrics_path,
        report_path,
        curve_path,
        split_directories,
        write_slices_plot(run_dir, results),
        comparison_path,
        baseline_directories,
    )


def _save_splits(directory: Path, results: SplitResults) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    for split, result in results.items():
        result.save(directory / split)
    return {split: directory / split for split in results}


def _by_model(
    split: str, results: SplitResults, baselines: Mapping[str, SplitResults]
) -> dict[str, EvalResult]:
    """Model name -> its result on `split`: the model first, then the baselines (a baseline of
    the model's own kind, e.g. BM25 with other settings, is named "NAME (baseline)")."""
    main = results[split]
    by_model = {main.protocol["model"]: main}
    for name, baseline in baselines.items():
        by_model[f"{name} (baseline)" if name in by_model else name] = baseline[split]
    return by_model


def format_report(
    results: SplitResults,
    has_curve: bool = False,
    summary: RunSummary | None = None,
    baselines: Mapping[str, SplitResults] | None = None,
) -> str:
    """The Markdown report: the summary, then one table per split with its protocol line (one
    column per model when baselines ran), the comparison plot, the validation curve and the
    metrics by slice."""
    title = f"{summary.model} on {summary.data_name}" if summary else "Evaluation"
    sections = [f"# Report: {title}\n"]
    if summary:
        sections.append(summary.format())
    for split, result in results.items():
        if baselines:
            table = format_comparison(_by_model(split, results, baselines))
        else:
            table = result.format_table()
        sections.append(f"## {split}\n\n{table}")
        if baselines and split == "test":
            sections.append(f"![test metrics per model]({COMPARISON_FILE})\n")
    if has_curve:
        marked = "\nThe dashed line marks the chosen checkpoint.\n" if summary else ""
        sections.append(f"## Validation curve\n\n![validation curve]({CURVE_FILE})\n{marked}")
    sections += format_slices_section(results)
    return "\n".join(sections)


def format_slices_section(results: SplitResults) -> list[str]:
    """The metrics by slice of every split that has them, and their plot (docs/evaluation.md)."""
    parts = [
        f"### {split}\n\n{format_slice_table(result)}"
        for split, result in results.items()
        if result.slices
    ]
    if not parts:
        return []
    plotted = _plotted_split(results)
    figure = f"![metrics by slice, {plotted}]({SLICES_FILE})\n"
    return ["## Metrics by slice\n", *parts, figure]


def write_slices_plot(run_dir: Path, results: SplitResults) -> Path | None:
    """Draw the slices of the test split (else the first split with slices); None if none."""
    split = _plotted_split(results)
    if split is None:
        return None
    path = run_dir / SLICES_FILE
    plot_slices(results[split], path, f"{split}: metrics by slice")
    return path


def _plotted_split(results: SplitResults) -> str | None:
    with_slices = [split for split, result in results.items() if result.slices]
    return "test" if "test" in with_slices else next(iter(with_slices), None)


def format_comparison(by_model: Mapping[str, EvalResult]) -> str:
    """One Markdown table, a row per metric and a column per model (value [CI]), with the
    protocol line of each model (once when they agree)."""
    first = next(iter(by_model.values()))
    level = f"{round(100 * first.protocol['confidence'])}% CI"
    lines = [
        "| metric | " + " | ".join(f"{name} [{level}]" for name in by_model) + " |",
        "|:--|" + "--:|" * len(by_model),
    ]
    for key in first.metrics:
        cells = [_cell(result, key) for result in by_model.values()]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    protocols = {name: describe_protocol(result.protocol) for name, result in by_model.items()}
    if len(set(protocols.values())) == 1:
        notes = [protocols[next(iter(protocols))]]
    else:
        notes = [f"{name}: {line}" for name, line in protocols.items()]
    notes += [
        f"{name}: {describe_diagnostics(result.protocol).strip()}"
        for name, result in by_model.items()
        if describe_diagnostics(result.protocol)
    ]
    return "\n".join(lines) + "\n\n" + "\n\n".join(notes) + "\n"


def _cell(result: EvalResult, key: str) -> str:
    if key not in result.metrics:
        return "n/a"
    return format_estimate(result.metrics[key], result.ci.get(key))


def plot_validation_curve(
    curve: Sequence[Mapping[str, float]],
    path: Path,
    best_step: int | None = None,
    title: str = "Validation curve",
    best_epoch: int | None = None,
) -> Figure:
    """Draw each "@" metric of `curve` against "step" into a PNG at `path`; a dashed line marks
    `best_step`, the chosen checkpoint (of `best_epoch`). The legend sits under the axes, never
    over a curve."""
    if any("step" not in point for point in curve):
        raise ValueError("every point of the validation curve needs a 'step'")
    keys = sorted({key for point in curve for key in point if "@" in key})
    if not keys:
        raise ValueError("the validation curve holds no metric (no key like 'ndcg@10')")
    figure, canvas = _figure((7.0, 4.5))
    axes = figure.add_subplot()
    for key in keys:
        points = [(point["step"], point[key]) for point in curve if key in point]
        steps, values = zip(*points, strict=True)
        axes.plot(steps, values, marker="o", markersize=3, label=key)
    if best_step is not None:
        epoch = "" if best_epoch is None else f"epoch {best_epoch}, "
        label = f"chosen checkpoint: {epoch}step {best_step}"
        axes.axvline(best_step, color="black", linestyle="--", label=label)
    axes.set(title=title, xlabel="optimizer step", ylabel="validation metric")
    axes.grid(alpha=0.3)
    _legend_below(figure)
    canvas.print_png(str(path))
    return figure


def plot_comparison(
    by_model: Mapping[str, EvalResult], path: Path, title: str = "Test recall@K per model"
) -> Figure:
    """Grouped bars of each model's recall@K (every K of the run) with its interval."""
    first = next(iter(by_model.values()))
    keys = [key for key in first.metrics if key.startswith("recall@")]
    if not keys:
        raise ValueError("the results hold no recall@K to compare")
    figure, canvas = _figure((7.0, 4.5))
    axes = figure.add_subplot()
    width = 0.8 / len(by_model)
    for offset, (name, result) in enumerate(by_model.items()):
        values = [result.metrics[key] for key in keys]
        errors = None
        if all(key in result.ci for key in keys):
            errors = interval_errors(values, [result.ci[key] for key in keys])
        positions = [
            index + (offset - (len(by_model) - 1) / 2) * width for index in range(len(keys))
        ]
        axes.bar(positions, values, width, yerr=errors, capsize=3, label=name)
    level = f"{round(100 * first.protocol['confidence'])}% CI"
    axes.set_xticks(range(len(keys)), keys)
    axes.set(title=f"{title} (error bars: {level})", ylabel="test recall")
    axes.grid(axis="y", alpha=0.3)
    _legend_below(figure)
    canvas.print_png(str(path))
    return figure


def _legend_below(figure: Figure) -> None:
    """The legend in rows under the axes, where it covers no curve, bar or title."""
    handles, labels = figure.axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=min(3, len(labels)))


def _figure(size: tuple[float, float]) -> tuple[Figure, FigureCanvasAgg]:
    """A Figure with its Agg canvas and a layout that keeps an outside legend in view."""
    # Figure + its Agg canvas, not pyplot: no global backend switch and no display needed.
    # Imported here so that importing llmrec.evaluation does not pay for matplotlib (~0.4 s).
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=100, layout="constrained")
    return figure, FigureCanvasAgg(figure)
