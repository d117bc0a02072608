"""One process's share of a Parquet interactions file, so N processes each parse 1/N of it.

A Parquet file is stored in row groups whose row counts sit in its footer, cheap to read. Rank r
of N reads a contiguous run of row groups, balanced by rows (:func:`assign_row_groups`), and
parses it with the generic loader's column mapping and checks. Then the ranks agree, one
all-gather at a time, on:

* the vocabularies: the sorted union of every shard's ids, the order the single-process loader
  gives, so every rank builds tables of the same shape (feature files join as they do there);
* who trains on each user: the rank that read most of the user's rows (ties: the lowest), so a
  file written grouped by user moves almost nothing. Rows read by another rank are sent to the
  owner (:func:`split_by_owner`), so each user's whole history sits on one rank, in file order,
  and repeated (user, item) rows resolve as they would in one process;
* what the fit needs of the whole data: users per item, the fingerprint, history lengths.

A bad value in one shard fails every rank with that shard's one-line error (naming the file and
the row in the whole file): a rank failing alone would leave the others waiting forever.

The collectives come in as an :class:`Exchange` (``torch.distributed``'s object collectives under
torchrun, ``models/neural/distributed.py``), so the data layer does not depend on torch.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import scipy.sparse as sp

from tastespace.data.build import _vocabulary, check_policies
from tastespace.data.dataset import Dataset
from tastespace.errors import DataError, TastespaceError

T = TypeVar("T")


class Exchange(Protocol):
    """The collectives a sharded load needs; every rank calls each one in the same order."""

    rank: int
    world: int

    def all_gather(self, value: Any) -> list[Any]:
        """Every rank's ``value``, in rank order, on every rank."""
        ...

    def gather(self, value: Any) -> list[Any] | None:
        """Every rank's ``value`` in rank order on rank 0; None elsewhere."""
        ...


# -- pure parts (testable without processes) -----------------------------------------------------


