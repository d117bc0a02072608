"""Same history in, same ranking out over HTTP: alone or batched with 31 others."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import numpy as np
import pytest

from tastespace.serve.app import create_app

N_USERS = 32
N_WARM, N_COLD = 40, 20
GENRES = ("Comedy", "Drama", "Crime", "Sci-Fi")


@pytest.fixture(scope="module")
def tied_bundles(tmp_path_factory) -> dict[str, Path]:
    """Bundles over a catalog whose 20 cold items (no ratings) come in two genre groups, so
    their vectors (neural) or scores (EASE: all zero) tie exactly: the case where batching
    once changed the order."""
    from tastespace.data import load_dataset
    from tastespace.errors import DataWarning
    from tastespace.models.baselines import EASE
    from tastespace.models.neural import NeuralRecommender

    folder = tmp_path_factory.mktemp("tied")
    rng = np.random.default_rng(3)
    with (folder / "items.csv").open("w") as handle:
        handle.write("id,title,genres\n")
        for item in range(1, N_WARM + N_COLD + 1):
            genre = GENRES[item % 4] if item <= N_WARM else GENRES[item % 2]
            handle.write(f"{item},Film {item} ({1980 + item}),{genre}\n")
    with (folder / "ratings.csv").open("w") as handle:
        handle.write("user,item,rating\n")
        for user in range(150):
            group = user % 4
            liked = [i for i in range(1, N_WARM + 1) if i % 4 == group]
            for item in rng.choice(liked, size=6, replace=False):
                handle.write(f"u{user},{item},5\n")
    with pytest.warns(DataWarning, match="20 item ids have no interactions"):
        data = load_dataset(
            folder / "ratings.csv", item_features=folder / "items.csv", keep_unrated=True
        )
    assert data.n_items == N_WARM + N_COLD
    return {
        "neural": NeuralRecommender(epochs=3, dim=8, hidden=16).fit(data).save(folder / "neural"),
        "ease": EASE(l2=20.0).fit(data).save(folder / "ease"),
    }


def histories() -> list[list[int]]:
    """32 different histories of 1-6 warm raw ids."""
    return [[1 + (7 * u + 3 * j) % N_WARM for j in range(1 + u % 6)] for u in range(N_USERS)]


async def ask_all(app, bodies: list[dict], together: bool) -> list[dict]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:

        async def ask(body: dict) -> dict:
            response = await client.post("/api/recommend", json=body)
            assert response.status_code == 200, response.text
            return response.json()

        if together:
            return list(await asyncio.gather(*(ask(body) for body in bodies)))
        return [await ask(body) for body in bodies]


@pytest.mark.parametrize("kind", ["neural", "ease"])
def test_concurrent_requests_get_what_they_get_alone(kind, tied_bundles):
    app = create_app([tied_bundles[kind]])
    batcher = next(iter(app.state.served.batchers.values()))
    bodies = [{"history": h, "k": N_WARM + N_COLD} for h in histories()]
    alone = asyncio.run(ask_all(app, bodies, together=False))
    assert batcher.calls == N_USERS
    together = asyncio.run(ask_all(app, bodies, together=True))
    assert batcher.calls < 2 * N_USERS  # the concurrent asks did share model calls
    for user, (one, many) in enumerate(zip(alone, together, strict=True)):
        assert [r["id"] for r in many["items"]] == [r["id"] for r in one["items"]], user
        assert [r["score"] for r in many["items"]] == [r["score"] for r in one["items"]], user
