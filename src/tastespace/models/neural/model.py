"""``NeuralRecommender``: the feature-aware two-tower model behind the ``Recommender`` protocol.

Every training user gets a free vector, fitted with the catalog's item vectors under a
multinomial likelihood over the whole catalog and an L2 (multinomial matrix factorisation, the
likelihood of Mult-DAE, Liang et al. 2018). A user never seen in training is folded in by solving
the same objective for their vector with the items fixed, started from the user tower's
prediction from the history bag — no retraining, and no amortisation gap. Warm items have a
free ID row by default; a content path (genre/tag bags ⊕ numerics → MLP), trained on its own
loss, gives items never seen in training their vectors from features alone (cold start).
``item_tower="concat"`` / ``"sum"`` feed the features into warm items too (``modules.py``).

>>> from tastespace.data import load_dataset
>>> ds = load_dataset("synthetic:tiny")
>>> model = NeuralRecommender(epochs=2, dim=16, hidden=32).fit(ds)
>>> model.item_vectors().shape
(200, 16)
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from tastespace.data.dataset import Dataset, FeatureTable
from tastespace.data.shards import Shard, ShardedDataset
from tastespace.errors import (
    ConfigError,
    ConfigWarning,
    DataError,
    NotFittedError,
    UnknownIdError,
)
from tastespace.features.encoders import FeatureEncoder
from tastespace.index.blocks import (
    QUERY_BLOCK,
    as_tensor,
    dot_scores,
    pad_histories,
    padded_positions,
)
from tastespace.index.topk import mask_rows
from tastespace.models.base import Recommender, SearchSpace
from tastespace.models.fitting import FitRun, TrainingOptions, ValidationMetric
from tastespace.models.histories import Histories, as_histories
from tastespace.models.neural.batches import BatchMaker, feature_batch, history_batch
from tastespace.models.neural.checkpoint import matrix_digest, run_stamp
from tastespace.models.neural.config import SPARSE_MAX_SHARE, SPARSE_TABLES, NeuralConfig
from tastespace.models.neural.fold_in import (
    TailSample,
    solve_and_rank,
    solve_on_candidates,
    solve_user_vectors,
)
from tastespace.models.neural.modules import ItemTower, TwoTower, UserTower
from tastespace.models.neural.retrieval import ClusterCandidates
from tastespace.models.neural.runtime import resolve_device, torch_threads
from tastespace.models.neural.training import LoopSettings, TrainReport, train_loop

log = logging.getLogger(__name__)

GENRE_ALIASES = ("genres", "genre")
INTERNAL_VALIDATION_MIN_ITEMS = 5


class NeuralRecommender(Recommender):
    """Two-tower network: see the module docstring and :class:`NeuralConfig`."""

    kind = "neural"
    Config = NeuralConfig
    dot_product = False
    fold_in_rows = 256
    """The tower sees blocks of at least ``QUERY_BLOCK`` rows and the solvers give a user the
    same bits in any batch, so ``recommend`` folds in up to 256 users at once: the candidate
    solve's passes then run in big products and its steps over many users (1,000 users on 40k
    items in 0.58–0.78 of the time 16 at a time took; docs/benchmarks-index.md)."""

    def __init__(self, config: NeuralConfig | None = None, **options: Any) -> None:
        super().__init__(config, **options)
        self.module_: TwoTower | None = None
        self.train_report_: TrainReport | None = None

    # -- fitting ----------------------------------------------------------------------------
    def _fit(self, dataset: Dataset, validation: Any, run: FitRun) -> None:
        cfg, options = self.config, run.options
        device = resolve_device(options.device)
        # Module initialisation draws from torch's global generator: seed it inside a fork so
        # the caller's generator state (and thread count) are as they were after the fit.
        with torch_threads(options.threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            shard = dataset.shard if isinstance(dataset, ShardedDataset) else None
            matrix = self._prepare(dataset, device, shard)
            train_rows, held = self._validation_split(matrix, validation, cfg.seed, shard)
            batches = self._batch_maker(dataset, matrix, train_rows, device)
            validate = None
            if held is not None:

                def validate() -> float:
                    score = self._validation_score(held[0], held[1], run.metric)
                    return score if shard is None else shard.agree(score)

            stamp = self._checkpoint_stamp(validation, held, _distributed()[0], options)
            own_rows = None if shard is None else _own_rows(shard, len(train_rows))
            self.train_report_ = self._train(
                batches, len(train_rows), validate, stamp, run, own_rows
            )
        self.module_.user_table = None  # training users' free vectors: not part of the model
        self.module_.to("cpu")

    def _prepare(
        self, dataset: Dataset, device: torch.device, shard: Shard | None = None
    ) -> sp.csr_matrix:
        """Binarised interactions; item counts, feature encoders and the module (on device).
        On a shard, the counts (and the choice of sparse tables) are the whole data's."""
        cfg = self.config
        matrix = (dataset.interactions > 0).astype(np.float32).tocsr()
        self.item_counts_ = np.asarray(matrix.sum(axis=0)).ravel().astype(np.float32)
        if shard is not None:
            self.item_counts_ = dataset.item_user_counts()
        self.item_encoder_ = (
            FeatureEncoder.fit(dataset.items) if cfg.use_item_features else FeatureEncoder()
        )
        self.user_encoder_ = (
            FeatureEncoder.fit(dataset.users) if cfg.use_user_features else FeatureEncoder()
        )
        encoder = self.item_encoder_
        if cfg.item_tower != "free" and not (encoder.numeric_width or encoder.vocabularies):
            _warn_featureless(cfg.item_tower)
        n_free_users = matrix.shape[0] if cfg.fold_in == "solve" else 0
        sparse = self._sparse_tables(matrix, self._use_sampled_loss(len(dataset.item_ids)), shard)
        self.module_ = self._build(len(dataset.item_ids), n_free_users, sparse)
        self.module_.to(device)
        return matrix

    def _batch_maker(
        self, dataset: Dataset, matrix: sp.csr_matrix, train_rows: np.ndarray, device: torch.device
    ) -> BatchMaker:
        cfg = self.config
        return BatchMaker(
            matrix=matrix,
            train_rows=train_rows,
            users=self.user_encoder_.transform(dataset.users),
            catalog=self._catalog_inputs(dataset.items, device),
            item_counts=self.item_counts_,
            unknown_id=self.module_.item_tower.unknown_id,
            device=device,
            sampled=self._use_sampled_loss(len(dataset.item_ids)),
            num_negatives=cfg.num_negatives,
            dropout=cfg.history_dropout,
            tied=cfg.tied_history,
        )

    def _train(
        self,
        batches: BatchMaker,
        n_rows: int,
        validate: Callable[[], float] | None,
        stamp: dict[str, Any],
        run: FitRun,
        own_rows: int | None = None,
    ) -> TrainReport:
        cfg, options = self.config, run.options
        world, rank = _distributed()
        module: torch.nn.Module = self.module_
        if world > 1:
            module = torch.nn.parallel.DistributedDataParallel(self.module_)
        settings = LoopSettings(
            epochs=cfg.epochs,
            batch_size=cfg.batch_size,
            lr=cfg.lr,
            weight_decay=cfg.weight_decay,
            patience=cfg.patience,
            ema_decay=cfg.ema_decay,
            checkpoint_dir=options.checkpoint_dir,
            resume=options.resume,
            checkpoint_stamp=stamp,
            rank=rank,
            world_size=world,
            own_rows=own_rows,
        )
        generator = torch.Generator().manual_seed(cfg.seed)
        return train_loop(
            module,
            batches,
            n_rows,
            settings,
            generator,
            validate,
            run.callback,
            trainable=self.module_,
        )

    def _checkpoint_stamp(
        self,
        validation: Any,
        held: tuple[sp.csr_matrix, sp.csr_matrix] | None,
        world: int,
        options: TrainingOptions,
    ) -> dict[str, Any]:
        """What a resume must match: the data, the given validation users, options, world."""
        if not options.checkpoint_dir:
            return {}
        given = None if validation is None or held is None else matrix_digest(*held)
        return run_stamp(self.config.to_json(), self.fingerprint_, given, world)

    def _build(
        self, n_items: int, n_free_users: int = 0, sparse: frozenset[str] = frozenset()
    ) -> TwoTower:
        """The module; ``sparse`` names the tables (of SPARSE_TABLES) on sparse gradients."""
        cfg = self.config
        item_sizes = {k: len(v) for k, v in self.item_encoder_.vocabularies.items()}
        item_dims = {k: (cfg.genre_dim if k in GENRE_ALIASES else cfg.bag_dim) for k in item_sizes}
        user_sizes = {k: len(v) for k, v in self.user_encoder_.vocabularies.items()}
        user_dims = {k: cfg.bag_dim for k in user_sizes}
        item_tower = ItemTower(
            n_items,
            item_sizes,
            item_dims,
            self.item_encoder_.numeric_width,
            cfg.item_hidden,
            cfg.dim,
            form=cfg.item_tower,
            sparse="ids" in sparse,
        )
        user_tower = UserTower(
            n_items,
            cfg.hidden,
            cfg.dim,
            cfg.pooling,
            user_sizes,
            user_dims,
            self.user_encoder_.numeric_width,
            tied_width=cfg.dim + 1 if cfg.tied_history else 0,
            sparse="history" in sparse,
        )
        with torch.no_grad():
            user_tower.history.weight[n_items].zero_()
        return TwoTower(
            item_tower,
            user_tower,
            cfg.cosine_temperature,
            n_free_users,
            cfg.vector_l2,
            sparse="users" in sparse,
        )

    def _sparse_tables(
        self, matrix: sp.csr_matrix, sampled: bool, shard: Shard | None = None
    ) -> frozenset[str]:
        """The tables to train on sparse gradients: all or none when asked; with "auto" those
        a step reads at most SPARSE_MAX_SHARE of, where the catch-up step over the rows read
        costs less than dense Adam over the whole table (bench/neural_scale.py tables).

        Rows read per step: the batch's users of the free-user table; the distinct items of a
        seeded sample batch of the history table; of the ID table every trained item under the
        full softmax, the batch's items plus the negatives under the sampled one.
        """
        cfg = self.config
        if cfg.sparse_gradients != "auto":
            return frozenset(SPARSE_TABLES if cfg.sparse_gradients == "on" else ())
        n_users, n_items = matrix.shape
        rng = np.random.default_rng(cfg.seed)
        sample = _whole_rows(
            matrix, rng.choice(n_users, min(cfg.batch_size, n_users), replace=False), shard
        )
        watched = len(np.unique(sample.indices))
        shares = {
            "users": cfg.batch_size / n_users if cfg.fold_in == "solve" else 1.0,
            "history": watched / n_items,
            "ids": (watched + cfg.num_negatives) / n_items if sampled else 1.0,
        }
        return frozenset(k for k, share in shares.items() if share <= SPARSE_MAX_SHARE)

    def _use_sampled_loss(self, n_items: int) -> bool:
        if self.config.loss == "auto":
            return n_items > self.config.full_softmax_max_items
        return self.config.loss == "sampled"

    def _validation_split(
        self, matrix: sp.csr_matrix, validation: Any, seed: int, shard: Shard | None = None
    ) -> tuple[np.ndarray, tuple[sp.csr_matrix, sp.csr_matrix] | None]:
        """Training rows, and (fold-in, targets) for early stopping.

        Given held-out users are used as they are (a seeded sample of ``validation_max_users``
        when there are more); otherwise a seeded slice of training users with ≥ 5 items is set
        aside (80 % fold-in, 20 % targets) and not trained on. The bound keeps the per-epoch
        validation solve from growing with the user base (10k users took 87 s at 20M). On a
        shard, every rank sets aside the same users (drawn from the whole data) and trains on
        its own others.
        """
        all_rows = np.arange(matrix.shape[0]) if shard is None else shard.owned
        rng = np.random.default_rng(seed)
        limit = self.config.validation_max_users
        if validation is not None:
            fold, targets = validation.fold_in.tocsr(), validation.targets.tocsr()
            if limit is not None and fold.shape[0] > limit:
                keep = np.sort(rng.choice(fold.shape[0], limit, replace=False))
                fold, targets = fold[keep], targets[keep]
            return all_rows, (fold, targets)
        if self.config.validation_users <= 0:
            return all_rows, None
        lengths = np.diff(matrix.indptr) if shard is None else shard.history_lengths(matrix)
        eligible = np.flatnonzero(lengths >= INTERNAL_VALIDATION_MIN_ITEMS)
        n_val = min(int(round(self.config.validation_users * matrix.shape[0])), len(eligible) // 2)
        n_val = n_val if limit is None else min(n_val, limit)
        if n_val < 1:
            return all_rows, None
        chosen = np.sort(rng.choice(eligible, n_val, replace=False))
        sub = _whole_rows(matrix, chosen, shard).tocoo()
        is_target = np.zeros(sub.nnz, bool)
        for r in range(n_val):
            cells = np.flatnonzero(sub.row == r)
            n_target = max(1, int(round(0.2 * len(cells))))
            is_target[rng.choice(cells, n_target, replace=False)] = True
        shape = (n_val, matrix.shape[1])
        fold = sp.csr_matrix(
            (sub.data[~is_target], (sub.row[~is_target], sub.col[~is_target])), shape
        )
        targets = sp.csr_matrix(
            (sub.data[is_target], (sub.row[is_target], sub.col[is_target])), shape
        )
        return np.setdiff1d(all_rows, chosen), (fold, targets)

    def _validation_score(
        self, fold_in: sp.csr_matrix, targets: sp.csr_matrix, metric: ValidationMetric
    ) -> float:
        self._forget_derived()  # the weights moved since the last epoch
        # the exact solve at any size: which epoch is kept must not hang on the candidate
        # solve's approximation (at 20M, validation over 256 candidates kept epoch 1, where
        # over 512 and exactly it kept epoch 2)
        scores = self._score_users(self._fold(fold_in, None, exact=True))
        mask_rows(scores, fold_in)
        return metric(scores, targets)

    # -- inputs -----------------------------------------------------------------------------
    def _catalog_inputs(self, table: FeatureTable, device: torch.device) -> dict:
        """Item-tower inputs for a whole table; items without training data use the unknown ID."""
        n = len(table)
        ids = np.arange(n, dtype=np.int64)
        ids[self.item_counts_[:n] == 0] = self.module_.item_tower.unknown_id
        return {
            "item_ids": torch.as_tensor(ids, device=device),
            **self._content_inputs(table, device),
        }

    def _content_inputs(
        self, table: FeatureTable, device: torch.device, rows: np.ndarray | None = None
    ) -> dict:
        """The content path's inputs (categorical bags, numerics) for any feature table (its
        ``rows``, in that order, when given)."""
        return feature_batch(self.item_encoder_.transform(table), rows, device, prefix="item")

    # -- vectors ----------------------------------------------------------------------------
    def _require_module(self) -> TwoTower:
        if self.module_ is None:
            raise NotFittedError("NeuralRecommender is not fitted; call fit() or load() first")
        return self.module_

    def _item_tower_output(self) -> tuple[np.ndarray, np.ndarray]:
        """``(vectors, bias)`` of the item tower for every catalog item, computed once."""

        def compute() -> tuple[np.ndarray, np.ndarray]:
            module = self._require_module()
            with torch.no_grad():
                inputs = self._catalog_inputs(self.items_, _device(module))
                vectors, bias = module.item_tower(**inputs)
            return vectors.cpu().numpy().astype(np.float32), bias.cpu().numpy().astype(np.float32)

        return self._derived("item_tower", compute)

    def to_device(self, name: str) -> NeuralRecommender:
        """Run the item tower and the fold-in solve on device ``name`` (auto, cpu, cuda,
        cuda:N); returns self. CUDA asked for where there is none is a one-line ConfigError."""
        self._require_module().to(resolve_device(name))
        self._forget_derived()
        return self

    def _item_vectors(self) -> np.ndarray:
        """``(n_items, dim)``: the item tower's output for every catalog item."""
        return self._item_tower_output()[0]

    def item_bias(self) -> np.ndarray:
        """``(n_items,)``: the item tower's bias for every catalog item (read-only)."""
        self._require_fitted()
        return self._item_tower_output()[1]

    def user_vectors(
        self, histories: Histories, user_features: FeatureTable | None = None
    ) -> np.ndarray:
        """Fold-in: ``(n, dim)`` from histories (and user features when given; else unknown)."""
        return self._fold(histories, user_features, exact=False)

    def _fold(
        self, histories: Histories, user_features: FeatureTable | None, *, exact: bool
    ) -> np.ndarray:
        """:meth:`user_vectors`; ``exact`` solves over the whole catalog at any size."""
        matrix, _ = as_histories(histories, self.n_items)
        users = self._tower_vectors(matrix, user_features)
        if self.config.fold_in == "solve":
            users = self._solve(matrix, users, exact)
        return users.cpu().numpy().astype(np.float32)

    def _tower_vectors(
        self, matrix: sp.csr_matrix, user_features: FeatureTable | None
    ) -> torch.Tensor:
        """The user tower's prediction for each history (and user features when given). Fewer
        than ``QUERY_BLOCK`` histories are padded to that many: the tower's products take other
        kernels for fewer rows, and a history's vector would depend on its batch."""
        module = self._require_module()
        n = matrix.shape[0]
        if user_features is not None and len(user_features) != n:
            raise DataError(f"user_features has {len(user_features)} rows for {n} histories")
        encoded = (
            self.user_encoder_.transform(user_features)
            if user_features is not None
            else self.user_encoder_.unknown(n)
        )
        device = _device(module)
        if n == 0:
            return torch.zeros((0, module.user_tower.out.out_features), device=device)
        batch = history_batch(
            pad_histories(matrix), self.item_counts_ == 0, module.item_tower.unknown_id, device
        )
        # the padding rows repeat the last user's features; their vectors are dropped
        feats = feature_batch(encoded, padded_positions(n), device, prefix="user")
        table = None
        if module.user_tower.tied is not None:
            trained = module.item_tower.unknown_id  # items added later pool as the unknown ID
            table = self._scored_table(device)[:trained]
        with torch.no_grad():
            return module.user_tower(
                batch["history_indices"],
                batch["history_offsets"],
                feats["user_bags"],
                feats["user_numeric"],
                item_table=table,
            )[:n]

    def _solve(self, matrix: sp.csr_matrix, start: torch.Tensor, exact: bool) -> torch.Tensor:
        """Refine the tower's vectors by solving each user's likelihood with items fixed."""
        table = self._scored_table(start.device)
        items, bias = table[:, :-1], table[:, -1]
        cfg = self.config
        if exact or not self._solves_on_candidates():
            solver = dict(l2=cfg.vector_l2, steps=cfg.fold_in_steps, lr=cfg.fold_in_lr)
            return solve_user_vectors(items, bias, matrix, start, **solver)
        return solve_on_candidates(table, matrix, start, **self._candidate_options(start.device))

    def _solves_on_candidates(self) -> bool:
        cfg = self.config
        exact_up_to = max(cfg.fold_in_exact_max_items, cfg.fold_in_candidates)
        return bool(cfg.fold_in_candidates) and self.n_items > exact_up_to

    def _candidate_options(self, device: torch.device) -> dict[str, Any]:
        cfg = self.config
        table = self._scored_table(device)
        tail = self._derived(f"fold_in_tail:{device}", lambda: TailSample.of(table[:, :-1]))
        options: dict[str, Any] = dict(
            l2=cfg.vector_l2, top=cfg.fold_in_candidates, rounds=cfg.fold_in_rounds, tail=tail
        )
        if cfg.fold_in_retrieval == "clusters":
            options["candidates"] = self._derived(
                f"fold_in_clusters:{device}", lambda: ClusterCandidates.of(table, tail)
            )
        return options

    def _search_histories(
        self, matrix: sp.csr_matrix, k: int, exclude_seen: bool, exact: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """A request of up to ``QUERY_BLOCK`` users on the candidate solve by exact passes
        (``fold_in_retrieval="passes"``) ranks from its last pass instead of one more pass
        over the catalog (a third of a one-user request; ``index/refine.py``), with the exact
        index's answer bit for bit. Larger requests, retrieval from clusters (whose rounds
        must be the same for a user alone or batched), an approximate index and users it
        cannot rank go through the index."""
        index = self.index("recommend", exact=exact)
        # the solve reads only positive weights as seen, the index excludes every stored cell
        small = matrix.shape[0] <= QUERY_BLOCK and exclude_seen and index.kind == "exact"
        small = small and bool(np.all(matrix.data > 0))
        small = small and self.config.fold_in_retrieval == "passes"
        if not (small and self.config.fold_in == "solve" and self._solves_on_candidates()):
            return super()._search_histories(matrix, k, exclude_seen, exact)
        n = matrix.shape[0]
        block = pad_histories(matrix)
        start = self._tower_vectors(block, None)
        device = start.device
        table = self._scored_table(device)
        norms = self._derived(f"scored_norms:{device}", lambda: table.norm(dim=1))
        options = self._candidate_options(device)
        users, ids, scores, answered = solve_and_rank(table, norms, block, start, k, **options)
        ids, scores, answered = ids[:n], scores[:n], answered[:n]
        if not answered.all():
            rest = np.flatnonzero(~answered)
            queries = self._lifted(users[:n].cpu().numpy()[rest])
            ids[rest], scores[rest] = index.search(queries, k, matrix[rest])
        return ids, scores

    def _scored_table(self, device: torch.device) -> torch.Tensor:
        """``(n_items, dim + 1)``: every item's ``[vector, bias]`` on ``device``, built once
        per fitted state (one request would otherwise copy the whole catalog twice). Read-only
        by convention: the tower and the solvers only read it."""
        return self._derived(
            f"scored_table:{device}", lambda: as_tensor(self._scored_rows()).to(device)
        )

    def _scored_rows(self) -> np.ndarray:
        """``[vector, bias]`` per item as a read-only array (the table above on the CPU is a
        view of it, and the search space is it)."""
        return self._derived(
            "scored_rows", lambda: np.column_stack([self.item_vectors(), self.item_bias()])
        )

    def _search_space(self) -> SearchSpace:
        """Scores are ``u·v + b`` (searched as ``[u, 1]·[v, b]``) or, with a cosine
        temperature, ``cos(u, v) / T``."""
        temperature = self.config.cosine_temperature
        if temperature is not None:
            return SearchSpace(self.item_vectors(), "cosine", 1.0 / temperature)
        return SearchSpace(self._scored_rows())

    def _search_queries(self, histories: sp.csr_matrix) -> np.ndarray:
        users = self.user_vectors(histories)
        if self.config.cosine_temperature is not None:
            return users
        return self._lifted(users)

    @staticmethod
    def _lifted(users: np.ndarray) -> np.ndarray:
        """``[u, 1]`` per row: the query that scores ``u·v + b`` in the ``[v, b]`` space."""
        return np.column_stack([users, np.ones(len(users), np.float32)])

    def score(self, histories: Histories, user_features: FeatureTable | None = None) -> np.ndarray:
        return self._score_users(self.user_vectors(histories, user_features))

    def _score_users(self, users: np.ndarray) -> np.ndarray:
        items, bias = self.item_vectors(), self.item_bias()
        temperature = self.config.cosine_temperature
        if temperature is not None:
            unit_u = users / np.maximum(np.linalg.norm(users, axis=1, keepdims=True), 1e-12)
            unit_i = items / np.maximum(np.linalg.norm(items, axis=1, keepdims=True), 1e-12)
            return dot_scores(unit_u, unit_i) / temperature
        return dot_scores(users, items) + bias

    def embed_items(self, table: FeatureTable) -> tuple[np.ndarray, np.ndarray]:
        """``(vectors (n, dim), bias (n,))`` for items described only by features (cold
        start): what the model scores an item it never saw with, ``u · v + bias``."""
        module = self._require_module()
        n = len(table)
        if n == 0:
            dim = module.item_tower.dim
            return np.empty((0, dim), np.float32), np.empty(0, np.float32)
        # fewer than QUERY_BLOCK rows are padded (repeating the last item): the tower's products
        # take other kernels for fewer rows, and an item's vector would depend on its batch
        with torch.no_grad():
            vectors, bias = module.item_tower.content(
                **self._content_inputs(table, _device(module), padded_positions(n))
            )
        vectors, bias = vectors[:n].cpu().numpy(), bias[:n].cpu().numpy()
        return vectors.astype(np.float32), bias.astype(np.float32)

    def _grow(self, n_new: int) -> None:
        """New items have no training data: the content path gives their vector and bias."""
        self._require_module()
        self.item_counts_ = np.concatenate([self.item_counts_, np.zeros(n_new, np.float32)])

    def feature_embeddings(self, feature: str) -> dict[str, np.ndarray]:
        """The learned table of a categorical item feature: value → vector (e.g. 2-D genres)."""
        module = self._require_module()
        names = [feature] + [a for a in GENRE_ALIASES if feature in GENRE_ALIASES]
        for name in names:
            if name in self.item_encoder_.vocabularies:
                weight = module.item_tower.bags.tables[name].weight.detach().cpu().numpy()
                vocab = self.item_encoder_.vocabularies[name]
                return {value: weight[k].astype(np.float32) for k, value in enumerate(vocab) if k}
        known = sorted(self.item_encoder_.vocabularies)
        raise UnknownIdError(f"no learned categorical feature {feature!r}; known: {known}")

    # -- persistence ------------------------------------------------------------------------
    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        module = self._require_module()
        arrays = {f"module.{k}": v.detach().cpu().numpy() for k, v in module.state_dict().items()}
        arrays["item_counts"] = self.item_counts_
        report = self.train_report_
        extra = {
            "item_encoder": self.item_encoder_.to_json(),
            "user_encoder": self.user_encoder_.to_json(),
            "module_items": module.item_tower.unknown_id,  # items with an ID row (+ add-items)
            "train_report": None if report is None else report.to_json(),
        }
        return arrays, extra

    def _restore(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        self.item_encoder_ = FeatureEncoder.from_json(extra["item_encoder"])
        self.user_encoder_ = FeatureEncoder.from_json(extra["user_encoder"])
        self.item_counts_ = arrays["item_counts"]
        self.module_ = self._build(int(extra.get("module_items", len(self.item_counts_))))
        state = {
            k.removeprefix("module."): torch.from_numpy(v.copy())
            for k, v in arrays.items()
            if k.startswith("module.")
        }
        try:
            self.module_.load_state_dict(state)
        except RuntimeError as err:
            raise ConfigError(
                f"bundle weights do not match the model configuration: {err}"
            ) from err
        self.module_.eval()
        report = extra.get("train_report")
        self.train_report_ = None if report is None else TrainReport.from_json(report)


def _warn_featureless(form: str) -> None:
    """``concat`` / ``sum`` on a catalog without item features: say what the model becomes."""
    becomes = {
        "concat": "each item is its ID embedding through the MLP",
        "sum": "each item is its ID row plus one vector shared by all items",
    }[form]
    warnings.warn(
        f"item_tower={form!r}: the catalog has no item features to combine with the IDs"
        f" (or use_item_features is off), so {becomes}; cold items all get the same vector",
        ConfigWarning,
        stacklevel=5,
    )


def _whole_rows(matrix: sp.csr_matrix, rows: np.ndarray, shard: Shard | None) -> sp.csr_matrix:
    """``rows`` of the interactions: here, or gathered from the ranks that own them."""
    return matrix[rows] if shard is None else shard.whole_rows(matrix, rows)


def _own_rows(shard: Shard, n_rows: int) -> int:
    """Rows every rank takes per epoch on a shard: the most any rank has."""
    counts = shard.exchange.all_gather(n_rows)
    if min(counts) == 0:
        raise DataError(
            "a process has no user left to train on after the validation users were set "
            "aside; use fewer processes, or let every process read the data whole "
            "(shard_data='off')",
            options=("shard_data",),
        )
    return max(counts)


def _device(module: torch.nn.Module) -> torch.device:
    return next(module.parameters()).device


def _distributed() -> tuple[int, int]:
    """(world size, rank) when running under torchrun with an initialised process group."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size(), torch.distributed.get_rank()
    return 1, 0
