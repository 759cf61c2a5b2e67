"""`EvalResult`: per-user ranks, metrics with bootstrap intervals, and the protocol behind them.

Saved as JSON (`metrics.json`) and JSON lines (`ranks.jsonl`, one user per line), never pickle, so
two saved runs can be compared user by user with `compare_results`.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np

from llmrec.data.catalogue import Catalogue
from llmrec.data.sequences import AnyEvalSet, UserId
from llmrec.errors import DataError
from llmrec.evaluation.bootstrap import (
    ConfidenceInterval,
    PairedTestResult,
    bootstrap_cis,
    paired_test,
)
from llmrec.evaluation.config import EvalConfig
from llmrec.evaluation.metrics import NO_TARGET, per_user_metrics

METRICS_FILE = "metrics.json"
RANKS_FILE = "ranks.jsonl"
# Protocol fields two results must share to be compared user by user; the evaluation set itself
# is compared by its fingerprint, not by the split label (which may carry training notes).
PAIRED_FIELDS = ("protocol", "targets", "filter_history", "num_items", "num_negatives")


@dataclass(frozen=True)
class SliceResult:
    """One slice of an evaluation (slices.py): how many users it holds, and their metrics with
    intervals (none when it is empty)."""

    num_users: int
    metrics: dict[str, float]
    ci: dict[str, ConfidenceInterval] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        intervals = {key: interval.to_json() for key, interval in self.ci.items()}
        return {"users": self.num_users, "metrics": self.metrics, "ci": intervals}

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> Self:
        intervals = {key: ConfidenceInterval(**value) for key, value in record["ci"].items()}
        return cls(record["users"], dict(record["metrics"]), intervals)


def summarise_ranks(
    ranks: np.ndarray, protocol: dict[str, Any]
) -> tuple[dict[str, float], dict[str, ConfidenceInterval]]:
    """Metrics at protocol["ks"] (means over users) and their intervals, as the protocol asks."""
    per_user = per_user_metrics(ranks, protocol["ks"], protocol["rank_cutoff"])
    metrics = {key: float(values.mean()) for key, values in per_user.items()}
    ci = {}
    if protocol["bootstrap_resamples"] > 0:
        ci = bootstrap_cis(
            per_user, protocol["bootstrap_resamples"], protocol["confidence"], protocol["seed"]
        )
    return metrics, ci


@dataclass(frozen=True)
class EvalResult:
    """Metrics (means over users), their intervals, each user's target rank, and the protocol.

    `protocol` is the record `build_protocol` makes: full or sampled, history filter, split,
    seed, cut-offs, and how far the ranks are exact.
    """

    metrics: dict[str, float]
    ci: dict[str, ConfidenceInterval]  # empty when bootstrap_resamples is 0
    # (N,) int64, 1-based; see ranking.py for misses and cut-offs. Target sets: (N, L), each row
    # the ranks of the user's targets, ascending, padded with 0.
    ranks: np.ndarray
    user_ids: tuple[UserId, ...]
    protocol: dict[str, Any]
    # Metrics by slice (slices.py): target popularity, cold targets, history length; empty
    # when the evaluation was given no training data to define them.
    slices: dict[str, SliceResult] = field(default_factory=dict)

    @classmethod
    def from_ranks(
        cls,
        ranks: np.ndarray,
        user_ids: tuple[UserId, ...],
        protocol: dict[str, Any],
        slices: dict[str, SliceResult] | None = None,
    ) -> Self:
        """Summarise ranks: metrics at protocol["ks"], intervals as the protocol asks."""
        metrics, ci = summarise_ranks(ranks, protocol)
        ranks = np.asarray(ranks, dtype=np.int64)
        return cls(metrics, ci, ranks, tuple(user_ids), protocol, slices or {})

    def per_user_metrics(self) -> dict[str, np.ndarray]:
        """Each metric per user, in `user_ids` order (the input of bootstraps and paired tests)."""
        return per_user_metrics(self.ranks, self.protocol["ks"], self.protocol["rank_cutoff"])

    def to_json(self) -> dict[str, Any]:
        """Metrics, intervals and protocol as a JSON-ready dict (ranks are saved separately)."""
        record = {
            "metrics": self.metrics,
            "ci": {key: interval.to_json() for key, interval in self.ci.items()},
            "protocol": self.protocol,
        }
        if self.slices:
            record["slices"] = {name: part.to_json() for name, part in self.slices.items()}
        return record

    def save(self, directory: str | Path) -> None:
        """Write `metrics.json` and `ranks.jsonl` ({"user_id": ..., "rank": ...} per line;
        {"user_id": ..., "ranks": [...]} for target sets)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_json(), indent=2) + "\n"
        (directory / METRICS_FILE).write_text(text, encoding="utf-8")
        lines = (
            json.dumps({"user_id": user_id, **_rank_record(rank)}) + "\n"
            for user_id, rank in zip(self.user_ids, self.ranks, strict=True)
        )
        (directory / RANKS_FILE).write_text("".join(lines), encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        """Read what `save` wrote; a missing or damaged file is a `DataError` naming it."""
        directory = Path(directory)
        record = _parse_json(_read_text(directory / METRICS_FILE), directory / METRICS_FILE)
        lines = _read_text(directory / RANKS_FILE).split("\n")
        rows = [
            _parse_json(line, directory / RANKS_FILE, number)
            for number, line in enumerate(lines, start=1)
            if line.strip()
        ]
        try:
            ci = {key: ConfidenceInterval(**interval) for key, interval in record["ci"].items()}
            if rows and "ranks" in rows[0]:  # target sets: pad the rows with 0 to one width
                width = max(len(row["ranks"]) for row in rows)
                ranks = np.zeros((len(rows), width), dtype=np.int64)
                for index, row in enumerate(rows):
                    ranks[index, : len(row["ranks"])] = row["ranks"]
            else:
                ranks = np.array([row["rank"] for row in rows], dtype=np.int64)
            user_ids = tuple(row["user_id"] for row in rows)
            slices = {
                name: SliceResult.from_json(part) for name, part in record.get("slices", {}).items()
            }
            return cls(record["metrics"], ci, ranks, user_ids, record["protocol"], slices)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise DataError(f"not a saved evaluation result ({error!r})", directory) from None

    def format_table(self) -> str:
        """Markdown table of each metric with its interval, and the protocol line under it."""
        level = f"{round(100 * self.protocol['confidence'])}% CI"
        lines = [f"| metric | value | {level} |", "|:--|--:|:--:|"]
        for key, value in self.metrics.items():
            interval = self.ci.get(key)
            shown = "n/a" if interval is None else f"{interval.low:.4f} - {interval.high:.4f}"
            lines.append(f"| {key} | {value:.4f} | {shown} |")
        text = "\n".join(lines) + "\n\n" + describe_protocol(self.protocol) + "\n"
        return text + describe_diagnostics(self.protocol)


def build_protocol(
    config: EvalConfig,
    num_items: int,
    num_users: int,
    split: str | None,
    model_name: str,
    ranked_by: str,
    rank_cutoff: int | None,
    targets: Literal["next_item", "set"] = "next_item",
) -> dict[str, Any]:
    """The protocol record of a result: the config's choices and what the ranking saw.

    `ranked_by` is "score" or "recommend"; `rank_cutoff` is the rank up to which ranks are exact
    (None: all ranks exact). `targets` "set": the per-user hold-out, whose target sets are always
    ranked with the history excluded.
    """
    is_sampled = config.protocol == "sampled"
    return {
        "protocol": config.protocol,
        "targets": targets,
        "filter_history": config.filter_history or targets == "set",
        "num_items": num_items,
        "num_users": num_users,
        "num_negatives": config.num_negatives if is_sampled else None,
        "split": split,
        "seed": config.seed,
        "model": model_name,
        "ranked_by": ranked_by,
        "rank_cutoff": rank_cutoff,
        "ks": list(config.ks),
        "confidence": config.confidence,
        "bootstrap_resamples": config.bootstrap_resamples,
    }


def describe_protocol(protocol: dict[str, Any]) -> str:
    """One line naming the protocol; the history filter is always stated, on or off."""
    if protocol["protocol"] == "sampled":
        ranking = (
            f"SAMPLED ranking (target + {protocol['num_negatives']} uniform negatives per user; "
            "not comparable with full ranking)"
        )
    else:
        ranking = f"full ranking over {protocol['num_items']} items"
    history = f"history filter {'on' if protocol['filter_history'] else 'off'}"
    if protocol.get("targets") == "set":
        ranking = f"per-user random hold-out, truncated recall/NDCG, history excluded; {ranking}"
        history = None
    parts = [
        ranking,
        history,
        f"split {protocol['split'] or 'unnamed'}",
        protocol.get("user_sample") or f"{protocol['num_users']} users",
        f"seed {protocol['seed']}",
        f"ranked by {protocol['ranked_by']}",
    ]
    if protocol["rank_cutoff"] is not None:
        parts.append(f"ranks exact up to {protocol['rank_cutoff']}")
    return "Protocol: " + "; ".join(part for part in parts if part) + "."


def format_estimate(value: float, interval: ConfidenceInterval | None) -> str:
    """`0.0661 [0.0615, 0.0705]`: a mean and its interval (the mean alone without one)."""
    shown = "" if interval is None else f" [{interval.low:.4f}, {interval.high:.4f}]"
    return f"{value:.4f}{shown}"


def interval_errors(
    values: Sequence[float], intervals: Sequence[ConfidenceInterval]
) -> list[list[float]]:
    """Matplotlib's asymmetric error bars: [distances below, distances above] each value."""
    below = [value - interval.low for value, interval in zip(values, intervals, strict=True)]
    above = [interval.high - value for value, interval in zip(values, intervals, strict=True)]
    return [below, above]


def describe_diagnostics(protocol: dict[str, Any]) -> str:
    """A line of the model's diagnostics (CALRec's), or "" when it reported none."""
    if not protocol.get("diagnostics"):
        return ""
    shown = ", ".join(f"{key} {value:.4g}" for key, value in protocol["diagnostics"].items())
    return f"Diagnostics: {shown}.\n"


def eval_set_fingerprint(eval_set: AnyEvalSet, catalogue: Catalogue) -> str:
    """sha256 over what an evaluation ranks: the catalogue's item ids, then each row's user id,
    history and target(s), in order. Two results with equal fingerprints ranked the same test."""
    digest = hashlib.sha256(catalogue.fingerprint().encode("ascii"))
    for user_id, history, target in zip(
        eval_set.user_ids, eval_set.histories, eval_set.targets, strict=True
    ):
        digest.update(json.dumps(user_id).encode("utf-8"))
        digest.update(np.asarray(history, dtype="<i8").tobytes() + b"|")
        digest.update(np.asarray(target, dtype="<i8").tobytes() + b"\n")
    return digest.hexdigest()


def compare_results(
    result_a: EvalResult,
    result_b: EvalResult,
    metric: str,
    num_resamples: int = 10_000,
    seed: int = 0,
) -> PairedTestResult:
    """Paired test of `metric` for A against B; both must rank the same evaluation set (users,
    histories, targets: `eval_set_sha256`) the same way. Users are paired by id, not by
    position. Mismatches are a `DataError`."""
    _check_paired(result_a, result_b)
    per_user_a, per_user_b = result_a.per_user_metrics(), result_b.per_user_metrics()
    if metric not in per_user_a or metric not in per_user_b:
        shared = [key for key in per_user_a if key in per_user_b]
        raise DataError(
            f"metric {metric!r} is not in both results; they have {', '.join(shared) or 'none'}"
        )
    b_rows = align_users(result_a.user_ids, result_b.user_ids)
    confidence = result_a.protocol["confidence"]
    values_b = per_user_b[metric][b_rows]
    return paired_test(per_user_a[metric], values_b, num_resamples, confidence, seed)


def align_users(user_ids_a: Sequence[UserId], user_ids_b: Sequence[UserId]) -> np.ndarray:
    """For each user of A, in order, the row of the same user in B: a paired test pairs users
    by id, never by position. Refuses repeated ids and user sets that differ (`DataError`
    naming how many users each side lacks, and a few of them)."""
    for side, user_ids in (("A", user_ids_a), ("B", user_ids_b)):
        repeated = [user_id for user_id, count in Counter(user_ids).items() if count > 1]
        if repeated:
            raise DataError(f"result {side} holds a user more than once (e.g. {repeated[:3]})")
    row_in_b = {user_id: row for row, user_id in enumerate(user_ids_b)}
    in_a = set(user_ids_a)
    only_a = [user_id for user_id in user_ids_a if user_id not in row_in_b]
    only_b = [user_id for user_id in user_ids_b if user_id not in in_a]
    if only_a or only_b:
        raise DataError(
            "paired comparison needs the same users: "
            f"{len(only_a)} only in A (e.g. {only_a[:3]}), {len(only_b)} only in B "
            f"(e.g. {only_b[:3]})"
        )
    return np.array([row_in_b[user_id] for user_id in user_ids_a], dtype=np.int64)


def _check_paired(result_a: EvalResult, result_b: EvalResult) -> None:
    for key in PAIRED_FIELDS:
        # Results saved before target sets existed have no "targets": they are next-item results.
        value_a = result_a.protocol.get(key, "next_item" if key == "targets" else None)
        value_b = result_b.protocol.get(key, "next_item" if key == "targets" else None)
        if value_a != value_b:
            raise DataError(f"results differ in protocol field {key!r}: {value_a!r} vs {value_b!r}")
    fingerprints = [result.protocol.get("eval_set_sha256") for result in (result_a, result_b)]
    if None in fingerprints:  # saved before fingerprints: the split label must agree
        if result_a.protocol["split"] != result_b.protocol["split"]:
            raise DataError(
                f"results differ in protocol field 'split': {result_a.protocol['split']!r} vs "
                f"{result_b.protocol['split']!r}"
            )
    elif fingerprints[0] != fingerprints[1]:
        raise DataError(
            "the results ranked different evaluation sets (users, histories or targets differ; "
            f"splits {result_a.protocol['split']!r} and {result_b.protocol['split']!r})"
        )


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError("not found (a split folder of `llmrec run` holds it)", path) from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot be read: {error}", path) from None


def _parse_json(text: str, path: Path, line: int | None = None) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(f"not JSON: {error}", path, line) from None


def _rank_record(rank: np.ndarray) -> dict[str, Any]:
    """One user's line of ranks.jsonl: its rank, or the ranks of its target set (no padding)."""
    if np.ndim(rank) == 0:
        return {"rank": int(rank)}
    return {"ranks": [int(value) for value in rank if value != NO_TARGET]}
