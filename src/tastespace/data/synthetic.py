"""The embedded synthetic movie catalog: offline, deterministic, with planted structure.

Why it exists: the demo and the tests must run without downloads, and a test must be able to
check that a model *recovers* something. So the generator plants a known structure:

* every item has one primary genre (``items.frame["planted_genre"]``, first in the ``genres`` bag)
  plus 0–2 secondary genres, a genre-dependent year and runtime, and a Zipf popularity rank
  within its primary genre;
* every user has a Dirichlet taste mixture over 1–3 genres (the dominant one is
  ``users.frame["planted_taste"]``), a power-law history length, and increasing timestamps;
* each interaction picks a genre from the user's mixture (or, for the ``noise`` fraction, a
  genre uniformly at random), then an item of that genre by popularity; ratings (1–5) are high
  on-taste and low off-taste.

Users are generated in fixed blocks of ``_BLOCK`` users, each from its own seeded stream, so the
in-memory dataset and the chunked CSV writer produce exactly the same rows, and memory stays
bounded by one block. No Python loop runs over interactions.

Example
-------
>>> ds = load_synthetic("tiny")
>>> ds.n_items, ds.items.bags["genres"].vocab[:3]
(200, ('Action', 'Comedy', 'Drama'))
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tastespace.data.bags import Bags
from tastespace.data.build import DuplicatePolicy, build_dataset
from tastespace.data.dataset import Dataset, FeatureTable
from tastespace.errors import ConfigError, DataError

__all__ = [
    "GENRE_NAMES",
    "PRESETS",
    "SyntheticConfig",
    "load_synthetic",
    "make_synthetic",
    "write_synthetic_csv",
]

GENRE_NAMES: tuple[str, ...] = (
    "Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi", "Thriller", "Animation",
    "Documentary", "Western", "Musical", "Crime", "Fantasy", "Mystery", "Adventure", "War",
    "Film-Noir", "Children", "Family", "History", "Sport", "Biography", "Music", "Superhero",
)  # fmt: skip

# (year centre, year spread, runtime mean, runtime spread, age shift of fans) per genre.
_GENRE_TRAITS: dict[str, tuple[float, float, float, float, float]] = {
    "Action": (1998, 14, 115, 15, -2),
    "Comedy": (1995, 16, 98, 12, 0),
    "Drama": (1990, 18, 118, 18, 4),
    "Horror": (1995, 15, 95, 10, -6),
    "Romance": (1990, 18, 108, 12, 0),
    "Sci-Fi": (2000, 14, 118, 16, -3),
    "Thriller": (1998, 14, 110, 12, 2),
    "Animation": (2008, 10, 88, 10, -8),
    "Documentary": (2010, 9, 95, 18, 6),
    "Western": (1962, 10, 110, 15, 14),
    "Musical": (1962, 12, 125, 20, 8),
    "Crime": (1985, 18, 115, 16, 3),
    "Fantasy": (2005, 12, 120, 18, -4),
    "Mystery": (1980, 18, 108, 12, 5),
    "Adventure": (1993, 16, 118, 16, -2),
    "War": (1970, 16, 135, 20, 10),
    "Film-Noir": (1952, 6, 95, 10, 15),
    "Children": (2000, 12, 88, 10, -10),
    "Family": (2003, 12, 95, 10, -4),
    "History": (1995, 16, 140, 20, 8),
    "Sport": (2000, 12, 112, 12, 0),
    "Biography": (2005, 10, 128, 15, 6),
    "Music": (2000, 14, 105, 15, -2),
    "Superhero": (2012, 6, 135, 12, -6),
}
_DEFAULT_TRAITS = (1995.0, 18.0, 110.0, 15.0, 0.0)

_ADJECTIVES: tuple[str, ...] = (
    "Crimson", "Silent", "Broken", "Golden", "Hidden", "Last", "Burning", "Frozen", "Distant",
    "Electric", "Midnight", "Silver", "Wild", "Lonely", "Savage", "Velvet", "Hollow", "Scarlet",
    "Restless", "Bitter", "Shattered", "Endless", "Forgotten", "Iron", "Crooked", "Gentle",
    "Wicked", "Secret", "Northern", "Southern", "Eastern", "Western", "Dark", "Bright", "Quiet",
    "Lost", "Stolen", "Falling", "Rising", "Sleeping", "Wandering", "Haunted", "Painted",
    "Hungry", "Reckless", "Tender", "Fierce", "Cold", "Blue", "Black", "White", "Red", "Green",
    "Emerald", "Copper", "Glass", "Paper", "Stone", "Salt", "Sugar", "Neon", "Atomic", "Cosmic",
    "Lunar", "Solar", "Hollywood", "Brooklyn", "Desert", "Ocean", "Mountain", "River", "Winter",
    "Summer", "Autumn", "Spring", "Final", "First", "Second", "Eternal", "Fragile", "Brave",
    "Little", "Grand", "Royal", "Rogue", "Phantom", "Mad", "Lucky", "Dangerous", "Perfect",
    "Strange", "Sweet", "Twisted", "Wooden", "Velvet-Eyed", "Thunder", "Shadow", "Starlit",
    "Rusty", "Ashen",
)  # fmt: skip
_NOUNS: tuple[str, ...] = (
    "Harbor", "Horizon", "Kingdom", "Road", "Empire", "Garden", "Shadow", "Frontier", "Heart",
    "Storm", "Mirror", "Machine", "Island", "City", "Night", "Dawn", "River", "Station", "Bridge",
    "Promise", "Whisper", "Signal", "Circus", "Hotel", "Orchard", "Voyage", "Legacy", "Protocol",
    "Witness", "Stranger", "Detective", "Outlaw", "Sheriff", "Dancer", "Pilot", "Soldier",
    "Prophet", "Queen", "King", "Ghost", "Wolf", "Falcon", "Serpent", "Tiger", "Raven", "Fox",
    "Lantern", "Compass", "Crown", "Sword", "Letter", "Melody", "Symphony", "Ballad", "Canyon",
    "Valley", "Forest", "Desert", "Tide", "Comet", "Planet", "Galaxy", "Orbit", "Engine", "Code",
    "Archive", "Labyrinth", "Tower", "Castle", "Chapel", "Diner", "Motel", "Saloon", "Express",
    "Heist", "Affair", "Summer", "Winter", "Reunion", "Rebellion", "Revenge", "Return", "Escape",
    "Alibi", "Verdict", "Secret", "Dream", "Fever", "Paradise", "Inferno", "Requiem", "Odyssey",
    "Chronicle", "Season", "Frontline", "Harvest", "Border", "Lighthouse", "Carnival", "Parade",
)  # fmt: skip

_BLOCK = 4096  # users per generation block (each block has its own seeded random stream)
_T0 = 946_684_800  # 2000-01-01 UTC
_T1 = 1_735_603_200  # 2024-12-31 UTC
_MAX_ROUNDS = 8  # rounds of top-up draws for users whose candidates had too many repeats


@dataclass(frozen=True)
class SyntheticConfig:
    """Size and shape of a synthetic catalog; the defaults are the ``small`` preset.

    Parameters
    ----------
    n_users, n_items, n_genres
        Catalog size. Genres are named like real ones (``GENRE_NAMES``), then ``"Genre 25"``…
    mean_history
        Target mean number of interactions per user (histories are capped at ``n_items // 3``,
        so the realised mean is slightly lower for heavy-tailed settings).
    activity_exponent
        Tail exponent of the power-law (Lomax) history length; smaller = heavier tail. ``> 1``.
    min_history
        Shortest history a user gets.
    taste_concentration
        Dirichlet concentration of each user's mixture over their 1..``max_tastes`` genres;
        small values make one genre dominate.
    max_tastes
        Most genres a user's taste mixture spans.
    popularity_skew
        Zipf exponent of item popularity within a genre (0 = uniform).
    noise
        Fraction of interactions whose genre is drawn uniformly instead of from the taste.
    with_ratings
        Emit 1–5 ratings correlated with taste; otherwise every weight is 1.0.
    seed
        Seed of every random draw: same config, same dataset, bit for bit.
    """

    n_users: int = 2000
    n_items: int = 1000
    n_genres: int = 12
    mean_history: float = 30.0
    activity_exponent: float = 2.0
    min_history: int = 5
    taste_concentration: float = 1.0
    max_tastes: int = 3
    popularity_skew: float = 1.0
    noise: float = 0.1
    with_ratings: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        if self.n_users < 1:
            problems.append("n_users must be ≥ 1")
        if self.n_genres < 1:
            problems.append("n_genres must be ≥ 1")
        if self.min_history < 1:
            problems.append("min_history must be ≥ 1")
        if self.n_items < max(self.n_genres, 2 * self.min_history):
            problems.append(
                f"n_items must be ≥ max(n_genres, 2 × min_history) = "
                f"{max(self.n_genres, 2 * self.min_history)}"
            )
        if self.mean_history < self.min_history:
            problems.append(f"mean_history must be ≥ min_history ({self.min_history})")
        if not self.activity_exponent > 1:
            problems.append("activity_exponent must be > 1 (otherwise the mean is infinite)")
        if not self.taste_concentration > 0:
            problems.append("taste_concentration must be > 0")
        if self.max_tastes < 1:
            problems.append("max_tastes must be ≥ 1")
        if self.popularity_skew < 0:
            problems.append("popularity_skew must be ≥ 0")
        if not 0 <= self.noise <= 1:
            problems.append("noise must lie in [0, 1]")
        if self.seed < 0:
            problems.append("seed must be ≥ 0")
        if problems:
            raise ConfigError("invalid SyntheticConfig: " + "; ".join(problems))

    @property
    def genre_names(self) -> tuple[str, ...]:
        """The genre labels, in index order."""
        extra = tuple(f"Genre {k + 1}" for k in range(len(GENRE_NAMES), self.n_genres))
        return (GENRE_NAMES + extra)[: self.n_genres]

    @classmethod
    def from_spec(cls, spec: str = "small", **overrides: Any) -> SyntheticConfig:
        """Parse ``"tiny"``, ``"users=2000,items=500,seed=3"`` or ``"tiny,seed=3"``.

        A spec without a leading preset name overrides the ``small`` preset. Keys are the field
        names or the short aliases ``users items genres history activity concentration tastes
        skew noise ratings seed``; an unknown key raises :class:`DataError` listing valid keys.

        >>> SyntheticConfig.from_spec("tiny,seed=3").seed
        3
        """
        parts = [p.strip() for p in spec.split(",") if p.strip()] if spec else []
        base = PRESETS["small"]
        if parts and "=" not in parts[0]:
            name = parts.pop(0)
            if name not in PRESETS:
                raise DataError(
                    f"unknown synthetic preset {name!r}; choose one of {sorted(PRESETS)} or "
                    "give key=value pairs"
                )
            base = PRESETS[name]
        values: dict[str, Any] = {}
        for part in parts:
            key, sep, value = part.partition("=")
            if not sep:
                raise DataError(
                    f"synthetic spec part {part!r} is not key=value (a preset name may only come "
                    "first)"
                )
            values[_field_name(key.strip())] = _parse_value(key.strip(), value.strip())
        for key, value in overrides.items():  # strings (e.g. from a command line) are parsed
            values[_field_name(key)] = _parse_value(key, value) if isinstance(value, str) else value
        return dataclasses.replace(base, **values)


PRESETS: dict[str, SyntheticConfig] = {
    "tiny": SyntheticConfig(n_users=300, n_items=200, mean_history=20.0),
    "small": SyntheticConfig(),
    "medium": SyntheticConfig(n_users=20_000, n_items=5_000, mean_history=50.0),
    "large": SyntheticConfig(n_users=200_000, n_items=30_000, mean_history=100.0),
}

_ALIASES: dict[str, str] = {
    "users": "n_users",
    "items": "n_items",
    "genres": "n_genres",
    "history": "mean_history",
    "activity": "activity_exponent",
    "concentration": "taste_concentration",
    "tastes": "max_tastes",
    "skew": "popularity_skew",
    "ratings": "with_ratings",
}
_FIELDS: dict[str, type] = {
    f.name: {"int": int, "float": float, "bool": bool}[str(f.type)]
    for f in dataclasses.fields(SyntheticConfig)
}
_BUILD_OPTIONS = ("min_rating", "duplicates")


def _valid_keys() -> str:
    return ", ".join(sorted({*_ALIASES, *_FIELDS, *_BUILD_OPTIONS}))


def _field_name(key: str) -> str:
    name = _ALIASES.get(key, key)
    if name not in _FIELDS:
        raise DataError(f"unknown synthetic option {key!r}; valid keys: {_valid_keys()}")
    return name


def _parse_value(key: str, text: str) -> Any:
    kind = _FIELDS[_field_name(key)]
    try:
        if kind is bool:
            lowered = text.lower()
            if lowered not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(text)
            return lowered in ("1", "true", "yes")
        if kind is int:
            return int(float(text)) if float(text).is_integer() else int(text)
        return float(text)
    except ValueError:
        raise DataError(f"synthetic option {key}={text!r}: expected {kind.__name__}") from None


# -- the world: items and user-level traits (O(n_users + n_items)) ---------------------------


@dataclass(frozen=True)
class _World:
    item_genre: np.ndarray  # int64 (n_items,) primary genre
    item_secondary: np.ndarray  # int64 (n_items, 2), -1 padded
    items_by_genre: np.ndarray  # int64 (n_items,) sorted by (genre, popularity rank)
    cum_popularity: np.ndarray  # float64 (n_items,) genre + cumulative share within genre
    item_quality: np.ndarray  # float64 (n_items,)
    taste_genres: np.ndarray  # int64 (n_users, T), -1 padded
    taste_cum: np.ndarray  # float64 (n_users, T) cumulative mixture, 1.0 from the last slot
    taste_weights: np.ndarray  # float64 (n_users, T), 0 in padding
    history_length: np.ndarray  # int64 (n_users,)
    user_bias: np.ndarray  # float64 (n_users,)
    year: np.ndarray  # int64 (n_items,)
    runtime: np.ndarray  # int64 (n_items,)
    title_codes: np.ndarray  # int64 (n_items, 3): adjective, noun, sequel number (0 = none)
    age: np.ndarray  # int64 (n_users,)


def _genre_counts(n_items: int, n_genres: int) -> np.ndarray:
    """Items per genre: mildly skewed shares, every genre at least one item."""
    shares = 1.0 / np.sqrt(np.arange(1, n_genres + 1))
    shares /= shares.sum()
    spare = n_items - n_genres
    raw = shares * spare
    counts = np.floor(raw).astype(np.int64)
    remainder = spare - counts.sum()
    counts[np.argsort(-(raw - counts), kind="stable")[:remainder]] += 1
    return counts + 1


def _make_world(config: SyntheticConfig) -> _World:
    """Draw every item and user trait from one seeded stream, in a fixed order.

    The steps below share ``rng`` and must keep their order: reordering them changes every
    dataset generated for a given seed.
    """
    rng = np.random.default_rng([config.seed, 0])
    traits = np.array(
        [_GENRE_TRAITS.get(name, _DEFAULT_TRAITS) for name in config.genre_names], np.float64
    )
    counts = _genre_counts(config.n_items, config.n_genres)
    item_genre, items_by_genre, cum_popularity = _item_popularity(rng, counts, config)
    secondary = _secondary_genres(rng, item_genre, config.n_genres)
    years = _truncated_normal(rng, traits[item_genre, 0], traits[item_genre, 1], 1950, 2024)
    runtimes = np.clip(rng.normal(traits[item_genre, 2], traits[item_genre, 3]), 60, 240)
    item_quality = rng.normal(0.0, 0.35, config.n_items)
    year = np.rint(years).astype(np.int64)
    title_codes = _title_codes(rng, year)
    taste_genres, taste_weights, taste_cum = _user_tastes(rng, counts, config)
    history_length = _history_lengths(rng, config)
    user_bias = rng.normal(0.0, 0.3, config.n_users)
    dominant = taste_genres[np.arange(config.n_users), np.argmax(taste_weights, axis=1)]
    age = np.clip(np.rint(34 + traits[dominant, 4] + rng.normal(0, 10, config.n_users)), 14, 85)
    return _World(
        item_genre=item_genre.astype(np.int64),
        item_secondary=secondary.astype(np.int64),
        items_by_genre=items_by_genre.astype(np.int64),
        cum_popularity=cum_popularity,
        item_quality=item_quality,
        taste_genres=taste_genres,
        taste_cum=taste_cum,
        taste_weights=taste_weights,
        history_length=history_length,
        user_bias=user_bias,
        year=year,
        runtime=np.rint(runtimes).astype(np.int64),
        title_codes=title_codes,
        age=age.astype(np.int64),
    )


def _item_popularity(
    rng: np.random.Generator, counts: np.ndarray, config: SyntheticConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Primary genre per item, items sorted by (genre, popularity rank), and the cumulative
    Zipf share within each genre offset by the genre number (so one ``searchsorted`` on
    ``genre + u`` draws an item of that genre by popularity)."""
    n_items = config.n_items
    item_genre = rng.permutation(np.repeat(np.arange(config.n_genres), counts))
    items_by_genre = np.lexsort((rng.random(n_items), item_genre))
    genre_start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    sorted_genre = item_genre[items_by_genre]
    rank = np.arange(n_items) - genre_start[sorted_genre]
    weight = (rank + 1.0) ** -config.popularity_skew
    csum = np.cumsum(weight)
    before = np.concatenate([[0.0], csum])[genre_start]  # cumulative weight before each genre
    totals = np.add.reduceat(weight, genre_start)
    within = (csum - before[sorted_genre]) / totals[sorted_genre]
    within[genre_start + counts - 1] = 1.0  # exact ends, so a draw never leaves its genre
    return item_genre, items_by_genre, sorted_genre + within


