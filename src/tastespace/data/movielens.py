"""MovieLens: read any GroupLens release straight from its zip (no extraction) or its folder.

GroupLens has shipped four layouts over the years; the files present decide which one a path holds
(the folder name only breaks ties between the CSV releases, which share one layout)::

    release              ratings file        separator  encoding  catalog / users / tags
    ml-100k              u.data              tab        latin-1   u.item (+ u.genre), u.user
    ml-1m                ratings.dat         ::         latin-1   movies.dat, users.dat
    ml-10m (ml-10M100K)  ratings.dat         ::         UTF-8     movies.dat, tags.dat
    ml-20m, ml-25m,      ratings.csv         ,          UTF-8     movies.csv, tags.csv
    ml-32m, ml-latest(-small)

Every release becomes the same :class:`~tastespace.data.dataset.Dataset`: ratings as weights,
timestamps, the *whole* catalog as the item vocabulary (rated or not, in file order) with
``title``, ``year``, ``log_popularity`` and ``mean_rating`` columns and ``genres`` (+ ``tags``)
bags, and user features where the release has them (ml-100k, ml-1m).

Big files (ml-32m has 32 million ratings) are parsed by pyarrow with explicit narrow dtypes; only
when that fails is the file re-read line by line, to name the exact line and what was wrong.

Example
-------
>>> ds = load_movielens("ml-100k.zip")  # doctest: +SKIP
>>> ds.name, ds.n_users, ds.n_items, ds.items.bags["genres"].row(0)  # doctest: +SKIP
('ml-100k', 943, 1682, ['Animation', "Children's", 'Comedy'])
"""

from __future__ import annotations

import csv
import io
import logging
import re
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
import pandas as pd

from tastespace.data.bags import Bags
from tastespace.data.build import DuplicatePolicy, build_dataset
from tastespace.data.dataset import Dataset, FeatureTable
from tastespace.errors import DataError

logger = logging.getLogger(__name__)

RELEASE_NAMES: tuple[str, ...] = (
    "ml-100k",
    "ml-1m",
    "ml-10m",
    "ml-20m",
    "ml-25m",
    "ml-32m",
    "ml-latest-small",
    "ml-latest",
)
# The CSV releases share one layout; their folder name tells them apart ("-small" before "latest").
_CSV_RELEASES = ("ml-latest-small", "ml-latest", "ml-20m", "ml-25m", "ml-32m")
# ratings file -> catalog file; a folder holding both (or one named like a release) is MovieLens.
_MARKERS = {"u.data": "u.item", "ratings.dat": "movies.dat", "ratings.csv": "movies.csv"}

# ml-100k u.genre, in flag order (used when u.genre itself is missing from a copy).
ML100K_GENRES: tuple[str, ...] = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
# ml-1m README: users.dat occupation codes 0-20.
ML1M_OCCUPATIONS: tuple[str, ...] = (
    "other or not specified", "academic/educator", "artist", "clerical/admin",
    "college/grad student", "customer service", "doctor/health care", "executive/managerial",
    "farmer", "homemaker", "K-12 student", "lawyer", "programmer", "retired", "sales/marketing",
    "scientist", "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed",
    "writer",
)  # fmt: skip
# Genre labels that mean "no genre": the CSV releases' placeholder and ml-100k's "unknown" flag.
_NO_GENRE = frozenset({"(no genres listed)", "unknown", ""})
# The year in a title: "Heat (1995)", "Show (2006-2007)", "Land Before Time III (1995) (V)".
_YEAR = re.compile(r"\((\d{4})(?:\s*[-\u2013]\s*\d{0,4})?\)(?:\s*\((?!\d{4}\))[^()]*\))*\s*$")
_INT32_MIN, _INT32_MAX = int(np.iinfo(np.int32).min), int(np.iinfo(np.int32).max)
_RELEASE_NAME = re.compile(r"^ml[-_](100k|1m|10m|20m|25m|32m|latest)", re.IGNORECASE)

Kind = Literal["id", "rating", "time", "text", "skip"]


# -- where the files are ---------------------------------------------------------------------


