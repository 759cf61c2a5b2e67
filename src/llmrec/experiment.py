"""One experiment end to end: load data, fit a model, save it, evaluate valid + test, fit and
evaluate the configured baselines on the same split, report."""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from llmrec.config import RunConfig, check_resumable, load_config, parse_yaml, save_config
from llmrec.data.config import DataConfig
from llmrec.data.loaders.common import LoadResult
from llmrec.data.registry import load_dataset
from llmrec.data.sampling import sample_loaded_users
from llmrec.data.sequences import Dataset
from llmrec.data.splits import holdout_split
from llmrec.environment import collect_versions
from llmrec.errors import ConfigError, ModelFormatError
from llmrec.evaluation.config import EvalConfig
from llmrec.evaluation.ranking import evaluate_model
from llmrec.evaluation.report import BASELINES_FOLDER, RunSummary, write_report
from llmrec.evaluation.result import EvalResult
from llmrec.evaluation.slices import SliceBasis
from llmrec.evaluation.validation import validation_metrics
from llmrec.models.base import FitResult, ModelConfig, RecommenderModel, RunContext
from llmrec.models.registry import build_model, load_model
from llmrec.training.config import TrainConfig
from llmrec.training.distributed import is_main_process

logger = logging.getLogger(__name__)
MODEL_FOLDER = "model"
RESOLVED_CONFIG = "config.resolved.yaml"


@dataclass
class ExperimentResult:
    run_dir: Path
    model_dir: Path
    fit: FitResult
    results: dict[str, EvalResult]
    seconds: dict[str, float]  # train (load, fit, save), refit, evaluate, baselines
    baselines: dict[str, dict[str, EvalResult]] = field(default_factory=dict)


@dataclass
class SplitEvaluation:
    """A fitted model's valid and test results, and the model that ranked test."""

    results: dict[str, EvalResult]
    test_model: RecommenderModel  # the refit model under train.refit_before_test
    refit: str | None = None  # how the test model was refit, e.g. "refit on ... for 7 epochs"
    refit_seconds: float = 0.0


def prepare_run_dir(config: RunConfig, resume: bool = False) -> Path:
    """Create the run folder and write the resolved config and versions into it. With `resume`,
    the folder's own config must name the same data and model as `config`: its checkpoints
    hold that model's weights; without, the folder must hold no other model's or data set's run
    (`check_run_folder`)."""
    run_dir = config.run_dir()
    if resume:
        check_resumable(config, run_dir / RESOLVED_CONFIG)
    else:
        check_run_folder(config, run_dir)
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


