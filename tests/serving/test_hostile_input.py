"""Bodies no JSON encoder would write: NaN, infinities, 1e400 and lone surrogates in every field
of POST /recommend (and in keys) get a 4xx whose body is strict JSON, never a 5xx."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmrec.data.catalogue import Catalogue, Item
from llmrec.models.pop import PopConfig, Popularity
from llmrec.recommender import Recommender
from llmrec.serving.app import create_app, encodable
from llmrec.serving.schemas import ServeSettings

FIELDS = ("history", "k", "user", "exclude", "candidates")
NON_FINITE = st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
# JSON text of strings holding lone surrogates (json.dumps escapes them as \\udXXX).
SURROGATE_TEXT = st.text(
    st.characters(categories=["Cs"]) | st.characters(codec="utf-8"), min_size=1, max_size=6
).filter(lambda text: any("\ud800" <= char <= "\udfff" for char in text))
HOSTILE = NON_FINITE | SURROGATE_TEXT.map(json.dumps)
VALID = {
    "history": st.just('["i1", "product 2 red"]'),
    "k": st.just("3"),
    "user": st.just('"u1"'),
    "exclude": st.just("true"),
    "candidates": st.just('["i1", "i2", "i3", "i4"]'),
}


def _fragment(field: str) -> st.SearchStrategy[str]:
    """JSON text for one field: valid, hostile, or a list holding hostile values."""
    hostile_list = st.lists(HOSTILE | st.just('"i1"'), min_size=1, max_size=3).map(
        lambda values: "[" + ", ".join(values) + "]"
    )
    return VALID[field] | HOSTILE | hostile_list


@st.composite
def hostile_bodies(draw: st.DrawFn) -> bytes:
    fields = draw(st.lists(st.sampled_from(FIELDS), unique=True, min_size=1))
    parts = [f"{json.dumps(field)}: {draw(_fragment(field))}" for field in fields]
    if draw(st.booleans()):
        parts.append(f"{draw(SURROGATE_TEXT.map(json.dumps))}: {draw(HOSTILE)}")  # a bad key
    body = "{" + ", ".join(parts) + "}"
    if "NaN" not in body and "Infinity" not in body and "e400" not in body and "\\ud" not in body:
        body = body[:-1] + ', "k": NaN}'  # at least one hostile value per body
    return body.encode("ascii")


@pytest.fixture(scope="module")
def client():
    items = [Item(f"i{index}", title=f"product {index} red") for index in range(20)]
    model = Popularity(PopConfig(), Catalogue.from_items(items))
    model.fit([np.arange(20), np.arange(5)])
    app = create_app(Recommender(model), ServeSettings(batch_wait_ms=0))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def _post(client: TestClient, body: bytes):
    return client.post("/recommend", content=body, headers={"content-type": "application/json"})


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"history": [], "k": NaN}', "k"),
        (b'{"history": [], "k": Infinity}', "k"),
        (b'{"history": [], "k": 1e400}', "k"),
        (b'{"history": ["\\ud800"]}', "history"),
        (b'{"history": [], "user": "\\udc00x"}', "user"),
        (b'{"history": [], "candidates": ["i1", "\\ud800"]}', "candidates"),
    ],
)
def test_the_issue_cases_are_422_naming_the_field(
    client: TestClient, body: bytes, field: str
) -> None:
    response = _post(client, body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][1] == field


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=hostile_bodies())
def test_hostile_bodies_never_get_a_server_error(client: TestClient, body: bytes) -> None:
    response = _post(client, body)
    assert 400 <= response.status_code < 500, (body, response.text)
    json.loads(response.content.decode("utf-8"), parse_constant=pytest.fail)  # strict JSON


def test_encodable_makes_non_finite_floats_and_surrogates_printable() -> None:
    value = {"\ud800": [float("nan"), float("-inf"), "a\udc00b", 1.5, None]}
    assert encodable(value) == {"\\ud800": ["nan", "-inf", "a\\udc00b", 1.5, None]}