class _Release:
    """The files of one release: a folder on disk or a folder inside a zip, read in place."""

    def __init__(
        self, path: Path, files: frozenset[str], folder: str, archive: zipfile.ZipFile | None
    ) -> None:
        self.path = path
        self.files = files  # base names present in the release folder
        self.folder = folder  # zip: member prefix ("ml-1m/" or ""); disk: the folder path
        self.archive = archive

    @property
    def hints(self) -> list[str]:
        """Names that may say which release this is: the folder's, then the zip's."""
        names = [Path(self.folder.rstrip("/")).name] if self.folder else []
        if self.archive is not None:
            names.append(self.path.stem)
        return [n.lower() for n in names if n]

    def has(self, name: str) -> bool:
        return name in self.files

    def label(self, name: str) -> str:
        """How errors name a file: ``ml-1m.zip:ml-1m/ratings.dat`` or the path on disk."""
        if self.archive is not None:
            return f"{self.path.name}:{self.folder}{name}"
        return str(Path(self.folder) / name)

    def require(self, name: str, release: str) -> None:
        """Raise :class:`DataError` naming ``name`` if this copy of ``release`` lacks it."""
        if not self.has(name):
            raise DataError(
                f"{self.label(name)}: file missing ({release} needs it); the copy looks "
                "incomplete — download the release again"
            )

    @contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        """Binary stream of one member; zip damage becomes a :class:`DataError` naming it."""
        with _archive_errors(self.label(name)):
            if self.archive is not None:
                stream: IO[bytes] = self.archive.open(self.folder + name)
            else:
                stream = open(Path(self.folder) / name, "rb")  # noqa: SIM115 - closed below
            try:
                yield stream
            finally:
                stream.close()

    def read_bytes(self, name: str) -> bytes:
        with self.open(name) as stream, _archive_errors(self.label(name)):
            return stream.read()

    def close(self) -> None:
        if self.archive is not None:
            self.archive.close()


@contextmanager
def _archive_errors(label: str) -> Iterator[None]:
    """Turn zip/IO failures while reading ``label`` into one-line :class:`DataError` s."""
    try:
        yield
    except DataError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise DataError(
            f"{label}: could not be read from the archive ({exc}); the zip looks damaged — "
            "download it again"
        ) from None
    except OSError as exc:
        raise DataError(f"{label}: could not be read ({exc.strerror or exc})") from None


class _SeveralReleases(DataError):
    """A folder or zip holds more than one release: MovieLens, but which one is for the user."""


def _looks_like_release_name(name: str) -> bool:
    """``ml-1m``, ``ml-10M100K``, ``ml-latest-small (1)``: names GroupLens (or a browser) gives."""
    return _RELEASE_NAME.match(name) is not None


def _candidates(folders: dict[str, frozenset[str]], named: bool) -> list[str]:
    """Folders holding a release: a ratings file next to its catalog file, or a ratings file
    alone in something named like a release (so an incomplete copy gets a clear error)."""
    found = []
    for folder, files in folders.items():
        base = Path(folder.rstrip("/")).name
        if base.startswith("__MACOSX"):
            continue
        lenient = named or _looks_like_release_name(base)
        if any(m in files and (_MARKERS[m] in files or lenient) for m in _MARKERS):
            found.append(folder)
    return sorted(found)


def _open_release(path: Path) -> _Release:
    """Locate the release folder in a zip or folder; :class:`DataError` if there is none."""
    path = Path(path).expanduser()
    named = _looks_like_release_name(path.stem if path.is_file() else path.name)
    if path.is_dir():
        folders = {str(path): _files_in(path)}
        if not _candidates(folders, named):
            folders = {str(sub): _files_in(sub) for sub in sorted(path.iterdir()) if sub.is_dir()}
        found = _candidates(folders, named)
        archive = None
    elif path.is_file():
        try:
            archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise DataError(
                f"{path}: not a readable zip archive ({exc}); download it again"
            ) from None
        members: dict[str, set[str]] = {}
        for member in archive.namelist():
            if not member.endswith("/"):
                folder, _, base = member.rpartition("/")
                members.setdefault(folder + "/" if folder else "", set()).add(base)
        folders = {k: frozenset(v) for k, v in members.items()}
        found = _candidates(folders, named)
    else:
        raise DataError(f"{path}: no such file or folder")
    if len(found) != 1:
        if archive is not None:
            archive.close()
        if not found:
            raise DataError(
                f"{path}: not a MovieLens release (no u.data, ratings.dat or ratings.csv found "
                "next to its movie list); pass a GroupLens zip such as ml-1m.zip or its folder"
            )
        raise _SeveralReleases(
            f"{path}: holds {len(found)} MovieLens releases ({', '.join(found)}); pass one of them"
        )
    return _Release(path, folders[found[0]], found[0], archive)


