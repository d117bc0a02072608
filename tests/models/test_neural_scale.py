"""Neural training that scales with interactions: sparse tables, the sampled softmax, bounds."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from tastespace.data import load_dataset
from tastespace.errors import ConfigError
from tastespace.models.fitting import TrainingOptions
from tastespace.models.neural import NeuralRecommender
from tastespace.models.neural.batches import BatchMaker, take_items
from tastespace.models.neural.modules import TwoTower
from tastespace.models.neural.optim import TableAwareAdam
from tastespace.models.progress import Progress

SMALL = dict(dim=8, hidden=16, item_hidden=16, batch_size=32, validation_users=0.0)


def _one_step(sampled: bool, seed: int = 0) -> tuple[dict, dict, dict, np.ndarray]:
    """Weights before and after one optimiser step on one batch, the batch, and its rows."""
    ds = load_dataset("synthetic:tiny")
    model = NeuralRecommender(epochs=1, seed=seed, sparse_gradients="on", **SMALL)
    matrix = model._prepare(ds, torch.device("cpu"))
    module = model.module_
    batches = model._batch_maker(ds, matrix, np.arange(matrix.shape[0]), torch.device("cpu"))
    batches.sampled, batches.num_negatives = sampled, 16
    batches.__post_init__()
    optimiser = TableAwareAdam(module, lr=0.01, weight_decay=1e-6)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    rows = np.arange(10, 42)
    batch = batches(rows, torch.Generator().manual_seed(seed))
    loss = module(batch)
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    return before, module.state_dict(), batch, rows


def _moved_rows(before: torch.Tensor, after: torch.Tensor) -> np.ndarray:
    return np.flatnonzero((before != after).any(dim=1).numpy())


def test_a_sparse_step_moves_only_the_rows_its_batch_used():
    before, after, batch, rows = _one_step(sampled=True)
    users = _moved_rows(before["user_table.weight"], after["user_table.weight"])
    np.testing.assert_array_equal(users, rows)
    history = _moved_rows(before["user_tower.history.weight"], after["user_tower.history.weight"])
    np.testing.assert_array_equal(history, np.unique(batch["history_indices"].numpy()))
    ids = _moved_rows(before["item_tower.ids.weight"], after["item_tower.ids.weight"])
    np.testing.assert_array_equal(ids, np.unique(batch["item_ids"].numpy()))
    assert 0 < len(ids) < 200  # candidates only, not the catalog
    # The dense layers all move.
    assert not torch.equal(before["item_tower.mlp.0.weight"], after["item_tower.mlp.0.weight"])


def test_dense_tables_move_every_row_the_old_way():
    model = NeuralRecommender(epochs=1, sparse_gradients="off", **SMALL)
    model.fit(load_dataset("synthetic:tiny"))
    assert not any(getattr(m, "sparse", False) for m in model.module_.modules()), (
        "sparse_gradients='off' must build dense tables"
    )


def test_sampled_loss_estimates_the_full_softmax_with_many_draws():
    """With far more draws than items the log-Q corrected estimate converges to the full NLL."""
    gen = torch.Generator().manual_seed(0)
    n_users, n_items, dim = 6, 40, 5
    users, items = (
        torch.randn(n_users, dim, generator=gen),
        torch.randn(n_items, dim, generator=gen),
    )
    bias = torch.randn(n_items, generator=gen)
    targets = sp.random(n_users, n_items, density=0.15, random_state=1, format="csr")
    targets.data[:] = 1.0
    tower = TwoTower.__new__(TwoTower)
    torch.nn.Module.__init__(tower)
    tower.temperature = None
    full = tower._nll(users, items, bias, {"targets": torch.as_tensor(targets.toarray())})
    counts = np.arange(1, n_items + 1, dtype=np.float32)
    maker = BatchMaker(
        matrix=targets.astype(np.float32),
        train_rows=np.arange(n_users),
        users=_no_features(n_users),
        catalog=_id_only_catalog(n_items),
        item_counts=counts,
        unknown_id=n_items,
        device=torch.device("cpu"),
        sampled=True,
        num_negatives=200_000,
        dropout=0.0,
        tied=False,
    )
    batch = maker(np.arange(n_users), torch.Generator().manual_seed(3))
    rows = batch["item_ids"]
    estimate = tower._nll(users, items[rows], bias[rows], batch)
    assert abs(float(estimate) - float(full)) < 0.02 * float(full)


def _no_features(n: int):
    from tastespace.features.encoders import EncodedFeatures

    return EncodedFeatures(bags={}, numeric=np.zeros((n, 0), np.float32))


def _id_only_catalog(n: int) -> dict:
    return {
        "item_ids": torch.arange(n),
        "item_bags": {},
        "item_numeric": torch.zeros(n, 0),
    }


def test_take_items_gathers_ragged_bags():
    inputs = {
        "item_ids": torch.tensor([10, 11, 12]),
        "item_bags": {"g": (torch.tensor([7, 8, 9]), torch.tensor([0, 1, 1, 3]))},
        "item_numeric": torch.tensor([[0.0], [1.0], [2.0]]),
    }
    out = take_items(inputs, torch.tensor([2, 0]))
    assert out["item_ids"].tolist() == [12, 10]
    indices, offsets = out["item_bags"]["g"]
    assert indices.tolist() == [8, 9, 7] and offsets.tolist() == [0, 2, 3]
    assert out["item_numeric"].ravel().tolist() == [2.0, 0.0]


def test_fit_leaves_torch_threads_and_global_generator_as_they_were():
    torch.manual_seed(1234)
    state, threads = torch.get_rng_state(), torch.get_num_threads()
    NeuralRecommender(epochs=1, **SMALL).fit(
        load_dataset("synthetic:tiny"), training=TrainingOptions(threads=1)
    )
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.get_rng_state(), state)


def test_seeded_fits_are_identical_whatever_the_global_seed():
    ds = load_dataset("synthetic:tiny")
    torch.manual_seed(1)
    first = NeuralRecommender(epochs=2, **SMALL).fit(ds).item_vectors()
    torch.manual_seed(2)
    second = NeuralRecommender(epochs=2, **SMALL).fit(ds).item_vectors()
    np.testing.assert_array_equal(first, second)


def test_validation_is_bounded_to_validation_max_users():
    ds = load_dataset("synthetic:tiny")
    events: list[Progress] = []
    model = NeuralRecommender(
        epochs=3, patience=5, **{**SMALL, "validation_users": 0.3}, validation_max_users=20
    )
    model.fit(ds, callback=events.append)
    matrix = (ds.interactions > 0).astype(np.float32).tocsr()
    train_rows, held = model._validation_split(matrix, None, model.config.seed)
    assert held[0].shape[0] == 20 and len(train_rows) == ds.n_users - 20
    scored = [e for e in events if e.scored]
    assert [e.epoch for e in scored] == [1, 2, 3] and all(e.score is not None for e in scored)


@pytest.mark.fault("neural", "device cuda on a machine without CUDA", "ConfigError names cpu/auto")
def test_cuda_without_cuda_is_a_config_error_naming_the_way_out():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match=r"device 'cuda' asked for.*use device='cpu'"):
        NeuralRecommender(**SMALL).fit(
            load_dataset("synthetic:tiny"), training=TrainingOptions(device="cuda")
        )


@pytest.mark.fault("neural", "device name misspelt", "ConfigError lists the valid names")
def test_unknown_device_name_is_refused_before_training():
    with pytest.raises(ConfigError, match="device must be auto, cpu, cuda or cuda:N, got 'gpu'"):
        NeuralRecommender(**SMALL).fit(
            load_dataset("synthetic:tiny"), training=TrainingOptions(device="gpu")
        )


def test_auto_patience_waits_about_sixty_steps_within_one_to_thirty_epochs():
    from tastespace.models.neural.training import auto_patience

    # ml-latest-small (2 steps an epoch), ml-100k (4), a 1M set (78 steps), 20M (781)
    assert [auto_patience(steps) for steps in (2, 4, 25, 30, 78, 781)] == [30, 15, 3, 2, 1, 1]


def test_early_stopping_scores_epochs_with_the_exact_solve_whatever_the_catalog():
    # the candidate solve serves big catalogs; which epoch is kept must not depend on it
    ds = load_dataset("synthetic:tiny")
    options = dict(epochs=3, patience=5, **{**SMALL, "validation_users": 0.3})
    exact = NeuralRecommender(**options, fold_in_candidates=0).fit(ds)
    candidates = NeuralRecommender(**options, fold_in_candidates=8, fold_in_exact_max_items=0)
    candidates.fit(ds)
    scores = [[h["val_recall@20"] for h in m.train_report_.history] for m in (exact, candidates)]
    assert scores[0] == scores[1]
    np.testing.assert_array_equal(exact.item_vectors(), candidates.item_vectors())
    # ...while recommend does use the candidate solve there
    histories = ds.interactions[:5]
    assert not np.array_equal(exact.user_vectors(histories), candidates.user_vectors(histories))
