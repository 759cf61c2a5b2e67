"""A GPU plan that can be checked: tokens and FLOPs per stage of each GPU recipe on Beauty,
counted from the real tokenised data, and the predicted time on one H200 at a stated MFU.

Recipes: CALRec's `configs/calrec_gpu_beauty.yaml` (Stage I mixture, Stage II, validation and
test generation) and CLLM4Rec with the paper's schedule and all 30 layers (the defaults of
`CLLM4RecConfig`: 10 content warm-up epochs, 100 rounds of {collaborative, content}, up to 150
finetuning epochs of {recommendation, content}, batch 20). Then the cuts that the device script
(benchmarks/device/) runs within its time boxes.

FLOPs (counted, not timed; Kaplan et al.'s rule): forward 2·N per token, N the backbone's
non-embedding parameters counted from the loaded model; training 6·N per token (backward 2x the
forward). A frozen backbone (CLLM4Rec) still runs the backward through its activations to reach
the ID tables: counted at the same 2x forward, an upper bound (activation gradients alone are
about 1x). Plus causal attention (2·L·d·s² per sequence forward) and the heads at the positions
that predict (2·d·width each, vocabulary or item head). Padding is counted for CALRec's
randomly cut batches (seeded shuffle, as the loop's); CLLM4Rec pools batches by length (none).

    .venv/bin/python benchmarks/gpu_plan.py --data-dir ../shared/data

Writes benchmarks/results/gpu_plan.json and .md.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from baselines import DATA_DIR, RESULTS, DataDir
from calrec_work import recipe_work

from llmrec.config import load_config
from llmrec.data.registry import load_dataset
from llmrec.models.backbone import load_backbone
from llmrec.models.calrec.batches import build_examples
from llmrec.models.cllm4rec.config import CLLM4RecConfig
from llmrec.models.cllm4rec.documents import Templates, masked_split
from llmrec.models.cllm4rec.vocab import IdVocabulary
from llmrec.text.templates import ItemLines

CALREC_GPU = Path("configs/calrec_gpu_beauty.yaml")
CLLM4REC_FAST = Path("configs/cllm4rec_fast_beauty.yaml")
DEVICE_CALL_S = 590
# the device call's fixed costs (benchmarks/device/README.md): install + unpack, GGUF conversion
SETUP_S = 70


@dataclass(frozen=True)
class Shape:
    """What the FLOP count needs of a backbone: N (non-embedding), layers, width, vocabulary."""

    params: int
    layers: int
    hidden: int
    vocab: int


def sequence_flops(shape: Shape, length: int, trained: bool = True) -> float:
    """Linear layers + causal attention of one sequence; training = 3x the forward."""
    forward = 2 * shape.params * length + 2 * shape.layers * shape.hidden * length**2
    return forward * (3 if trained else 1)


def head_flops(shape: Shape, positions: int, width: int, trained: bool = True) -> float:
    """An output head of `width` rows read at `positions` (training: 3x the forward)."""
    return 2 * shape.hidden * width * positions * (3 if trained else 1)


def padded_tokens(lengths: Sequence[int], batch_size: int, seed: int = 0) -> int:
    """Tokens the GPU computes for right-padded batches cut from a seeded shuffle."""
    order = np.random.default_rng(seed).permutation(np.asarray(lengths))
    starts = range(0, len(order), batch_size)
    return int(
        sum(order[s : s + batch_size].max() * len(order[s : s + batch_size]) for s in starts)
    )


def decode_flops(shape: Shape, prompt: int, samples: int, new_tokens: int) -> float:
    """Sampling `samples` lines of `new_tokens` after one shared prompt (KV cache, logits of the
    last position only): the prefill, then one token per step per line, attending to the cache."""
    prefill = sequence_flops(shape, prompt, trained=False) + head_flops(
        shape, 1, shape.vocab, False
    )
    per_token = 2 * shape.params + 2 * shape.hidden * shape.vocab
    context = new_tokens * prompt + new_tokens**2 / 2  # summed over the decode steps
    attention = 4 * shape.layers * shape.hidden * context
    return prefill + samples * (new_tokens * per_token + attention)


def seconds(flops: float, peak_tflops: float, mfu: float) -> float:
    return flops / (peak_tflops * 1e12 * mfu)


def backbone_shape(source_config) -> tuple[Shape, object]:
    loaded = load_backbone(source_config, show_progress=False)
    model = loaded.model
    embedding = model.get_input_embeddings().weight
    total = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    head = model.get_output_embeddings()
    untied = 0 if head is None or head.weight is embedding else head.weight.numel()
    config = model.config
    shape = Shape(
        total - embedding.numel() - untied,
        config.num_hidden_layers,
        config.hidden_size,
        config.vocab_size,
    )
    return shape, loaded.tokenizer


# --- CALRec --------------------------------------------------------------------------------
def calrec_examples(dataset, tokenizer, model) -> list:
    lines = ItemLines(dataset.catalogue.items, tokenizer, model.text)
    return build_examples(dataset.train, lines, model.training_targets)


def calrec_pass_flops(shape: Shape, examples: Sequence, batch_size: int) -> dict:
    """Training FLOPs of one pass over `examples`: joint pass (prompt + target + newline, the
    vocabulary head on target + newline) and item pass (target line), padded per batch."""
    joint = [len(e.prompt) + len(e.target) + len(e.newline) for e in examples]
    item = [len(e.target) for e in examples]
    predicted = sum(len(e.target) + len(e.newline) for e in examples)
    width_joint, width_item = padded_tokens(joint, batch_size), padded_tokens(item, batch_size)
    # attention by each sequence's real length (padding only adds linear work here)
    flops = sum(sequence_flops(shape, n) for n in joint) + sum(
        sequence_flops(shape, n) for n in item
    )
    flops += sequence_flops(shape, 1) * (width_joint - sum(joint) + width_item - sum(item))
    flops += head_flops(shape, predicted, shape.vocab)
    return {
        "examples": len(examples),
        "tokens": sum(joint) + sum(item),
        "padded_tokens": width_joint + width_item,
        "steps": math.ceil(len(examples) / batch_size),
        "flops": flops,
    }


def mixture_draws(pools: Sequence[Sequence], users: Sequence[int], exponent: float) -> list:
    """Stage I's expected draws per pool in one epoch: p ~ users ** exponent, as many draws as
    all pools hold (`ExampleBatches`)."""
    weights = np.asarray(users, dtype=float) ** exponent
    return (weights / weights.sum() * sum(len(pool) for pool in pools)).tolist()


def calrec_plan(data_dir: Path, shape: Shape, tokenizer, args: dict) -> dict:
    config = load_config(CALREC_GPU, [f"data.data_dir={data_dir.resolve()}"])
    model, train = config.model, config.train
    target = load_dataset(config.data.source, data_dir=data_dir).dataset
    stage = model.stage_one
    pools, users = [], []
    for source in stage.sources:
        dataset = load_dataset(source, data_dir=data_dir).dataset
        pools.append(calrec_examples(dataset, tokenizer, model))
        users.append(dataset.num_users)
    beauty = calrec_examples(target, tokenizer, model)
    if stage.include_target:
        pools.append(beauty)
        users.append(len(target.train))
    draws = mixture_draws(pools, users, stage.exponent)
    per_pool = [calrec_pass_flops(shape, pool, stage.train.batch_size) for pool in pools]
    scale = [
        n / row["examples"] * stage.train.epochs for row, n in zip(per_pool, draws, strict=True)
    ]
    stage_one = {
        key: sum(row[key] * k for row, k in zip(per_pool, scale, strict=True))
        for key in ("examples", "tokens", "padded_tokens", "flops")
    }
    stage_one["steps"] = math.ceil(stage_one["examples"] / stage.train.batch_size)
    one_epoch = calrec_pass_flops(shape, beauty, train.batch_size)
    stage_two = {k: v * train.epochs for k, v in one_epoch.items()}
    head_ratio = shape.hidden * shape.vocab / (shape.params / shape.layers)  # calrec_work's
    tokenizers = {model.backbone.source: (tokenizer, shape.layers, head_ratio)}
    work = recipe_work(
        CALREC_GPU, data_dir, tokenizers
    )  # calrec_work's count, checked against ours
    assert abs(work["tokens_per_example"] - one_epoch["tokens"] / one_epoch["examples"]) < 1e-6
    generation = model.generation
    prompt = float(np.mean([len(e.prompt) for e in beauty]))
    per_user = decode_flops(shape, round(prompt), generation.num_samples, generation.max_new_tokens)
    validations = stage.train.epochs + train.epochs

    def decode_launches(users: int) -> int:  # one forward per decode step of each prompt batch
        return math.ceil(users / generation.batch_prompts) * (generation.max_new_tokens + 1)

    item_tokens = sum(
        len(line) for line in ItemLines(target.catalogue.items, tokenizer, model.text).ids
    )
    stages = {
        "stage_one": {**stage_one, "kind": "train"},
        "stage_two": {**stage_two, "kind": "train"},
        "validation": {
            "users": validations * train.eval_users,
            "kind": "decode",
            "flops": validations * train.eval_users * per_user,
            "launches": validations * decode_launches(train.eval_users),
        },
        "test_generation": {
            "users": len(target.test),
            "kind": "decode",
            "flops": len(target.test) * per_user,
            "launches": decode_launches(len(target.test)),
        },
        "dense_item_encoding": {
            "tokens": item_tokens,
            "kind": "forward",
            "flops": 2 * shape.params * item_tokens,
            "launches": math.ceil(len(target.catalogue.items) / model.encode_batch_size),
        },
    }
    timed(stages, args)
    return {
        "config": str(CALREC_GPU),
        "stage_one_pools": {"sources": [*stage.sources, "beauty"], "draws": draws},
        "stage_two_epoch": one_epoch,
        "mean_prompt_tokens": prompt,
        "decode_flops_per_user": per_user,
        "stages": stages,
    }


# --- CLLM4Rec ------------------------------------------------------------------------------
def document_flops(shape: Shape, prompt: int, main: int, width: int, positions: int) -> float:
    """Training FLOPs of one document through the frozen backbone (backward counted at 2x the
    forward, an upper bound) and its head (`width` rows at `positions`)."""
    return sequence_flops(shape, prompt + main) + head_flops(shape, positions, width)


def cllm4rec_epochs(data_dir: Path, shape: Shape, tokenizer, config: CLLM4RecConfig) -> dict:
    """Tokens and FLOPs of one epoch of each task, and of one ranking pass over every user."""
    dataset = load_dataset("beauty", data_dir=data_dir).dataset
    items = dataset.catalogue.items
    vocabulary = IdVocabulary(shape.vocab, len(dataset.train) + 1, len(items))
    templates = Templates(tokenizer, vocabulary, config)
    first = 0 if config.first_main_token_target else 1
    content = templates.item_documents(items)
    train = [templates.recent(sequence) for sequence in dataset.train]
    rng = np.random.default_rng(0)
    collaborative = [templates.collaborative(u, s) for u, s in enumerate(train) if s]
    recommend = []
    for user, sequence in enumerate(train):
        if sequence:
            visible, _ = masked_split(sequence, config.mask_ratio, rng)
            recommend.append(templates.recommendation(user, visible))
    ranking = [templates.recommendation(u, s) for u, s in enumerate(train) if s]
    tasks = {
        "content": (content, shape.vocab, None),
        "collaborative": (collaborative, len(items), None),
        "recommend": (recommend, len(items), 1),
    }
    epochs = {}
    for task, (documents, width, positions) in tasks.items():
        epochs[task] = {
            "documents": len(documents),
            "tokens": sum(len(d.prompt) + len(d.main) for d in documents),
            "flops": sum(
                document_flops(
                    shape,
                    len(d.prompt),
                    len(d.main),
                    width,
                    positions or max(len(d.main) - first, 0),
                )
                for d in documents
            ),
        }
    epochs["ranking"] = {
        "documents": len(ranking),
        "tokens": sum(len(d.prompt) for d in ranking),
        "flops": sum(
            sequence_flops(shape, len(d.prompt), trained=False)
            + head_flops(shape, 1, len(items), trained=False)
            for d in ranking
        ),
    }
    return epochs


def cllm4rec_plan(data_dir: Path, shape: Shape, tokenizer, args: dict) -> dict:
    config = CLLM4RecConfig()
    epochs = cllm4rec_epochs(data_dir, shape, tokenizer, config)
    pretrain, finetune_epochs, batch = config.pretrain, 150, 20
    rounds_validated = pretrain.rounds + finetune_epochs  # every round and epoch, all users

    def scaled(task: str, count: int, kind: str = "train") -> dict:
        row = {k: v * count for k, v in epochs[task].items()}
        row["steps"] = count * math.ceil(epochs[task]["documents"] / batch)
        row["launches"] = count * math.ceil(epochs[task]["documents"] / config.score_batch_size)
        return {**row, "kind": kind}

    def summed(*rows: dict) -> dict:
        return {k: sum(r[k] for r in rows) for k in ("documents", "tokens", "flops", "steps")}

    content_after = finetune_epochs if config.finetune_content_epochs else 0
    stages = {
        "warmup": scaled("content", pretrain.warmup_epochs),
        "pretrain": {
            **summed(scaled("collaborative", pretrain.rounds), scaled("content", pretrain.rounds)),
            "kind": "train",
        },
        "finetune": {
            **summed(scaled("recommend", finetune_epochs), scaled("content", content_after)),
            "kind": "train",
        },
        "validation": {**scaled("ranking", rounds_validated), "kind": "forward"},
        "test_ranking": {**scaled("ranking", 1), "kind": "forward"},
    }
    timed(stages, args)
    return {
        "config": "CLLM4RecConfig() defaults, backbone smollm2-135m all 30 layers; finetuning "
        "train: epochs 150, batch 20 (official)",
        "epochs": epochs,
        "stages": stages,
    }


def timed(stages: dict, args: dict) -> None:
    """FLOPs at the stated MFU, plus a floor per launch (optimizer step, forward batch or decode
    step): eager PyTorch at these small batches is bound by kernel launches, not FLOPs."""
    for row in stages.values():
        mfu = args["decode_mfu"] if row["kind"] == "decode" else args["mfu"]
        floor = args["step_ms"] if row["kind"] == "train" else args["forward_ms"]
        launches = row.get("steps", 0) if row["kind"] == "train" else row["launches"]
        row["seconds"] = seconds(row["flops"], args["peak_tflops"], mfu) + launches * floor / 1e3


# --- the device script's cuts ---------------------------------------------------------------
def device_cuts(calrec: dict, cllm4rec_fast: dict, args: dict) -> list[dict]:
    """What the device script's time boxes hold, by the plan's throughput."""
    calrec_stages = calrec["stages"]
    epoch = calrec["stage_two_epoch"]
    step_one = calrec_stages["stage_one"]["seconds"] / calrec_stages["stage_one"]["steps"]
    step_two = calrec_stages["stage_two"]["seconds"] / calrec_stages["stage_two"]["steps"]
    test = calrec_stages["test_generation"]
    per_user = test["seconds"] / test["users"]
    boxes = args["calrec_boxes"]
    generation_s = per_user * (args["test_users"] + calrec_stages["validation"]["users"])
    calrec_row = {
        "recipe": "CALRec GPU recipe (benchmarks/calrec.py)",
        "cut": f"Stage I {boxes[0]} s box: {boxes[0] / step_one:.0f} of "
        f"{calrec_stages['stage_one']['steps']} steps; Stage II {boxes[1]} s box: "
        f"{boxes[1] / step_two:.0f} of {calrec_stages['stage_two']['steps']} steps "
        f"({boxes[1] / step_two / epoch['steps']:.2f} epochs); generation for "
        f"{args['test_users']} test + {calrec_stages['validation']['users']} validation users",
        "predicted_s": SETUP_S + sum(boxes) + generation_s,
    }
    fast = cllm4rec_fast
    box = args["cllm4rec_box"]
    step = fast["epoch_seconds"] / fast["steps_per_epoch"]
    cllm_row = {
        "recipe": "CLLM4Rec-lite fast recipe, all 30 layers (benchmarks/cllm4rec.py)",
        "cut": f"{box} s box: {box / step:.0f} steps ({box / fast['epoch_seconds']:.2f} of its "
        f"{fast['epochs']} epochs); validation of {fast['eval_users']} users per epoch",
        "predicted_s": SETUP_S
        + box
        + fast["validation_s"] * max(1, round(box / fast["epoch_seconds"])),
    }
    return [calrec_row, cllm_row]


def cllm4rec_fast(data_dir: Path, shape: Shape, tokenizer, args: dict) -> dict:
    """The device's CLLM4Rec run: the fast recipe with `keep_layers=null` (all 30 layers)."""
    config = load_config(CLLM4REC_FAST, ["model.backbone.keep_layers=null"])
    epochs = cllm4rec_epochs(data_dir, shape, tokenizer, config.model)
    recommend, ranking = epochs["recommend"], epochs["ranking"]
    rate = {"peak_tflops": args["peak_tflops"], "mfu": args["mfu"]}
    steps = math.ceil(recommend["documents"] / config.train.batch_size)
    users = config.train.eval_users
    return {
        "epochs": config.train.epochs,
        "eval_users": users,
        "steps_per_epoch": steps,
        "epoch_seconds": seconds(recommend["flops"], **rate) + steps * args["step_ms"] / 1e3,
        "validation_s": seconds(ranking["flops"] * users / ranking["documents"], **rate)
        + math.ceil(users / config.model.score_batch_size) * args["forward_ms"] / 1e3,
    }


