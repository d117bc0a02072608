"""The neural two-tower model: the shared contract plus cold start, feature tables, bad input."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import torch

from tastespace.data.dataset import FeatureTable
from tastespace.errors import ConfigError, DataWarning
from tastespace.models.base import Recommender
from tastespace.models.fitting import TrainingOptions
from tastespace.models.neural import NeuralRecommender
from tests.models.contract import ModelContract

FAST = dict(
    epochs=25,
    dim=32,
    hidden=64,
    item_hidden=64,
    batch_size=128,
    lr=3e-3,
    patience=25,
    validation_users=0.0,
)


class TestNeural(ModelContract):
    def make_model(self, seed: int = 0):
        return NeuralRecommender(seed=seed, **FAST)

    def test_genre_table_is_learned_in_two_dimensions(self, planted_split):
        model = NeuralRecommender(genre_dim=2, **{**FAST, "epochs": 3}).fit(planted_split.train)
        table = model.feature_embeddings("genre")
        assert set(table) == set(planted_split.train.items.bags["genres"].vocab)
        assert all(v.shape == (2,) for v in table.values())
        with pytest.raises(KeyError, match="known"):
            model.feature_embeddings("colour")

    def test_cold_start_items_land_near_their_genre(self, planted):
        from tastespace.data.splits import strong_generalization

        genre = planted.items.frame["planted_genre"].to_numpy()
        rng = np.random.default_rng(0)
        cold = rng.choice(planted.n_items, 36, replace=False)
        split = strong_generalization(planted, n_heldout=30, seed=0)
        train = split.train
        keep = ~np.isin(train.interactions.indices, cold)
        matrix = train.interactions.copy()
        matrix.data = np.where(keep, matrix.data, 0).astype(np.float32)
        matrix.eliminate_zeros()
        train.interactions = matrix
        train.timestamps = None
        model = NeuralRecommender(**FAST).fit(train)
        assert np.all(model.item_counts_[cold] == 0)
        vectors, _ = model.embed_items(planted.items.take(cold))
        unit = model.item_vectors() / np.linalg.norm(model.item_vectors(), axis=1, keepdims=True)
        warm = np.setdiff1d(np.arange(planted.n_items), cold)
        sims = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)) @ unit[warm].T
        nearest = warm[np.argsort(-sims, axis=1)[:, :5]]
        purity = float((genre[nearest] == genre[cold][:, None]).mean())
        # Secondary genres share the bag with the primary one, so 2× chance is a strong result.
        assert purity > 2 / len(np.unique(genre)), f"cold-start genre purity {purity:.2f}"

    def test_nan_and_missing_features_fall_back_documented(self, fitted, planted):
        table = planted.items.take(np.arange(3))
        frame = table.frame.copy()
        frame.loc[0, "year"] = np.nan
        with_nan, _ = fitted.embed_items(FeatureTable(frame, table.bags))
        assert np.all(np.isfinite(with_nan))
        without_year = FeatureTable(frame.drop(columns=["year"]), table.bags)
        with pytest.warns(DataWarning, match="year"):
            vectors, _ = fitted.embed_items(without_year)
        assert vectors.shape == (3, fitted.item_vectors().shape[1])

    def test_non_numeric_feature_is_a_clear_error(self, fitted, planted):
        from tastespace.errors import DataError

        table = planted.items.take(np.arange(2))
        frame = table.frame.copy()
        frame["year"] = ["nineteen", "eighty"]
        with pytest.raises(DataError, match="year"):
            fitted.embed_items(FeatureTable(frame, table.bags))

    def test_interactions_only_dataset_trains(self, planted_split):
        from dataclasses import replace

        bare = replace(
            planted_split.train,
            items=FeatureTable(pd.DataFrame(index=range(planted_split.train.n_items))),
            users=FeatureTable(pd.DataFrame(index=range(planted_split.train.n_users))),
        )
        model = NeuralRecommender(**{**FAST, "epochs": 3}).fit(bare)
        assert model.item_vectors().shape == (bare.n_items, 32)

    def test_a_history_folds_in_to_the_same_vector_alone_or_batched(self, fitted, planted_split):
        """Fewer than 16 rows took other kernels in the user tower: one history's
        ``user_vectors`` differed in the last bits from its row in a batch of 40."""
        histories = planted_split.test.fold_in[:40]
        batch = fitted.user_vectors(histories)
        for row in (0, 9, 39):
            np.testing.assert_array_equal(fitted.user_vectors(histories[row])[0], batch[row])

    def test_a_cold_item_gets_the_same_vector_alone_or_batched(self, fitted, planted):
        """Fewer than 16 rows took other kernels in the item tower's content path."""
        rows = np.arange(40)
        vectors, bias = fitted.embed_items(planted.items.take(rows))
        for row in (0, 17, 39):
            alone, alone_bias = fitted.embed_items(planted.items.take(rows[row : row + 1]))
            np.testing.assert_array_equal(alone[0], vectors[row])
            np.testing.assert_array_equal(alone_bias[0], bias[row])
        empty, empty_bias = fitted.embed_items(planted.items.take(rows[:0]))
        assert empty.shape == (0, vectors.shape[1]) and empty_bias.shape == (0,)

    def test_attention_pooling_folds_in_the_same_vector_alone_or_batched(self, planted_split):
        """The pooling's softmax was shifted by the largest logit of the whole batch, so a
        history's weights (and vector) depended on who shared it."""
        model = NeuralRecommender(pooling="attention", fold_in="encoder", **FAST)
        model.fit(planted_split.train)
        histories = planted_split.test.fold_in[:40]
        batch = model.user_vectors(histories)
        for row in (0, 9, 39):
            np.testing.assert_array_equal(model.user_vectors(histories[row])[0], batch[row])

    def test_solved_vectors_beat_the_towers_start_on_the_likelihood(self, fitted, planted_split):
        import dataclasses

        import torch

        held = planted_split.test.fold_in.tocsr()
        solved = fitted.user_vectors(held)
        config = fitted.config
        try:
            fitted.config = dataclasses.replace(config, fold_in="encoder")
            start = fitted.user_vectors(held)  # the user tower's prediction alone
        finally:
            fitted.config = config
        assert not np.allclose(solved, start)
        items = torch.as_tensor(fitted.item_vectors())
        bias = torch.as_tensor(fitted.item_bias())
        x = torch.as_tensor((held > 0).toarray(), dtype=torch.float32)

        def objective(users: np.ndarray) -> float:
            u = torch.as_tensor(users)
            nll = -(x * torch.log_softmax(u @ items.T + bias, 1)).sum()
            return float(nll + fitted.config.vector_l2 * u.square().sum())

        assert objective(solved) < objective(start)

    def test_training_users_free_vectors_are_not_part_of_the_bundle(self, fitted, tmp_path):
        assert fitted.module_.user_table is None
        fitted.save(tmp_path / "bundle")
        weights = (tmp_path / "bundle").glob("*.safetensors")
        from safetensors.numpy import load_file

        names = {k for f in weights for k in load_file(f)}
        assert names and not any("user_table" in k for k in names)

    def test_sampled_softmax_also_learns(self, planted_split, planted):
        model = NeuralRecommender(**{**FAST, "loss": "sampled", "num_negatives": 64}).fit(
            planted_split.train
        )
        genre = planted.items.frame["planted_genre"].to_numpy()
        ids, _ = model.similar_items(np.arange(planted.n_items), k=5)
        assert (genre[ids] == genre[:, None]).mean() > 3 / len(np.unique(genre))