def _files_in(folder: Path) -> frozenset[str]:
    try:
        return frozenset(p.name for p in folder.iterdir() if p.is_file())
    except OSError:
        return frozenset()


def _release_of(source: _Release) -> str:
    files, hints = source.files, source.hints
    if "u.data" in files:
        return "ml-100k"
    if "ratings.dat" in files:
        if "users.dat" in files or any(h.startswith("ml-1m") for h in hints):
            return "ml-1m"  # a folder named ml-1m without users.dat is an incomplete ml-1m
        return "ml-10m"
    for hint in hints:
        for release in _CSV_RELEASES:
            if hint.startswith(release):
                return release
    return "ml-latest"


# -- public API ------------------------------------------------------------------------------


def is_movielens(path: Path | str) -> bool:
    """True if ``path`` is a zip or folder holding one GroupLens MovieLens release.

    A folder may be the release folder itself or its parent; a zip holds the release folder
    (``ml-100k/u.data``) as GroupLens ships it. Never raises: anything unreadable is ``False``,
    except a zip named like a release (``ml-1m.zip``) and a folder holding several releases,
    which are ``True`` so that loading them explains the problem instead of handing them to
    the generic CSV loader.
    """
    path = Path(path).expanduser()
    try:
        source = _open_release(path)
    except _SeveralReleases:
        return True  # loading it says which releases it holds
    except DataError:
        return (
            path.is_file() and path.suffix.lower() == ".zip" and _looks_like_release_name(path.stem)
        )
    except Exception:  # noqa: BLE001 - a yes/no probe must not fail
        return False
    source.close()
    return True


def detect_release(path: Path | str) -> str:
    """Which release ``path`` holds: one of :data:`RELEASE_NAMES`.

    The files decide (``u.data`` → ml-100k; ``ratings.dat`` with ``users.dat`` → ml-1m, without →
    ml-10m); the CSV releases share a layout, so their folder (or zip) name picks the name, and
    an unrecognised name is reported as ``ml-latest``.
    """
    source = _open_release(Path(path))
    try:
        return _release_of(source)
    finally:
        source.close()


def load_movielens(
    path: Path | str,
    *,
    min_rating: float | None = None,
    duplicates: DuplicatePolicy = "last",
) -> Dataset:
    """Load a GroupLens MovieLens release from its zip (read in place) or extracted folder.

    Parameters
    ----------
    path
        ``ml-1m.zip`` as downloaded, the extracted ``ml-1m/`` folder, or the folder holding it.
    min_rating
        Keep only ratings ≥ this, as weight 1.0 (implicit feedback); ``None`` keeps the ratings.
    duplicates
        Policy for repeated (user, item) rows; MovieLens has none, so this rarely matters.

    Returns
    -------
    Dataset
        Named after the release; items are the whole catalog in file order (so a movie nobody
        rated still has a vector slot and features), ``provenance`` records the source path.
        ``log_popularity`` and ``mean_rating`` describe all ratings in the file, before
        ``min_rating`` — they are catalog facts, not per-split statistics.

    Raises
    ------
    DataError
        The path holds no release, a member file is missing, or a line is malformed — the
        message names the file (``ml-1m.zip:ml-1m/ratings.dat``), the line and what was expected.

    >>> load_movielens("ml-latest-small.zip").n_items  # doctest: +SKIP
    9742
    """
    source = _open_release(Path(path))
    try:
        release = _release_of(source)
        notes: list[str] = []
        if release == "ml-latest" and not any(h.startswith("ml-latest") for h in source.hints):
            notes.append("CSV layout with an unrecognised folder name: reported as ml-latest")
        reader = _READERS[release]
        parts = reader(source, release)
    finally:
        source.close()
    logger.info("read %s: %d ratings, %d movies", release, len(parts.users), len(parts.movie_ids))
    item_table = _item_table(parts, notes)
    provenance = {
        "source": str(path),
        "release": release,
        "format": "zip" if source.archive is not None else "folder",
        "notes": notes,
    }
    return build_dataset(
        parts.users,
        parts.items,
        parts.ratings,
        parts.timestamps,
        item_ids=parts.movie_ids,
        user_ids=parts.user_ids,
        item_table=item_table,
        user_table=parts.user_table,
        duplicates=duplicates,
        min_rating=min_rating,
        name=release,
        provenance=provenance,
    )