def assign_row_groups(row_counts: Sequence[int], world: int) -> list[range]:
    """Contiguous runs of row groups, one per rank, each near ``total / world`` rows.

    Boundary r is the group edge closest to r/world of the rows, kept so that every rank gets
    at least one group (``world`` must not exceed the number of groups).

    >>> assign_row_groups([10, 10, 10, 10], 2)
    [range(0, 2), range(2, 4)]
    >>> assign_row_groups([30, 5, 5, 5, 5], 2)
    [range(0, 1), range(1, 5)]
    """
    groups = len(row_counts)
    if not 1 <= world <= groups:
        raise DataError(f"cannot split {groups} row groups between {world} processes")
    edges = np.concatenate([[0], np.cumsum(row_counts, dtype=np.int64)])
    cuts = [0]
    for r in range(1, world):
        low, high = cuts[-1] + 1, groups - (world - r)
        target = edges[-1] * r / world
        cuts.append(low + int(np.argmin(np.abs(edges[low : high + 1] - target))))
    cuts.append(groups)
    return [range(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]


_COLUMNS = ("users", "items", "weights", "timestamps", "positions")


@dataclass
class ShardRows:
    """Parallel arrays of interactions, each with its 0-based row in the whole file."""

    users: np.ndarray
    items: np.ndarray
    weights: np.ndarray | None
    timestamps: np.ndarray | None
    positions: np.ndarray

    def __len__(self) -> int:
        return len(self.positions)

    def take(self, rows: np.ndarray) -> ShardRows:
        return ShardRows(*(None if a is None else a[rows] for a in self._arrays()))

    def keep(self, rows: np.ndarray) -> None:
        """Keep only ``rows``, in place, one column at a time (never two copies of all; a
        column parsed by Arrow goes back to the system before the next is copied)."""
        for name in _COLUMNS:
            column = getattr(self, name)
            if column is not None:
                setattr(self, name, column[rows])
                del column
                _release_arrow_memory()

    def _arrays(self) -> tuple[np.ndarray | None, ...]:
        return tuple(getattr(self, name) for name in _COLUMNS)

    @classmethod
    def concat(cls, parts: Sequence[ShardRows]) -> ShardRows:
        """``parts`` one after the other; it consumes them, a column at a time, so the peak is
        one column above the rows (the only non-empty part comes back as it is)."""
        full = [p for p in parts if len(p)] or list(parts[:1])
        if len(full) == 1:
            return full[0]
        joined: dict[str, np.ndarray | None] = {}
        for name in _COLUMNS:
            columns = [getattr(p, name) for p in full]
            joined[name] = None if any(c is None for c in columns) else np.concatenate(columns)
            del columns
            for part in full:
                setattr(part, name, None)
        return cls(**joined)  # type: ignore[arg-type]


def common_ids(parts: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Every shard's ids as one type: text as soon as one shard has a non-integer id, as the
    single-process loader makes the whole column text (a shard of integers reads them as int)."""
    if all(p.dtype.kind == "O" for p in parts) or not any(p.dtype.kind == "O" for p in parts):
        return list(parts)
    return [p if p.dtype.kind == "O" else p.astype(str).astype(object) for p in parts]


def user_owners(
    uniques: Sequence[np.ndarray], counts: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, owner)``: the sorted union of every rank's user ids, and for each the rank that
    holds most of its rows (ties: the lowest rank).

    >>> ids, owner = user_owners([np.array([1, 2]), np.array([2, 3])],
    ...                          [np.array([5, 1]), np.array([4, 2])])
    >>> ids.tolist(), owner.tolist()
    ([1, 2, 3], [0, 1, 1])
    """
    ids = np.concatenate(uniques)
    held = np.concatenate(counts).astype(np.int64)
    ranks = np.repeat(np.arange(len(uniques)), [len(u) for u in uniques])
    union, inverse = np.unique(ids, return_inverse=True)
    order = np.lexsort((ranks, -held, inverse))
    key = inverse[order]
    first = order[np.concatenate([[True], key[1:] != key[:-1]])]
    owner = np.empty(len(union), np.int64)
    owner[inverse[first]] = ranks[first]
    return union, owner


def split_by_owner(rows: ShardRows, owner: np.ndarray, rank: int, world: int) -> list[ShardRows]:
    """The rows of ``rows`` that other ranks own (``owner[k]`` for row k), by destination, and
    ``rows`` cut in place to this ``rank``'s own, which takes that slot (in a file grouped by
    user nearly every row stays: no copy of them all)."""
    parts = [rows.take(np.flatnonzero(owner == r)) for r in range(world) if r != rank]
    rows.keep(np.flatnonzero(owner == rank))
    parts.insert(rank, rows)
    return parts


def collect(outgoing: Sequence[Sequence[ShardRows]], rank: int) -> ShardRows:
    """This rank's rows from every rank's :func:`split_by_owner` (its own kept ones included),
    in file order: rank r's row groups all come before rank r + 1's, so rank order is file
    order, and repeated (user, item) rows resolve as they would in one process."""
    return ShardRows.concat([parts[rank] for parts in outgoing])


# -- the sharded dataset -------------------------------------------------------------------------


@dataclass
class Shard:
    """This rank's place in a sharded load, and the collectives over the whole data."""

    exchange: Exchange
    owned: np.ndarray  # dense indices of the users whose histories this rank holds
    fingerprint: str  # of the whole data, as the single-process load would give
    item_users: np.ndarray  # users per item over the whole data

    def whole_rows(self, matrix: sp.csr_matrix, rows: np.ndarray) -> sp.csr_matrix:
        """``rows`` of the whole data's ``matrix`` (each rank holds its owned users' rows)."""
        parts = self.exchange.all_gather(matrix[rows])
        whole = parts[0]
        for part in parts[1:]:
            whole = whole + part
        whole = whole.tocsr()
        whole.sort_indices()
        return whole

    def history_lengths(self, matrix: sp.csr_matrix) -> np.ndarray:
        """Every user's number of items in the whole data."""
        return np.sum(self.exchange.all_gather(np.diff(matrix.indptr)), axis=0)

    def agree(self, value: T) -> T:
        """Rank 0's ``value`` on every rank (one early-stopping decision for all)."""
        return self.exchange.all_gather(value)[0]


@dataclass
class ShardedDataset(Dataset):
    """The whole data's shape and ids, with the interactions of the users this rank owns.

    ``fingerprint`` and ``item_user_counts`` answer for the whole data. Made by
    :func:`load_shard`; a subset or binarised copy is no longer a shard of anything.
    """

    shard: Shard | None = None

    def fingerprint(self) -> str:
        return super().fingerprint() if self.shard is None else self.shard.fingerprint

    def item_user_counts(self) -> np.ndarray:
        return super().item_user_counts() if self.shard is None else self.shard.item_users


def parquet_row_groups(path: str | Path) -> list[int] | None:
    """Rows per row group of a Parquet file (its footer only), or None for any other file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tastespace.data.generic import PARQUET_SUFFIXES

    path = Path(path).expanduser()
    if not path.name.lower().endswith(PARQUET_SUFFIXES) or not path.is_file():
        return None
    try:
        metadata = pq.ParquetFile(path).metadata
    except (pa.ArrowException, OSError):
        return None  # the whole-file loader names what is wrong with it
    return [metadata.row_group(g).num_rows for g in range(metadata.num_row_groups)]


def load_shard(path: str | Path, exchange: Exchange, **options: Any) -> ShardedDataset:
    """This rank's share of a Parquet interactions file, with the whole data's vocabularies.

    ``options`` are :func:`~tastespace.data.generic.load_interactions`'s (column mapping,
    ``min_rating``, ``duplicates``, ``nonpositive``, feature files); every rank passes the same.
    ``provenance["loader"]`` is what :func:`~tastespace.data.load.load_dataset` would record,
    plus ``shards``: the row groups and rows each rank read.
    """
    from tastespace.data.generic import load_interactions
    from tastespace.data.load import loader_record

    record = loader_record(path, options)
    given = inspect.signature(load_interactions).bind(path, **options)
    given.apply_defaults()
    settings = dict(given.arguments)
    check_policies(settings["duplicates"], settings["nonpositive"])
    path = Path(path).expanduser()
    counts = parquet_row_groups(path)
    if counts is None:
        raise DataError(f"{path}: not a readable Parquet file; only Parquet is read in shards")
    groups = assign_row_groups(counts, exchange.world)
    own = groups[exchange.rank]
    first = int(sum(counts[: own.start]))
    source, columns, rows, filtered = _collectively(
        exchange, lambda: _read_groups(path, own, first, counts, settings)
    )
    mine, users, items, sent = _exchange_rows(exchange, rows)
    parsed = sum(counts[own.start : own.stop])
    reads = exchange.all_gather(
        {"rank": exchange.rank, "row_groups": [own.start, own.stop], "rows": parsed, "sent": sent}
    )
    del rows
    built = _collectively(
        exchange,
        lambda: _build_shard(source, columns, mine, (users, items), settings, sum(counts)),
    )
    built.provenance["filtered"].update(filtered)
    record["shards"] = reads
    built.provenance["loader"] = record
    return _with_shard(built, exchange)


def _read_groups(
    path: Path, own: range, first: int, counts: list[int], settings: dict[str, Any]
) -> tuple[Any, dict[str, str | None], ShardRows, dict[str, int]]:
    """Parse and check this rank's row groups (errors name rows of the whole file), and drop
    the rows ``min_rating`` / ``nonpositive="drop"`` drop (counted): a user or item left with
    no row must not reach the vocabularies, as in one process."""
    from tastespace.data.build import _rows_to_keep
    from tastespace.data.generic import _checked_rows, _open_source

    source = _open_source(path, None)
    source.row_groups = tuple(own)
    source.positions = np.arange(first, first + sum(counts[own.start : own.stop]))
    explicit = {role: settings[f"{role}_col"] for role in ("user", "item", "rating", "timestamp")}
    columns, rows = _checked_rows(
        source, explicit, settings["min_rating"], settings["nonpositive"], None
    )
    shard = ShardRows(rows.users, rows.items, rows.weights, rows.timestamps, source.positions)
    filtered: dict[str, int] = {}
    if rows.weights is not None:
        keep = _rows_to_keep(rows.weights, settings["min_rating"], "drop", filtered)
        if keep is not None:
            shard.keep(np.flatnonzero(keep))
    return source, columns, shard, filtered


def _exchange_rows(
    exchange: Exchange, rows: ShardRows
) -> tuple[ShardRows, np.ndarray, np.ndarray, int]:
    """This rank's users' rows from every shard, the sorted global user and item ids, and how
    many of its rows went to other ranks."""
    rows.users = _common_kind(exchange, rows.users)
    rows.items = _common_kind(exchange, rows.items)
    user_ids, user_counts = np.unique(rows.users, return_counts=True)
    item_ids = np.unique(rows.items)
    everyone = exchange.all_gather((user_ids, user_counts, item_ids))
    users, owner = user_owners([u for u, _, _ in everyone], [c for _, c, _ in everyone])
    items = np.unique(np.concatenate([i for _, _, i in everyone]))
    del everyone
    row_owner = owner[np.searchsorted(users, rows.users)]
    sent = int(np.sum(row_owner != exchange.rank))
    split = split_by_owner(rows, row_owner, exchange.rank, exchange.world)
    kept, split[exchange.rank] = split[exchange.rank], rows.take(np.arange(0))
    outgoing = exchange.all_gather(split)  # only the rows that change rank travel
    outgoing[exchange.rank][exchange.rank] = kept
    _release_arrow_memory()
    return collect(outgoing, exchange.rank), users, items, sent


def _release_arrow_memory() -> None:
    """Hand the Arrow buffers the parsed columns no longer use back to the system."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def _common_kind(exchange: Exchange, ids: np.ndarray) -> np.ndarray:
    """``ids`` as text when any shard's are (:func:`common_ids`; only the kinds travel)."""
    kinds = exchange.all_gather(ids[:0])
    return common_ids([ids, *kinds])[0]


def _build_shard(
    source: Any,
    columns: dict[str, str | None],
    mine: ShardRows,
    ids: tuple[np.ndarray, np.ndarray],
    settings: dict[str, Any],
    total_rows: int,
) -> Dataset:
    """This rank's Dataset over the global vocabularies (feature files joined as in one
    process: on every id of the whole data)."""
    from tastespace.data.generic import (
        _build,
        _check_no_duplicates,
        _harmonise,
        _join_features,
        _provenance,
        _Rows,
        _stem,
    )

    path = source.path
    if len(mine) == 0:
        raise DataError(
            f"{path}: a process got no user to train on (each user goes to the process that "
            "read most of its rows); write the file grouped by user, or let every process read "
            "it whole with shard_data='off'",
            options=("shard_data",),
        )
    source.positions = mine.positions
    if settings["duplicates"] == "error":
        _check_no_duplicates(source, mine.users, mine.items)
    provenance = _provenance(source, columns, total_rows)
    whole = _Rows(ids[0], ids[1], None, None, total_rows)
    files = {"item": settings["item_features"], "user": settings["user_features"]}
    features = _join_features(
        whole, columns, files, settings["multi_valued"], settings["keep_unrated"], provenance
    )
    local = _Rows(
        _harmonise(whole.users, mine.users)[1],
        _harmonise(whole.items, mine.items)[1],
        mine.weights,
        mine.timestamps,
        len(mine),
    )
    vocabularies = {}
    for role, ids in (("user", whole.users), ("item", whole.items)):
        declared, table = features.get(role, (None, None))
        vocabularies[role] = (_vocabulary(ids, declared, role)[0].ids, table)
    options = {key: settings[key] for key in ("duplicates", "min_rating", "nonpositive")}
    name = settings["name"] or _stem(path)
    return _build(path, local, vocabularies, options, name, provenance)


def _with_shard(built: Dataset, exchange: Exchange) -> ShardedDataset:
    """The shard's dataset with what the fit needs of the whole data."""
    matrix = built.interactions
    owned = np.flatnonzero(np.diff(matrix.indptr) > 0)
    counts = np.bincount(matrix.indices, minlength=matrix.shape[1])
    item_users = np.sum(exchange.all_gather(counts), axis=0).astype(np.float32)
    fingerprint = exchange.all_gather(_whole_fingerprint(built, exchange.gather(matrix)))[0]
    filtered: dict[str, int] = {}
    for counted in exchange.all_gather(built.provenance["filtered"]):
        for reason, count in counted.items():
            filtered[reason] = filtered.get(reason, 0) + count
    built.provenance["filtered"] = filtered
    shard = Shard(exchange, owned, fingerprint, item_users)
    fields = {name: getattr(built, name) for name in Dataset.__dataclass_fields__}
    return ShardedDataset(**fields, shard=shard)


def _whole_fingerprint(built: Dataset, parts: list[sp.csr_matrix] | None) -> str | None:
    """On rank 0 (``parts`` given), the fingerprint of the whole data (the ranks' rows are
    disjoint, so their sum is the matrix one process would build); None elsewhere."""
    if parts is None:
        return None
    whole = parts[0]
    for part in parts[1:]:
        whole = whole + part
    whole = whole.tocsr()
    whole.sort_indices()
    return Dataset(whole, built.user_ids, built.item_ids, built.items, built.users).fingerprint()


def _collectively(exchange: Exchange, step: Callable[[], T]) -> T:
    """``step()`` on every rank; when it failed on any rank, every rank raises the first one's
    error (a rank failing alone would leave the others waiting in the next collective)."""
    failure = None
    try:
        result = step()
    except TastespaceError as err:
        failure = (type(err), err.args, err.options)
    failures = [f for f in exchange.all_gather(failure) if f is not None]
    if failures:
        kind, args, options = failures[0]
        raise kind(*args, options=options)
    return result
