"""Run report: every split's metrics in `metrics.json` and `report.md`, per-user ranks per split,
the validation curve as `validation_curve.png` and the metrics by slice as `slices.png`
(matplotlib, Agg canvas, no display).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from llmrec.evaluation.result import METRICS_FILE, EvalResult
from llmrec.evaluation.slices import format_slice_table, plot_slices

REPORT_FILE = "report.md"
CURVE_FILE = "validation_curve.png"
SLICES_FILE = "slices.png"


@dataclass(frozen=True)
class ReportFiles:
    """Paths `write_report` wrote."""

    metrics: Path
    report: Path
    curve: Path | None
    split_directories: dict[str, Path]  # split -> directory with its metrics.json and ranks.jsonl
    slices: Path | None = None  # the plot of the metrics by slice


def write_report(
    run_dir: str | Path,
    results: Mapping[str, EvalResult],
    curve: Sequence[Mapping[str, float]] | None = None,
) -> ReportFiles:
    """Write the report for `results` (split name -> result, e.g. "valid", "test") to `run_dir`.

    `curve` is the validation curve: one dict per evaluation with "step" and metric values
    (e.g. "ndcg@10"); every key containing "@" is drawn.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    split_directories = {}
    for split, result in results.items():
        split_directories[split] = run_dir / split
        result.save(split_directories[split])
    metrics_path = run_dir / METRICS_FILE
    record = {split: result.to_json() for split, result in results.items()}
    metrics_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    report_path = run_dir / REPORT_FILE
    report_path.write_text(format_report(results, has_curve=bool(curve)), encoding="utf-8")
    curve_path = None
    if curve:
        curve_path = run_dir / CURVE_FILE
        plot_validation_curve(curve, curve_path)
    return ReportFiles(
        metrics_path,
        report_path,
        curve_path,
        split_directories,
        write_slices_plot(run_dir, results),
    )


def format_report(results: Mapping[str, EvalResult], has_curve: bool = False) -> str:
    """The Markdown report: one table per split, each with its protocol line."""
    sections = ["# Evaluation report\n"]
    for split, result in results.items():
        sections.append(f"## {split}\n\n{result.format_table()}")
    if has_curve:
        sections.append(f"## Validation curve\n\n![validation curve]({CURVE_FILE})\n")
    sections += format_slices_section(results)
    return "\n".join(sections)


def format_slices_section(results: Mapping[str, EvalResult]) -> list[str]:
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


def write_slices_plot(run_dir: Path, results: Mapping[str, EvalResult]) -> Path | None:
    """Draw the slices of the test split (else the first split with slices); None if none."""
    split = _plotted_split(results)
    if split is None:
        return None
    path = run_dir / SLICES_FILE
    plot_slices(results[split], path, f"{split}: metrics by slice")
    return path


def _plotted_split(results: Mapping[str, EvalResult]) -> str | None:
    with_slices = [split for split, result in results.items() if result.slices]
    return "test" if "test" in with_slices else next(iter(with_slices), None)


def plot_validation_curve(curve: Sequence[Mapping[str, float]], path: Path) -> None:
    """Draw each "@" metric of `curve` against "step" into a PNG at `path`."""
    # Figure + its Agg canvas, not pyplot: no global backend switch and no display needed.
    # Imported here so that importing llmrec.evaluation does not pay for matplotlib (~0.4 s).
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if any("step" not in point for point in curve):
        raise ValueError("every point of the validation curve needs a 'step'")
    keys = sorted({key for point in curve for key in point if "@" in key})
    if not keys:
        raise ValueError("the validation curve holds no metric (no key like 'ndcg@10')")
    figure = Figure(figsize=(6.0, 4.0), dpi=100)
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for key in keys:
        points = [(point["step"], point[key]) for point in curve if key in point]
        steps, values = zip(*points, strict=True)
        axes.plot(steps, values, marker="o", label=key)
    axes.set_xlabel("step")
    axes.set_ylabel("validation metric")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    canvas.print_png(str(path))
