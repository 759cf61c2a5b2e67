"""One experiment end to end: load data, fit a model, save it, evaluate valid + test, report."""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from llmrec.config import RunConfig, check_resumable, load_config, save_config
from llmrec.data.config import DataConfig
from llmrec.data.loaders.common import LoadResult
from llmrec.data.registry import load_dataset
from llmrec.data.sequences import Dataset
from llmrec.data.splits import holdout_split
from llmrec.environment import collect_versions
from llmrec.errors import ConfigError, ModelFormatError
from llmrec.evaluation.config import EvalConfig
from llmrec.evaluation.ranking import evaluate_model
from llmrec.evaluation.report import write_report
from llmrec.evaluation.result import EvalResult
from llmrec.evaluation.slices import SliceBasis
from llmrec.evaluation.validation import validation_metrics
from llmrec.models.base import FitResult, RecommenderModel, RunContext
from llmrec.models.registry import build_model, load_model
from llmrec.training.config import TrainConfig

logger = logging.getLogger(__name__)
MODEL_FOLDER = "model"
RESOLVED_CONFIG = "config.resolved.yaml"


@dataclass
class ExperimentResult:
    run_dir: Path
    model_dir: Path
    fit: FitResult
    results: dict[str, EvalResult]
    seconds: dict[str, float]


def prepare_run_dir(config: RunConfig, resume: bool = False) -> Path:
    """Create the run folder and write the resolved config and versions into it. With `resume`,
    the folder's own config must name the same data and model as `config`: its checkpoints
    hold that model's weights."""
    run_dir = config.run_dir()
    if resume:
        check_resumable(config, run_dir / RESOLVED_CONFIG)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, run_dir / RESOLVED_CONFIG)
        versions = json.dumps(collect_versions(), indent=2) + "\n"
        (run_dir / "versions.json").write_text(versions, encoding="utf-8")
    except OSError as error:
        raise ConfigError(
            f"output.dir: cannot write the run folder {run_dir}: {error.strerror or error}"
        ) from None
    return run_dir


def load_run_data(config: RunConfig, run_dir: Path) -> Dataset:
    """Load and split the configured data, and record it in RUN_DIR/data_report.json."""
    dataset, report = read_run_data(config)
    write_data_report(run_dir, report)
    return dataset


def write_data_report(run_dir: Path, report: dict) -> None:
    (run_dir / "data_report.json").write_text(json.dumps(report, indent=1) + "\n", "utf-8")


def read_run_data(config: RunConfig) -> tuple[Dataset, dict]:
    """The configured data, split, and its report: what `skip_bad` skipped, the users the
    hold-out dropped and what the temporal split did (written to RUN_DIR/data_report.json).
    Writes nothing."""
    loaded = load_dataset(
        config.data.source,
        data_format=config.data.format,
        data_dir=config.data.data_dir,
        skip_bad=config.data.skip_bad,
        temporal=config.data.temporal_split,
    )
    report = {"path": str(loaded.path), "format": loaded.format, **asdict(loaded.report)}
    if loaded.split_record is not None:
        report["temporal"] = loaded.split_record
    if loaded.report.num_skipped:
        logger.warning("%s: %s", loaded.path, loaded.report.summary())
    dataset, holdout = split_dataset(loaded, config.data)
    if holdout is not None:
        report["holdout"] = holdout
    return dataset, report


def split_dataset(loaded: LoadResult, data: DataConfig) -> tuple[Dataset, dict | None]:
    """The loaded data under `data.split`: the format's own split, or the per-user hold-out
    (then also its record: split, users kept, users dropped)."""
    if data.split != "holdout":
        return loaded.dataset, None
    native = loaded.dataset
    split = holdout_split(
        native.name, native.catalogue, native.user_ids, loaded.full_sequences, data.holdout
    )
    dropped = len(split.dropped_user_ids)
    if dropped:
        logger.warning("hold-out: dropped %d users with fewer than 3 distinct items", dropped)
    return split.dataset, {
        "split": split.dataset.split,
        "users": split.dataset.num_users,
        "dropped": dropped,
    }


