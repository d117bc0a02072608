"""The HTTP API through FastAPI's TestClient: every endpoint, pagination, bounds and errors."""

from __future__ import annotations

import gzip
import json
import os

import numpy as np
import pytest


@pytest.fixture(scope="module")
def client(neural_bundle, ease_bundle):
    from tastespace.serve.app import create_app
    from tests.serve.client import local_client

    return local_client(create_app([neural_bundle, ease_bundle], max_body_bytes=200_000))


@pytest.fixture(scope="module")
def titles(tiny) -> list[str]:
    return tiny.titles()


def test_health_and_models(client, tiny):
    health = client.get("/healthz").json()
    assert health == {"status": "ok", "models": ["neural", "ease"], "worker": os.getpid()}
    body = client.get("/api/models").json()
    assert body["default"] == "neural"
    neural, ease = body["models"]
    assert (neural["name"], neural["kind"], neural["n_items"], neural["dim"]) == (
        "neural",
        "neural",
        tiny.n_items,
        16,
    )
    assert neural["config"]["epochs"] == 3 and neural["config"]["hidden"] == 32
    assert (ease["kind"], ease["dim"], ease["config"]["l2"]) == ("ease", tiny.n_items, 50.0)


def test_catalog_pages_in_catalog_order(client, tiny):
    first = client.get("/api/items", params={"limit": 7}).json()
    second = client.get("/api/items", params={"limit": 7, "offset": 7}).json()
    assert first["total"] == second["total"] == tiny.n_items
    ids = [r["id"] for r in first["items"] + second["items"]]
    assert ids == tiny.item_ids.raws(np.arange(14))
    record = first["items"][0]
    assert record["title"] == tiny.titles()[0]
    assert record["genres"] == tiny.items.bags["genres"].row(0)
    assert "score" not in record
    past_end = client.get("/api/items", params={"offset": 10_000}).json()
    assert past_end["items"] == [] and past_end["total"] == tiny.n_items


def test_title_search_pages_through_all_matches(client, titles):
    word = titles[1].split()[1]  # e.g. "Heist" from "Autumn Heist (1992)"
    expected = [t for t in titles if word.lower() in t.lower()]
    assert len(expected) >= 2
    page1 = client.get("/api/items", params={"q": word.lower(), "limit": 1}).json()
    page2 = client.get("/api/items", params={"q": word.lower(), "limit": 50, "offset": 1}).json()
    assert page1["total"] == len(expected)
    found = [r["title"] for r in page1["items"] + page2["items"]]
    assert sorted(found) == sorted(expected)
    none = client.get("/api/items", params={"q": "qqqqzzzzxxxx"}).json()
    assert none == {"items": [], "total": 0, "offset": 0, "limit": 20}


@pytest.mark.fault("serve", "unknown item id in the path", "404 naming the id")
def test_item_by_raw_id_and_unknown_id(client, tiny):
    raw = tiny.item_ids.raw(3)
    body = client.get(f"/api/items/{raw}").json()
    assert body["id"] == raw and body["title"] == tiny.titles()[3]
    missing = client.get("/api/items/987654")
    assert missing.status_code == 404
    assert "987654" in missing.json()["detail"]
    # an id is an id: a title in the path is not looked up
    assert client.get(f"/api/items/{tiny.titles()[3]}").status_code == 404


def test_similar_matches_the_model(client, tiny, ease_bundle):
    from tastespace.models.base import Recommender

    model = Recommender.load(ease_bundle)
    ids, scores = model.similar_items(5, k=4)
    raw = tiny.item_ids.raw(5)
    body = client.get(f"/api/items/{raw}/similar", params={"k": 4, "model": "ease"}).json()
    assert body["item"]["id"] == raw and body["model"] == "ease" and body["total"] == 4
    assert [r["id"] for r in body["items"]] == tiny.item_ids.raws(ids)
    np.testing.assert_allclose([r["score"] for r in body["items"]], scores, rtol=1e-5)
    default = client.get(f"/api/items/{raw}/similar").json()
    assert default["model"] == "neural" and len(default["items"]) == 10
    assert raw not in [r["id"] for r in default["items"]]