# -- release readers -------------------------------------------------------------------------


@dataclass
class _Parts:
    """What a release reader hands to :func:`load_movielens`: raw columns, catalog, users."""

    users: np.ndarray  # int32 raw user id per rating
    items: np.ndarray  # int32 raw movie id per rating
    ratings: np.ndarray  # float32
    timestamps: np.ndarray  # int64
    movie_ids: np.ndarray  # int64 catalog, file order
    titles: list[str]
    genres: list[list[str]]
    tags: tuple[np.ndarray, pd.Series] | None = None  # (movie id per tag row, tag text)
    tags_label: str = ""  # the tags file, as errors and notes name it
    user_ids: np.ndarray | None = None
    user_table: FeatureTable | None = None


def _read_ratings(
    source: _Release, name: str, sep: str, fields: Sequence[str], header: bool = False
) -> dict[str, np.ndarray]:
    """The four rating columns of ``name``, whose fields are called ``fields`` in its docs."""
    kinds: tuple[Kind, ...] = ("id", "id", "rating", "time")
    users, items, ratings, timestamps = _read_table(
        source,
        name,
        sep=sep,
        columns=tuple(zip(fields, kinds, strict=True)),
        encoding="utf-8" if header else "latin-1",  # the numeric files are ASCII either way
        header=fields if header else None,
    )
    if len(users) == 0:
        raise DataError(f"{source.label(name)}: holds no ratings")
    return {
        "users": users,
        "items": items,
        "ratings": ratings.astype(np.float32, copy=False),
        "timestamps": timestamps.astype(np.int64, copy=False),
    }


def _read_ml100k(source: _Release, release: str) -> _Parts:
    for name in ("u.data", "u.item", "u.user"):
        source.require(name, release)
    ratings = _read_ratings(source, "u.data", "\t", ("user id", "item id", "rating", "timestamp"))
    genre_names = _read_ml100k_genres(source) if source.has("u.genre") else list(ML100K_GENRES)
    ids, titles, genres = [], [], []
    n_fields = 5 + len(genre_names)
    label = source.label("u.item")
    for lineno, line in _text_lines(source, "u.item", "latin-1"):
        fields = line.split("|")
        if len(fields) != n_fields:
            raise DataError(
                f"{label}, line {lineno}: expected {n_fields} '|'-separated fields (id|title|"
                f"release date|video release date|IMDb URL|{len(genre_names)} genre flags), "
                f"found {len(fields)}"
            )
        ids.append(_parse_int(fields[0], label, lineno, "movie id"))
        titles.append(fields[1])
        flags = fields[5:]
        if any(f not in ("0", "1") for f in flags):
            raise DataError(f"{label}, line {lineno}: genre flags must be 0 or 1, found {flags}")
        genres.append(
            [g for g, f in zip(genre_names, flags, strict=True) if f == "1" and g not in _NO_GENRE]
        )
    movie_ids = _catalog_ids(ids, label)

    user_rows = []
    label = source.label("u.user")
    for lineno, line in _text_lines(source, "u.user", "latin-1"):
        fields = line.split("|")
        if len(fields) != 5:
            raise DataError(
                f"{label}, line {lineno}: expected 5 '|'-separated fields "
                f"(user id|age|gender|occupation|zip code), found {len(fields)}"
            )
        user_rows.append(
            (
                _parse_int(fields[0], label, lineno, "user id"),
                _parse_int(fields[1], label, lineno, "age"),
                fields[2],
                fields[3],
                fields[4],
            )
        )
    user_ids, user_table = _user_table(user_rows, source.label("u.user"))
    return _Parts(
        **ratings,
        movie_ids=movie_ids,
        titles=titles,
        genres=genres,
        user_ids=user_ids,
        user_table=user_table,
    )


def _read_ml100k_genres(source: _Release) -> list[str]:
    label = source.label("u.genre")
    names: dict[int, str] = {}
    for lineno, line in _text_lines(source, "u.genre", "latin-1"):
        name, sep, code = line.rpartition("|")
        if not sep:
            raise DataError(f"{label}, line {lineno}: expected 'genre|code', found {line!r}")
        names[_parse_int(code, label, lineno, "genre code")] = name
    if sorted(names) != list(range(len(names))):
        raise DataError(f"{label}: genre codes must be 0..{len(names) - 1} without gaps")
    return [names[k] for k in range(len(names))]


