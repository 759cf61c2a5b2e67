"""Training set-ups shared by the multi-process test scripts (test_distributed.py,
test_sharded.py), which import this module in their one- and two-process runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from llmrec.training.config import TrainConfig


def calrec_token_loss(fixture: Path) -> tuple[nn.Module, Any, TrainConfig]:
    """CALRec with its token loss only (alpha = beta = 0: InfoNCE negatives are per process),
    tiny backbone, the last example of 20 fixture users: (network, batches, train config)."""
    from llmrec.data.registry import load_dataset
    from llmrec.models.calrec.batches import ExampleBatches, build_examples
    from llmrec.models.calrec.model import CALRec, CALRecConfig

    data = load_dataset(fixture).dataset
    text = {"fields": ["title"], "max_history_items": 2, "max_item_tokens": 8}
    config = CALRecConfig(backbone={"source": "tiny"}, alpha=0.0, beta=0.0, text=text)
    model = CALRec(config, data.catalogue)
    examples = build_examples(data.train[:20], model.lines, "last")
    batches = ExampleBatches([examples], 7, model.tokenizer.pad_token_id, seed=0)
    return model.network, batches, TrainConfig(epochs=2, batch_size=7, lr=1e-3, num_threads=1)
