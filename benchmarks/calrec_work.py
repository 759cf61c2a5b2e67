"""Work per Stage II training target of CALRec recipes, counted, not timed (docs/calrec.md
sec. 12: the CPU recipe must do at least 10x less than the GPU one; issue 21: what packing saves).

For each recipe config and each way of building training targets: `last` (one example per
user), `all` (one example per transition) and packed (`extensions.packing`, every transition of a
user in one joint pass, at each token budget asked for). Counted over the recipe's real epoch-0
Stage II batches (its batch size and seed, `ExampleBatches`), with the recipe's tokenizer and text
settings:

- tokens per target: the joint pass (prompt + target line + newline; packed: the user's lines)
  and the item pass (each example's target; packed: each distinct target of the batch once);
- padded tokens per target: what the right-padded batches actually compute;
- history lines per target: how many earlier items the target is conditioned on;
- attention pairs per target: the causal attention's T(T+1)/2 per pass, the quadratic term;
- layer passes per token: forward through every kept layer, about twice that backward through
  the trained ones;
- head positions per target: the tokens the vocabulary head scores (the target line and its
  newline, in every mode), each costing H x V / (one layer's weights) layer passes forward and
  as much again backward (three times in all when the tied embedding trains).
  Work = padded tokens x layer passes + head positions x head passes: the linear layers' FLOPs up
  to a constant, which dominate at these lengths.

    .venv/bin/python benchmarks/calrec_work.py --data-dir ../shared/data

Writes benchmarks/results/calrec_work.json and .md; the first config's first row is the reference.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from baselines import DATA_DIR, RESULTS, DataDir

from llmrec.config import load_config
from llmrec.data.registry import load_dataset
from llmrec.models.backbone import load_backbone
from llmrec.models.calrec.batches import ExampleBatches, build_examples
from llmrec.models.calrec.packing import PackedBatches, build_packed
from llmrec.text.templates import ItemLines

CONFIGS = [Path("configs/calrec_gpu_beauty.yaml"), Path("configs/calrec_cpu_beauty.yaml")]
BUDGETS = [128, 256, 512, 1024]
UNGROUPED = 512  # the budget also counted without grouping by length (group_by_length: false)


@dataclass(frozen=True)
class Lengths:
    """What one pool entry costs: its joint pass, its target lines (key, tokens) and how many
    history lines each target reads. An example has one target; a packed user one per line
    from the second."""

    joint: int
    targets: tuple[tuple[int, int], ...]
    history_lines: tuple[int, ...]
    packed: bool
    newline: int  # tokens of the newline each target line is written with

    def __len__(self) -> int:  # the length `PackedBatches` groups by
        return self.joint


@dataclass
class Count:
    targets: int = 0
    tokens: int = 0
    padded_tokens: int = 0
    history_lines: int = 0
    attention_pairs: int = 0
    head_positions: int = 0

    def add_batch(self, batch: Sequence[Lengths]) -> None:
        joints = [entry.joint for entry in batch]
        if batch[0].packed:  # the item tower encodes each distinct target of the batch once
            items = list(dict(pair for entry in batch for pair in entry.targets).values())
        else:
            items = [length for entry in batch for _, length in entry.targets]
        self.targets += sum(len(entry.targets) for entry in batch)
        self.tokens += sum(joints) + sum(items)
        self.padded_tokens += len(joints) * max(joints) + len(items) * max(items)
        self.history_lines += sum(sum(entry.history_lines) for entry in batch)
        self.attention_pairs += sum(n * (n + 1) // 2 for n in [*joints, *items])
        self.head_positions += sum(n + e.newline for e in batch for _, n in e.targets)


def example_lengths(sequences: Sequence[np.ndarray], lines: ItemLines, mode: str) -> list[Lengths]:
    """One entry per `last` / `all` example, built by `build_examples` one user at a time (the
    examples of every user at once would not fit in memory for the GPU recipe)."""
    entries = []
    for sequence in sequences:
        positions = range(1, len(sequence)) if mode == "all" else [len(sequence) - 1]
        examples = build_examples([sequence], lines, mode)
        for position, example in zip([p for p in positions if p >= 1], examples, strict=True):
            joint = len(example.prompt) + len(example.target) + len(example.newline)
            history = min(position, lines.max_history_items)
            target = ((example.key, len(example.target)),)
            entries.append(Lengths(joint, target, (history,), False, len(example.newline)))
    return entries


def packed_lengths(sequences: Sequence[np.ndarray], lines: ItemLines, budget: int) -> list[Lengths]:
    """One entry per user with at least two lines within the budget (`build_packed`)."""
    entries = []
    for packed in build_packed(sequences, lines, budget):
        spans = list(
            zip(packed.keys, np.subtract(packed.ends, packed.starts).tolist(), strict=True)
        )
        history = tuple(range(1, len(packed.keys)))
        entries.append(
            Lengths(len(packed.tokens), tuple(spans[1:]), history, True, len(lines.newline))
        )
    return entries


def count_epoch(entries: list[Lengths], batch_size: int, seed: int, grouped: bool) -> Count:
    """Counts over the epoch-0 batches, in the order and grouping the training loop sees: the
    real batching classes, with a collate that keeps the entries (the order depends on the pool's
    size, the seed and the lengths only, so it is the order of the real examples)."""
    if entries[0].packed:
        source = PackedBatches([entries], batch_size, 0, seed, group_by_length=grouped)
    else:
        source = ExampleBatches([entries], batch_size, 0, seed)
    source.collate = keep_entries
    count = Count()
    for batch in source.batches(0):
        count.add_batch(batch)
    return count


def keep_entries(batch: Sequence[Lengths], pad_id: int) -> Sequence[Lengths]:
    return batch


def target_pools(
    sequences: Sequence[np.ndarray], lines: ItemLines, modes: Sequence[str], budgets: Sequence[int]
) -> dict[str, tuple[list[Lengths], bool]]:
    """Row label -> (pool entries, grouped by length) for each mode and packed budget."""
    pools = {mode: (example_lengths(sequences, lines, mode), False) for mode in modes}
    for budget in budgets:
        pools[f"packed {budget}"] = (packed_lengths(sequences, lines, budget), True)
    if UNGROUPED in budgets:
        pools[f"packed {UNGROUPED}, ungrouped"] = (pools[f"packed {UNGROUPED}"][0], False)
    return pools


def recipe_work(config_path: Path, data_dir: Path, tokenizers: dict) -> dict:
    """The row of the recipe's own training targets (gpu_plan.py checks its count by it)."""
    model = load_config(config_path, [f"data.data_dir={data_dir.resolve()}"]).model
    packing = model.extensions.packing
    mode = f"packed {packing.token_budget}" if packing else model.training_targets
    budgets = [packing.token_budget] if packing else []
    modes = [] if packing else [model.training_targets]
    [row] = recipe_rows(config_path, data_dir, budgets, tokenizers, modes)
    assert row["targets_mode"] == mode
    return {**row, "tokens_per_example": row["tokens_per_target"]}


