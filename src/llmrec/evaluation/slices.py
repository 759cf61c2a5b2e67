"""Metrics by slice of an evaluation: where a model wins, not only its mean over every user.

Slices (docs/evaluation.md, metrics by slice): the target's popularity in training (head: the
most popular items that together hold the first half of the training interactions; tail: the
rest), cold targets (never seen in training, a part of the tail), and the length of the history
the model sees (1-3, 4-7, 8 or more items). Each slice gets its number of users and every metric
with bootstrap intervals, computed from the same ranks as the overall metrics. With target sets
(the per-user hold-out) a target slice holds the users with a target in it, scored on those
targets alone (the other targets count as other items).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np

from llmrec.evaluation.metrics import NO_TARGET
from llmrec.evaluation.result import (
    EvalResult,
    SliceResult,
    format_estimate,
    interval_errors,
    summarise_ranks,
)

HEAD_SHARE = 0.5  # head items hold this share of the training interactions
HISTORY_BUCKETS = ((1, 3), (4, 7), (8, None))  # history lengths, both ends included


@dataclass(frozen=True)
class SliceBasis:
    """What the slices are defined on: how often each item occurs in the training sequences."""

    item_counts: np.ndarray  # (num_items,) int64

    @classmethod
    def from_sequences(cls, train: Sequence[np.ndarray], num_items: int) -> Self:
        items = np.concatenate([np.asarray(s, dtype=np.int64) for s in train] or [np.zeros(0)])
        return cls(np.bincount(items.astype(np.int64), minlength=num_items))

    def head_items(self) -> np.ndarray:
        """(num_items,) bool: the most popular items that together hold the first HEAD_SHARE of
        the training interactions, with every item as popular as the last one taken (choice:
        equally popular items are never split between head and tail)."""
        counts = np.sort(self.item_counts)[::-1]
        total = counts.sum()
        if total == 0:
            return np.zeros(len(self.item_counts), dtype=bool)
        last = int(np.searchsorted(np.cumsum(counts), HEAD_SHARE * total))  # first to reach it
        return self.item_counts >= max(counts[last], 1)

    def describe(self) -> dict[str, Any]:
        head = self.head_items()
        total = int(self.item_counts.sum())
        return {
            "train_interactions": total,
            "head_items": int(head.sum()),
            "head_share": float(self.item_counts[head].sum() / total) if total else 0.0,
            "head_min_count": int(self.item_counts[head].min()) if head.any() else None,
            "cold_items": int((self.item_counts == 0).sum()),
        }


def slice_metrics(
    basis: SliceBasis,
    histories: Sequence[np.ndarray],
    targets: np.ndarray | Sequence[np.ndarray],
    ranks: np.ndarray,
    protocol: Mapping[str, Any],
) -> dict[str, SliceResult]:
    """Every slice's metrics. `ranks`: (N,) one target per row, or (N, L) aligned with each
    row's target set (column j is the rank of `targets[r][j]`, padded with 0)."""
    slices = {}
    for name, item_mask in (
        ("target head", basis.head_items()),
        ("target tail", ~basis.head_items()),
        ("target cold", basis.item_counts == 0),
    ):
        slices[name] = _summarise(_target_slice(item_mask, targets, ranks), protocol)
    lengths = np.asarray([len(history) for history in histories])
    for low, high in HISTORY_BUCKETS:
        rows = (lengths >= low) & (
            lengths <= (high if high is not None else lengths.max(initial=0))
        )
        label = f"history {low}-{high}" if high is not None else f"history {low}+"
        slices[label] = _summarise(ranks[rows], protocol)
    return slices


def _target_slice(
    item_mask: np.ndarray, targets: np.ndarray | Sequence[np.ndarray], ranks: np.ndarray
) -> np.ndarray:
    """The ranks of the rows with a target in the slice, restricted to those targets."""
    if ranks.ndim == 1:
        return ranks[item_mask[np.asarray(targets, dtype=np.int64)]]
    member = np.zeros(ranks.shape, dtype=bool)
    for row, target_set in enumerate(targets):
        member[row, : len(target_set)] = item_mask[np.asarray(target_set, dtype=np.int64)]
    kept = np.where(member, ranks, NO_TARGET)
    return kept[member.any(axis=1)]


def _summarise(ranks: np.ndarray, protocol: Mapping[str, Any]) -> SliceResult:
    if len(ranks) == 0:
        return SliceResult(0, {})
    metrics, ci = summarise_ranks(ranks, dict(protocol))
    return SliceResult(len(ranks), metrics, ci)


def headline_keys(ks: Sequence[int]) -> tuple[str, str]:
    """The two metrics a slice table and plot show: recall and NDCG at 10, else at the
    smallest cut-off (every metric is in metrics.json)."""
    cutoff = 10 if 10 in ks else min(ks)
    return f"recall@{cutoff}", f"ndcg@{cutoff}"


def format_slice_table(result: EvalResult) -> str:
    """Markdown table of a result's slices: users (share of all) and the headline metrics with
    their intervals."""
    keys = headline_keys(result.protocol["ks"])
    level = f"{round(100 * result.protocol['confidence'])}% CI"
    lines = [
        "| slice | users | " + " | ".join(f"{key} [{level}]" for key in keys) + " |",
        "|:--|--:|" + "--:|" * len(keys),
    ]
    total = len(result.user_ids)
    for name, part in result.slices.items():
        cells = [_cell(part, key) for key in keys]
        share = f"{part.num_users} ({100 * part.num_users / total:.0f}%)"
        lines.append(f"| {name} | {share} | " + " | ".join(cells) + " |")
    basis = result.protocol.get("slice_basis", {})
    if basis:
        lines += [
            "",
            f"Head: the {basis['head_items']} most popular items, {100 * basis['head_share']:.0f}% "
            f"of the {basis['train_interactions']} training interactions (each seen at least "
            f"{basis['head_min_count']} times); tail: the rest; cold: never seen in training "
            f"({basis['cold_items']} items).",
        ]
    return "\n".join(lines) + "\n"


def _cell(part: SliceResult, key: str) -> str:
    if not part.num_users:
        return "-"
    return format_estimate(part.metrics[key], part.ci.get(key))


def plot_slices(result: EvalResult, path: Path, title: str) -> None:
    """One bar per non-empty slice: the headline recall with its interval, into a PNG."""
    # Figure + its Agg canvas, not pyplot (no global backend, no display), imported only here.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    key = headline_keys(result.protocol["ks"])[0]
    parts = [(name, part) for name, part in result.slices.items() if part.num_users]
    values = [part.metrics[key] for _, part in parts]
    errors = (
        interval_errors(values, [part.ci[key] for _, part in parts])
        if all(key in part.ci for _, part in parts)
        else None
    )
    figure = Figure(figsize=(6.0, 0.5 * len(parts) + 1.5), dpi=100)
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    positions = np.arange(len(parts))
    axes.barh(positions, values, xerr=errors, color="tab:blue", alpha=0.8, capsize=3)
    axes.set_yticks(positions, [f"{name} ({part.num_users})" for name, part in parts])
    axes.invert_yaxis()
    axes.set_xlabel(key)
    axes.set_title(title)
    axes.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    canvas.print_png(str(path))
