"""``POST /api/items``: cold items join a loaded model's catalog in memory and are served."""

from __future__ import annotations

import pytest


@pytest.fixture
def client(neural_bundle, ease_bundle):
    from tastespace.serve.app import create_app
    from tests.serve.client import local_client

    return local_client(create_app([neural_bundle, ease_bundle]))


def new_item(tiny, raw_id, genres):
    return {
        "id": raw_id,
        "title": f"Brand New Film {raw_id} (2031)",
        "genres": genres,
        "features": {"year": 2001, "runtime": 100},
    }


def test_added_items_are_served_at_once(client, tiny):
    genre = tiny.items.bags["genres"].row(0)
    body = {"items": [new_item(tiny, 5001, genre), new_item(tiny, 5002, ["Space Opera"])]}
    answer = client.post("/api/items", json=body)
    assert answer.status_code == 201, answer.text
    added = answer.json()
    assert added["added"] == [5001, 5002] and added["total"] == tiny.n_items + 2
    assert added["unseen"] == {"genres": {"items": 1, "values": ["Space Opera"]}}
    record = client.get("/api/items/5001").json()
    assert record["title"] == "Brand New Film 5001 (2031)" and record["genres"] == genre
    similar = client.get("/api/items/5001/similar", params={"k": 3}).json()
    assert similar["total"] == 3
    found = client.get("/api/items", params={"q": "brand new film"}).json()
    assert found["total"] == 2
    models = {m["name"]: m["n_items"] for m in client.get("/api/models").json()["models"]}
    assert models["neural"] == tiny.n_items + 2
    recs = client.post("/api/recommend", json={"history": [5001, 1], "k": 5})
    assert recs.status_code == 200 and recs.json()["total"] == 5


@pytest.mark.fault("serve", "POST /api/items with a known id", "422 naming the id")
def test_known_id_is_refused(client, tiny):
    answer = client.post("/api/items", json={"items": [new_item(tiny, 1, ["Drama"])]})
    assert answer.status_code == 422 and "already in the catalog" in answer.json()["detail"]


@pytest.mark.fault("serve", "POST /api/items on a model without a content path", "422 saying so")
def test_model_without_content_path_refuses(client, tiny):
    body = {"items": [new_item(tiny, 5003, ["Drama"])], "model": "ease"}
    answer = client.post("/api/items", json=body)
    assert answer.status_code == 422 and "interactions only" in answer.json()["detail"]
