"""Train and test RecBole 1.2.1's SASRec on a P5 `user_sequence.txt`, timing every epoch.

The peer for our SASRec benchmark (Kang & McAuley 2018, as configured in RecBole): it runs only in
the venv made by `benchmarks/recbole/setup.sh`, called by the benchmark as a subprocess, and writes
one JSON file. Neither llmrec nor its tests import it. RecBole is driven from Python (Config,
create_dataset, data_preparation, SASRec, Trainer), never edited: a Trainer subclass times epochs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy
import pandas
import recbole
import torch
from recbole.config import Config
from recbole.data import create_dataset, data_preparation

# Importing this package runs recbole/model/sequential_recommender/sine.py, which calls
# torch.autograd.set_detect_anomaly(True) for the whole process: that is "--anomaly stock".
from recbole.model.sequential_recommender import SASRec
from recbole.trainer import Trainer
from recbole.utils import init_logger, init_seed

ANOMALY_AT_IMPORT = torch.is_anomaly_enabled()

# The benchmark's SASRec setting; every key is a RecBole config key. Anything not listed keeps
# RecBole 1.2.1's default (stopping_step 10, eval_batch_size 4096, gelu, Adam, no weight decay).
SASREC_CONFIG = {
    "loss_type": "CE",
    "train_neg_sample_args": None,  # RecBole requires None with CE (softmax over all items)
    "hidden_size": 64,
    "n_layers": 2,
    "n_heads": 2,
    "inner_size": 256,
    "hidden_dropout_prob": 0.5,
    "attn_dropout_prob": 0.5,
    "MAX_ITEM_LIST_LENGTH": 50,
    "train_batch_size": 256,
    "learning_rate": 0.001,
    # Leave-one-out: per user, last item -> test, second last -> valid, the rest -> train.
    "eval_args": {
        "split": {"LS": "valid_and_test"},
        "order": "TO",
        "group_by": "user",
        "mode": "full",
    },
    "repeatable": True,  # RecBole's only mode for sequential models
    "metrics": ["Recall", "NDCG"],
    "topk": [10],
    "valid_metric": "NDCG@10",
    "metric_decimal_place": 6,  # RecBole rounds metrics to 4 places by default
    "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
    # No k-core or history filtering: RecBole's defaults, written out. Sequential full ranking in
    # RecBole masks only the padding item, never the user's history.
    "user_inter_num_interval": "[0,inf)",
    "item_inter_num_interval": "[0,inf)",
    "show_progress": False,
    "log_wandb": False,
}


class ScriptConfig(Config):
    """RecBole's Config without its sys.argv parsing: this script's options are its own, and
    RecBole would otherwise read any `--key=value` here as a RecBole setting."""

    def _load_cmd_line(self):
        return {}


class TimedTrainer(Trainer):
    """RecBole's Trainer, recording each epoch's training time, loss and validation.

    Training time covers `_train_epoch` only (batches and optimiser steps), not evaluation. The
    best-valid weights are kept in memory instead of RecBole's pickled checkpoint, so nothing is
    written or read back with torch.load (which torch >= 2.6 refuses for these files by default).
    """

    def __init__(self, config: Config, model: torch.nn.Module) -> None:
        super().__init__(config, model)
        self.epoch_records: list[dict] = []
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_epoch: int | None = None

    def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        start = time.perf_counter()
        loss = super()._train_epoch(train_data, epoch_idx, loss_func, show_progress)
        self.epoch_records.append(
            {
                "epoch": epoch_idx,
                "train_time_s": time.perf_counter() - start,
                "train_loss": float(sum(loss) if isinstance(loss, tuple) else loss),
                "anomaly_mode": torch.is_anomaly_enabled(),
            }
        )
        return loss

    def _valid_epoch(self, valid_data, show_progress=False):
        start = time.perf_counter()
        score, result = super()._valid_epoch(valid_data, show_progress)
        self.epoch_records[-1]["valid_time_s"] = time.perf_counter() - start
        self.epoch_records[-1]["valid"] = dict(result)
        return score, result

    def _save_checkpoint(self, epoch, verbose=True, **kwargs):
        # fit() calls this each time the valid metric improves (and with saved=True only).
        self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.best_epoch = epoch


def write_atomic_inter(sequences: Path, path: Path) -> dict[str, int]:
    """Write a P5 `USER ITEM ITEM ...` file as RecBole atomic .inter (timestamp = position)."""
    users: set[str] = set()
    interactions = 0
    with sequences.open(encoding="utf-8") as source, path.open("w", encoding="utf-8") as target:
        target.write("user_id:token\titem_id:token\ttimestamp:float\n")
        for line_number, line in enumerate(source, start=1):
            fields = line.split()
            if not fields:
                continue
            user, *items = fields
            if not items or user in users:
                problem = "has no items" if not items else "repeats a user already read"
                sys.exit(f"{sequences}:{line_number}: user {user!r} {problem}")
            users.add(user)
            for position, item in enumerate(items):
                target.write(f"{user}\t{item}\t{position}\n")
            interactions += len(items)
    return {"users": len(users), "interactions": interactions}


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    if args.anomaly == "off":
        torch.autograd.set_detect_anomaly(False)
    sequences, workdir = args.sequences, args.workdir
    name = sequences.parent.name or "sequences"
    (workdir / "data" / name).mkdir(parents=True, exist_ok=True)
    counts = write_atomic_inter(sequences, workdir / "data" / name / f"{name}.inter")
    # RecBole writes ./log/ and ./log_tensorboard/ relative to the working directory.
    os.chdir(workdir)

    config_dict = {
        **SASREC_CONFIG,
        "epochs": args.epochs,
        "seed": args.seed,
        "data_path": str(workdir / "data"),
        "checkpoint_dir": str(workdir / "checkpoints"),
    }
    config = ScriptConfig(model=SASRec, dataset=name, config_dict=config_dict)
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    start = time.perf_counter()
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    init_seed(config["seed"], config["reproducibility"])
    # RecBole's private loader attribute, as its own quick_start and Trainer read it.
    model = SASRec(config, train_data._dataset)
    prepare_time_s = time.perf_counter() - start  # data, split and model build

    trainer = TimedTrainer(config, model.to(config["device"]))
    best_valid_score, best_valid = trainer.fit(train_data, valid_data, saved=True, verbose=True)
    model.load_state_dict(trainer.best_state)
    start = time.perf_counter()
    test = trainer.evaluate(test_data, load_best_model=False)
    test_time_s = time.perf_counter() - start

    return {
        "library": "recbole",
        "model": "SASRec",
        "versions": {
            "python": platform.python_version(),
            "recbole": recbole.__version__,
            "torch": torch.__version__,
            "numpy": numpy.__version__,
            "pandas": pandas.__version__,
        },
        "sequences": str(sequences),
        "dataset": {
            **counts,
            "items": dataset.item_num - 1,  # RecBole counts a padding item
            "train_samples": len(train_data._dataset),
            "valid_samples": len(valid_data._dataset),
            "test_samples": len(test_data._dataset),
        },
        "protocol": {
            "split": "leave-one-out",
            "ranking": "full",
            "history_filter": False,
            "selection": "best valid NDCG@10",
        },
        "config": {
            k: v for k, v in config_dict.items() if k not in ("data_path", "checkpoint_dir")
        },
        "threads": torch.get_num_threads(),
        "device": str(config["device"]),
        "anomaly": args.anomaly,
        "anomaly_at_import": ANOMALY_AT_IMPORT,
        "prepare_time_s": prepare_time_s,
        "per_epoch": trainer.epoch_records,
        "train_time_s_total": sum(r["train_time_s"] for r in trainer.epoch_records),
        "best_epoch": trainer.best_epoch,
        "best_valid_score": float(best_valid_score),
        "best_valid": dict(best_valid or {}),
        "test": dict(test),
        "test_time_s": test_time_s,
        # Linux reports ru_maxrss in KiB.
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sequences",
        type=Path,
        required=True,
        help="P5 user_sequence.txt: USER ITEM ITEM ..., oldest first",
    )
    parser.add_argument(
        "--epochs",
        type=positive_int,
        required=True,
        help="most training epochs (RecBole stops early after 10 without gain)",
    )
    parser.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads")
    parser.add_argument(
        "--anomaly",
        choices=("stock", "off"),
        default="stock",
        help="stock: anomaly mode as RecBole's import leaves it (on); off: switched off",
    )
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument(
        "--workdir",
        type=Path,
        required=True,
        help="scratch directory for the .inter file and RecBole's logs",
    )
    parser.add_argument("--seed", type=int, default=2020, help="RecBole seed (its default: 2020)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # Absolute before run() changes the working directory.
    for option in ("sequences", "out", "workdir"):
        setattr(args, option, getattr(args, option).resolve())
    started = time.perf_counter()
    result = run(args)
    result["wall_time_s"] = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    logging.getLogger(__name__).info("wrote %s", args.out)


if __name__ == "__main__":
    main()