def _read_dat(source: _Release, release: str) -> _Parts:
    """ml-1m (latin-1, with users.dat) and ml-10m (UTF-8, with tags.dat)."""
    required = (
        ("ratings.dat", "movies.dat", "users.dat")
        if release == "ml-1m"
        else ("ratings.dat", "movies.dat")
    )
    for name in required:
        source.require(name, release)
    encoding = "latin-1" if release == "ml-1m" else "utf-8"
    ratings = _read_ratings(
        source, "ratings.dat", "::", ("UserID", "MovieID", "Rating", "Timestamp")
    )
    label = source.label("movies.dat")
    ids, titles, genres = _dat_movies(source, label, encoding)
    parts = _Parts(**ratings, movie_ids=_catalog_ids(ids, label), titles=titles, genres=genres)
    if release == "ml-1m":
        label = source.label("users.dat")
        parts.user_ids, parts.user_table = _user_table(_dat_users(source, label, encoding), label)
    elif source.has("tags.dat"):
        parts.tags_label = source.label("tags.dat")
        parts.tags = _dat_tags(source, parts.tags_label, encoding)
    return parts


def _dat_movies(
    source: _Release, label: str, encoding: str
) -> tuple[list[int], list[str], list[list[str]]]:
    """movies.dat: ``MovieID::Title::Genres`` (a title may itself hold ``::``)."""
    ids, titles, genres = [], [], []
    for lineno, line in _text_lines(source, "movies.dat", encoding):
        movie, sep1, rest = line.partition("::")
        title, sep2, genre_text = rest.rpartition("::")
        if not (sep1 and sep2):
            raise DataError(
                f"{label}, line {lineno}: expected MovieID::Title::Genres, found {line[:80]!r}"
            )
        ids.append(_parse_int(movie, label, lineno, "movie id"))
        titles.append(title)
        genres.append(_split_genres(genre_text))
    return ids, titles, genres


def _dat_users(source: _Release, label: str, encoding: str) -> list[tuple[int, int, str, str, str]]:
    """ml-1m users.dat rows as ``(user id, age code, gender, occupation, zip code)``."""
    rows = []
    for lineno, line in _text_lines(source, "users.dat", encoding):
        fields = line.split("::")
        if len(fields) != 5:
            raise DataError(
                f"{label}, line {lineno}: expected 5 fields "
                f"UserID::Gender::Age::Occupation::Zip-code, found {len(fields)}"
            )
        code = _parse_int(fields[3], label, lineno, "occupation code")
        if not 0 <= code < len(ML1M_OCCUPATIONS):
            raise DataError(f"{label}, line {lineno}: occupation code must be 0-20, found {code}")
        rows.append(
            (
                _parse_int(fields[0], label, lineno, "user id"),
                _parse_int(fields[2], label, lineno, "age code"),
                fields[1],
                ML1M_OCCUPATIONS[code],
                fields[4],
            )
        )
    return rows


def _dat_tags(source: _Release, label: str, encoding: str) -> tuple[np.ndarray, pd.Series]:
    """ml-10m tags.dat: ``UserID::MovieID::Tag::Timestamp`` as (movie ids, tag texts)."""
    movies, texts = [], []
    for lineno, line in _text_lines(source, "tags.dat", encoding):
        _user, sep1, rest = line.partition("::")
        movie, sep2, rest = rest.partition("::")
        tag, sep3, _ts = rest.rpartition("::")  # a tag may itself contain "::"
        if not (sep1 and sep2 and sep3):
            raise DataError(
                f"{label}, line {lineno}: expected UserID::MovieID::Tag::Timestamp, "
                f"found {line[:80]!r}"
            )
        movies.append(_parse_int(movie, label, lineno, "movie id"))
        texts.append(tag)
    return np.asarray(movies, np.int64), pd.Series(texts, dtype=object)