def backbone_shape(config) -> tuple:
    """(tokenizer, decoder layers, H x V / one layer's weights): the head's cost per position
    in forward layer passes."""
    backbone = load_backbone(config, show_progress=False)
    language_model = backbone.model
    layer = sum(p.numel() for p in language_model.get_decoder().layers[0].parameters())
    head = language_model.get_output_embeddings().weight.numel()
    return backbone.tokenizer, language_model.config.num_hidden_layers, head / layer


def recipe_rows(
    config_path: Path,
    data_dir: Path,
    budgets: Sequence[int],
    tokenizers: dict,
    modes: Sequence[str] = ("last", "all"),
) -> list[dict]:
    """One row per target mode (`last`, `all`) and per packed token budget."""
    config = load_config(config_path, [f"data.data_dir={data_dir.resolve()}"])
    model = config.model
    dataset = load_dataset(config.data.source, data_dir=data_dir).dataset
    source = model.backbone.source
    if source not in tokenizers:
        tokenizers[source] = backbone_shape(model.backbone)
    tokenizer, num_layers, head_ratio = tokenizers[source]
    layers = len(model.backbone.keep_layers or range(num_layers))
    trained = min(model.extensions.trainable_layers or layers, layers)
    # the tied embedding trains unless only the top layers (or adapters) do
    embedding_trains = model.extensions.trainable_layers is None and model.extensions.lora is None
    head_passes = head_ratio * (3 if embedding_trains else 2)
    lines = ItemLines(dataset.catalogue.items, tokenizer, model.text)
    rows = []
    for mode, (entries, grouped) in target_pools(dataset.train, lines, modes, budgets).items():
        count = count_epoch(entries, config.train.batch_size, config.seed, grouped)
        passes = layers + 2 * trained
        per_target = {
            key: value / count.targets for key, value in asdict(count).items() if key != "targets"
        }
        rows.append(
            {
                "config": str(config_path),
                "targets_mode": mode,
                "rows": len(entries),
                "targets": count.targets,
                **{f"{key}_per_target": value for key, value in per_target.items()},
                "layers": layers,
                "trained_layers": trained,
                "layer_passes_per_token": passes,
                "head_passes_per_position": head_passes,
                "work_per_target": per_target["padded_tokens"] * passes
                + per_target["head_positions"] * head_passes,
            }
        )
    return rows


