"""Validation during training: the evaluator's own full-ranking metrics on held-out targets.

The experiment layer hands `validation_metrics` to a fit through `RunContext`, so that the
models and the loop, below the evaluator, never import it."""

from __future__ import annotations

from llmrec.data.sequences import AnyEvalSet, MultiTargetEvalSet
from llmrec.evaluation.config import EvalConfig
from llmrec.evaluation.ranking import evaluate_model
from llmrec.models.base import RecommenderModel

NEXT_ITEM_KS = (10, 20)
HOLDOUT_KS = (10, 20, 40, 100)  # 20, 40, 100: the CLLM4Rec cut-offs; 10: the default train.metric


def validation_metrics(model: RecommenderModel, valid: AnyEvalSet) -> dict[str, float]:
    """`model`'s metrics on `valid` through `evaluate_model` (one ranking path for every model
    and for validation and test), without intervals: on next-item targets recall/NDCG/MRR at
    10 and 20 with no history filter (the library default); on hold-out target sets truncated
    recall/NDCG at 10, 20, 40 and 100 with the history excluded (their protocol)."""
    ks = HOLDOUT_KS if isinstance(valid, MultiTargetEvalSet) else NEXT_ITEM_KS
    config = EvalConfig(ks=ks, bootstrap_resamples=0)
    # the loop validates on its main process alone: no other process takes a share
    return evaluate_model(model, valid, config, show_progress=False, across_processes=False).metrics