def _read_csv_release(source: _Release, release: str) -> _Parts:
    """ml-20m, ml-25m, ml-32m, ml-latest, ml-latest-small (UTF-8 CSV with a header row)."""
    for name in ("ratings.csv", "movies.csv"):
        source.require(name, release)
    ratings = _read_ratings(
        source, "ratings.csv", ",", ("userId", "movieId", "rating", "timestamp"), header=True
    )
    ids, titles, genres = [], [], []
    label = source.label("movies.csv")
    for lineno, fields in _csv_records(source, "movies.csv", ("movieId", "title", "genres")):
        ids.append(_parse_int(fields[0], label, lineno, "movieId"))
        titles.append(fields[1])
        genres.append(_split_genres(fields[2]))
    parts = _Parts(**ratings, movie_ids=_catalog_ids(ids, label), titles=titles, genres=genres)
    if source.has("tags.csv"):
        columns: tuple[tuple[str, Kind], ...] = (
            ("userId", "skip"),
            ("movieId", "id"),
            ("tag", "text"),
            ("timestamp", "skip"),
        )
        movies, tags = _read_table(
            source,
            "tags.csv",
            sep=",",
            columns=columns,
            encoding="utf-8",
            header=[name for name, _ in columns],
        )
        parts.tags = (movies.astype(np.int64), pd.Series(tags, dtype=object))
        parts.tags_label = source.label("tags.csv")
    return parts


_READERS = {
    "ml-100k": _read_ml100k,
    "ml-1m": _read_dat,
    "ml-10m": _read_dat,
    **{name: _read_csv_release for name in _CSV_RELEASES},
}


# -- features --------------------------------------------------------------------------------