def test_solve_reaches_the_stationary_point_whatever_the_start():
    """Fold-in solves a convex problem: any start ends at the point where the gradient vanishes."""
    import scipy.sparse as sp
    import torch

    from tastespace.models.neural.fold_in import solve_user_vectors

    gen = torch.Generator().manual_seed(0)
    items, bias = torch.randn(30, 4, generator=gen), torch.randn(30, generator=gen)
    histories = sp.csr_matrix(np.eye(30, dtype=np.float32)[[0, 1, 2, 7, 9]][:, :30])
    histories = sp.csr_matrix(histories.toarray() + np.roll(histories.toarray(), 3, axis=1))

    def solve(start: torch.Tensor) -> torch.Tensor:
        return solve_user_vectors(items, bias, histories, start, l2=0.5, steps=1500, lr=0.05)

    from_zero = solve(torch.zeros(5, 4))
    from_far = solve(torch.full((5, 4), 3.0))
    np.testing.assert_allclose(from_zero.numpy(), from_far.numpy(), atol=2e-3)
    users = from_zero.clone().requires_grad_(True)
    x = torch.as_tensor(histories.toarray())
    loss = -(x * torch.log_softmax(users @ items.T + bias, 1)).sum() + 0.5 * users.square().sum()
    loss.backward()
    assert float(users.grad.abs().max()) < 1e-2  # stationary: the convex optimum


