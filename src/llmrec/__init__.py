"""llmrec: sequential recommendation with LLMs, and the baselines that keep them honest."""

from llmrec.config import RunConfig, load_config
from llmrec.data.catalogue import Catalogue, Item
from llmrec.data.registry import load_dataset
from llmrec.data.sequences import Dataset, EvalSet
from llmrec.evaluation.config import EvalConfig
from llmrec.evaluation.ranking import evaluate_model
from llmrec.experiment import run_experiment
from llmrec.models.base import RecommenderModel
from llmrec.models.registry import MODELS, load_model
from llmrec.recommendations import Recommendations
from llmrec.recommender import RecommendedItem, Recommender
from llmrec.version import __version__

load = load_model

__all__ = [
    "MODELS",
    "Catalogue",
    "Dataset",
    "EvalConfig",
    "EvalSet",
    "Item",
    "Recommendations",
    "RecommendedItem",
    "Recommender",
    "RecommenderModel",
    "RunConfig",
    "__version__",
    "evaluate_model",
    "load",
    "load_config",
    "load_dataset",
    "load_model",
    "run_experiment",
]
