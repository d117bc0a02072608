"""Reading a Parquet file in shards: row-group plans, user owners, the row exchange, and the
whole load on threads standing in for torchrun's processes (same collectives, same order)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp

from tastespace.data import load_dataset
from tastespace.data.shards import (
    ShardRows,
    assign_row_groups,
    collect,
    common_ids,
    load_shard,
    parquet_row_groups,
    split_by_owner,
    user_owners,
)
from tastespace.errors import DataError


class ThreadExchange:
    """``world`` ranks on threads: an all-gather is a write, a barrier and a read."""

    def __init__(self, world: int) -> None:
        self.world = world
        self.slots: list[Any] = [None] * world
        self.barrier = threading.Barrier(world)

    def rank(self, rank: int) -> Any:
        hub = self

        class Rank:
            def __init__(self) -> None:
                self.rank, self.world = rank, hub.world

            def all_gather(self, value: Any) -> list[Any]:
                hub.barrier.wait()
                hub.slots[rank] = value
                hub.barrier.wait()
                out = list(hub.slots)
                hub.barrier.wait()
                return out

            def gather(self, value: Any) -> list[Any] | None:
                out = self.all_gather(value)
                return out if rank == 0 else None

        return Rank()


def load_on_threads(path, world: int, **options: Any) -> tuple[list[Any], list[BaseException]]:
    """Every rank's :func:`load_shard` result (or error), run side by side."""
    hub = ThreadExchange(world)
    results: list[Any] = [None] * world
    errors: list[Any] = [None] * world

    def run(rank: int) -> None:
        try:
            results[rank] = load_shard(path, hub.rank(rank), **options)
        except Exception as err:  # noqa: BLE001 - each rank's outcome is asserted on
            errors[rank] = err

    threads = [threading.Thread(target=run, args=(r,)) for r in range(world)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results, errors


@pytest.fixture(scope="module")
def spanning(tmp_path_factory):
    """120 text-id users in file order, 6 rows each, in row groups of 100 rows: most groups
    end inside a user, so those users span two ranks' shards; item features join on ids."""
    root = tmp_path_factory.mktemp("shards")
    rng = np.random.default_rng(7)
    users = np.repeat([f"u{k:03d}" for k in range(120)], 6)
    items = rng.integers(0, 40, len(users))
    ratings = rng.integers(1, 6, len(users)).astype(float)
    stamps = 1_000_000 + np.arange(len(users)) * 60
    table = pa.table({"user_id": users, "item_id": items, "rating": ratings, "ts": stamps})
    pq.write_table(table, root / "ratings.parquet", row_group_size=100)
    (root / "items.csv").write_text(
        "item_id,genres\n" + "".join(f"{i},{'Drama' if i % 2 else 'Comedy'}\n" for i in range(45))
    )
    return root


def test_row_groups_go_to_ranks_in_contiguous_runs_balanced_by_rows():
    assert assign_row_groups([10, 10, 10, 10, 10, 10], 3) == [range(0, 2), range(2, 4), range(4, 6)]
    assert assign_row_groups([50, 10, 10, 10, 10, 10], 2) == [range(0, 1), range(1, 6)]
    assert assign_row_groups([1, 1, 100], 3) == [range(0, 1), range(1, 2), range(2, 3)]
    with pytest.raises(DataError, match="cannot split 2 row groups between 3 processes"):
        assign_row_groups([5, 5], 3)


def test_each_user_goes_to_the_rank_holding_most_of_its_rows():
    ids, owner = user_owners(
        [np.array(["a", "b", "c"], object), np.array(["c", "d"], object), np.array(["d"], object)],
        [np.array([3, 1, 1]), np.array([2, 4]), np.array([4])],
    )
    assert ids.tolist() == ["a", "b", "c", "d"]
    assert owner.tolist() == [0, 0, 1, 1]  # d: 4 rows on ranks 1 and 2, the lower rank wins


def test_spilled_rows_reach_their_owner_in_file_order():
    def rows(users, positions):
        n = len(users)
        return ShardRows(np.array(users), np.arange(n), None, None, np.array(positions))

    rank0 = rows([1, 1, 2], [0, 1, 2])  # user 2's first row sits at the end of rank 0's groups
    rank1 = rows([2, 2, 3], [3, 4, 5])
    held = [np.array([2, 1]), np.array([2, 1])]  # user 2: 1 row on rank 0, 2 on rank 1
    ids, owner = user_owners([np.array([1, 2]), np.array([2, 3])], held)
    outgoing = [
        split_by_owner(part, owner[np.searchsorted(ids, part.users)], rank, 2)
        for rank, part in enumerate((rank0, rank1))
    ]
    assert [len(p) for p in outgoing[0]] == [2, 1]  # rank 0 sends user 2's row to rank 1
    assert outgoing[0][0] is rank0 and rank0.users.tolist() == [1, 1]  # cut in place
    mine = [collect(outgoing, r) for r in (0, 1)]
    assert mine[0].users.tolist() == [1, 1] and mine[0].positions.tolist() == [0, 1]
    assert mine[1].users.tolist() == [2, 2, 2, 3]
    assert mine[1].positions.tolist() == [2, 3, 4, 5]


def test_ids_become_text_on_every_shard_once_one_shard_has_text():
    ints, text = np.array([7, 12]), np.array(["u1"], object)
    assert [p.tolist() for p in common_ids([ints, text])] == [["7", "12"], ["u1"]]
    assert common_ids([ints, ints + 1])[0].dtype.kind == "i"


def test_three_shards_agree_with_the_single_process_loader(spanning):
    path = spanning / "ratings.parquet"
    options = {"min_rating": 3, "item_features": str(spanning / "items.csv")}
    whole = load_dataset(path, **options)
    shards, errors = load_on_threads(path, 3, **options)
    assert errors == [None, None, None]
    groups = pq.ParquetFile(path).metadata.num_row_groups
    reads = shards[0].provenance["loader"]["shards"]
    assert [r["row_groups"] for r in reads] == [[0, 2], [2, 5], [5, groups]]
    assert [r["rows"] for r in reads] == [200, 300, 220]  # each rank parsed only its groups
    owned = [set(s.shard.owned.tolist()) for s in shards]
    assert set.union(*owned) == set(range(whole.n_users)) and sum(map(len, owned)) == whole.n_users
    total = shards[0].interactions + shards[1].interactions + shards[2].interactions
    assert (total != whole.interactions).nnz == 0

    def stamps(ds):  # each interaction's timestamp at its cell
        m = ds.interactions
        return sp.csr_matrix((ds.timestamps.astype(float), m.indices, m.indptr), m.shape)

    assert (sum(stamps(s) for s in shards) != stamps(whole)).nnz == 0
    for shard in shards:
        assert shard.user_ids == whole.user_ids and shard.item_ids == whole.item_ids
        assert shard.items.frame.equals(whole.items.frame)
        assert shard.items.frame["genres"].iloc[:2].tolist() == ["Comedy", "Drama"]
        assert shard.fingerprint() == whole.fingerprint()
        np.testing.assert_array_equal(shard.item_user_counts(), whole.item_user_counts())
        assert shard.provenance["loader"]["options"] == whole.provenance["loader"]["options"]
        assert shard.provenance["filtered"] == whole.provenance["filtered"]


def test_a_user_straddling_two_shards_is_whole_on_the_rank_with_most_of_its_rows(spanning):
    """Rows 198-203 are u033's (2 in rank 0's groups, 4 in rank 1's), rows 498-503 u083's
    (2 in rank 1's, 4 in rank 2's): those 2 + 2 rows move, nothing else."""
    shards, errors = load_on_threads(spanning / "ratings.parquet", 3, duplicates="sum")
    assert errors == [None, None, None]
    assert [r["sent"] for r in shards[0].provenance["loader"]["shards"]] == [2, 2, 0]
    whole = load_dataset(spanning / "ratings.parquet", duplicates="sum")
    for name, owner in (("u033", 1), ("u083", 2)):
        user = whole.user_ids.index(name)
        expected = whole.interactions[user].toarray()
        held = [s.interactions[user].toarray() for s in shards]
        np.testing.assert_array_equal(held[owner], expected)  # the whole history, there only
        assert sum(h.sum() for h in held) == expected.sum()
        assert user in shards[owner].shard.owned


def test_a_bad_value_in_one_shard_fails_every_rank_naming_its_row_in_the_file(tmp_path):
    users = pa.array([1, 2, 3, 4, None, 6], pa.int64())
    pq.write_table(
        pa.table({"user": users, "item": [1, 2, 3, 4, 5, 6]}),
        tmp_path / "x.parquet",
        row_group_size=2,
    )
    _, errors = load_on_threads(tmp_path / "x.parquet", 3)
    expected = f"{tmp_path / 'x.parquet'}: missing user id at row 5 (column 'user'); every row"
    assert all(isinstance(e, DataError) and str(e).startswith(expected) for e in errors), errors


def test_repeated_pairs_across_shards_meet_on_the_owner(spanning, tmp_path):
    table = pa.table({"user": ["a", "a", "b", "a"], "item": [1, 2, 3, 1]})
    pq.write_table(table, tmp_path / "dup.parquet", row_group_size=2)
    _, errors = load_on_threads(tmp_path / "dup.parquet", 2, duplicates="error")
    assert all(isinstance(e, DataError) for e in errors), errors
    assert "('a', 1) at row 1 and row 4" in str(errors[1])
    shards, _ = load_on_threads(tmp_path / "dup.parquet", 2, duplicates="sum")
    assert shards[0].interactions.sum() + shards[1].interactions.sum() == 4


def test_only_parquet_has_row_groups(spanning, tmp_path):
    assert parquet_row_groups(spanning / "ratings.parquet") == [100] * 7 + [20]
    (tmp_path / "r.csv").write_text("user,item\n1,2\n")
    assert parquet_row_groups(tmp_path / "r.csv") is None
    assert parquet_row_groups("synthetic:tiny") is None
