"""One named training stage of a multi-stage LLM model (CALRec's two stages, CLLM4Rec's
warm-up / pretraining / finetuning) on the shared loop."""

from __future__ import annotations

from llmrec.data.sequences import AnyEvalSet
from llmrec.models.base import RecommenderModel, RunContext
from llmrec.training.checkpoint import recover_checkpoint
from llmrec.training.config import TrainConfig
from llmrec.training.loop import BatchSource, TrainResult, train


def train_stage(
    model: RecommenderModel,
    name: str,
    batches: BatchSource,
    cfg: TrainConfig,
    valid: AnyEvalSet | None,
    run: RunContext,
) -> TrainResult:
    """Train `model.network` in RUN_DIR/name, validated after each epoch by
    `run.validation_metrics` on a seeded sample of `valid` (`cfg.eval_users`). A resumed run
    restarts the stage from its own last checkpoint; a stage that never started starts afresh."""
    stage_dir = run.run_dir / name
    return train(
        model.network,
        batches,
        model.validator(valid, run, cfg.eval_users),
        cfg,
        stage_dir,
        seed=run.seed,
        resume=run.resume and recover_checkpoint(stage_dir / "checkpoints" / "last"),
        show_progress=run.show_progress,
    )
