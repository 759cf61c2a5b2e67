"""The one model contract: Pop, BM25, SASRec, CALRec and CLLM4Rec all subclass `RecommenderModel`.

Models are built from (config, catalogue), rank any history of internal item indices, and save to a
self-contained directory (config.json + items.jsonl + safetensors), never pickle.
"""

from __future__ import annotations

import json
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import torch
from pydantic import BaseModel, ValidationError, model_validator

from llmrec.atomic import replacing_folder
from llmrec.config_rules import CONFIG_RULES
from llmrec.data.catalogue import Catalogue
from llmrec.data.sequences import AnyEvalSet, Dataset, EvalSet, sample_users
from llmrec.errors import ConfigError, ModelFormatError
from llmrec.models.saved import (
    check_tensor_header,
    describe_validation,
    read_catalogue,
    read_json,
    saved_folder,
)
from llmrec.recommendations import Exclusions, Histories, Recommendations, Users, top_k
from llmrec.training.config import TrainConfig
from llmrec.version import __version__

CONFIG_FILE = "config.json"
ITEMS_FILE = "items.jsonl"
WEIGHTS_FILE = "model.safetensors"  # of the models whose tensors follow from config + catalogue


class ModelConfig(BaseModel):
    """Base of every model's typed config; `name` is the registry key (the union discriminator)."""

    model_config = CONFIG_RULES

    @model_validator(mode="before")
    @classmethod
    def _extensions_stay_in_their_block(cls, value: Any) -> Any:
        # A setting beyond the paper given beside the method's own is a common slip (and was
        # the place of some before they moved): say where it goes, not just "extra input".
        extensions = cls.model_fields.get("extensions")
        if not isinstance(value, dict) or extensions is None:
            return value
        beyond = getattr(extensions.annotation, "model_fields", {})
        misplaced = sorted(key for key in value if key in beyond and key not in cls.model_fields)
        if misplaced:
            raise ValueError(
                f"{', '.join(misplaced)}: beyond the paper, so set under `extensions:` "
                f"(e.g. extensions: {{{misplaced[0]}: ...}})"
            )
        return value


@dataclass
class FitResult:
    """What `fit` reports: the best validation step and metric, and the validation curve."""

    best_step: int | None = None
    best_epoch: int | None = None
    best_metric: float | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    train_seconds: float = 0.0
    epoch_seconds: list[float] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)  # e.g. CALRec's two stages

    @classmethod
    def from_train(cls, result: Any, **fields: Any) -> FitResult:
        """From the loop's `TrainResult` (its best step, curve and times); `fields` override."""
        values = {
            "best_step": result.best_step,
            "best_epoch": result.best_epoch,
            "best_metric": result.best_metric,
            "history": result.history,
            "train_seconds": result.train_seconds,
            "epoch_seconds": result.epoch_seconds,
        }
        return cls(**{**values, **fields})


# The evaluator's metrics of a model on an evaluation set, for validation during `fit`. The
# experiment layer hands `llmrec.evaluation.validation_metrics` down in the `RunContext`, so that
# models never import the evaluator (which sits above them).
ValidationMetrics = Callable[["RecommenderModel", AnyEvalSet], dict[str, float]]
# What the training loop calls after an epoch: the metrics of the model being trained.
Validate = Callable[[torch.nn.Module], dict[str, float]]


@dataclass(frozen=True)
class RunContext:
    """How a fit runs: where it may write (checkpoints, logs), the loop settings, the seed, how
    validation is scored, and the further data sets the model asked for (`auxiliary_sources`,
    e.g. CALRec's Stage I mixture), loaded by the caller."""

    run_dir: Path
    train: TrainConfig = field(default_factory=TrainConfig)
    seed: int = 0
    show_progress: bool = True
    resume: bool = False
    validation_metrics: ValidationMetrics | None = None
    auxiliary: Mapping[str, Dataset] = field(default_factory=dict)