def saved_run_config(model_dir: Path) -> RunConfig | None:
    """The resolved config of the run that wrote a model folder (`llmrec train` and `llmrec run`
    copy it there); None for a folder saved from Python."""
    path = Path(model_dir) / RESOLVED_CONFIG
    return load_config(path) if path.is_file() else None


def evaluate_saved_model(
    model_dir: Path,
    source: str,
    split: str = "test",
    data_dir: Path | None = None,
    config: EvalConfig | None = None,
    show_progress: bool = True,
    device: str = "auto",
) -> EvalResult:
    """Evaluate a saved model on a data set's split; the catalogues must be the same. The data
    is read as the model's run read it (its saved config.resolved.yaml: format, skip_bad,
    split), so a model trained on the per-user hold-out meets the same hold-out, never
    leave-one-out targets it may have trained on. `config` None: the run's own `eval`.
    `device`: where the model ranks (`auto`: a CUDA GPU when torch sees one)."""
    model = load_model(model_dir, device)
    run = saved_run_config(model_dir)
    data_config = run.data if run else DataConfig()
    config = config or (run.eval if run else EvalConfig())
    loaded = load_dataset(
        source,
        data_format=data_config.format,
        data_dir=data_dir,
        skip_bad=data_config.skip_bad,
        temporal=data_config.temporal_split,
    )
    dataset, _ = split_dataset(loaded, data_config)
    if model.catalogue.fingerprint() != dataset.catalogue.fingerprint():
        raise ModelFormatError(
            f"{model_dir} was fit on another catalogue ({len(model.catalogue)} items) than "
            f"{source} ({dataset.num_items} items); evaluate it on the data it was trained on"
        )
    eval_set = {"valid": dataset.valid, "test": dataset.test}[split]
    return evaluate_model(
        model,
        eval_set,
        config,
        show_progress=show_progress,
        split=f"{dataset.split}:{split}",
        slice_basis=slice_basis(dataset),
    )


def train_model(
    config: RunConfig, *, resume: bool = False, show_progress: bool = True
) -> tuple[RecommenderModel, Dataset, FitResult, Path]:
    """Fit the configured model on the configured data; save it under RUN_DIR/model. Nothing
    is written before the data has loaded: a bad data set leaves the run folder as it was."""
    dataset, data_report = read_run_data(config)
    run_dir = prepare_run_dir(config, resume)
    write_data_report(run_dir, data_report)
    model = build_model(config.model, dataset.catalogue)
    context = fit_context(model, config, run_dir, config.train, show_progress, resume)
    fit = model.fit(dataset.train, dataset.valid, context, user_ids=owners(model, dataset))
    model.save(run_dir / MODEL_FOLDER)
    copy_run_records(run_dir, run_dir / MODEL_FOLDER)
    (run_dir / "fit.json").write_text(json.dumps(asdict(fit), indent=1) + "\n", encoding="utf-8")
    return model, dataset, fit, run_dir


def fit_context(
    model: RecommenderModel,
    config: RunConfig,
    run_dir: Path,
    train: TrainConfig,
    show_progress: bool,
    resume: bool = False,
) -> RunContext:
    """How `model` fits in this run: the evaluator scores its validation, and the further data
    sets it asks for (`auxiliary_sources`, e.g. CALRec's Stage I mixture) are loaded here."""
    auxiliary = {
        source: load_dataset(source, data_dir=root or config.data.data_dir).dataset
        for source, root in model.auxiliary_sources().items()
    }
    return RunContext(
        run_dir,
        train,
        config.seed,
        show_progress,
        resume,
        validation_metrics=validation_metrics,
        auxiliary=auxiliary,
    )


def owners(model: RecommenderModel, dataset: Dataset) -> list[str] | None:
    """The user of each training sequence, for models that read users (else None)."""
    return dataset.user_ids if model.reads_users else None


