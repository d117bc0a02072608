"""``item_tower`` free / concat / sum: the wiring, cold items, bundles, no features, the tail."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from tastespace.data import load_dataset
from tastespace.data.dataset import FeatureTable
from tastespace.errors import ConfigError, ConfigWarning
from tastespace.models.base import Recommender
from tastespace.models.neural import NeuralRecommender
from tastespace.models.neural.modules import ITEM_TOWERS, ItemTower

SMALL = dict(
    epochs=3, dim=16, hidden=32, item_hidden=32, batch_size=128, lr=3e-3, validation_users=0.0
)


def tower_inputs(n: int, genres: list[list[int]]) -> tuple[dict, torch.Tensor]:
    """Item-tower inputs for ``n`` items with one genre bag and one numeric column."""
    indices = torch.tensor([g for row in genres for g in row])
    offsets = torch.tensor(np.concatenate([[0], np.cumsum([len(r) for r in genres])]))
    return {"genres": (indices, offsets)}, torch.linspace(-1, 1, n)[:, None]


@pytest.mark.parametrize("form", ITEM_TOWERS)
def test_known_ids_use_features_only_under_concat_and_sum(form):
    torch.manual_seed(0)
    tower = ItemTower(3, {"genres": 4}, {"genres": 2}, 1, hidden=8, dim=5, form=form)
    ids = torch.tensor([0, 1, 2, 3])  # 3 is the unknown ID
    bags, numeric = tower_inputs(4, [[1], [2], [3], [1]])
    swapped, _ = tower_inputs(4, [[3], [1], [2], [2]])
    with torch.no_grad():
        vectors, bias = tower(ids, bags, numeric)
        moved, _ = tower(ids, swapped, numeric)
        content, content_bias = tower.content(bags, numeric)
        (warm, _), (trained_content, _) = tower.with_content(ids, bags, numeric)
    assert vectors.shape == (4, 5) and bias.shape == (4,)
    # The unknown ID takes the content path under every form, and with_content agrees.
    torch.testing.assert_close(vectors[3], content[3])
    torch.testing.assert_close(bias[3], content_bias[3])
    torch.testing.assert_close(warm, vectors)
    torch.testing.assert_close(trained_content, content)
    known_moved = not torch.allclose(vectors[:3], moved[:3])
    assert known_moved == (form != "free")
    assert not torch.allclose(vectors[3], moved[3])  # cold items always follow their features


def with_cold_items(dataset, items: np.ndarray):
    """``dataset`` with every interaction of ``items`` removed (they stay in the catalog)."""
    matrix = dataset.interactions.tocsr(copy=True)
    matrix.data = np.where(np.isin(matrix.indices, items), 0, matrix.data).astype(np.float32)
    matrix.eliminate_zeros()
    return replace(dataset, interactions=matrix, timestamps=None)


@pytest.mark.parametrize("form", ITEM_TOWERS)
def test_cold_items_are_served_and_the_bundle_round_trips(form, planted_split, tmp_path):
    cold = np.array([3, 40, 77])
    train = with_cold_items(planted_split.train, cold)
    model = NeuralRecommender(item_tower=form, **SMALL).fit(train)
    assert np.all(model.item_counts_[cold] == 0)
    vectors, bias = model.embed_items(train.items.take(cold))
    np.testing.assert_allclose(model.item_vectors()[cold], vectors, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.item_bias()[cold], bias, rtol=1e-5, atol=1e-6)
    # New items join without refitting (add-items) and take the same path.
    grown = model.with_items([10_001, 10_002], train.items.take(cold[:2]))
    np.testing.assert_allclose(grown.item_vectors()[-2:], vectors[:2], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(grown.item_vectors()[: train.n_items], model.item_vectors())
    grown.save(tmp_path / "bundle")
    loaded = Recommender.load(tmp_path / "bundle")
    assert loaded.config.item_tower == form
    np.testing.assert_array_equal(loaded.item_vectors(), grown.item_vectors())
    np.testing.assert_array_equal(loaded.item_bias(), grown.item_bias())
    np.testing.assert_array_equal(loaded.embed_items(train.items.take(cold))[0], vectors)
    fold_in = planted_split.test.fold_in
    held = sp.hstack([fold_in, sp.csr_matrix((fold_in.shape[0], 2))]).tocsr()  # + 2 new items
    np.testing.assert_array_equal(loaded.recommend(held, k=5)[0], grown.recommend(held, k=5)[0])


def bare(dataset):
    """The same interactions as a plain user,item,rating file gives: no features at all."""
    return replace(
        dataset,
        items=FeatureTable(pd.DataFrame(index=range(dataset.n_items))),
        users=FeatureTable(pd.DataFrame(index=range(dataset.n_users))),
    )


@pytest.mark.parametrize(
    ("form", "becomes"),
    [("concat", "its ID embedding through the MLP"), ("sum", "its ID row plus one vector")],
)
def test_no_item_features_degrade_to_the_id_and_say_so(form, becomes, planted_split):
    train = bare(with_cold_items(planted_split.train, np.array([5])))
    with pytest.warns(ConfigWarning, match=f"item_tower='{form}'.*no item features.*{becomes}"):
        model = NeuralRecommender(item_tower=form, **SMALL).fit(train)
    vectors = model.item_vectors()
    assert vectors.shape == (train.n_items, 16) and np.all(np.isfinite(vectors))
    cold_vector = model.embed_items(train.items.take([5]))[0][0]
    np.testing.assert_allclose(vectors[5], cold_vector, atol=1e-6)
    ids, _ = model.recommend(planted_split.test.fold_in, k=5)
    assert ids.shape == (planted_split.test.fold_in.shape[0], 5) and (ids >= 0).all()


def test_free_towers_do_not_warn_without_features(planted_split):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConfigWarning)
        NeuralRecommender(**{**SMALL, "epochs": 1}).fit(bare(planted_split.train))


def test_unknown_item_tower_names_the_choices():
    expected = "NeuralConfig.item_tower='mlp': expected one of 'free', 'concat', 'sum'"
    with pytest.raises(ConfigError, match=re.escape(expected)):
        NeuralRecommender(item_tower="mlp")


def noisy_tail(seed: int = 7, n_tail: int = 32):
    """Planted genres decide taste; ``n_tail`` items keep their genre but lose their real
    interactions, each watched instead by 2 random users — warm, with IDs that carry noise."""
    dataset = load_dataset(f"synthetic:users=400,items=120,genres=4,noise=0.05,seed={seed}")
    rng = np.random.default_rng(0)
    tail = np.sort(rng.choice(dataset.n_items, n_tail, replace=False))
    matrix = with_cold_items(dataset, tail).interactions.tolil()
    for item in tail:
        matrix[rng.choice(dataset.n_users, 2, replace=False), item] = 1.0
    return replace(dataset, interactions=matrix.tocsr().astype(np.float32), timestamps=None), tail


def test_concat_and_sum_put_warm_tail_items_with_their_features_genre():
    dataset, tail = noisy_tail()
    genre = dataset.items.frame["planted_genre"].to_numpy()
    rest = np.setdiff1d(np.arange(dataset.n_items), tail)
    purity = {}
    for form in ITEM_TOWERS:
        model = NeuralRecommender(item_tower=form, **{**SMALL, "epochs": 10}).fit(dataset)
        assert model.item_counts_[tail].min() == 2  # warm: the ID rows exist and train
        unit = model.item_vectors() / np.linalg.norm(model.item_vectors(), axis=1, keepdims=True)
        nearest = rest[np.argsort(-(unit[tail] @ unit[rest].T), axis=1)[:, :10]]
        purity[form] = float((genre[nearest] == genre[tail][:, None]).mean())
    # 4 genres: chance is 0.25. Free ID rows see only the noise; the features know the genre.
    assert purity["free"] < 0.4, purity
    assert min(purity["concat"], purity["sum"]) > max(0.55, purity["free"] + 0.2), purity


def test_cli_fits_each_form_on_a_plain_csv_and_refuses_an_unknown_one(tmp_path):
    """Through the real entry point: ``-p item_tower=sum`` on user,item,rating rows trains,
    warns in one line that there are no features, and the bundle answers; a typo exits 2."""
    rows = [f"u{u},{i},5" for u in range(40) for i in ((1, 2, 3) if u % 2 else (4, 5, 6))]
    (tmp_path / "ratings.csv").write_text("user,item,rating\n" + "\n".join(rows) + "\n")
    small = ["epochs=2", "dim=8", "hidden=16", "item_hidden=16", "validation_users=0"]
    options = [arg for value in ["item_tower=sum", *small] for arg in ("-p", value)]
    fit = ["fit", "--data", str(tmp_path / "ratings.csv"), "--out", str(tmp_path / "m")]
    done = run_cli(*fit, *options)
    assert done.returncode == 0, done.stderr
    assert "warning: item_tower='sum': the catalog has no item features" in done.stderr
    similar = run_cli("similar", str(tmp_path / "m"), "1", "-k", "2", "--json")
    assert similar.returncode == 0, similar.stderr
    assert len(json.loads(similar.stdout)["similar"]) == 2
    refused = run_cli(*fit, "-p", "item_tower=mlp")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "item_tower='mlp': expected one of 'free', 'concat', 'sum'" in refused.stderr


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tastespace", *args], capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("form", ITEM_TOWERS)
def test_sparse_id_tables_move_only_the_batch_rows_under_every_form(form):
    """With sparse gradients a step moves the ID rows of its candidates (and, under concat /
    sum, the unknown row the content pass used), never the rest of the catalog."""
    from tastespace.models.neural.optim import TableAwareAdam

    ds = load_dataset("synthetic:tiny")
    model = NeuralRecommender(item_tower=form, sparse_gradients="on", **{**SMALL, "epochs": 1})
    matrix = model._prepare(ds, torch.device("cpu"))
    module = model.module_
    assert module.item_tower.ids.sparse
    batches = model._batch_maker(ds, matrix, np.arange(matrix.shape[0]), torch.device("cpu"))
    batches.sampled, batches.num_negatives = True, 16
    batches.__post_init__()
    optimiser = TableAwareAdam(module, lr=0.01, weight_decay=1e-6)
    before = module.item_tower.ids.weight.detach().clone()
    batch = batches(np.arange(10, 42), torch.Generator().manual_seed(0))
    loss = module(batch)
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    after = module.item_tower.ids.weight.detach()
    moved = np.flatnonzero((before != after).any(dim=1).numpy())
    used = np.unique(batch["item_ids"].numpy())
    if form != "free":
        used = np.union1d(used, [module.item_tower.unknown_id])
    np.testing.assert_array_equal(moved, used)
    assert len(used) < ds.n_items
