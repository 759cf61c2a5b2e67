"""The HTTP API through FastAPI's TestClient, on a saved tiny model of every kind."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from llmrec import __version__
from llmrec.models.registry import MODELS
from llmrec.recommender import Recommender
from llmrec.serving.app import create_app
from llmrec.serving.schemas import ServeSettings
from tests.serving.helpers import save_tiny_model


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_kind_serves_recommendations(
    name: str, toy_dataset, tmp_path: Path, llm_cache_dir: Path
) -> None:
    model_dir = save_tiny_model(name, toy_dataset, tmp_path, llm_cache_dir)
    expected = Recommender.load(model_dir).recommend(["i1", "i2"], k=5)
    with TestClient(create_app(model_dir)) as client:
        health = client.get("/health").json()
        assert health == {
            "status": "ok",
            "model": name,
            "num_items": 12,
            "llmrec_version": __version__,
        }
        assert client.get("/items/i3").json()["title"] == "product 3 red"

        body = {"history": ["i1", "PRODUCT 2 blue"], "k": 5}
        response = client.post("/recommend", json=body)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["model"] == name
        assert [entry["matched_by"] for entry in answer["history"]] == ["id", "title"]
        assert [entry["item_id"] for entry in answer["history"]] == ["i1", "i2"]
        items = [(item["item_id"], item["score"], item["title"]) for item in answer["items"]]
        assert items == [(item.item_id, pytest.approx(item.score), item.title) for item in expected]
        assert len(items) <= 5 and not {"i1", "i2"} & {item[0] for item in items}
        if name != "calrec":  # a barely trained CALRec's generations may name no item at all
            assert len(items) == 5

        restricted = client.post("/recommend", json={**body, "candidates": ["i1", "i5", "i7"]})
        assert {item["item_id"] for item in restricted.json()["items"]} <= {"i5", "i7"}


@pytest.fixture()
def client(pop_dir: Path):
    with TestClient(create_app(pop_dir, ServeSettings(max_body_bytes=2048))) as client:
        yield client


def test_unknown_item_is_404_naming_it(client: TestClient) -> None:
    response = client.get("/items/nope")
    assert response.status_code == 404
    assert response.json() == {"detail": "field 'item_id': unknown item id 'nope'"}
    # an id with a slash reaches the handler (and its message), not a bare routing 404
    slashed = client.get("/items/sku%2F1").json()
    assert slashed == {"detail": "field 'item_id': unknown item id 'sku/1'"}


def test_typo_titles_are_mapped_and_reported(client: TestClient) -> None:
    answer = client.post("/recommend", json={"history": ["prodct 3 red"], "k": 3}).json()
    assert answer["history"][0]["matched_by"] == "bm25"
    assert answer["history"][0]["score"] > 0
    assert len(answer["items"]) == 3


def test_history_nothing_matches_is_400_naming_the_entries(client: TestClient) -> None:
    response = client.post("/recommend", json={"history": ["i1", "zzz qqq"]})
    assert response.status_code == 400
    assert "'zzz qqq'" in response.json()["detail"]
    response = client.post("/recommend", json={"history": ["i1"], "candidates": ["i2", "x9"]})
    assert response.status_code == 400
    assert "unknown candidate item ids: 'x9'" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"history": ["i1"], "k": 0}, "k"),
        ({"history": ["i1"], "k": 101}, "k"),
        ({"history": ["i1"] * 201}, "history"),
        ({"history": [""]}, "history"),
        ({"history": ["i1"], "candidates": []}, "candidates"),
        ({"history": ["i1"], "exclude": "maybe"}, "exclude"),
        ({"history": ["i1"], "profile": "u1"}, "profile"),
        ({"history": ["i1"], "user": "u" * 201}, "user"),
        ({"k": 3}, "history"),
    ],
)
def test_out_of_limit_requests_are_422_naming_the_field(
    client: TestClient, body: dict, field: str
) -> None:
    response = client.post("/recommend", json=body)
    assert response.status_code == 422
    assert field in {str(part) for error in response.json()["detail"] for part in error["loc"]}


def test_a_body_over_the_limit_is_413(client: TestClient) -> None:
    response = client.post("/recommend", json={"history": ["i1"] * 150})  # 1,000+ bytes: fine
    assert response.status_code == 200
    response = client.post("/recommend", json={"history": ["product 1 red"] * 190})
    assert response.status_code == 413
    assert response.json() == {"detail": "request body is larger than the limit of 2048 bytes"}

    def chunks():  # no Content-Length: the streamed bytes are counted
        yield b'{"history": ['
        for _ in range(190):
            yield b'"product 1 red", '
        yield b'"i1"]}'

    headers = {"content-type": "application/json"}
    response = client.post("/recommend", content=chunks(), headers=headers)
    assert response.status_code == 413, response.text


def test_openapi_documents_the_limits(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    request = spec["components"]["schemas"]["RecommendRequest"]["properties"]
    assert request["k"]["maximum"] == 100 and request["history"]["maxItems"] == 200
    assert {"200", "400", "413", "422"} <= set(spec["paths"]["/recommend"]["post"]["responses"])
    assert client.get("/docs").status_code == 404  # FastAPI's page loads a CDN: off (serving.md)


def test_the_user_field_reaches_a_model_with_user_tokens(
    toy_dataset, tmp_path: Path, llm_cache_dir: Path
) -> None:
    model_dir = save_tiny_model("cllm4rec", toy_dataset, tmp_path, llm_cache_dir)
    body = {"history": ["i1", "i2"], "k": 12, "exclude": False}

    def scores(**extra) -> dict[str, float]:
        answer = client.post("/recommend", json={**body, **extra})
        assert answer.status_code == 200, answer.text
        return {item["item_id"]: item["score"] for item in answer.json()["items"]}

    with TestClient(create_app(model_dir)) as client:
        anonymous = scores()
        assert scores(user="a user never seen") == pytest.approx(anonymous)
        assert scores(user="3") != pytest.approx(anonymous)  # users fit without ids: "0".."29"
