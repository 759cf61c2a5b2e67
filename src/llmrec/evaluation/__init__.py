"""Evaluation: ranks (ranking.py), metrics of ranks (metrics.py), bootstrap intervals and paired
tests (bootstrap.py), results (result.py) and run reports (report.py)."""

from llmrec.evaluation.bootstrap import (
    ConfidenceInterval,
    PairedTestResult,
    bootstrap_ci,
    bootstrap_cis,
    paired_test,
)
from llmrec.evaluation.config import EvalConfig
from llmrec.evaluation.metrics import (
    compute_metrics,
    mrr_at_k,
    ndcg_at_k,
    per_user_metrics,
    recall_at_k,
    truncated_ndcg_at_k,
    truncated_recall_at_k,
)
from llmrec.evaluation.ranking import (
    evaluate_model,
    ranks_from_recommendations,
    ranks_from_sampled_negatives,
    ranks_from_scores,
    sample_negatives,
    target_set_ranks,
    target_set_ranks_from_recommendations,
)
from llmrec.evaluation.report import write_report
from llmrec.evaluation.result import EvalResult, compare_results
from llmrec.evaluation.validation import validation_metrics

__all__ = [
    "ConfidenceInterval",
    "EvalConfig",
    "EvalResult",
    "PairedTestResult",
    "bootstrap_ci",
    "bootstrap_cis",
    "compare_results",
    "compute_metrics",
    "evaluate_model",
    "mrr_at_k",
    "ndcg_at_k",
    "paired_test",
    "per_user_metrics",
    "ranks_from_recommendations",
    "ranks_from_sampled_negatives",
    "ranks_from_scores",
    "recall_at_k",
    "sample_negatives",
    "target_set_ranks",
    "target_set_ranks_from_recommendations",
    "truncated_ndcg_at_k",
    "truncated_recall_at_k",
    "validation_metrics",
    "write_report",
]