def markdown(record: dict) -> list[str]:
    args = record["assumptions"]
    lines = [
        "# GPU plan: tokens, FLOPs and predicted time of the GPU recipes on Beauty (counted, "
        "not timed)",
        "",
        f"Command: `{record['command']}`",
        "",
        f"One H200 at an assumed {args['peak_tflops']:.0f} TFLOP/s peak bf16 dense, model FLOPs "
        f"utilisation {args['mfu']} for training and forward passes, {args['decode_mfu']} for "
        f"token-by-token decoding (memory-bound; a guess); plus a floor of {args['step_ms']} ms "
        f"per optimizer step and {args['forward_ms']} ms per forward batch or decode step "
        "(eager PyTorch at these small batches is bound by kernel launches; guesses to replace "
        "with the device's measured step times). Backbone SmolLM2-135M: N = "
        f"{record['backbone']['params'] / 1e6:.1f} M non-embedding parameters, "
        f"{record['backbone']['layers']} layers, width {record['backbone']['hidden']}, vocabulary "
        f"{record['backbone']['vocab']}.",
        "",
    ]
    for name, plan in (("CALRec", record["calrec"]), ("CLLM4Rec", record["cllm4rec"])):
        lines += [
            f"## {name}: {plan['config']}",
            "",
            "| stage | steps (train) / forwards | tokens | FLOPs | predicted time |",
            "|---|--:|--:|--:|--:|",
        ]
        total = 0.0
        for stage, row in plan["stages"].items():
            total += row["seconds"]
            count = row["steps"] if row["kind"] == "train" else row["launches"]
            steps = f"{count:,}"
            tokens = f"{row['tokens']:,.0f}" if "tokens" in row else f"{row['users']:,} users"
            lines.append(
                f"| {stage} ({row['kind']}) | {steps} | {tokens} | {row['flops']:.3g} "
                f"| {row['seconds'] / 60:,.1f} min |"
            )
        lines += [f"| **total** | | | | **{total / 3600:,.2f} h** |", ""]
    lines += [
        "## What the device script runs in one 590 s call",
        "",
        "| recipe | cut | predicted seconds (with ~70 s setup) |",
        "|---|---|--:|",
    ]
    lines += [f"| {r['recipe']} | {r['cut']} | {r['predicted_s']:.0f} |" for r in record["device"]]
    lines += ["", *NOTES, ""]
    return lines


