"""Short CLLM4Rec finetuning runs under protocol (b) on Beauty, each variant one set of config
overrides, beside popularity on the same validation users: does any setting learn more than
popularity within a CPU budget? (docs/cllm4rec.md, section 9.)

    .venv/bin/python benchmarks/cllm4rec_sweep.py --data-dir ../shared/data

Every variant starts from `--config` (default configs/cllm4rec_sweep.yaml: the first 4
SmolLM2 layers, no pretraining, 400 finetuning steps of 20 users) and trains in its own
`python -m llmrec train` process; pop trains the same way. Each model is then scored on one seeded
sample of validation users (`--valid-users`), full catalogue, history excluded: truncated
recall@20, recall@40 and NDCG@100 with bootstrap CIs, and recall@20 as a ratio to popularity's.
Test users are never read. Trained runs in benchmarks/results/tmp/NAME are reused (delete the
folder to start over). Writes benchmarks/results/NAME.json and .md. Run it on an idle machine.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from baselines import DATA_DIR, RESULTS, DataDir, machine, metric_cells, publish, report_head
from measure import evaluate, train_one

from llmrec.config import load_config
from llmrec.evaluation.config import EvalConfig
from llmrec.experiment import load_run_data
from llmrec.models.registry import load_model

REPO = Path(__file__).resolve().parents[1]
METRICS = ("recall@20", "recall@40", "ndcg@100")
# The base of the later variants: the official code's targets, 1,200 steps, the centred head.
CENTRED_1200 = [
    "model.target_set=all_train",
    "train.max_steps=1200",
    "model.extensions.centered_head=true",
]


def _centred(*extra: str, lr: str = "3e-4") -> list[str]:
    return [*CENTRED_1200, f"train.lr={lr}", *extra]


def _untied(*extra: str) -> list[str]:
    return [*CENTRED_1200, "model.extensions.untied_head=true", *extra, "train.lr=3e-4"]


# name: overrides of the sweep config. The paper's finetuning is `mr-on`; the rest move one knob.
VARIANTS = {
    "lr1e-4": [],
    "lr3e-5": ["train.lr=3e-5"],
    "lr1e-3": ["train.lr=1e-3"],
    "mr-on": ["model.name=cllm4rec", "model.mr_lambda=1.0"],
    "init-base-std": ["model.init_std=null"],
    "targets-all-train": ["model.target_set=all_train"],
    "targets-all-train-1200": ["model.target_set=all_train", "train.max_steps=1200"],
    "lora-r16": ["model.extensions.lora.rank=16"],
    "1200-steps": ["train.max_steps=1200"],
    "30-layers": ["model.backbone.keep_layers=null"],
    # ID tokens as loud as words (base std) with the head scaled down to near-uniform logits
    "loud-ids-scaled-head": ["model.init_std=null", "model.extensions.item_logit_scale=0.1"],
    "loud-ids-scaled-head-lr3e-4-1200": [
        "model.init_std=null",
        "model.extensions.item_logit_scale=0.1",
        "train.lr=3e-4",
        "train.max_steps=1200",
    ],
    # one pretraining round (a collaborative epoch, then a content epoch) before the finetuning
    # of `targets-all-train-1200`, at the official pretraining lr (1e-3) and at the finetuning's
    "pretrain-1-all-train-1200": [
        "model.name=cllm4rec",
        "model.pretrain.rounds=1",
        "model.target_set=all_train",
        "train.max_steps=1200",
    ],
    "pretrain-1-lr1e-4-all-train-1200": [
        "model.name=cllm4rec",
        "model.pretrain.rounds=1",
        "model.pretrain.train.lr=1e-4",
        "model.target_set=all_train",
        "train.max_steps=1200",
    ],
    # around `targets-all-train-1200`: a faster lr, a shallower read, and more of each user's
    # items held out of the prompt (denoising, as Mult-VAE's input dropout), with either target set
    "all-train-lr3e-4-1200": [
        "model.target_set=all_train",
        "train.max_steps=1200",
        "train.lr=3e-4",
    ],
    "all-train-2-layers-1200": [
        "model.target_set=all_train",
        "train.max_steps=1200",
        "model.backbone.keep_layers=[0,1]",
    ],
    "all-train-mask0.5-1200": [
        "model.target_set=all_train",
        "train.max_steps=1200",
        "model.mask_ratio=0.5",
    ],
    "heldout-mask0.5-1200": ["train.max_steps=1200", "model.mask_ratio=0.5"],
    # the loud-ID variant that gained most with held-out targets, with the code's targets
    "all-train-loud-ids-scaled-head-lr3e-4-1200": [
        "model.target_set=all_train",
        "train.max_steps=1200",
        "model.init_std=null",
        "model.extensions.item_logit_scale=0.1",
        "train.lr=3e-4",
    ],
    # the centred head (beyond the paper): item rows score what differs between users' states,
    # an item bias started at log counts holds popularity
    "all-train-centered-1200": [
        "model.target_set=all_train",
        "train.max_steps=1200",
        "model.extensions.centered_head=true",
    ],
    "all-train-centered-lr3e-4-1200": [
        "model.target_set=all_train",
        "train.max_steps=1200",
        "model.extensions.centered_head=true",
        "train.lr=3e-4",
    ],
    "heldout-centered-1200": ["train.max_steps=1200", "model.extensions.centered_head=true"],
    "all-train-centered-lr1e-3-1200": _centred(lr="1e-3"),
    "all-train-centered-lr3e-4-mask0.5-1200": _centred("model.mask_ratio=0.5"),
    # the whole backbone, whose users' states differ 3 times more (results/cllm4rec_geometry.md)
    "all-train-centered-lr3e-4-30-layers-1200": _centred("model.backbone.keep_layers=null"),
    # the learning rate decayed to zero over the run (cosine) instead of kept constant
    "all-train-centered-lr3e-4-cosine-1200": _centred("train.schedule=cosine"),
    # the head's own item rows (untied, started at zero), with the prompt's ID rows quiet (0.02)
    # or as loud as words (base std): input rows then need not double as output rows
    "all-train-centered-untied-lr3e-4-1200": _untied(),
    "all-train-centered-untied-loud-ids-lr3e-4-1200": _untied("model.init_std=null"),
    # the head reads the mean state over the prompt's item tokens, not the last token's
    "all-train-centered-untied-items-mean-lr3e-4-1200": _untied(
        "model.extensions.prompt_readout=items_mean"
    ),
    # the prompt's ID rows at 10 times or a tenth of the head's lr: do they learn too slowly?
    "all-train-centered-untied-tables10x-lr3e-4-1200": _untied(
        "model.extensions.table_lr_scale=10"
    ),
    "all-train-centered-untied-tables0.1x-lr3e-4-1200": _untied(
        "model.extensions.table_lr_scale=0.1"
    ),
}


def main(
    config: Annotated[Path, typer.Option(help="CLLM4Rec base run config")] = Path(
        "configs/cllm4rec_sweep.yaml"
    ),
    pop_config: Annotated[Path, typer.Option(help="the reference's run config")] = Path(
        "configs/pop_beauty_holdout.yaml"
    ),
    variant: Annotated[
        list[str] | None, typer.Option(help="variants to run (default: all, in order)")
    ] = None,
    data_dir: DataDir = DATA_DIR,
    valid_users: Annotated[int, typer.Option(help="seeded sample of validation users")] = 2000,
    name: Annotated[str, typer.Option(help="results file stem")] = "cllm4rec_sweep",
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    unknown = sorted(set(variant or ()) - set(VARIANTS))
    if unknown:
        raise typer.BadParameter(f"unknown variants {unknown}; known: {sorted(VARIANTS)}")
    work = RESULTS / "tmp" / name
    work.mkdir(parents=True, exist_ok=True)
    common = [f"data.data_dir={data_dir.resolve()}", f"output.dir={work}", f"seed={seed}"]
    runs = [("pop", pop_config, ["output.name=pop"])]
    runs += [(key, config, [f"output.name={key}", *VARIANTS[key]]) for key in variant or VARIANTS]
    eval_config = EvalConfig(ks=(20, 40, 100), sample_users=valid_users, seed=seed)
    rows, data = [], None
    for key, path, sets in runs:
        run_dir, trained = train_one(path, "train", [*common, *sets], work)
        data = data or load_run_data(load_config(path, [*common, *sets]), run_dir)
        model = load_model(run_dir / "model")
        row = evaluate(model, key, data.valid, eval_config, latency_users=0, split="valid")
        fit = json.loads((run_dir / "fit.json").read_text(encoding="utf-8"))
        rows.append(
            {**row, "overrides": sets[1:], "train": trained, "best_step": fit.get("best_step")}
        )
        typer.echo(f"{key}: recall@20 {row['metrics']['recall@20']:.4f}")
    record = {
        "command": "python benchmarks/cllm4rec_sweep.py " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "config": str(config),
        "split": data.split if data else None,
        "rows": rows,
    }
    publish(record, name, write_markdown)


def write_markdown(record: dict, path: Path) -> None:
    title = f"CLLM4Rec finetuning variants beside popularity, protocol (b): {record['split']}"
    reference = record["rows"][0]["metrics"]["recall@20"]
    lines = [
        *report_head(title, record),
        f"Base config: `{record['config']}`. Validation users (never test): "
        f"{record['rows'][0]['protocol'].get('user_sample', 'all')}; full catalogue; history "
        "excluded.",
        "",
        "| variant | overrides | " + " | ".join(METRICS) + " | R@20 / pop | train wall (s) |",
        "|" + "---|" * (len(METRICS) + 4),
    ]
    for row in record["rows"]:
        cells = " | ".join(metric_cells(row, METRICS))
        ratio = row["metrics"]["recall@20"] / reference if reference else float("nan")
        overrides = ", ".join(f"`{item}`" for item in row["overrides"]) or "-"
        wall = row["train"]["wall_s"]
        lines.append(f"| {row['name']} | {overrides} | {cells} | {ratio:.2f} | {wall:.0f} |")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    typer.run(main)
