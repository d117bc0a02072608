"""One planted catalog written in every shape a user brings: four disjoint taste groups.

Each of 160 users rates 10 of the 20 items of their own group (ratings 3–5, with timestamps),
so every model but popularity should recommend and find neighbours inside the query's group.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

GROUPS = ("Action", "Comedy", "Drama", "Horror")
ITEMS_PER_GROUP = 20
USERS_PER_GROUP = 40
WATCHED = 10


@dataclass(frozen=True)
class Shape:
    """A dataset as the CLI takes it: ``--data`` plus extra fit options, and its raw ids."""

    name: str
    data: str
    fit_args: tuple[str, ...]
    item_of: dict[int, str]  # planted item number → raw id as the user writes it
    group_of: dict[str, int]  # raw id → planted group

    def raw(self, item: int) -> str:
        return self.item_of[item]


def planted_frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for group in range(len(GROUPS)):
        for u in range(USERS_PER_GROUP):
            user = group * USERS_PER_GROUP + u
            items = rng.choice(ITEMS_PER_GROUP, WATCHED, replace=False) + group * ITEMS_PER_GROUP
            for n, item in enumerate(items):
                rows.append((user, int(item), float(rng.integers(3, 6)), 1_000_000 + 60 * n))
    return pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])


def n_items() -> int:
    return len(GROUPS) * ITEMS_PER_GROUP


def group(item: int) -> int:
    return item // ITEMS_PER_GROUP


def _shape(name: str, data: Path | str, fit_args: tuple[str, ...], naming) -> Shape:
    item_of = {i: naming(i) for i in range(n_items())}
    return Shape(name, str(data), fit_args, item_of, {raw: group(i) for i, raw in item_of.items()})


def write_shapes(root: Path) -> dict[str, Shape]:
    """Every input shape of the end-to-end matrix, written under ``root``."""
    frame = planted_frame()
    plain = root / "ratings.csv"
    frame.to_csv(plain, index=False)
    strings = frame.assign(
        user=frame.user.map(lambda u: f"user-{u:03d}"),
        item=frame.item.map(lambda i: f"film-{GROUPS[group(i)][0].lower()}{i:02d}"),
    )
    strings.to_csv(root / "string_ids.csv", index=False)
    frame.to_parquet(root / "ratings.parquet", index=False)
    half = [i for i in range(n_items()) if i % 2 == 0]
    pd.DataFrame(
        {
            "item": half,
            "title": [f"Film {i} ({1990 + i % 10})" for i in half],
            "genres": [GROUPS[group(i)] for i in half],
        }
    ).to_csv(root / "some_items.csv", index=False)
    users = np.arange(len(GROUPS) * USERS_PER_GROUP)
    pd.DataFrame(
        {"user": users, "age": 18 + users % 50, "occupation": [f"job{u % 5}" for u in users]}
    ).to_csv(root / "users.csv", index=False)
    movielens = _write_latest_small(root / "ml-latest-small.zip", frame)
    as_int = str
    return {
        "plain-csv": _shape("plain-csv", plain, (), as_int),
        "string-ids": _shape(
            "string-ids",
            root / "string_ids.csv",
            (),
            lambda i: f"film-{GROUPS[group(i)][0].lower()}{i:02d}",
        ),
        "parquet": _shape("parquet", root / "ratings.parquet", (), as_int),
        "movielens": _shape("movielens", movielens, (), lambda i: str(i + 1)),
        "some-item-features": _shape(
            "some-item-features", plain, ("--item-features", str(root / "some_items.csv")), as_int
        ),
        "user-features": _shape(
            "user-features", plain, ("--user-features", str(root / "users.csv")), as_int
        ),
    }


def _write_latest_small(path: Path, frame: pd.DataFrame) -> Path:
    """The ml-latest-small layout exactly as GroupLens ships it (movieIds from 1, tags, links)."""
    ratings = frame.assign(userId=frame.user + 1, movieId=frame.item + 1)
    movies = ["movieId,title,genres"] + [
        f'{i + 1},"Planted {GROUPS[group(i)]} {i}, The ({1980 + i % 30})",{GROUPS[group(i)]}|Film'
        for i in range(n_items())
    ]
    tags = ["userId,movieId,tag,timestamp"] + [
        f"{u + 1},{i + 1},{GROUPS[group(i)].lower()} classic,1100000000"
        for u, i in zip(frame.user[::7], frame.item[::7], strict=True)
    ]
    links = ["movieId,imdbId,tmdbId"] + [
        f"{i + 1},{100000 + i:07d},{i + 1}" for i in range(n_items())
    ]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        folder = "ml-latest-small"
        archive.writestr(f"{folder}/", b"")
        archive.writestr(
            f"{folder}/ratings.csv",
            ratings[["userId", "movieId", "rating", "timestamp"]].to_csv(index=False),
        )
        archive.writestr(f"{folder}/movies.csv", "\n".join(movies) + "\n")
        archive.writestr(f"{folder}/tags.csv", "\n".join(tags) + "\n")
        archive.writestr(f"{folder}/links.csv", "\n".join(links) + "\n")
        archive.writestr(
            f"{folder}/README.txt", "Planted test release in the ml-latest-small layout.\n"
        )
    return path
