"""PyTorch modules of the two-tower model; no training logic here (see ``training.py``).

Item tower, for ``n`` items; ``f`` = EmbeddingBag(|vocab|, dim_f) per categorical feature,
mean-pooled ⊕ numerics (normalised values + missing flags) ⊕ 1, and MLP = Linear → ReLU →
Linear → (n, dim + 1) (vector, bias). Row ``n_items`` of the ID table is the "unknown" ID of
items never seen in training; ``item_tower`` picks how an ID and its features combine::

    free    Embedding(n_items + 1, dim + 1)        warm: its ID row     cold: MLP(f)
    concat  Embedding(n_items + 1, dim)            MLP(ID row ⊕ f)      (the unknown row ⊕ f)
    sum     Embedding(n_items + 1, dim + 1)        ID row + MLP(f)      (the unknown row + MLP(f))

User tower, for ``b`` histories given as one bag (indices, offsets)::

    EmbeddingBag(n_items + 1, hidden, mode="sum") weighted by the pooling (sqrt-n, mean,
    learned attention) ⊕ user features → tanh → Linear → (b, dim)

Score = user · item + bias (or cosine / temperature).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


class BagBlock(nn.Module):
    """One ``EmbeddingBag`` per categorical feature, outputs concatenated."""

    def __init__(self, sizes: dict[str, int], dims: dict[str, int]) -> None:
        super().__init__()
        self.names = list(sizes)
        self.tables = nn.ModuleDict(
            {
                name: nn.EmbeddingBag(
                    sizes[name], dims[name], mode="mean", include_last_offset=True
                )
                for name in self.names
            }
        )
        self.width = sum(dims[name] for name in self.names)

    def forward(self, bags: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> list[torch.Tensor]:
        return [self.tables[name](*bags[name]) for name in self.names]


ITEM_TOWERS = ("free", "concat", "sum")


class ItemTower(nn.Module):
    """Item vectors (vector + bias) from an ID table and a content path (categorical bags ⊕
    numerics → MLP), combined as ``form`` says (module docstring); an item whose ID is
    ``unknown_id`` (never seen in training) gets the content path's answer, so every form
    serves cold items.

    ``free`` (the default): warm items are free ID rows, as the decoder rows of Mult-DAE, and
    the features reach only cold items; feeding the ID through the feature MLP cost
    ml-latest-small 0.015 Recall@20 (docs/neural.md). ``concat`` is the seed's design, the ID
    embedding concatenated with the features in one net; ``sum`` is LightFM's, the ID row added
    to the features' vector. In both the features shape warm items too (docs/benchmarks.md,
    "Item tower"). The content path also learns from its own loss (:meth:`TwoTower.forward`).
    """

    def __init__(
        self,
        n_items: int,
        bag_sizes: dict[str, int],
        bag_dims: dict[str, int],
        numeric_width: int,
        hidden: int,
        dim: int,
        form: str = "free",
        sparse: bool = False,
    ) -> None:
        super().__init__()
        self.form = form
        self.unknown_id = n_items
        id_width = dim if form == "concat" else dim + 1
        # sparse=True: a step's gradient (and its optimiser update) touches only the rows used,
        # under every form (concat and sum index the table as free does).
        self.ids = nn.Embedding(n_items + 1, id_width, sparse=sparse)
        nn.init.normal_(self.ids.weight, std=0.01)
        self.bags = BagBlock(bag_sizes, bag_dims)
        # +1: a constant input keeps the path defined for a catalog without features.
        width = self.bags.width + numeric_width + 1 + (id_width if form == "concat" else 0)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, dim + 1))
        self.dim = dim

    def forward(
        self,
        item_ids: torch.Tensor,
        item_bags: dict[str, tuple[torch.Tensor, torch.Tensor]],
        item_numeric: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each item's ``(vectors, bias)``; items whose ID is ``unknown_id`` get :meth:`content`."""
        features = self._features(item_bags, item_numeric)
        return self._split(self._combine(item_ids, features))

    def content(
        self, item_bags: dict[str, tuple[torch.Tensor, torch.Tensor]], item_numeric: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(vectors, bias) from features alone: what a cold item gets."""
        features = self._features(item_bags, item_numeric)
        return self._split(self._combine(self._unknown(features), features))

    def with_content(
        self,
        item_ids: torch.Tensor,
        item_bags: dict[str, tuple[torch.Tensor, torch.Tensor]],
        item_numeric: torch.Tensor,
    ) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """:meth:`forward` and :meth:`content` of the same items, for training: the features
        are encoded once, and ``free`` / ``sum`` run their MLP once."""
        features = self._features(item_bags, item_numeric)
        unknown = self._unknown(features)
        shared = None if self.form == "concat" else self.mlp(features)
        warm = self._combine(item_ids, features, shared)
        return self._split(warm), self._split(self._combine(unknown, features, shared))

    def _features(
        self, item_bags: dict[str, tuple[torch.Tensor, torch.Tensor]], item_numeric: torch.Tensor
    ) -> torch.Tensor:
        ones = item_numeric.new_ones(len(item_numeric), 1)
        return torch.cat([*self.bags(item_bags), item_numeric, ones], dim=1)

    def _unknown(self, features: torch.Tensor) -> torch.Tensor:
        return torch.full((len(features),), self.unknown_id, device=features.device)

    def _combine(
        self, item_ids: torch.Tensor, features: torch.Tensor, shared: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``(n, dim + 1)`` rows as the form says; ``shared`` is ``mlp(features)`` if computed."""
        rows = self.ids(item_ids)
        if self.form == "concat":
            return self.mlp(torch.cat([rows, features], dim=1))
        shared = self.mlp(features) if shared is None else shared
        if self.form == "sum":
            return rows + shared
        known = item_ids != self.unknown_id
        return torch.where(known[:, None], rows, shared)

    def _split(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return out[:, : self.dim], out[:, self.dim]


class UserTower(nn.Module):
    """Pooled history bag ⊕ user features → tanh → Linear → dim (a Mult-DAE-style encoder)."""

    def __init__(
        self,
        n_items: int,
        hidden: int,
        dim: int,
        pooling: str,
        bag_sizes: dict[str, int],
        bag_dims: dict[str, int],
        numeric_width: int,
        tied_width: int = 0,
        sparse: bool = False,
    ) -> None:
        super().__init__()
        self.pooling = pooling
        # Optional second view of each history item: its item vector (ID row or content path),
        # projected to the hidden width, so rarely watched items still say something.
        self.tied = nn.Linear(tied_width, hidden, bias=False) if tied_width else None
        self.history = nn.EmbeddingBag(
            n_items + 1, hidden, mode="sum", include_last_offset=True, sparse=sparse
        )
        nn.init.normal_(self.history.weight, std=0.02)
        self.attention = (
            nn.Embedding(n_items + 1, 1, sparse=sparse) if pooling == "attention" else None
        )
        if self.attention is not None:
            nn.init.zeros_(self.attention.weight)
        self.features = BagBlock(bag_sizes, bag_dims)
        self.numeric_width = numeric_width
        self.bias = nn.Parameter(torch.zeros(hidden))
        self.out = nn.Linear(hidden + self.features.width + numeric_width, dim)

    def pool_weights(self, indices: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """Per-entry weights so each bag is pooled by sqrt-n, mean or softmax attention."""
        lengths = (offsets[1:] - offsets[:-1]).clamp(min=1)
        row = torch.repeat_interleave(
            torch.arange(len(lengths), device=indices.device), offsets[1:] - offsets[:-1]
        )
        if self.attention is None:
            scale = lengths.float().rsqrt() if self.pooling == "sqrtn" else 1.0 / lengths.float()
            return scale[row]
        logits = self.attention(indices).squeeze(1)
        # each bag shifted by its own largest logit: a shift shared by the batch would give a
        # history other bits beside other histories than alone
        peak = torch.full_like(lengths, -torch.inf, dtype=logits.dtype)
        peak = peak.scatter_reduce(0, row, logits.detach(), "amax")
        weights = (logits - peak[row]).exp()
        totals = torch.zeros(len(lengths), device=indices.device).index_add_(0, row, weights)
        return weights / totals[row].clamp(min=1e-12)

    def forward(
        self,
        indices: torch.Tensor,
        offsets: torch.Tensor,
        bags: dict[str, tuple[torch.Tensor, torch.Tensor]],
        numeric: torch.Tensor,
        item_table: torch.Tensor | None = None,
        table_indices: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``item_table`` (items × tied_width, one row per catalog or candidate item) feeds the
        tied view; ``table_indices`` are the history's rows in it (default: ``indices``)."""
        weights = self.pool_weights(indices, offsets)
        pooled = self.history(indices, offsets, per_sample_weights=weights)
        if self.tied is not None:
            if item_table is None:
                raise ValueError("this user tower pools item-tower outputs: pass item_table")
            rows = indices if table_indices is None else table_indices
            # the unknown ID (past the table) adds nothing: weight 0 on a valid row, where
            # appending a zero row would copy the whole table on every call
            known = rows < len(item_table)
            tied = nn.functional.embedding_bag(
                torch.where(known, rows, 0),
                item_table,
                offsets,
                mode="sum",
                per_sample_weights=weights * known,
                include_last_offset=True,
            )
            pooled = pooled + self.tied(tied)
        hidden = torch.tanh(pooled + self.bias)
        parts = [hidden, *self.features(bags)]
        if self.numeric_width:
            parts.append(numeric)
        return self.out(torch.cat(parts, dim=1))


class TwoTower(nn.Module):
    """Both towers plus the scoring rule; ``forward`` returns the training loss.

    With ``n_free_users`` > 0 each training user also has a free vector (a row of
    ``user_table``) fitted with the item side under ``vector_l2`` — multinomial matrix
    factorisation, which shapes the item vectors — while the user tower learns to predict those
    free vectors from the history. New users are then folded in by solving from the tower's
    output (``fold_in.py``); the table is dropped after training.
    """

    def __init__(
        self,
        item_tower: ItemTower,
        user_tower: UserTower,
        temperature: float | None,
        n_free_users: int = 0,
        vector_l2: float = 0.0,
        sparse: bool = False,
    ):
        super().__init__()
        self.item_tower = item_tower
        self.user_tower = user_tower
        self.temperature = temperature
        self.vector_l2 = vector_l2
        self.user_table: nn.Embedding | None = None
        if n_free_users:
            self.user_table = nn.Embedding(n_free_users, item_tower.dim, sparse=sparse)
            nn.init.normal_(self.user_table.weight, std=0.01)

    def scoring(
        self, users: torch.Tensor, items: torch.Tensor, bias: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(u, v, b)`` with score = ``u · v + b``: dot product, or cosine / temperature."""
        if self.temperature is None:
            return users, items, bias
        users = nn.functional.normalize(users, dim=1) / self.temperature
        return users, nn.functional.normalize(items, dim=1), torch.zeros_like(bias)

    def logits(self, users: torch.Tensor, items: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        users, items, bias = self.scoring(users, items, bias)
        return users @ items.T + bias

    def forward(self, batch: dict) -> torch.Tensor:
        """Training loss: multinomial log-likelihood of each user's full history over the
        candidate items, summed over three parts that each train their own parameters.

        1. Warm item vectors with the users: the free user vectors (solve fold-in) under
           ``vector_l2``, or the user tower's encoding of the masked history (encoder fold-in).
        2. Solve fold-in only: the user tower learns to predict each free vector from the masked
           history (squared error), so the fold-in solve starts close to its answer.
        3. The content path on detached users: the whole catalog scored from features alone
           (every ID unknown), which is the cold-start problem itself. With ``item_tower``
           ``concat`` or ``sum`` its MLP is shared with the warm vectors of part 1.

        The item inputs are the whole (trained) catalog with dense ``batch["targets"]`` (full
        softmax), or only the batch's positives ∪ sampled negatives with ``batch["sampled"]``
        (:class:`SampledTargets`, sampled softmax with log-Q correction).
        """
        (items, bias), (content, content_bias) = self.item_tower.with_content(
            batch["item_ids"], batch["item_bags"], batch["item_numeric"]
        )
        table = torch.cat([items, bias[:, None]], dim=1) if self.user_tower.tied else None
        if self.user_table is not None:
            table = None if table is None else table.detach()
        encoded = self.user_tower(
            batch["history_indices"],
            batch["history_offsets"],
            batch["user_bags"],
            batch["user_numeric"],
            item_table=table,
            table_indices=batch.get("history_positions"),
        )
        if self.user_table is None:
            users = encoded
            loss = self._nll(users, items, bias, batch)
        else:
            users = self.user_table(batch["user_rows"])
            n_users = self.user_table.num_embeddings
            loss = self._nll(users, items, bias, batch) + self.vector_l2 * (
                users.square().sum(1).mean() + items.square().sum() / n_users
            )
            loss = loss + (encoded - users.detach()).square().sum(1).mean()
        return loss + self._nll(users.detach(), content, content_bias, batch)

    def _nll(
        self, users: torch.Tensor, items: torch.Tensor, bias: torch.Tensor, batch: dict
    ) -> torch.Tensor:
        sampled = batch.get("sampled")
        if sampled is not None:
            return self._sampled_nll(*self.scoring(users, items, bias), sampled)
        log_probs = torch.log_softmax(self.logits(users, items, bias), dim=1)
        return -(log_probs * batch["targets"]).sum(dim=1).mean()

    @staticmethod
    def _sampled_nll(
        users: torch.Tensor, items: torch.Tensor, bias: torch.Tensor, sampled: SampledTargets
    ) -> torch.Tensor:
        """The multinomial likelihood with its normaliser estimated, not summed over the catalog.

        Each user's log-normaliser is ``log(Σ_{i∈P} e^{s_i} + Σ_{j∉P} e^{s_j})``: the first sum
        is exact over the user's own positives ``P``; the second is estimated from the shared
        negatives drawn with replacement from ``q``, each weighted ``1 / (n·q_j)`` (log-Q
        correction), draws that hit one of the user's positives left out. Cost: one dot product
        per interaction plus ``batch × negatives``, whatever the catalog size.
        """
        rows, cols, drawn = sampled.positive_rows, sampled.positive_cols, sampled.negative_cols
        n_users = len(users)
        # index_select, not users[rows]: its backward is an index_add, where advanced
        # indexing's is an accumulating index_put that took a third of a 5M step on the CPU
        positive = (users.index_select(0, rows) * items.index_select(0, cols)).sum(dim=1)
        positive = positive + bias.index_select(0, cols)
        negative = torch.addmm(bias.index_select(0, drawn), users, items.index_select(0, drawn).T)
        negative = negative - sampled.negative_log_q
        negative = negative.masked_fill(sampled.negative_hits, -math.inf)
        peak = positive.new_full((n_users,), -math.inf)
        peak = peak.scatter_reduce(0, rows, positive.detach(), "amax")
        peak = torch.where(torch.isfinite(peak), peak, torch.zeros_like(peak))
        sums = torch.zeros_like(peak).index_add(0, rows, (positive - peak[rows]).exp())
        log_normaliser = torch.logaddexp(
            sums.clamp(min=1e-30).log() + peak, torch.logsumexp(negative, dim=1)
        )
        counts = torch.bincount(rows, minlength=n_users).to(positive.dtype)
        totals = torch.zeros_like(peak).index_add(0, rows, positive)
        return (counts * log_normaliser - totals).mean()


@dataclass
class SampledTargets:
    """One batch's targets for :meth:`TwoTower._sampled_nll`, as positions in its candidates.

    For 2 users with histories {a, b} and {c} and 3 negative draws (c, d, d)::

        candidates        [a, b, c, d]
        positive_rows     [0, 0, 1]      positive_cols [0, 1, 2]
        negative_cols     [2, 3, 3]      negative_log_q  log(3 · q) per draw
        negative_hits     [[F, F, F],    (draw c is user 1's positive: left out)
                           [T, F, F]]
    """

    positive_rows: torch.Tensor
    positive_cols: torch.Tensor
    negative_cols: torch.Tensor
    negative_log_q: torch.Tensor
    negative_hits: torch.Tensor