def test_similar_is_what_the_cli_answers(client, tiny, neural_bundle):
    """The server and `tastespace similar` run the same session code."""
    from typer.testing import CliRunner

    from tastespace.cli import app

    raw = tiny.item_ids.raw(7)
    result = CliRunner().invoke(app, ["similar", str(neural_bundle), str(raw), "-k", "6", "--json"])
    assert result.exit_code == 0, result.output
    cli = json.loads(result.stdout)
    body = client.get(f"/api/items/{raw}/similar", params={"k": 6}).json()
    assert body["item"] == cli["item"] and body["items"] == cli["similar"]


@pytest.mark.parametrize(
    "k",
    [
        pytest.param(0, marks=pytest.mark.fault("serve", "k = 0", "422 naming k")),
        pytest.param(-1, marks=pytest.mark.fault("serve", "negative k", "422 naming k")),
        pytest.param(1001, marks=pytest.mark.fault("serve", "k above 1000", "422 naming k")),
        pytest.param("ten", marks=pytest.mark.fault("serve", "k not a number", "422 naming k")),
    ],
)
def test_k_out_of_bounds_is_422(client, k):
    response = client.get("/api/items/1/similar", params={"k": k})
    assert response.status_code == 422 and response.json()["detail"].startswith("k: ")
    response = client.post("/api/recommend", json={"history": [1], "k": k})
    assert response.status_code == 422 and response.json()["detail"].startswith("k: ")


def test_k_at_the_bounds(client, tiny):
    assert client.get("/api/items/1/similar", params={"k": 1}).json()["total"] == 1
    body = client.post("/api/recommend", json={"history": [1], "k": 1000}).json()
    assert body["total"] == tiny.n_items - 1  # every other item, never padding


@pytest.mark.fault("serve", "page limit / offset / query length out of bounds", "422 naming it")
def test_limit_bounds(client):
    assert client.get("/api/items", params={"limit": 0}).status_code == 422
    assert client.get("/api/items", params={"limit": 501}).status_code == 422
    assert client.get("/api/items", params={"offset": -1}).status_code == 422
    assert client.get("/api/items", params={"q": "x" * 201}).status_code == 422


def test_recommend_with_ids_and_titles(client, tiny, titles):
    history = [tiny.item_ids.raw(0), titles[1], str(tiny.item_ids.raw(2))]
    body = client.post("/api/recommend", json={"history": history, "k": 5}).json()
    assert body["model"] == "neural" and body["total"] == 5 and body["skipped"] == []
    got = [r["id"] for r in body["items"]]
    assert not {tiny.item_ids.raw(i) for i in range(3)} & set(got)  # seen items excluded
    scores = [r["score"] for r in body["items"]]
    assert scores == sorted(scores, reverse=True)
    assert all(r["title"] and isinstance(r["genres"], list) for r in body["items"])


def test_recommend_matches_library(client, tiny, neural_bundle):
    from tastespace.models.base import Recommender
    from tastespace.models.histories import ItemIndices

    model = Recommender.load(neural_bundle)
    ids, scores = model.recommend(ItemIndices([[0, 4, 9]]), k=6)
    raws = tiny.item_ids.raws([0, 4, 9])
    body = client.post("/api/recommend", json={"history": raws, "k": 6}).json()
    assert [r["id"] for r in body["items"]] == tiny.item_ids.raws(ids[0])
    np.testing.assert_allclose([r["score"] for r in body["items"]], scores[0], rtol=1e-4)
    seen = client.post(
        "/api/recommend", json={"history": raws, "k": 50, "exclude_seen": False}
    ).json()
    assert set(raws) & {r["id"] for r in seen["items"]}  # own items may come back