class RecommenderModel(ABC):
    """Base class of every model. Subclasses set `name`, `Config` and implement the hooks."""

    name: ClassVar[str]
    Config: ClassVar[type[ModelConfig]]

    def __init__(self, config: ModelConfig, catalogue: Catalogue) -> None:
        self.config = config
        self.catalogue = catalogue

    @property
    def num_items(self) -> int:
        return len(self.catalogue)

    # Whether the model has per-user parameters (CLLM4Rec's user tokens) and so reads the
    # `user_ids` of `fit` and the `users` of `score` / `recommend`; the others refuse them.
    reads_users: ClassVar[bool] = False

    def fit(
        self,
        train: Sequence[np.ndarray],
        valid: EvalSet | None = None,
        run: RunContext | None = None,
        user_ids: Sequence[str] | None = None,
    ) -> FitResult:
        """Fit on training sequences; `valid` is for early stopping only (scored by
        `run.validation_metrics`). `user_ids[u]` names the owner of `train[u]`, for models
        that read users. Without a `run`, checkpoints and logs go to a scratch folder deleted
        afterwards."""
        if user_ids is not None and not self.reads_users:
            raise ConfigError(f"{self.name} has no per-user parameters: pass no user_ids")
        if run is None:
            with tempfile.TemporaryDirectory(prefix=f"llmrec-{self.name}-") as scratch:
                return self._fit(train, valid, RunContext(Path(scratch)), user_ids)
        return self._fit(train, valid, run, user_ids)

    def auxiliary_sources(self) -> dict[str, Path | None]:
        """Named data sets (or folders) that `fit` trains on beside `train`, each with the root
        to look for it in (None: the run's data root); the caller loads them into
        `RunContext.auxiliary` under these names. None by default."""
        return {}

    def validator(
        self, valid: AnyEvalSet | None, run: RunContext, users: int | None
    ) -> Validate | None:
        """The loop's validation callback: `run.validation_metrics` of this model on a seeded
        sample of `users` users of `valid` (all when None), or None without `valid`."""
        if valid is None:
            return None
        if run.validation_metrics is None:
            raise ConfigError(
                "validation needs a scorer: pass RunContext(..., validation_metrics="
                "llmrec.evaluation.validation_metrics), or fit through llmrec.run_experiment"
            )
        subset, metrics = sample_users(valid, users, run.seed), run.validation_metrics
        # the loop trains the model's own network, so scoring the model scores it
        return lambda network: metrics(self, subset)

    def refit_config(self, fit: FitResult) -> ModelConfig:
        """The config of a fresh copy refit on more data without validation users
        (`train.refit_before_test`, for the epochs `fit` chose): this model's, with what `fit`
        chose on validation beside the epochs fixed (EASE's λ, item-kNN's neighbours)."""
        return self.config

    @abstractmethod
    def _fit(
        self,
        train: Sequence[np.ndarray],
        valid: EvalSet | None,
        run: RunContext,
        user_ids: Sequence[str] | None,
    ) -> FitResult:
        """`fit` with a run folder always given."""

    def score(self, histories: Histories, users: Users = None) -> torch.Tensor | None:
        """(B, n_items) scores for every catalogue item, or None if the model cannot score all.
        `users`: who each history belongs to, for models that read users (else None)."""
        return None

    def recommend(
        self, histories: Histories, k: int, exclude: Exclusions = None, users: Users = None
    ) -> Recommendations:
        """Top-k items per history. Models without full scores override this."""
        scores = self.score(histories, users)
        if scores is None:
            raise NotImplementedError(f"{self.name} must implement recommend() or score()")
        return top_k(scores, k, exclude)

    def to(self, device: str | torch.device) -> Self:
        """Move the model's networks to `device` (a GPU for ranking there); returns the model.
        Inputs follow the weights (`module_device`) and scores come back on the CPU."""
        for value in vars(self).values():
            if isinstance(value, torch.nn.Module):
                value.to(device)
        return self

    # --- persistence -------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the model folder atomically (llmrec.atomic): a kill at any moment leaves the
        previous complete folder or the new complete one, never a mix."""
        meta = {
            "llmrec_version": __version__,
            "model": self.name,
            "config": self.config.model_dump(mode="json"),
            "catalogue_size": len(self.catalogue),
            "catalogue_sha256": self.catalogue.fingerprint(),
        }
        with replacing_folder(path) as folder:
            (folder / CONFIG_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
            self.catalogue.save_jsonl(folder / ITEMS_FILE)
            self._save_state(folder)

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Load a saved folder; anything missing, damaged or inconsistent is a ModelFormatError
        naming the file, raised before the model's tensors are allocated (saved.py)."""
        path = saved_folder(Path(path))
        meta = read_model_meta(path)
        if meta["model"] != cls.name:
            raise ModelFormatError(f"holds a {meta['model']!r} model, not {cls.name!r}", path)
        catalogue = read_catalogue(path / ITEMS_FILE)
        size = meta.get("catalogue_size", len(catalogue))
        if catalogue.fingerprint() != meta["catalogue_sha256"] or len(catalogue) != size:
            raise ModelFormatError(
                f"does not match the catalogue in {CONFIG_FILE}", path / ITEMS_FILE
            )
        config = cls._saved_config(meta, path / CONFIG_FILE)
        with torch.device("meta"):  # shapes only, nothing allocated: a tampered size fails first
            skeleton = cls(config, catalogue)
        for name, tensors in skeleton.tensor_files().items():
            check_tensor_header(path / name, tensors)
        model = cls(config, catalogue)
        model._load_state(path)
        return model

    @classmethod
    def _saved_config(cls, meta: dict[str, Any], file: Path) -> ModelConfig:
        named = meta["config"].get("name", cls.name)
        if named != cls.name:
            raise ModelFormatError(
                f"'model' says {cls.name!r} but 'config' is for {named!r}: edited by hand?", file
            )
        try:
            return cls.Config.model_validate(meta["config"])
        except ValidationError as error:
            raise ModelFormatError(
                f"invalid model config: {describe_validation(error)}", file
            ) from None

    def tensor_files(self) -> dict[str, dict[str, torch.Tensor]]:
        """{file name: {tensor name: tensor}} for the safetensors files `_save_state` writes, when
        they follow from the config and catalogue alone. `load` checks a folder's headers against
        these on a skeleton of the model built on the meta device, before allocating anything.
        Models whose shapes depend on what loading reads (an LLM backbone) check in
        `_load_state`."""
        return {}

    @abstractmethod
    def _save_state(self, path: Path) -> None:
        """Write learned state (safetensors/JSON) into the model directory."""

    @abstractmethod
    def _load_state(self, path: Path) -> None:
        """Read what `_save_state` wrote."""