def _item_table(parts: _Parts, notes: list[str]) -> FeatureTable:
    n = len(parts.movie_ids)
    position = pd.Index(parts.movie_ids).get_indexer(parts.items)
    known = position >= 0
    counts = np.bincount(position[known], minlength=n).astype(np.float64)
    sums = np.bincount(position[known], weights=parts.ratings[known], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    titles = pd.Series(parts.titles, dtype=object)
    year = pd.to_numeric(titles.str.extract(_YEAR, expand=False), errors="coerce")
    frame = pd.DataFrame(
        {
            "title": pd.Series(parts.titles, dtype="str"),
            "year": year.to_numpy(np.float32),
            "log_popularity": np.log1p(counts).astype(np.float32),
            "mean_rating": mean.astype(np.float32),
        }
    )
    bags = {"genres": Bags.from_lists(parts.genres)}
    if parts.tags is not None:
        bags["tags"], dropped = _tag_bags(parts.movie_ids, *parts.tags)
        if dropped:
            notes.append(f"{parts.tags_label}: {dropped} tag rows name movies not in the catalog")
    return FeatureTable(frame, bags)


def _tag_bags(movie_ids: np.ndarray, movies: np.ndarray, tags: pd.Series) -> tuple[Bags, int]:
    """One bag per catalog movie of its distinct tags (lower-cased, stripped), file order."""
    text = tags.astype(object).fillna("").astype(str).str.strip().str.lower()
    position = pd.Index(movie_ids).get_indexer(movies)
    keep = (position >= 0) & (text.to_numpy() != "")
    dropped = int(((position < 0) & (text.to_numpy() != "")).sum())
    frame = pd.DataFrame({"pos": position[keep], "tag": text.to_numpy()[keep]})
    frame = frame.drop_duplicates()
    codes, vocab = pd.factorize(frame["tag"], sort=True)
    order = np.argsort(frame["pos"].to_numpy(), kind="stable")
    indices = codes[order].astype(np.int64)
    offsets = np.zeros(len(movie_ids) + 1, np.int64)
    np.cumsum(np.bincount(frame["pos"].to_numpy(), minlength=len(movie_ids)), out=offsets[1:])
    return Bags(tuple(str(v) for v in vocab), indices, offsets), dropped


def _user_table(
    rows: list[tuple[int, int, str, str, str]], label: str
) -> tuple[np.ndarray, FeatureTable]:
    ids = np.asarray([r[0] for r in rows], np.int64)
    duplicated = pd.Index(ids).duplicated()
    if duplicated.any():
        raise DataError(f"{label}: user id {ids[np.argmax(duplicated)]} appears more than once")
    frame = pd.DataFrame(
        {
            "age": np.asarray([r[1] for r in rows], np.float32),
            "gender": pd.Series([r[2] for r in rows], dtype="str"),
            "occupation": pd.Series([r[3] for r in rows], dtype="str"),
            "zip_code": pd.Series([r[4] for r in rows], dtype="str"),
        }
    )
    return ids, FeatureTable(frame)


def _split_genres(text: str) -> list[str]:
    return [g for g in (p.strip() for p in text.split("|")) if g not in _NO_GENRE]


def _catalog_ids(ids: list[int], label: str) -> np.ndarray:
    array = np.asarray(ids, np.int64)
    duplicated = pd.Index(array).duplicated()
    if duplicated.any():
        raise DataError(f"{label}: movie id {array[np.argmax(duplicated)]} appears more than once")
    return array


# -- parsing ---------------------------------------------------------------------------------


def _parse_int(text: str, label: str, lineno: int, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise DataError(
            f"{label}, line {lineno}: {what} must be an integer, found {text!r}"
        ) from None


def _text_lines(source: _Release, name: str, encoding: str) -> Iterator[tuple[int, str]]:
    """Non-empty lines of a small member file with 1-based line numbers, decoded strictly."""
    data = source.read_bytes(name)
    text = _decode(data, source.label(name), encoding)
    for lineno, line in enumerate(text.split("\n"), 1):
        line = line.rstrip("\r")
        if line.strip():
            yield lineno, line


def _decode(data: bytes, label: str, encoding: str) -> str:
    try:
        return data.decode("utf-8-sig" if encoding == "utf-8" else encoding)
    except UnicodeDecodeError as exc:
        lineno = data.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"{label}, line {lineno}: not valid UTF-8 (byte 0x{data[exc.start]:02x}); this "
            "release's files are UTF-8 — was the file re-saved in another encoding?"
        ) from None


def _csv_records(
    source: _Release, name: str, header: Sequence[str]
) -> Iterator[tuple[int, list[str]]]:
    """Records of a small UTF-8 CSV member after checking its header, with line numbers."""
    label = source.label(name)
    text = _decode(source.read_bytes(name), label, "utf-8")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        first = next(reader, None)
        _check_header(first, header, label)
        for fields in reader:
            if not fields:
                continue
            if len(fields) != len(header):
                raise DataError(
                    f"{label}, line {reader.line_num}: expected {len(header)} comma-separated "
                    f"fields ({','.join(header)}), found {len(fields)}"
                )
            yield reader.line_num, fields
    except csv.Error as exc:
        raise DataError(f"{label}, line {reader.line_num}: malformed CSV ({exc})") from None


def _check_header(found: Sequence[str] | None, expected: Sequence[str], label: str) -> None:
    if found is None or [f.strip() for f in found] != list(expected):
        shown = "nothing (empty file)" if found is None else ",".join(found)
        raise DataError(f"{label}, line 1: expected the header {','.join(expected)}, found {shown}")


def _read_table(
    source: _Release,
    name: str,
    *,
    sep: str,
    columns: Sequence[tuple[str, Kind]],
    encoding: str,
    header: Sequence[str] | None = None,
) -> list[np.ndarray]:
    """Read a large delimited member fast (pyarrow, narrow dtypes) into numpy columns.

    ``columns`` names every field in file order (as the release's docs call it, for messages)
    with its kind: ``id`` (int32), ``rating`` (finite float32), ``time`` (int64), ``text``
    (object array of str) or ``skip``; one array per field that is not skipped comes back.
    Any failure of the fast parser re-reads the file line by line to report the first bad line.
    """
    import pyarrow.csv as pacsv

    label = source.label(name)
    if header is not None:
        with source.open(name) as stream, _archive_errors(label):
            first = stream.readline()
        first_text = _decode(first, label, encoding).rstrip("\r\n")
        _check_header(next(csv.reader([first_text]), None) if first_text else None, header, label)
    names, read_options, parse_options, convert_options = _arrow_options(sep, columns, header)
    try:
        with source.open(name) as stream, _archive_errors(label):
            table = pacsv.read_csv(stream, read_options, parse_options, convert_options)
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parser failure is diagnosed below
        if _diagnose(source, name, sep, columns, encoding, header) == 0:
            numpy_types = {"id": np.int32, "rating": np.float32, "time": np.int64, "text": object}
            return [np.empty(0, numpy_types[kind]) for _, kind in names.values()]
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{label}: could not be parsed ({message})") from None

    out = []
    for key, (col, kind) in names.items():
        array = table.column(key)
        values = array.to_numpy(zero_copy_only=False)
        if array.null_count or (kind == "rating" and not np.isfinite(values).all()):
            _diagnose(source, name, sep, columns, encoding, header)
            raise DataError(f"{label}: column {col!r} has missing or invalid values")
        out.append(values)
    return out


def _arrow_options(
    sep: str, columns: Sequence[tuple[str, Kind]], header: Sequence[str] | None
) -> tuple[dict[str, tuple[str, Kind]], Any, Any, Any]:
    """pyarrow's read, parse and convert options for a MovieLens member, and the columns kept
    (arrow's generated name → (documented name, kind))."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    step = 2 if sep == "::" else 1  # "a::b" read with ':' gives the empty column between
    arrow_types = {
        "id": pa.int32(),
        "rating": pa.float32(),
        "time": pa.int64(),
        "text": pa.string(),
    }
    names = {f"f{k * step}": (col, kind) for k, (col, kind) in enumerate(columns) if kind != "skip"}
    read_options = pacsv.ReadOptions(
        autogenerate_column_names=True,
        skip_rows=1 if header is not None else 0,
        block_size=1 << 24,  # only text columns are decoded, and those files are UTF-8
    )
    parse_options = pacsv.ParseOptions(
        delimiter=":" if sep == "::" else sep,
        quote_char='"' if sep == "," else False,
    )
    convert_options = pacsv.ConvertOptions(
        column_types={key: arrow_types[kind] for key, (_, kind) in names.items()},
        include_columns=list(names),
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    return names, read_options, parse_options, convert_options


def _diagnose(
    source: _Release,
    name: str,
    sep: str,
    columns: Sequence[tuple[str, Kind]],
    encoding: str,
    header: Sequence[str] | None,
) -> int:
    """Re-read a member line by line and raise :class:`DataError` at its first bad line.

    Returns the number of data records, all good, when no line is at fault.
    """
    label = source.label(name)
    layout = sep.join(col for col, _ in columns)
    records = 0
    with source.open(name) as stream, _archive_errors(label):
        lines = _decoded_lines(stream, label, encoding)
        if sep == ",":
            reader = csv.reader(lines)
            try:
                for fields in reader:
                    if reader.line_num > 1 or header is None:
                        records += _check_fields(
                            fields, columns, label, reader.line_num, sep, layout
                        )
            except csv.Error as exc:
                raise DataError(f"{label}, line {reader.line_num}: malformed CSV ({exc})") from None
        else:
            for lineno, line in enumerate(lines, 1):
                line = line.rstrip("\r\n")
                if line.strip():
                    records += _check_fields(line.split(sep), columns, label, lineno, sep, layout)
    return records


def _decoded_lines(stream: IO[bytes], label: str, encoding: str) -> Iterator[str]:
    codec = "utf-8-sig" if encoding == "utf-8" else encoding
    for lineno, raw in enumerate(stream, 1):
        try:
            yield raw.decode(codec if lineno == 1 else encoding)
        except UnicodeDecodeError as exc:
            raise DataError(
                f"{label}, line {lineno}: not valid UTF-8 (byte 0x{raw[exc.start]:02x}); this "
                "release's files are UTF-8 — was the file re-saved in another encoding?"
            ) from None


def _check_fields(
    fields: list[str],
    columns: Sequence[tuple[str, Kind]],
    label: str,
    lineno: int,
    sep: str,
    layout: str,
) -> int:
    """Raise :class:`DataError` if one record is bad; 1 for a good record, 0 for a blank one."""
    if not fields or (len(fields) == 1 and not fields[0].strip()):
        return 0
    if len(fields) != len(columns):
        raise DataError(
            f"{label}, line {lineno}: expected {len(columns)} fields ({layout}) separated by "
            f"{sep!r}, found {len(fields)}"
        )
    for (col, kind), value in zip(columns, fields, strict=True):
        if kind in ("id", "time"):
            try:
                number = int(value)
            except ValueError:
                raise DataError(
                    f"{label}, line {lineno}: {col} must be an integer, found {value!r}"
                ) from None
            if kind == "id" and not _INT32_MIN <= number <= _INT32_MAX:
                raise DataError(
                    f"{label}, line {lineno}: {col} {number} does not fit a 32-bit integer"
                )
        elif kind == "rating":
            try:
                number_f = float(value)
            except ValueError:
                number_f = float("nan")
            if not np.isfinite(number_f):
                raise DataError(f"{label}, line {lineno}: rating must be a number, found {value!r}")
    return 1
