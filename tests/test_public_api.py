from __future__ import annotations

import llmrec


def test_public_api_is_exactly_all() -> None:
    public = {name for name in vars(llmrec) if not name.startswith("_")} - {
        "atomic",
        "cli",
        "config",
        "config_rules",
        "data",
        "environment",
        "errors",
        "evaluation",
        "experiment",
        "models",
        "recommendations",
        "recommender",
        "retrieval",
        "serving",
        "text",
        "training",
        "version",
    }
    assert public | {"__version__"} == set(llmrec.__all__)


def test_load_is_the_registry_loader() -> None:
    assert llmrec.load is llmrec.load_model