def test_weight_average_starts_from_the_initial_weights_and_waits_its_horizon():
    """Each step moves the average (1 - decay) of the way; it is ready after 1/(1-decay) steps."""
    import torch

    from tastespace.models.neural.training import WeightAverage

    layer = torch.nn.Linear(2, 1)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    average = WeightAverage(layer, decay=0.9)
    with torch.no_grad():
        layer.weight.fill_(3.0)
    for step in range(1, 11):
        assert not average.ready
        average.update(layer)
        expected = 3.0 - 2.0 * 0.9**step
        np.testing.assert_allclose(average.state["weight"].numpy(), expected, rtol=1e-6)
    assert average.ready


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("lr", -1.0, "lr must be > 0"),
        ("batch_size", 0, "batch_size must be > 0"),
        ("history_dropout", 1.0, "history_dropout must be in [0, 1)"),
        ("ema_decay", 1.5, "ema_decay must be in [0, 1)"),
        ("weight_decay", -1e-6, "weight_decay must be ≥ 0"),
        ("vector_l2", -1.0, "vector_l2 must be ≥ 0"),
        ("fold_in_steps", 0, "fold_in_steps must be > 0"),
    ],
)
def test_bad_hyper_parameters_are_named_before_training(option, value, expected):
    with pytest.raises(ConfigError, match=re.escape(f"NeuralConfig.{expected}, got {value}")):
        NeuralRecommender(**{option: value})


def test_solve_fold_in_refuses_cosine_scores_and_names_the_way_out():
    with pytest.raises(ConfigError, match="fold_in='encoder'"):
        NeuralRecommender(cosine_temperature=0.1)
    assert NeuralRecommender(cosine_temperature=0.1, fold_in="encoder").config.fold_in == "encoder"


def test_load_then_save_keeps_the_training_report(planted_split, tmp_path):
    model = NeuralRecommender(**{**FAST, "epochs": 3, "validation_users": 0.1}).fit(
        planted_split.train
    )
    report = model.train_report_.to_json()
    assert report["epochs_run"] >= 1 and report["best_val_recall@20"] is not None
    model.save(tmp_path / "a")
    Recommender.load(tmp_path / "a").save(tmp_path / "b")
    second = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert second["extra"]["train_report"] == json.loads(json.dumps(report))


def test_no_validation_is_recorded_as_missing_not_zero(planted_split):
    model = NeuralRecommender(**{**FAST, "epochs": 2}).fit(planted_split.train)
    history = model.train_report_.to_json()["history"]
    assert [row["val_recall@20"] for row in history] == [None, None]
    assert model.train_report_.to_json()["best_val_recall@20"] is None


def test_run_options_stay_out_of_the_manifest(planted_split, tmp_path):
    model = NeuralRecommender(**{**FAST, "epochs": 1}).fit(
        planted_split.train, training=TrainingOptions(device="cpu", threads=1)
    )
    model.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "manifest.json").read_text())["config"]
    assert not {"device", "threads", "checkpoint_dir", "resume"} & set(config)
    # Bundles written before the move still load: the retired keys are dropped.
    assert NeuralRecommender.Config.from_json({**config, "device": "cpu", "resume": False}) == (
        model.config
    )