def check_run_folder(config: RunConfig, run_dir: Path) -> None:
    """A run folder holds one model on one data set: refuse to write another model's or data
    set's results into a folder that holds a run (its config.resolved.yaml says which)."""
    path = run_dir / RESOLVED_CONFIG
    if not path.is_file():
        return
    try:
        earlier = parse_yaml(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        message = f"{path}: cannot read the config of the run in this folder: {error}"
        raise ConfigError(message) from None
    earlier = earlier if isinstance(earlier, dict) else {}
    model = (earlier.get("model") or {}).get("name")
    source = (earlier.get("data") or {}).get("source")
    if model == config.model.name and _same_source(source, config.data.source):
        return
    raise ConfigError(
        f"{run_dir} holds a run of {model} on {source}; this run is {config.model.name} on "
        f"{config.data.source}. Name its folder: --set output.name=NAME (or remove output.name"
        " to get MODEL-DATA)"
    )


def _same_source(earlier: str | None, source: str) -> bool:
    """The same named data set, or the same folder however its path was written."""
    if earlier is None or earlier == source:
        return earlier == source
    folders = [Path(value).expanduser() for value in (earlier, source)]
    return all(folder.is_dir() for folder in folders) and folders[0].samefile(folders[1])


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
    if config.data.sample_users is not None:
        report["sample"] = {
            "users": min(config.data.sample_users, loaded.dataset.num_users),
            "of_users": loaded.dataset.num_users,
            "items": dataset.num_items,
            "of_items": loaded.dataset.num_items,
            "seed": config.data.sample_seed,
        }
    if holdout is not None:
        report["holdout"] = holdout
    return dataset, report


def split_dataset(loaded: LoadResult, data: DataConfig) -> tuple[Dataset, dict | None]:
    """The loaded data (a sample of its users with `data.sample_users`) under `data.split`: the
    format's own split, or the per-user hold-out (then also its record: split, users kept,
    users dropped)."""
    loaded = sample_loaded_users(loaded, data.sample_users, data.sample_seed)
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
    if is_main_process():  # under `accelerate launch` one process writes (docs/training.md)
        model.save(run_dir / MODEL_FOLDER)
        copy_run_records(run_dir, run_dir / MODEL_FOLDER)
        fit_record = json.dumps(asdict(fit), indent=1) + "\n"
        (run_dir / "fit.json").write_text(fit_record, encoding="utf-8")
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
    """Train, evaluate on valid and test, fit and evaluate the baselines, write the report."""
    started = time.perf_counter()
    model, dataset, fit, run_dir = train_model(config, resume=resume, show_progress=show_progress)
    trained = time.perf_counter()
    evaluated = evaluate_splits(model, fit, config, dataset, run_dir, show_progress)
    if evaluated.refit and is_main_process():
        evaluated.test_model.save(run_dir / MODEL_FOLDER)  # the model that ranked test
    evaluated_at = time.perf_counter()
    baselines, baseline_seconds = {}, {}
    for baseline in config.baselines:
        folder = run_dir / BASELINES_FOLDER / baseline.name
        baselines[baseline.name], baseline_seconds[baseline.name] = fit_baseline(
            baseline, config, dataset, folder, show_progress
        )
    seconds = {
        "train": trained - started,
        "refit": evaluated.refit_seconds,
        "evaluate": evaluated_at - trained - evaluated.refit_seconds,
        "baselines": time.perf_counter() - evaluated_at,
    }
    summary = run_summary(config, dataset, fit, evaluated, seconds["train"], baseline_seconds)
    results = evaluated.results
    if is_main_process():
        write_report(run_dir, results, fit.history or None, summary, baselines)
        write_model_card(run_dir / MODEL_FOLDER, config, dataset, results)
    return ExperimentResult(run_dir, run_dir / MODEL_FOLDER, fit, results, seconds, baselines)


def evaluate_splits(
    model: RecommenderModel,
    fit: FitResult,
    config: RunConfig,
    dataset: Dataset,
    run_dir: Path,
    show_progress: bool,
) -> SplitEvaluation:
    """Valid with the fitted model; test with it or, under train.refit_before_test, with a
    fresh copy refit on train + valid items (its logs in RUN_DIR/refit)."""
    valid = evaluate_model(
        model,
        dataset.valid,
        config.eval,
        show_progress=show_progress,
        split=f"{dataset.split}:valid",
        slice_basis=slice_basis(dataset),
    )
    refit, started = None, time.perf_counter()
    if config.train.refit_before_test:
        model, epochs = refit_before_test(
            config, dataset, fit, run_dir, show_progress, model_config=model.refit_config(fit)
        )
        # a model that trains no epochs (Pop, BM25, EASE, item-kNN) has none to choose
        refit = "refit on train + valid items" + (f" for {epochs} epochs" if fit.best_epoch else "")
    refit_seconds = time.perf_counter() - started
    test_split = f"{dataset.split}:test" + (f" (model {refit})" if refit else "")
    test = evaluate_model(
        model,
        dataset.test,
        config.eval,
        show_progress=show_progress,
        split=test_split,
        slice_basis=slice_basis(dataset),
    )
    return SplitEvaluation({"valid": valid, "test": test}, model, refit, refit_seconds)


def fit_baseline(
    model_config: ModelConfig,
    config: RunConfig,
    dataset: Dataset,
    run_dir: Path,
    show_progress: bool,
) -> tuple[dict[str, EvalResult], float]:
    """Fit a baseline on the run's split with its `train` settings, and evaluate it as the model
    was evaluated (same users, same refit protocol); returns its results and fit seconds."""
    started = time.perf_counter()
    model = build_model(model_config, dataset.catalogue)
    context = fit_context(model, config, run_dir, config.train, show_progress)
    fit = model.fit(dataset.train, dataset.valid, context, user_ids=owners(model, dataset))
    fit_seconds = time.perf_counter() - started
    evaluated = evaluate_splits(model, fit, config, dataset, run_dir, show_progress)
    return evaluated.results, fit_seconds + evaluated.refit_seconds


def run_summary(
    config: RunConfig,
    dataset: Dataset,
    fit: FitResult,
    evaluated: SplitEvaluation,
    train_seconds: float,
    baseline_seconds: dict[str, float],
) -> RunSummary:
    """The report's header: which model, data set and split, and what training took."""
    refit = None
    if evaluated.refit:
        refit = f"{evaluated.refit} ({evaluated.refit_seconds:.1f} s)"
    return RunSummary(
        model=config.model.name,
        data_name=dataset.name,
        data=f"`{config.data.source}`: {dataset.num_users:,} users, {dataset.num_items:,} items",
        split=dataset.split,
        train_seconds=train_seconds,
        best_epoch=fit.best_epoch,
        best_step=fit.best_step,
        epochs_run=max((point.get("epoch", 0) for point in fit.history), default=None),
        metric=config.train.metric,
        best_metric=fit.best_metric,
        refit=refit,
        baseline_seconds=baseline_seconds,
    )


def slice_basis(dataset: Dataset) -> SliceBasis:
    """What the metrics by slice are defined on: the training sequences' item counts (also
    for a model refit on train + valid items, so that every model meets the same slices)."""
    return SliceBasis.from_sequences(dataset.train, dataset.num_items)


def refit_before_test(
    config: RunConfig,
    dataset: Dataset,
    fit: FitResult,
    run_dir: Path,
    show_progress: bool,
    model_config: ModelConfig | None = None,
) -> tuple[RecommenderModel, int]:
    """Train a fresh `model_config` (default: the run's model) on everything before each
    user's test target, for the number of epochs early stopping chose on valid; its logs go to
    RUN_DIR/refit. No test item is seen."""
    epochs = fit.best_epoch or config.train.epochs
    train = config.train.model_copy(update={"epochs": epochs})
    model = build_model(model_config or config.model, dataset.catalogue)
    context = fit_context(model, config, run_dir / "refit", train, show_progress)
    model.fit(before_test_sequences(dataset), None, context, user_ids=owners(model, dataset))
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
