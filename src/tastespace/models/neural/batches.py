"""Training batches of the two-tower model: history bags, user features and item inputs.

Two shapes of batch, chosen by the catalog size (``NeuralConfig.loss``):

- *full*: the item tower runs over every trained item and the targets are a dense
  ``(batch, items)`` matrix — exact, and cheapest for small catalogs;
- *sampled*: the item tower runs only over the batch's positives ∪ ``num_negatives`` items drawn
  from ``count^0.75``, and the targets are positions in that candidate list
  (:class:`~tastespace.models.neural.modules.SampledTargets`), so a step costs what its users
  watched, not the catalog.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from tastespace.features.encoders import EncodedFeatures
from tastespace.models.neural.modules import SampledTargets

NEGATIVE_POWER = 0.75
"""Negatives are drawn in proportion to count^0.75 (word2vec's smoothing)."""


def take_items(inputs: dict, rows: torch.Tensor) -> dict:
    """Item-tower inputs (``item_ids``, ``item_bags``, ``item_numeric``) for ``rows`` only.

    Bags are (indices, offsets) with ``include_last_offset``; for rows [2, 0] of a bag with
    offsets [0, 1, 1, 3] the result holds indices[1:3] ++ indices[0:1], offsets [0, 2, 3].
    """
    bags = {}
    for name, (indices, offsets) in inputs["item_bags"].items():
        starts = offsets[rows]
        lengths = offsets[rows + 1] - starts
        new_offsets = torch.cat([lengths.new_zeros(1), lengths.cumsum(0)])
        within = torch.arange(int(new_offsets[-1]), device=rows.device)
        within = within - torch.repeat_interleave(new_offsets[:-1], lengths)
        bags[name] = (indices[torch.repeat_interleave(starts, lengths) + within], new_offsets)
    return {
        "item_ids": inputs["item_ids"][rows],
        "item_bags": bags,
        "item_numeric": inputs["item_numeric"][rows],
    }


def history_batch(
    sub: sp.csr_matrix,
    cold: np.ndarray,
    unknown_id: int,
    device: torch.device,
    generator: torch.Generator | None = None,
    dropout: float = 0.0,
) -> dict:
    """The user tower's history bag for the rows of ``sub``, with seeded dropout of entries;
    items never seen in training (``cold``) enter as ``unknown_id``."""
    indices = sub.indices.astype(np.int64)
    lengths = np.diff(sub.indptr)
    if generator is not None and dropout > 0 and len(indices):
        keep = (torch.rand(len(indices), generator=generator) >= dropout).numpy()
        rows = np.repeat(np.arange(len(lengths)), lengths)
        indices = indices[keep]
        lengths = np.bincount(rows[keep], minlength=len(lengths))
    indices = np.where(cold[indices], unknown_id, indices) if len(indices) else indices
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return {
        "history_indices": torch.as_tensor(indices, device=device),
        "history_offsets": torch.as_tensor(offsets, device=device),
    }


def feature_batch(
    encoded: EncodedFeatures, rows: np.ndarray | None, device: torch.device, prefix: str
) -> dict:
    """Bags and numerics of ``encoded`` for ``rows`` (all rows when ``None``)."""
    numeric = encoded.numeric if rows is None else encoded.numeric[rows]
    bags = {}
    for name, (indices, offsets) in encoded.bags.items():
        if rows is not None:
            starts, ends = offsets[rows], offsets[rows + 1]
            parts = [indices[s:e] for s, e in zip(starts, ends, strict=True)]
            indices = np.concatenate(parts) if parts else np.empty(0, np.int64)
            offsets = np.concatenate([[0], np.cumsum(ends - starts)]).astype(np.int64)
        bags[name] = (
            torch.as_tensor(indices, device=device),
            torch.as_tensor(offsets, device=device),
        )
    return {
        f"{prefix}_numeric": torch.as_tensor(numeric, dtype=torch.float32, device=device),
        f"{prefix}_bags": bags,
    }


@dataclass
class BatchMaker:
    """``make_batch(rows, generator)`` for the training loop (rows index ``train_rows``).

    ``catalog`` holds the item-tower inputs of every item on ``device``; ``item_counts`` are the
    training counts (0 = cold: never a target, never a negative).
    """

    matrix: sp.csr_matrix
    train_rows: np.ndarray
    users: EncodedFeatures
    catalog: dict
    item_counts: np.ndarray
    unknown_id: int
    device: torch.device
    sampled: bool
    num_negatives: int
    dropout: float
    tied: bool

    def __post_init__(self) -> None:
        self.cold = self.item_counts == 0
        self.trained = np.flatnonzero(~self.cold)
        # Items nobody watched in training are unobserved, not negatives: scoring them in the
        # softmax would teach the content path to push exactly the cold items down.
        self.restricted = not self.sampled and len(self.trained) < len(self.item_counts)
        self.items = self.catalog
        if self.restricted:
            self.items = take_items(self.catalog, torch.as_tensor(self.trained, device=self.device))
        weights = np.power(self.item_counts.astype(np.float64), NEGATIVE_POWER)
        self.negative_probs = weights / weights.sum()
        self._draw_probs = torch.as_tensor(self.negative_probs, dtype=torch.float32)

    def __call__(self, rows: np.ndarray, generator: torch.Generator) -> dict:
        rows = self.train_rows[rows]
        sub = self.matrix[rows]
        batch = history_batch(sub, self.cold, self.unknown_id, self.device, generator, self.dropout)
        batch.update(feature_batch(self.users, rows, self.device, prefix="user"))
        batch["user_rows"] = torch.as_tensor(rows, device=self.device)
        if self.sampled:
            return self._sampled(sub, batch, generator)
        batch.update(self.items)
        if not self.restricted:
            batch["targets"] = _dense(sub, self.device)
            return batch
        if self.tied:
            batch["history_positions"] = self._positions(self.trained, batch["history_indices"])
        batch["targets"] = _dense(sub[:, self.trained], self.device)
        return batch

    def _sampled(self, sub: sp.csr_matrix, batch: dict, generator: torch.Generator) -> dict:
        draws = torch.multinomial(
            self._draw_probs, self.num_negatives, replacement=True, generator=generator
        ).numpy()
        candidates = np.union1d(sub.indices, draws)
        batch.update(take_items(self.catalog, torch.as_tensor(candidates, device=self.device)))
        if self.tied:
            batch["history_positions"] = self._positions(candidates, batch["history_indices"])
        lengths = np.diff(sub.indptr)
        rows = np.repeat(np.arange(len(lengths)), lengths)
        cols = np.searchsorted(candidates, sub.indices)
        negative_cols = np.searchsorted(candidates, draws)
        hits = np.zeros((len(lengths), len(candidates)), dtype=bool)
        hits[rows, cols] = True
        log_q = np.log(self.num_negatives * self.negative_probs[draws]).astype(np.float32)
        batch["sampled"] = SampledTargets(
            positive_rows=torch.as_tensor(rows, device=self.device),
            positive_cols=torch.as_tensor(cols, device=self.device),
            negative_cols=torch.as_tensor(negative_cols, device=self.device),
            negative_log_q=torch.as_tensor(log_q, device=self.device),
            negative_hits=torch.as_tensor(hits[:, negative_cols], device=self.device),
        )
        return batch

    def _positions(self, candidates: np.ndarray, indices: torch.Tensor) -> torch.Tensor:
        """Rows of the history's items in the candidate list (unknown IDs fall past its end)."""
        return torch.as_tensor(
            np.searchsorted(candidates, indices.cpu().numpy()), device=self.device
        )


def _dense(sub: sp.csr_matrix, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(sub.toarray(), dtype=torch.float32, device=device)
