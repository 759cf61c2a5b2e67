"""Work per Stage II training example of CALRec recipes, counted, not timed (docs/calrec.md
sec. 12: the CPU recipe must do at least 10x less than the GPU one).

For each recipe config: the tokens of one example's two passes on the target data set (the joint
pass reads prompt + target line + newline, the item pass the target line; `collate`), and the
layer passes per token, forward through every kept layer and about twice that backward through
the trained ones. Work = tokens x layer passes: the linear layers' FLOPs up to a constant, which
dominate at these lengths (attention's quadratic term is left out; it favours short lines).

    .venv/bin/python benchmarks/calrec_work.py --data-dir ../shared/data

Writes benchmarks/results/calrec_work.json and .md; the first config is the reference.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Annotated

import typer
from baselines import DATA_DIR, RESULTS, DataDir

from llmrec.config import load_config
from llmrec.data.registry import load_dataset
from llmrec.models.backbone import load_backbone
from llmrec.models.calrec.batches import build_examples
from llmrec.text.templates import ItemLines

CONFIGS = [Path("configs/calrec_gpu_beauty.yaml"), Path("configs/calrec_cpu_beauty.yaml")]


def recipe_work(config_path: Path, data_dir: Path, tokenizers: dict) -> dict:
    config = load_config(config_path, [f"data.data_dir={data_dir.resolve()}"])
    model = config.model
    dataset = load_dataset(config.data.source, data_dir=data_dir).dataset
    source = model.backbone.source
    if source not in tokenizers:
        backbone = load_backbone(model.backbone, show_progress=False)
        tokenizers[source] = (backbone.tokenizer, backbone.model.config.num_hidden_layers)
    tokenizer, num_layers = tokenizers[source]
    layers = len(model.backbone.keep_layers or range(num_layers))
    trained = min(model.extensions.trainable_layers or layers, layers)
    lines = ItemLines(dataset.catalogue.items, tokenizer, model.text)
    examples = build_examples(dataset.train, lines, model.training_targets)
    tokens = statistics.mean(len(e.prompt) + 2 * len(e.target) + len(e.newline) for e in examples)
    layer_passes = layers + 2 * trained
    return {
        "config": str(config_path),
        "examples": len(examples),
        "tokens_per_example": tokens,
        "layers": layers,
        "trained_layers": trained,
        "layer_passes_per_token": layer_passes,
        "work_per_example": tokens * layer_passes,
    }


def main(
    config: Annotated[
        list[Path] | None, typer.Option(help="recipe configs; the first is the reference")
    ] = None,
    data_dir: DataDir = DATA_DIR,
) -> None:
    tokenizers: dict = {}
    rows = [recipe_work(path, data_dir, tokenizers) for path in config or CONFIGS]
    reference = rows[0]["work_per_example"]
    for row in rows:
        row["work_ratio_to_reference"] = reference / row["work_per_example"]
    record = {"command": "python benchmarks/calrec_work.py " + " ".join(sys.argv[1:]), "rows": rows}
    (RESULTS / "calrec_work.json").write_text(json.dumps(record, indent=1) + "\n", "utf-8")
    lines = [
        "# CALRec: work per Stage II training example, by recipe (counted, not timed)",
        "",
        f"Command: `{record['command']}`",
        "",
        "| config | examples | tokens / example (both passes) | layers (trained) "
        "| layer passes / token | work / example | reference / this |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    lines += [
        f"| `{row['config']}` | {row['examples']} | {row['tokens_per_example']:.1f} "
        f"| {row['layers']} ({row['trained_layers']}) | {row['layer_passes_per_token']} "
        f"| {row['work_per_example']:.0f} | {row['work_ratio_to_reference']:.1f}x |"
        for row in rows
    ]
    lines += [
        "",
        "Layer passes per token: forward through every kept layer, about twice that backward "
        "through the trained ones. Attention's quadratic term is not counted.",
        "",
    ]
    (RESULTS / "calrec_work.md").write_text("\n".join(lines), encoding="utf-8")
    typer.echo("\n".join(lines))


if __name__ == "__main__":
    typer.run(main)
