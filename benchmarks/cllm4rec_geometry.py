"""How much CLLM4Rec's recommendation states differ between users, before any training: the last
hidden state of `user_i has interacted with <history>, user_i will interact with` is what the
item head scores (docs/cllm4rec.md, section 9).

    .venv/bin/python benchmarks/cllm4rec_geometry.py --data-dir ../shared/data

For the first 4 layers of SmolLM2 and for all 30, on the first `--users` Beauty test histories
(fresh ID tables, std 0.02, seed 0): the mean pairwise cosine of the users' states, the norm of
their mean (the part every user shares, which scores popularity) and the mean norm of each user's
deviation from it (the part that can personalise). Also the scale of the base embedding rows,
beside which the ID rows start. Writes benchmarks/results/cllm4rec_geometry.json and .md.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
import typer
from baselines import DATA_DIR, DataDir, machine, publish
from cllm4rec_probes import built

from llmrec.data.registry import load_dataset
from llmrec.models.backbone import BackboneConfig
from llmrec.models.cllm4rec.documents import collate

LAYER_CHOICES = {"first 4 layers": (0, 1, 2, 3), "all 30 layers": None}


def geometry(dataset, keep_layers: tuple[int, ...] | None, users: int) -> dict[str, float]:
    model = built(dataset, backbone=BackboneConfig(source="smollm2-135m", keep_layers=keep_layers))
    test = dataset.test.subset(np.arange(users))
    documents = [
        model.templates.recommendation(model.user_index[str(user)], model.templates.recent(history))
        for user, history in zip(test.user_ids, test.histories, strict=True)
    ]
    batch = collate("recommend", documents, model.network.vocabulary, model.config)
    with torch.no_grad():
        hidden = model.network.hidden_states(
            batch["input_ids"], batch["attention_mask"], "collaborative"
        )
    states = hidden[torch.arange(users), batch["attention_mask"].sum(1) - 1]
    shared = states.mean(0)
    unit = torch.nn.functional.normalize(states, dim=1)
    cosines = unit @ unit.T
    base = model.network.language_model.get_input_embeddings().weight
    return {
        "state_norm": float(states.norm(dim=1).mean()),
        "shared_norm": float(shared.norm()),
        "deviation_norm": float((states - shared).norm(dim=1).mean()),
        "mean_pairwise_cosine": float((cosines.sum() - users) / (users * (users - 1))),
        "base_row_norm": float(base.norm(dim=1).mean()),
        "id_row_norm": float(model.network.ids.item_weight("collaborative").norm(dim=1).mean()),
    }


def main(
    data_dir: DataDir = DATA_DIR,
    users: Annotated[int, typer.Option(help="first test histories read")] = 64,
    threads: Annotated[int, typer.Option()] = 2,
) -> None:
    torch.set_num_threads(threads)
    dataset = load_dataset("beauty", data_dir=data_dir).dataset
    record = {
        "command": "python benchmarks/cllm4rec_geometry.py " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "users": users,
        "rows": {name: geometry(dataset, keep, users) for name, keep in LAYER_CHOICES.items()},
    }
    publish(record, "cllm4rec_geometry", write_markdown)


def write_markdown(record: dict, path: Path) -> None:
    lines = [
        "# CLLM4Rec: how much recommendation states differ between users (untrained ID tables)",
        "",
        f"Command: `{record['command']}`. Beauty, the first {record['users']} test histories, "
        "SmolLM2-135M fp32, ID tables N(0, 0.02²), seed 0.",
        "",
        "| backbone | state norm | shared part (norm of the mean) | per-user deviation (mean "
        "norm) | mean pairwise cosine | base row norm | ID row norm |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    for name, row in record["rows"].items():
        lines.append(
            f"| {name} | {row['state_norm']:.1f} | {row['shared_norm']:.1f} | "
            f"{row['deviation_norm']:.1f} | {row['mean_pairwise_cosine']:.3f} | "
            f"{row['base_row_norm']:.2f} | {row['id_row_norm']:.2f} |"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    typer.run(main)