def test_recommend_on_second_model(client, tiny):
    body = client.post("/api/recommend", json={"history": [1, 2], "k": 3, "model": "ease"})
    assert body.status_code == 200 and body.json()["model"] == "ease"


@pytest.mark.fault(
    "serve", "unknown item in an HTTP history", "404 naming it, or skipped with skip_unknown"
)
def test_unknown_history_item_is_404_or_skipped(client):
    response = client.post("/api/recommend", json={"history": [1, "qqqq zzzz xxxx"]})
    assert response.status_code == 404
    assert "qqqq zzzz xxxx" in response.json()["detail"]
    body = client.post(
        "/api/recommend", json={"history": [1, "qqqq zzzz xxxx"], "skip_unknown": True}
    ).json()
    assert body["skipped"] == ["qqqq zzzz xxxx"] and body["total"] == 10
    nothing = client.post(
        "/api/recommend", json={"history": ["qqqq zzzz xxxx"], "skip_unknown": True}
    )
    assert nothing.status_code == 200  # nothing known: the most popular items, flagged
    answer = nothing.json()
    assert answer["fallback"] is True and answer["skipped"] == ["qqqq zzzz xxxx"]
    assert answer["total"] == 10 and body["fallback"] is False


@pytest.mark.fault("serve", "ambiguous title in a history", "422 with the candidates")
def test_ambiguous_title_is_422_with_candidates(client, titles):
    word = titles[1].split()[1]
    response = client.post("/api/recommend", json={"history": [word]})
    assert response.status_code == 422
    body = response.json()
    assert "several items" in body["detail"]
    candidates = [c["title"] for c in body["candidates"]]
    assert len(candidates) >= 2 and all(word.lower() in t.lower() for t in candidates)
    assert all("id" in c for c in body["candidates"])