def table(rows: list[dict]) -> list[str]:
    lines = [
        "| config | training targets | rows | targets | tokens / target | padded tokens / target "
        "| history lines / target | attention pairs / target | head positions / target "
        "| layers (trained) | layer passes / token (head) | work / target | `all` / this "
        "| reference / this |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    return lines + [
        f"| `{row['config']}` | {row['targets_mode']} | {row['rows']} | {row['targets']} "
        f"| {row['tokens_per_target']:.1f} | {row['padded_tokens_per_target']:.1f} "
        f"| {row['history_lines_per_target']:.2f} | {row['attention_pairs_per_target']:.0f} "
        f"| {row['head_positions_per_target']:.1f} "
        f"| {row['layers']} ({row['trained_layers']}) | {row['layer_passes_per_token']} "
        f"({row['head_passes_per_position']:.0f}) "
        f"| {row['work_per_target']:.0f} | {row['work_ratio_to_all']:.2f}x "
        f"| {row['work_ratio_to_reference']:.1f}x |"
        for row in rows
    ]


def main(
    config: Annotated[
        list[Path] | None, typer.Option(help="recipe configs; the first is the reference")
    ] = None,
    budget: Annotated[
        list[int] | None, typer.Option(help="token budgets of the packed rows")
    ] = None,
    data_dir: DataDir = DATA_DIR,
) -> None:
    tokenizers: dict = {}
    rows = [
        row
        for path in config or CONFIGS
        for row in recipe_rows(path, data_dir, budget or BUDGETS, tokenizers)
    ]
    reference = rows[0]["work_per_target"]
    for row in rows:
        every = next(r for r in rows if r["config"] == row["config"] and r["targets_mode"] == "all")
        row["work_ratio_to_all"] = every["work_per_target"] / row["work_per_target"]
        row["work_ratio_to_reference"] = reference / row["work_per_target"]
    record = {"command": "python benchmarks/calrec_work.py " + " ".join(sys.argv[1:]), "rows": rows}
    (RESULTS / "calrec_work.json").write_text(json.dumps(record, indent=1) + "\n", "utf-8")
    lines = [
        "# CALRec: work per Stage II training target, by recipe and target mode (counted, not "
        "timed)",
        "",
        f"Command: `{record['command']}`",
        "",
        *table(rows),
        "",
        "Counted over each recipe's epoch-0 Stage II batches (its batch size and seed). A target "
        "is one item the model learns to write: one per example for `last` and `all`, one per line "
        "from the second for `packed B` (`extensions.packing.token_budget: B`). Rows: examples, "
        "or packed users. Tokens: joint pass + item pass (packed: each distinct target of a batch "
        "once). Work = padded tokens x layer passes per token (forward through every kept layer, "
        "about twice that backward through the trained ones) + head positions x head passes (in "
        "brackets: the vocabulary head's H x V weights in layer passes, forward and backward); "
        "attention's quadratic term is not in it, its size is the attention-pairs column. "
        "Reference: the first row.",
        "",
    ]
    (RESULTS / "calrec_work.md").write_text("\n".join(lines), encoding="utf-8")
    typer.echo("\n".join(lines))


if __name__ == "__main__":
    typer.run(main)