def read_model_meta(path: Path) -> dict[str, Any]:
    """The model folder's config.json: which model, its config and its catalogue's fingerprint."""
    file = path / CONFIG_FILE
    if not file.is_file():
        raise ModelFormatError(f"not a model folder: {CONFIG_FILE} is missing", path)
    meta = read_json(file, dict)
    for key, kind in (("model", str), ("config", dict), ("catalogue_sha256", str)):
        if not isinstance(meta.get(key), kind):
            wanted = "a string" if kind is str else "an object"
            raise ModelFormatError(f"the key {key!r} must hold {wanted}", file)
    size = meta.get("catalogue_size")
    if size is not None and (type(size) is not int or size < 0):
        raise ModelFormatError("the key 'catalogue_size' must hold a count of items", file)
    return meta


def resolve_device(device: str) -> torch.device:
    """`auto`: the first CUDA GPU when torch sees one, else the CPU; otherwise a torch device
    name (`cpu`, `cuda`, `cuda:1`), refused when it names a GPU torch does not see."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise ConfigError(f"device {device!r}: {error}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r}: torch sees no CUDA GPU on this machine")
    return resolved


def module_device(module: torch.nn.Module) -> torch.device:
    """Where a network's weights are (a GPU after training there): its inputs go there too."""
    return next(module.parameters()).device