NOTES = [
    "How it is counted: training 6·N per token (all weights trained: CALRec), forward 2·N; a "
    "frozen backbone (CLLM4Rec) is counted like a trained one, since the backward must still "
    "run through its activations to reach the ID tables (counted at 2x the forward, an upper "
    "bound: activation gradients alone are about 1x) plus the tables' gradients. Causal "
    "attention 2·L·d·s² per sequence forward; heads 2·d·width at each predicting position "
    "(CALRec: the 49k vocabulary on target line + newline; CLLM4Rec: vocabulary on content "
    "documents, the J items on collaborative ones and at the recommendation prompt's last "
    "token). CALRec's padding is counted (batches cut from a seeded shuffle); embeddings, "
    "norms, losses and the optimizer step are not. Decoding (G sampled lines of at most "
    "max_new_tokens each, for every line the full length: an upper bound) is a rough count.",
    "CALRec validation samples lines for `eval_users` users after each epoch of both stages; "
    "CLLM4Rec validates every pretraining round and finetuning epoch on all users (the "
    "`TrainConfig` default `eval_users: null`). The paper's 150 finetuning epochs are an upper "
    "bound (early stopping).",
]


def main(
    data_dir: DataDir = DATA_DIR,
    peak_tflops: Annotated[
        float, typer.Option(help="assumed H200 peak bf16 dense TFLOP/s")
    ] = 989.0,
    mfu: Annotated[float, typer.Option(help="model FLOPs utilisation, training/forward")] = 0.3,
    decode_mfu: Annotated[float, typer.Option(help="model FLOPs utilisation, decoding")] = 0.05,
    test_users: Annotated[int, typer.Option(help="CALRec test users of the device run")] = 2000,
    calrec_boxes: Annotated[
        tuple[int, int], typer.Option(help="device Stage I and II time boxes, s")
    ] = (45, 120),
    cllm4rec_box: Annotated[int, typer.Option(help="device CLLM4Rec time box, s")] = 300,
    step_ms: Annotated[float, typer.Option(help="floor per optimizer step, ms (a guess)")] = 50.0,
    forward_ms: Annotated[
        float, typer.Option(help="floor per forward batch or decode step, ms (a guess)")
    ] = 15.0,
) -> None:
    args = {
        "peak_tflops": peak_tflops,
        "mfu": mfu,
        "decode_mfu": decode_mfu,
        "test_users": test_users,
        "calrec_boxes": list(calrec_boxes),
        "cllm4rec_box": cllm4rec_box,
        "step_ms": step_ms,
        "forward_ms": forward_ms,
    }
    config = load_config(CALREC_GPU, [f"data.data_dir={data_dir.resolve()}"])
    shape, tokenizer = backbone_shape(config.model.backbone)
    calrec = calrec_plan(data_dir, shape, tokenizer, args)
    cllm4rec = cllm4rec_plan(data_dir, shape, tokenizer, args)
    fast = cllm4rec_fast(data_dir, shape, tokenizer, args)
    record = {
        "command": "python benchmarks/gpu_plan.py " + " ".join(sys.argv[1:]),
        "assumptions": args,
        "backbone": vars(shape),
        "calrec": calrec,
        "cllm4rec": cllm4rec,
        "cllm4rec_fast_all_layers": fast,
        "device": device_cuts(calrec, fast, args),
    }
    (RESULTS / "gpu_plan.json").write_text(json.dumps(record, indent=1) + "\n", "utf-8")
    lines = markdown(record)
    (RESULTS / "gpu_plan.md").write_text("\n".join(lines), encoding="utf-8")
    typer.echo("\n".join(lines))


if __name__ == "__main__":
    typer.run(main)