def copy_run_records(run_dir: Path, model_dir: Path) -> None:
    """Copy the resolved config and library versions into the model folder: self-contained."""
    for name in (RESOLVED_CONFIG, "versions.json"):
        shutil.copyfile(run_dir / name, model_dir / name)


def run_experiment(
    config: RunConfig, *, resume: bool = False, show_progress: bool = True
) -> ExperimentResult:
    """Train, evaluate on valid and test, and write the report folder."""
    started = time.perf_counter()
    model, dataset, fit, run_dir = train_model(config, resume=resume, show_progress=show_progress)
    valid = evaluate_model(
        model,
        dataset.valid,
        config.eval,
        show_progress=show_progress,
        split=f"{dataset.split}:valid",
        slice_basis=slice_basis(dataset),
    )
    test_split = f"{dataset.split}:test"
    if config.train.refit_before_test:
        model, epochs = refit_before_test(config, dataset, fit, run_dir, show_progress)
        test_split += f" (model refit on train + valid items for {epochs} epochs)"
    trained = time.perf_counter()
    test = evaluate_model(
        model,
        dataset.test,
        config.eval,
        show_progress=show_progress,
        split=test_split,
        slice_basis=slice_basis(dataset),
    )
    results = {"valid": valid, "test": test}
    write_report(run_dir, results, curve=fit.history or None)
    write_model_card(run_dir / MODEL_FOLDER, config, dataset, results)
    seconds = {"train": trained - started, "evaluate": time.perf_counter() - trained}
    return ExperimentResult(run_dir, run_dir / MODEL_FOLDER, fit, results, seconds)


def slice_basis(dataset: Dataset) -> SliceBasis:
    """What the metrics by slice are defined on: the training sequences' item counts (also
    for a model refit on train + valid items, so that every model meets the same slices)."""
    return SliceBasis.from_sequences(dataset.train, dataset.num_items)


def refit_before_test(
    config: RunConfig, dataset: Dataset, fit: FitResult, run_dir: Path, show_progress: bool
) -> tuple[RecommenderModel, int]:
    """Train a fresh model on everything before each user's test target, for the number of
    epochs early stopping chose on valid; it replaces RUN_DIR/model. No test item is seen."""
    epochs = fit.best_epoch or config.train.epochs
    train = config.train.model_copy(update={"epochs": epochs})
    model = build_model(config.model, dataset.catalogue)
    context = fit_context(model, config, run_dir / "refit", train, show_progress)
    model.fit(before_test_sequences(dataset), None, context, user_ids=owners(model, dataset))
    model.save(run_dir / MODEL_FOLDER)
    return model, epochs


def before_test_sequences(dataset: Dataset) -> list:
    """Each user's items before the test target (train + valid items), or the training sequence
    for users without a test row."""
    before_test = dict(zip(dataset.test.user_ids, dataset.test.histories, strict=True))
    return [
        before_test.get(user, train)
        for user, train in zip(dataset.user_ids, dataset.train, strict=True)
    ]


def write_model_card(
    model_dir: Path, config: RunConfig, dataset: Dataset, results: dict[str, EvalResult]
) -> None:
    lines = [
        f"# {config.model.name} on {dataset.name}",
        "",
        f"- Data: `{config.data.source}` ({dataset.num_users} users, {dataset.num_items} items),"
        f" split `{dataset.split}`.",
        f"- Seed {config.seed}; resolved config in `config.resolved.yaml`, library versions in"
        " `versions.json`.",
        "- Load it with `llmrec.Recommender.load(PATH)` (or `llmrec.load(PATH)` for the bare"
        " model), or serve it with `llmrec serve PATH`; this folder holds weights (safetensors),"
        " config.json and items.jsonl.",
        "",
    ]
    for split, result in results.items():
        lines += [f"## {split}", "", result.format_table()]
    (model_dir / "README.md").write_text("\n".join(lines), encoding="utf-8")