def _secondary_genres(
    rng: np.random.Generator, item_genre: np.ndarray, n_genres: int
) -> np.ndarray:
    """0–2 secondary genres per item, other than its primary one; (n_items, 2), -1 padded."""
    n_items = len(item_genre)
    n_secondary = rng.choice(3, size=n_items, p=[0.4, 0.4, 0.2])
    if n_genres == 1:
        return np.full((n_items, 2), -1, np.int64)
    keys = rng.random((n_items, n_genres))
    keys[np.arange(n_items), item_genre] = np.inf
    secondary = np.argsort(keys, axis=1)[:, : min(2, n_genres - 1)]
    secondary = np.pad(secondary, ((0, 0), (0, 2 - secondary.shape[1])), constant_values=-1)
    secondary[np.arange(2)[None, :] >= n_secondary[:, None]] = -1
    return secondary


def _title_codes(rng: np.random.Generator, year: np.ndarray) -> np.ndarray:
    """(adjective, noun, sequel number) per item; items sharing a title are numbered as
    sequels in release order (0 = the first)."""
    n_items = len(year)
    adjective = rng.integers(0, len(_ADJECTIVES), n_items)
    noun = rng.integers(0, len(_NOUNS), n_items)
    code = adjective * len(_NOUNS) + noun
    order = np.lexsort((np.arange(n_items), year, code))
    sorted_code = code[order]
    first = np.flatnonzero(np.concatenate([[True], sorted_code[1:] != sorted_code[:-1]]))
    run_start = np.repeat(first, np.diff(np.append(first, n_items)))
    sequel = np.empty(n_items, np.int64)
    sequel[order] = np.arange(n_items) - run_start
    return np.stack([adjective, noun, sequel], axis=1)


