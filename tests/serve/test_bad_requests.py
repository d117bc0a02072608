"""Bad requests get one line naming the field, never an answer for items nobody named."""

from __future__ import annotations

import pytest

from tastespace.serve.app import create_app
from tests.serve.client import local_client

fault = pytest.mark.fault
EXPECTED = "expected a raw item id or title (a JSON integer or string)"


@pytest.fixture(scope="module")
def client(ease_bundle):
    return local_client(create_app([ease_bundle]))


def recommend(client, body):
    response = client.post("/api/recommend", json=body)
    return response.status_code, response.json()


@pytest.mark.parametrize(
    ("entry", "shown"),
    [
        pytest.param(
            True, "true", marks=fault("serve", "JSON true in a history", "422 history[1]")
        ),
        pytest.param(
            False, "false", marks=fault("serve", "JSON false in a history", "422 history[1]")
        ),
        pytest.param(
            2.0, "2.0", marks=fault("serve", "JSON float 2.0 in a history", "422 history[1]")
        ),
        pytest.param(
            None, "null", marks=fault("serve", "JSON null in a history", "422 history[1]")
        ),
        pytest.param(
            [1, 2], "[1, 2]", marks=fault("serve", "nested list in a history", "422 history[1]")
        ),
        pytest.param(
            {"id": 1},
            '{"id": 1}',
            marks=fault("serve", "JSON object in a history", "422 history[1]"),
        ),
    ],
)
def test_history_entries_are_ids_or_titles_only(client, entry, shown):
    status, body = recommend(client, {"history": [3, entry]})
    assert status == 422
    assert body["detail"] == f"history[1]: {EXPECTED} (got {shown})"
    assert body["errors"][0]["loc"] == ["body", "history", 1]


def test_true_is_not_item_1(client):
    """What lax parsing did: the answer for [true] was the answer for [1]."""
    status, _ = recommend(client, {"history": [True]})
    assert status == 422
    assert recommend(client, {"history": [1]})[0] == 200


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        pytest.param(
            {"history": []},
            "history: List should have at least 1 item after validation, not 0 (got [])",
            marks=fault("serve", "empty HTTP history", "422 naming history"),
        ),
        pytest.param(
            {"history": [1] * 10_001},
            "history: List should have at most 10000 items after validation, not 10001",
            marks=fault("serve", "history over 10,000 entries", "422 naming the limit"),
        ),
        pytest.param(
            {"history": ["x" * 501]},
            "history[0]: a raw id or title has at most 500 characters",
            marks=fault("serve", "history entry over 500 characters", "422 naming the limit"),
        ),
        pytest.param(
            {"history": "Heat (1995)"},
            "history: Input should be a valid list",
            marks=fault("serve", "history a string, not a list", "422 naming history"),
        ),
        pytest.param(
            {"k": 5},
            "history: Field required",
            marks=fault("serve", "recommend without a history", "422 naming history"),
        ),
        pytest.param(
            {"history": [1], "users": 2},
            "users: Extra inputs are not permitted (got 2)",
            marks=fault("serve", "unknown field in a recommend body", "422 naming the field"),
        ),
        pytest.param(
            {"history": [1], "k": True},
            "k: Input should be a valid integer (got true)",
            marks=fault("serve", "k given as true", "422 naming k, not k=1"),
        ),
        pytest.param(
            {"history": [1], "k": 2.5},
            "k: Input should be a valid integer (got 2.5)",
            marks=fault("serve", "fractional k", "422 naming k"),
        ),
        pytest.param(
            {"history": [1], "exclude_seen": "no"},
            'exclude_seen: Input should be a valid boolean (got "no")',
            marks=fault("serve", "exclude_seen as a string", "422 naming it, not read as True"),
        ),
        pytest.param(
            {"history": [1], "model": 3},
            "model: Input should be a valid string (got 3)",
            marks=fault("serve", "model name not a string", "422 naming model"),
        ),
    ],
)
def test_unusable_bodies_name_the_field(client, body, detail):
    status, answer = recommend(client, body)
    assert status == 422
    assert answer["detail"].startswith(detail), answer["detail"]


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        pytest.param(
            b"{not json",
            "request body is not valid JSON (at character 1): Expecting property name",
            marks=fault("serve", "malformed JSON body", "422 with the character offset"),
        ),
        pytest.param(
            b"[1, 2]",
            "request body: Input should be a valid dictionary",
            marks=fault("serve", "JSON array as the body", "422 naming the body"),
        ),
    ],
)
def test_bodies_that_are_not_requests(client, content, detail):
    response = client.post(
        "/api/recommend", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"].startswith(detail)


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param(
            -1, marks=fault("serve", "negative id in a history", "404, not the last item")
        ),
        pytest.param(
            2**70, marks=fault("serve", "id beyond 64 bits in a history", "404 naming it")
        ),
    ],
)
def test_ids_no_item_has_are_404(client, entry):
    status, body = recommend(client, {"history": [entry]})
    assert status == 404
    assert body["detail"] == f"no item matches '{entry}' (not a known id or title)"


@pytest.mark.parametrize(
    ("path", "params", "detail"),
    [
        pytest.param(
            "/api/map",
            {"method": "mds"},
            "method: Input should be 'pca', 'tsne' or 'umap' (got \"mds\")",
            marks=fault("serve", "unknown map method", "422 naming the choices"),
        ),
        pytest.param(
            "/api/items/" + "9" * 501,
            {},
            "item_id: String should have at most 500 characters",
            marks=fault("serve", "item id over 500 characters in the path", "422 naming item_id"),
        ),
        pytest.param(
            "/api/items",
            {"model": "m" * 201},
            "model: String should have at most 200 characters",
            marks=fault("serve", "model name over 200 characters", "422 naming model"),
        ),
    ],
)
def test_bad_query_parameters(client, path, params, detail):
    response = client.get(path, params=params)
    assert response.status_code == 422
    assert response.json()["detail"].startswith(detail)