def test_validation_metric_is_injected_and_drives_early_stopping(planted_split):
    seen = []

    def only_worse(scores, targets):
        seen.append((scores.shape, targets.shape, bool(np.isneginf(scores).any())))
        return -float(len(seen))  # every epoch scores below the first

    model = NeuralRecommender(**{**FAST, "epochs": 20, "patience": 2, "validation_users": 0.1})
    model.fit(planted_split.train, metric=only_worse)
    report = model.train_report_
    assert (report.epochs_run, report.best_epoch, report.best_score) == (3, 1, -1.0)
    n_val = seen[0][0][0]
    assert seen[0][0] == (n_val, planted_split.train.n_items) == seen[0][1] and seen[0][2]


def test_a_small_request_ranks_from_the_solve_as_the_exact_index_does(planted_split, monkeypatch):
    """Up to QUERY_BLOCK users on the candidate solve by exact passes are ranked from its last
    pass (index/refine.py); 40 users go through the index. Both must give the same bits."""
    import tastespace.models.neural.model as neural_model

    options = dict(fold_in_candidates=40, fold_in_exact_max_items=0, fold_in_retrieval="passes")
    model = NeuralRecommender(seed=0, **{**FAST, "epochs": 3}, **options).fit(planted_split.train)
    ranked = []
    solve_and_rank = neural_model.solve_and_rank

    def counted(*args, **kwargs):
        ranked.append(args[2].shape[0])
        return solve_and_rank(*args, **kwargs)

    monkeypatch.setattr(neural_model, "solve_and_rank", counted)
    history = planted_split.test.fold_in[:40]
    batch_ids, batch_scores = model.recommend(history, k=10)
    assert ranked == []  # 40 users: the index
    for row in (0, 7, 16, 39):
        ids, scores = model.recommend(history[row], k=10)
        np.testing.assert_array_equal(ids[0], batch_ids[row], err_msg=f"history {row}")
        np.testing.assert_array_equal(scores[0], batch_scores[row], err_msg=f"history {row}")
    few_ids, few_scores = model.recommend(history[3:8], k=10)
    np.testing.assert_array_equal(few_ids, batch_ids[3:8])
    np.testing.assert_array_equal(few_scores, batch_scores[3:8])
    assert len(ranked) == 5  # the four alone and the five together went through the solve


def test_a_user_alone_gets_the_batch_answer_when_clusters_are_read_in_part(planted_split):
    """Retrieval from clusters reads 8 items per candidate: with 10 candidates a fifth of the
    catalog. A user's rounds, vector and ranking must not depend on the request's size (a
    small request once took an exact last pass, and its answer differed from the batch's)."""
    options = dict(fold_in_candidates=10, fold_in_exact_max_items=0)
    model = NeuralRecommender(seed=0, **{**FAST, "epochs": 3}, **options).fit(planted_split.train)
    assert 8 * 10 < planted_split.train.n_items / 2
    history = planted_split.test.fold_in[:40]
    vectors = model.user_vectors(history)
    batch_ids, batch_scores = model.recommend(history, k=10)
    for row in (0, 7, 16, 39):
        np.testing.assert_array_equal(model.user_vectors(history[row])[0], vectors[row])
        ids, scores = model.recommend(history[row], k=10)
        np.testing.assert_array_equal(ids[0], batch_ids[row], err_msg=f"history {row}")
        np.testing.assert_array_equal(scores[0], batch_scores[row], err_msg=f"history {row}")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_candidate_solve_on_cuda_recommends_what_the_cpu_does(planted_split):
    """The candidate fold-in and the small-request ranking move index and score tensors
    between numpy and the device; on CUDA they must run and agree with the CPU."""
    options = dict(fold_in_candidates=40, fold_in_exact_max_items=0)
    model = NeuralRecommender(seed=0, **{**FAST, "epochs": 3}, **options).fit(planted_split.train)
    history = planted_split.test.fold_in[:40]
    answers = {}
    for device in ("cpu", "cuda"):
        model.to_device(device)
        answers[device] = [model.recommend(history, k=10), model.recommend(history[3], k=10)]
    for (cpu_ids, cpu_scores), (gpu_ids, gpu_scores) in zip(*answers.values(), strict=True):
        assert (cpu_ids == gpu_ids).mean() > 0.95  # near-ties may swap: other kernels
        np.testing.assert_allclose(gpu_scores, cpu_scores, rtol=1e-3, atol=1e-3)