def _user_tastes(
    rng: np.random.Generator, counts: np.ndarray, config: SyntheticConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each user's mixture over 1..T genres, chosen by genre prevalence (Gumbel top-k):
    genres (-1 padded), weights (0 in padding) and cumulative weights (1.0 from the last slot)."""
    n_users, n_genres = config.n_users, config.n_genres
    n_tastes = min(config.max_tastes, n_genres)
    k = rng.integers(1, n_tastes + 1, n_users)
    prevalence = np.log(counts / counts.sum())
    gumbel = prevalence[None, :] + rng.gumbel(size=(n_users, n_genres))
    taste_genres = np.argsort(-gumbel, axis=1)[:, :n_tastes].astype(np.int64)
    slots = np.arange(n_tastes)[None, :]
    taste_weights = rng.gamma(config.taste_concentration, size=(n_users, n_tastes))
    taste_weights[slots >= k[:, None]] = 0.0
    empty = taste_weights.sum(axis=1) == 0  # gamma underflow at tiny concentrations
    taste_weights[empty, 0] = 1.0
    taste_weights /= taste_weights.sum(axis=1, keepdims=True)
    taste_genres[slots >= k[:, None]] = -1
    taste_cum = np.cumsum(taste_weights, axis=1)
    taste_cum[slots >= (k[:, None] - 1)] = 1.0
    return taste_genres, taste_weights, taste_cum


def _history_lengths(rng: np.random.Generator, config: SyntheticConfig) -> np.ndarray:
    """Power-law (capped Lomax) history lengths whose capped mean is ``mean_history``."""
    cap = max(config.min_history, config.n_items // 3)
    scale = _lomax_scale(
        config.mean_history - config.min_history, config.activity_exponent, cap - config.min_history
    )
    extra = np.rint(scale * rng.pareto(config.activity_exponent, config.n_users))
    return np.minimum(config.min_history + extra, cap).astype(np.int64)


def _lomax_scale(target: float, shape: float, cap: float) -> float:
    """Lomax scale whose mean, once capped at ``cap``, is ``target`` (bisection; why: the cap
    on history length would otherwise pull the realised mean well below ``mean_history``)."""
    if target <= 0 or cap <= 0:
        return 0.0

    def capped_mean(scale: float) -> float:  # E[min(X, cap)] for X ~ Lomax(shape, scale)
        return scale / (shape - 1.0) * (1.0 - (1.0 + cap / scale) ** (1.0 - shape))

    low, high = 0.0, max(target, 1.0) * shape * 4
    while capped_mean(high) < target and high < 1e12:
        high *= 4
    for _ in range(100):
        middle = (low + high) / 2
        if middle > 0 and capped_mean(middle) < target:
            low = middle
        else:
            high = middle
    return high


def _truncated_normal(
    rng: np.random.Generator, mean: np.ndarray, sd: np.ndarray, low: float, high: float
) -> np.ndarray:
    """Normal draws redrawn until inside [low, high] (vectorised; a handful of passes)."""
    values = rng.normal(mean, sd)
    for _ in range(50):
        bad = (values < low) | (values > high)
        if not bad.any():
            break
        values[bad] = rng.normal(mean[bad], sd[bad])
    return np.clip(values, low, high)


def _feature_tables(config: SyntheticConfig, world: _World) -> tuple[FeatureTable, FeatureTable]:
    names = config.genre_names
    adjective, noun, sequel = world.title_codes.T
    titles = [
        f"{_ADJECTIVES[a]} {_NOUNS[n]}{f' {s + 1}' if s else ''} ({y})"
        for a, n, s, y in zip(adjective, noun, sequel, world.year, strict=True)
    ]
    genre_matrix = np.concatenate([world.item_genre[:, None], world.item_secondary], axis=1)
    present = genre_matrix >= 0
    bags = Bags(
        vocab=names,
        indices=genre_matrix[present].astype(np.int64),
        offsets=np.concatenate([[0], np.cumsum(present.sum(axis=1))]).astype(np.int64),
    )
    genre_labels = np.asarray(names, dtype=object)
    items = FeatureTable(
        pd.DataFrame(
            {
                "title": titles,
                "year": world.year,
                "runtime": world.runtime,
                "planted_genre": genre_labels[world.item_genre],
            }
        ),
        {"genres": bags},
    )
    dominant = world.taste_genres[np.arange(config.n_users), np.argmax(world.taste_weights, axis=1)]
    users = FeatureTable(pd.DataFrame({"age": world.age, "planted_taste": genre_labels[dominant]}))
    return items, users


# -- interactions, one block of users at a time -----------------------------------------------


@dataclass(frozen=True)
class _Rows:
    users: np.ndarray  # int32 dense user index
    items: np.ndarray  # int32 dense item index
    ratings: np.ndarray | None  # float32
    timestamps: np.ndarray  # int64 seconds, increasing per user


def _draw(
    rng: np.random.Generator, world: _World, users: np.ndarray, noise: float, uniform: bool
) -> np.ndarray:
    """One candidate item per entry of ``users`` (global indices), by the generative story."""
    n = len(users)
    n_items = len(world.item_genre)
    if uniform:  # top-up for heavy users whose genres ran dry: any item, uniformly
        return rng.integers(0, n_items, n)
    u = rng.random(n)
    slot = (u[:, None] >= world.taste_cum[users]).sum(axis=1)
    genre = world.taste_genres[users, np.minimum(slot, world.taste_cum.shape[1] - 1)]
    off_taste = rng.random(n) < noise
    n_genres = int(world.item_genre.max()) + 1
    genre[off_taste] = rng.integers(0, n_genres, int(off_taste.sum()))
    position = np.searchsorted(world.cum_popularity, genre + rng.random(n), side="right")
    return world.items_by_genre[np.minimum(position, n_items - 1)]


def _first_unique(
    local: np.ndarray, items: np.ndarray, n_items: int, limit: np.ndarray
) -> np.ndarray:
    """Positions of each user's first ``limit[u]`` distinct items (``local`` must be sorted)."""
    _, first = np.unique(local.astype(np.int64) * n_items + items, return_index=True)
    first.sort()
    owner = local[first]
    starts = np.searchsorted(owner, np.arange(len(limit)))
    rank = np.arange(len(first)) - starts[owner]
    return first[rank < limit[owner]]


def _block_rows(config: SyntheticConfig, world: _World, block: int) -> _Rows:
    lo, hi = block * _BLOCK, min((block + 1) * _BLOCK, config.n_users)
    rng = np.random.default_rng([config.seed, 1, block])
    n_items = config.n_items
    length = world.history_length[lo:hi]
    n_local = hi - lo

    local = np.repeat(np.arange(n_local), np.ceil(length * 1.3).astype(np.int64) + 4)
    items = _draw(rng, world, local + lo, config.noise, uniform=False)
    keep = _first_unique(local, items, n_items, length)
    local, items = local[keep], items[keep]
    finished: list[tuple[np.ndarray, np.ndarray]] = []
    active = np.ones(n_local, bool)  # users still short of their history length
    for round_ in range(1, _MAX_ROUNDS):
        deficit = length - np.bincount(local, minlength=n_local)
        active &= deficit > 0
        still = active[local]
        finished.append((local[~still], items[~still]))  # complete users are frozen
        local, items = local[still], items[still]
        short = np.flatnonzero(active)
        if not len(short):
            break
        more = np.repeat(short, 2 * deficit[short] + 8)
        new_items = _draw(rng, world, more + lo, config.noise, uniform=round_ >= _MAX_ROUNDS // 2)
        local = np.concatenate([local, more])
        items = np.concatenate([items, new_items])
        order = np.argsort(local, kind="stable")  # earlier picks stay first
        local, items = local[order], items[order]
        keep = _first_unique(local, items, n_items, length)
        local, items = local[keep], items[keep]
    local = np.concatenate([local, *(part[0] for part in finished)])
    items = np.concatenate([items, *(part[1] for part in finished)])

    # Watch order: shuffled within user, so top-up picks are not all at the end of a history.
    order = np.lexsort((rng.random(len(local)), local))
    local, items = local[order], items[order]

    # Timestamps: each user is active over a log-uniform span starting somewhere in 2000-2024.
    count = np.bincount(local, minlength=n_local)
    span = np.exp(rng.uniform(np.log(7 * 86_400), np.log(8 * 365 * 86_400), n_local))
    start = _T0 + rng.random(n_local) * np.maximum(_T1 - _T0 - span, 0)
    mean_gap = span / np.maximum(count, 1)
    gaps = np.floor(rng.exponential(1.0, len(local)) * mean_gap[local]).astype(np.int64) + 1
    total = np.cumsum(gaps)
    offsets = np.concatenate([[0], np.cumsum(count)])
    before = np.concatenate([[0], total])[offsets[:-1]]
    timestamps = start.astype(np.int64)[local] + total - before[local]

    users = local + lo
    ratings = None
    if config.with_ratings:  # own stream: toggling ratings never changes the interactions
        rating_rng = np.random.default_rng([config.seed, 2, block])
        genre = world.item_genre[items]
        affinity = ((world.taste_genres[users] == genre[:, None]) * world.taste_weights[users]).sum(
            axis=1
        ) / world.taste_weights[users].max(axis=1)
        mean = 2.2 + 2.5 * affinity**0.25 + world.user_bias[users] + world.item_quality[items]
        noisy = mean + rating_rng.normal(0.0, 0.6, len(users))
        ratings = np.clip(np.rint(noisy), 1, 5).astype(np.float32)
    return _Rows(users.astype(np.int32), items.astype(np.int32), ratings, timestamps)


def _concat_ratings(blocks: list[_Rows]) -> np.ndarray | None:
    parts = [b.ratings for b in blocks if b.ratings is not None]
    return np.concatenate(parts) if parts else None


def _n_blocks(config: SyntheticConfig) -> int:
    return -(-config.n_users // _BLOCK)


# -- public entry points ----------------------------------------------------------------------


def make_synthetic(
    config: SyntheticConfig,
    *,
    min_rating: float | None = None,
    duplicates: DuplicatePolicy = "last",
    name: str | None = None,
) -> Dataset:
    """Generate the synthetic dataset for ``config`` (deterministic in ``config.seed``).

    ``min_rating`` and ``duplicates`` go to :func:`~tastespace.data.build.build_dataset`
    (the generator never emits duplicate pairs). Raw ids are ``1..n_users`` and ``1..n_items``.

    >>> make_synthetic(PRESETS["tiny"]).n_users
    300
    """
    world = _make_world(config)
    blocks = [_block_rows(config, world, b) for b in range(_n_blocks(config))]
    users = np.concatenate([b.users for b in blocks])
    items = np.concatenate([b.items for b in blocks])
    timestamps = np.concatenate([b.timestamps for b in blocks])
    ratings = _concat_ratings(blocks)
    del blocks
    item_table, user_table = _feature_tables(config, world)
    return build_dataset(
        users + 1,
        items + 1,
        ratings,
        timestamps,
        item_ids=np.arange(1, config.n_items + 1, dtype=np.int64),
        user_ids=np.arange(1, config.n_users + 1, dtype=np.int64),
        item_table=item_table,
        user_table=user_table,
        duplicates=duplicates,
        min_rating=min_rating,
        name=name or "synthetic",
        provenance={"source": "synthetic", "config": asdict(config)},
    )


def load_synthetic(spec: str = "small", **options: Any) -> Dataset:
    """Load the embedded synthetic catalog from a preset name or ``key=value`` overrides.

    ``spec`` is ``"tiny" | "small" | "medium" | "large"``, or pairs such as
    ``"users=2000,items=500,seed=3,genres=8"`` overriding ``small`` (or a preset named first:
    ``"tiny,seed=3"``). ``options`` may hold the same config keys plus ``min_rating`` and
    ``duplicates`` for :func:`~tastespace.data.build.build_dataset`; any other key raises
    :class:`DataError` listing the valid ones.

    >>> ds = load_synthetic("tiny")
    >>> ds.n_users, ds.n_items, ds.name
    (300, 200, 'synthetic-tiny')
    """
    build = {key: options.pop(key) for key in _BUILD_OPTIONS if key in options}
    for key in options:
        _field_name(key)  # raises on unknown keys, listing the valid ones
    config = SyntheticConfig.from_spec(spec, **options)
    label = spec or "small"
    if options:
        label += "," + ",".join(f"{k}={v}" for k, v in options.items())
    return make_synthetic(config, name=f"synthetic-{label}", **build)


def write_synthetic_csv(
    config: SyntheticConfig, path: str | os.PathLike[str], chunk_users: int = 50_000
) -> int:
    """Write ``user_id,item_id,rating,timestamp`` rows for ``config`` to a CSV file.

    Why: the loader benchmarks need a large interactions file without holding it in memory;
    users are generated and written ``chunk_users`` at a time (rounded to whole generation
    blocks), and the rows are exactly those :func:`make_synthetic` builds (rating 1 when
    ``with_ratings`` is off). The file is written to a temporary name and renamed when done.

    Returns
    -------
    int
        Number of data rows written.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if chunk_users < 1:
        raise ConfigError("chunk_users must be ≥ 1")
    target = Path(path)
    blocks_per_chunk = max(1, chunk_users // _BLOCK)
    world = _make_world(config)
    schema = pa.schema(
        [("user_id", pa.int64()), ("item_id", pa.int64()), ("rating", pa.int64()),
         ("timestamp", pa.int64())]
    )  # fmt: skip
    temporary = target.with_name(f".{target.name}.partial")
    written = 0
    try:
        with pacsv.CSVWriter(str(temporary), schema) as writer:
            n_blocks = _n_blocks(config)
            for first in range(0, n_blocks, blocks_per_chunk):
                last = min(first + blocks_per_chunk, n_blocks)
                rows = [_block_rows(config, world, b) for b in range(first, last)]
                users = np.concatenate([r.users for r in rows]).astype(np.int64) + 1
                items = np.concatenate([r.items for r in rows]).astype(np.int64) + 1
                rated = _concat_ratings(rows)
                ratings = np.ones(len(users), np.int64) if rated is None else rated.astype(np.int64)
                stamps = np.concatenate([r.timestamps for r in rows])
                writer.write_table(pa.table([users, items, ratings, stamps], schema=schema))
                written += len(users)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return written