@pytest.mark.fault(
    "serve", "request body over --max-body-bytes (declared or streamed)", "413 naming the limit"
)
def test_oversized_body_is_413(client):
    declared = client.post(
        "/api/recommend",
        content=json.dumps({"history": list(range(60_000))}).encode(),
        headers={"content-type": "application/json"},
    )
    assert declared.status_code == 413
    assert "200,000 bytes" in declared.json()["detail"]

    def chunks():  # no Content-Length: counted as it streams
        yield b'{"history": ['
        for _ in range(100):
            yield b"1," * 2_000
        yield b"1]}"

    streamed = client.post(
        "/api/recommend", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413
    assert client.post("/api/recommend", json={"history": [1] * 5_000}).status_code == 200


@pytest.mark.fault("serve", "unknown model name", "404 naming it and the loaded models")
def test_unknown_model_is_404(client):
    for response in (
        client.get("/api/items", params={"model": "nope"}),
        client.get("/api/items/1/similar", params={"model": "nope"}),
        client.get("/api/map", params={"model": "nope"}),
        client.post("/api/recommend", json={"history": [1], "model": "nope"}),
    ):
        assert response.status_code == 404
        assert "unknown model 'nope'" in response.json()["detail"]
        assert "neural, ease" in response.json()["detail"]


def test_map_columns_and_caching(client, tiny):
    response = client.get("/api/map")
    assert response.status_code == 200 and response.headers["content-encoding"] == "gzip"
    body = response.json()
    n = tiny.n_items
    assert (body["model"], body["method"], body["total"]) == ("neural", "pca", n)
    assert body["ids"] == tiny.item_ids.raws(np.arange(n)) and body["titles"] == tiny.titles()
    xy = np.array([body["x"], body["y"]])
    assert xy.shape == (2, n) and xy.std(axis=1).min() > 0
    core = np.percentile(xy, [2, 98], axis=1)  # the central 96 % fills [-1, 1]
    assert np.abs(core).max() == pytest.approx(1.0, abs=1e-3)
    bags = tiny.items.bags["genres"]
    assert body["genres"] == list(bags.vocab)
    assert [body["genres"][g] for g in body["genre"]] == bags.first()
    assert body["popularity"] is None  # the synthetic catalog has no rating counts
    again = client.get("/api/map", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in again.headers and again.json() == body


def test_map_layout_reflects_the_space(client, tiny):
    """Items of one planted genre sit closer together than random pairs."""
    body = client.get("/api/map", params={"model": "ease"}).json()
    xy = np.array([body["x"], body["y"]]).T
    genre = np.array(body["genre"])
    same = genre[:, None] == genre[None, :]
    distance = np.linalg.norm(xy[:, None] - xy[None, :], axis=-1)
    off_diagonal = ~np.eye(len(xy), dtype=bool)
    assert distance[same & off_diagonal].mean() < distance[~same].mean()


def test_pages_and_docs(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="map"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"  # /?token=... stays here
    for asset in ("app.js", "mapview.js", "api.js", "style.css"):
        response = client.get(f"/static/{asset}")
        assert response.status_code == 200, asset
        assert "http://" not in response.text and "https://" not in response.text, asset
    assert client.get("/openapi.json").json()["paths"]["/api/recommend"]["post"]
    assert client.get("/docs").status_code == 200


def test_models_by_name_and_duplicate_folder_names(neural_bundle, tmp_path):
    import shutil

    from tastespace.serve.sessions import bundle_names

    copy = tmp_path / "neural"
    shutil.copytree(neural_bundle, copy)
    assert list(bundle_names([neural_bundle, copy])) == ["neural", "neural-2"]
    assert bundle_names({"a": neural_bundle}) == {"a": neural_bundle}
    from tastespace.errors import ConfigError

    with pytest.raises(ConfigError, match="at least one bundle"):
        bundle_names([])


@pytest.mark.fault("serve", "serving a folder with no bundle", "BundleError before serving")
def test_missing_bundle_fails_at_startup(tmp_path):
    from tastespace.errors import BundleError
    from tastespace.serve.app import create_app

    with pytest.raises(BundleError):
        create_app([tmp_path / "nothing-here"])


def test_gzip_payload_is_the_json(client):
    from tastespace.serve.maps import MapCache

    cache = MapCache()
    session = client.app.state.sessions["ease"]
    body, zipped = cache.get(session, "pca")
    assert gzip.decompress(zipped) == body
    assert cache.get(session, "pca")[0] is body  # computed once


def test_large_queries_run_on_the_thread_pool(client, monkeypatch):
    """Catalogs above the inline limit take the worker-thread path, with the same answers."""
    from tastespace.serve import state

    inline = client.get("/api/items/3/similar", params={"k": 5}).json()
    recommended = client.post("/api/recommend", json={"history": [1, 2], "k": 5}).json()
    monkeypatch.setattr(state, "INLINE_MAX_ITEMS", 0)
    assert client.get("/api/items/3/similar", params={"k": 5}).json() == inline
    assert client.post("/api/recommend", json={"history": [1, 2], "k": 5}).json() == recommended
    assert client.get("/api/items/987654/similar").status_code == 404


def test_recommend_explain_names_watched_items(client, tiny):
    history = tiny.item_ids.raws([0, 4, 9])
    plain = client.post("/api/recommend", json={"history": history, "k": 4, "model": "ease"}).json()
    assert all("because" not in r for r in plain["items"])
    body = client.post(
        "/api/recommend?explain=1", json={"history": history, "k": 4, "model": "ease"}
    ).json()
    assert [r["id"] for r in body["items"]] == [r["id"] for r in plain["items"]]
    for record in body["items"]:
        shares = [b["share"] for b in record["because"]]
        assert {b["id"] for b in record["because"]} <= set(history)
        assert shares == sorted(shares, reverse=True) and sum(shares) <= 1.0 + 1e-3  # rounded
