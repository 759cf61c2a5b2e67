"""The explicit table of model kinds: adding a model is one line here."""

from __future__ import annotations

from pathlib import Path

from llmrec.data.catalogue import Catalogue
from llmrec.errors import ConfigError, ModelFormatError
from llmrec.models.base import (
    CONFIG_FILE,
    ModelConfig,
    RecommenderModel,
    read_model_meta,
    resolve_device,
)
from llmrec.models.bm25 import BM25Config, BM25Model
from llmrec.models.calrec.config import CALRecConfig
from llmrec.models.calrec.model import CALRec
from llmrec.models.cllm4rec.config import CLLM4RecConfig, CLLM4RecLiteConfig
from llmrec.models.cllm4rec.model import CLLM4Rec, CLLM4RecLite
from llmrec.models.ease import EASE, EASEConfig
from llmrec.models.itemknn import ItemKNN, ItemKNNConfig
from llmrec.models.multvae import MultVAE, MultVAEConfig
from llmrec.models.pop import PopConfig, Popularity
from llmrec.models.sasrec import SASRec, SASRecConfig
from llmrec.models.saved import saved_folder

MODELS: dict[str, type[RecommenderModel]] = {
    "pop": Popularity,
    "bm25": BM25Model,
    "sasrec": SASRec,
    "multvae": MultVAE,
    "ease": EASE,
    "itemknn": ItemKNN,
    "calrec": CALRec,
    "cllm4rec": CLLM4Rec,
    "cllm4rec-lite": CLLM4RecLite,  # beyond the paper: no pretraining, no MR, no user tokens
}

AnyModelConfig = (
    PopConfig
    | BM25Config
    | SASRecConfig
    | MultVAEConfig
    | EASEConfig
    | ItemKNNConfig
    | CALRecConfig
    | CLLM4RecConfig
    | CLLM4RecLiteConfig
)


def build_model(config: ModelConfig, catalogue: Catalogue) -> RecommenderModel:
    name = getattr(config, "name", None)
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    return MODELS[name](config, catalogue)


def load_model(path: str | Path, device: str = "auto") -> RecommenderModel:
    """Load any saved model directory, dispatching on the name in its config.json, onto
    `device` (`auto`: a CUDA GPU when torch sees one, else the CPU; see `resolve_device`)."""
    folder = saved_folder(Path(path))
    meta = read_model_meta(folder)
    if meta["model"] not in MODELS:
        known = ", ".join(MODELS)
        raise ModelFormatError(
            f"unknown model {meta['model']!r}; known: {known}", folder / CONFIG_FILE
        )
    return MODELS[meta["model"]].load(folder).to(resolve_device(device))
