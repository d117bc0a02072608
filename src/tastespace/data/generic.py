"""Generic interactions loader: any CSV / TSV / Parquet of (user, item, rating, timestamp) rows.

Columns are recognised by name (``userId``, ``item_id``, ``rating``, ``timestamp`` …) or mapped
explicitly; item and user feature files join on the same ids. Files are parsed by pyarrow's
multi-threaded reader with only the needed columns, so 20 M rows load in a few GB; the slow Python
``csv`` module only runs after a failure, to name the exact line at fault.

Every problem with the input is a :class:`~tastespace.errors.DataError` whose one-line message
names the file, the 1-based line (the header is line 1) and what was expected.

Input policies (each stated in one error or :class:`~tastespace.errors.DataWarning` line):

* **Ratings ≤ 0** are refused, naming the first line: they are no positive weight, and the
  models would drop or mis-weight them. ``min_rating`` binarises instead; ``nonpositive="drop"``
  drops those rows and keeps the other weights.
* **No rating column**: every row weighs 1.0; other unused columns are warned about (one of
  them may be the weight under a name the aliases miss).
* **Repeated (user, item) rows** keep the ``last`` by default, counted and warned.
* **Ids** keep their type: a column of plain integers stays ``int``; one non-integer id
  (``u7``, ``007``, beyond int64) makes every id in the column text. Whitespace is trimmed.
* **Feature files** join on the same ids. Rated ids missing from the file get empty
  features; file ids nobody rated are left out unless ``keep_unrated`` (both warned with
  counts and examples); a file sharing no id with the interactions is an error.
* A UTF-8 byte-order mark and CRLF line ends are read as if absent.

Example
-------
>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "clicks.csv"
>>> _ = path.write_text("customer_id,product_id,clicks\\na,p1,3\\nb,p1,1\\nb,p2,2\\n")
>>> ds = load_interactions(path)
>>> ds.n_users, ds.n_items, ds.provenance["columns"]["rating"]
(2, 2, 'clicks')
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from tastespace.data.bags import Bags
from tastespace.data.build import (
    build_dataset,
    check_policies,
    first_nonpositive,
    merged_key,
    nonpositive_error,
)
from tastespace.data.dataset import Dataset, FeatureTable
from tastespace.data.frames import as_arrow_table, frame_label, is_frame
from tastespace.errors import DataError, DataWarning

logger = logging.getLogger(__name__)

TEXT_SUFFIXES: tuple[str, ...] = (".csv", ".tsv", ".txt", ".dat")
PARQUET_SUFFIXES: tuple[str, ...] = (".parquet", ".pq")
SUPPORTED_SUFFIXES: tuple[str, ...] = (
    *TEXT_SUFFIXES,
    *(s + ".gz" for s in TEXT_SUFFIXES),
    *PARQUET_SUFFIXES,
)

#: Column names recognised for each role, case-insensitively, in order of preference.
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "user": ("user", "user_id", "userid", "uid", "customer_id"),
    "item": ("item", "item_id", "itemid", "movieid", "movie_id", "product_id", "iid"),
    "rating": ("rating", "weight", "score", "count", "clicks", "value"),
    "timestamp": ("timestamp", "time", "ts", "datetime", "date"),
}
_OPTION = {role: f"{role}_col" for role in COLUMN_ALIASES}  # the option naming each role's column
_SNIFF_ORDER = ("::", "\t", ",", ";", "|")
_SEP_NAMES = {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe", "::": "'::'"}
_UNIT_SEP = "\x1f"  # stand-in delimiter for multi-character separators such as '::'
_INT_PATTERN = r"^-?(0|[1-9][0-9]{0,17})$"  # no leading zeros: "007" stays a string id
_FREE_TEXT = ("title",)


def load_interactions(
    path: str | Path | Any,
    *,
    user_col: str | None = None,
    item_col: str | None = None,
    rating_col: str | None = None,
    timestamp_col: str | None = None,
    sep: str | None = None,
    min_rating: float | None = None,
    duplicates: str = "last",
    nonpositive: str = "error",
    item_features: str | Path | Any | None = None,
    user_features: str | Path | Any | None = None,
    multi_valued: Mapping[str, str] | None = None,
    keep_unrated: bool = False,
    name: str | None = None,
) -> Dataset:
    """Load an interactions file (and optional feature files) into a :class:`Dataset`.

    Parameters
    ----------
    path
        ``.csv``, ``.tsv``, ``.txt``, ``.dat`` (optionally ``.gz``) with a header, Parquet, or
        a pandas / polars DataFrame (``data/frames.py``), checked the same way.
    user_col, item_col, rating_col, timestamp_col
        Column names, when :data:`COLUMN_ALIASES` does not find them.
    sep
        Field separator for text files; sniffed when omitted, whatever the suffix says.
    min_rating, duplicates, nonpositive
        Binarise (keep ratings ≥ it as 1.0); repeated (user, item) rows
        (``sum|max|last|first|error``); ratings ≤ 0 (``error|drop``). See the module docstring.
    item_features, user_features, keep_unrated
        Feature files (or DataFrames) keyed by the interactions' id column name, ``id``, or
        their first column; ``keep_unrated`` keeps their ids that have no interactions.
    multi_valued
        ``{column: separator}`` for multi-valued feature columns (``|`` is detected).
    name
        Dataset name; the file name without its suffixes by default.

    Returns
    -------
    Dataset
        ``provenance`` records the source, format, columns used, rows read, and every filtered
        or merged row.
    """
    check_policies(duplicates, nonpositive)
    source = _source_for(path, sep, "interactions")
    path = source.path
    explicit = {"user": user_col, "item": item_col, "rating": rating_col}
    columns, rows = _checked_rows(
        source, {**explicit, "timestamp": timestamp_col}, min_rating, nonpositive, duplicates
    )
    provenance = _provenance(source, columns, rows.count)
    feature_files = {"item": item_features, "user": user_features}
    features = _join_features(rows, columns, feature_files, multi_valued, keep_unrated, provenance)
    options = {"duplicates": duplicates, "min_rating": min_rating, "nonpositive": nonpositive}
    name = name or ("dataframe" if source.format == "frame" else _stem(path))
    return _build(path, rows, features, options, name, provenance)


def _checked_rows(
    source: _Source,
    explicit: dict[str, str | None],
    min_rating: float | None,
    nonpositive: str,
    duplicates: str | None,
) -> tuple[dict[str, str | None], _Rows]:
    """The roles' columns and their rows, ratings checked, and repeats for ``duplicates="error"``
    (a shard passes None: its repeats are checked once each user's rows are together)."""
    columns = _resolve_columns(source, explicit)
    rows = _read_rows(source, columns, min_rating)
    if duplicates == "error":
        _check_no_duplicates(source, rows.users, rows.items)
    if min_rating is None and nonpositive == "error" and rows.weights is not None:
        _check_positive(source, rows.weights, cast(str, columns["rating"]))
    return columns, rows


def _provenance(source: _Source, columns: dict[str, str | None], n_rows: int) -> dict[str, Any]:
    """Where the rows came from; loaders and the build add what they filtered or noted."""
    provenance: dict[str, Any] = {
        "source": str(source.path),
        "format": source.format,
        "columns": dict(columns),
        "rows_read": n_rows,
        "filtered": {},
        "notes": [],
    }
    if source.format == "csv":
        provenance["separator"] = source.sep
    return provenance


@dataclass
class _Rows:
    """The interactions file's columns as parallel arrays (raw ids keep their type)."""

    users: np.ndarray
    items: np.ndarray
    weights: np.ndarray | None
    timestamps: np.ndarray | None
    count: int


def _read_rows(source: _Source, columns: dict[str, str | None], min_rating: float | None) -> _Rows:
    """Read and convert the four roles' columns; every bad value names its line."""
    _warn_unweighted(source, columns)
    if min_rating is not None and columns["rating"] is None:
        raise DataError(
            f"{source.path}: min_rating needs a rating column but none was recognised (columns: "
            f"{_listing(source.columns)}); name it with {_OPTION['rating']}",
            options=("min_rating", _OPTION["rating"]),
        )
    id_columns = [c for c in (columns["user"], columns["item"]) if c is not None]
    table = source.read([c for c in columns.values() if c is not None], id_columns)
    if table.num_rows == 0:
        raise DataError(
            f"{source.path}: no data rows after the header; expected one interaction per row"
        )
    rating, stamp = columns["rating"], columns["timestamp"]
    rows = _Rows(
        users=_id_array(source, table, cast(str, columns["user"]), "user"),
        items=_id_array(source, table, cast(str, columns["item"]), "item"),
        weights=None if rating is None else _rating_array(source, table, rating),
        timestamps=None if stamp is None else _timestamp_array(source, table, stamp),
        count=table.num_rows,
    )
    del table
    pa.default_memory_pool().release_unused()  # hand parse buffers back before building CSR
    return rows


def _warn_unweighted(source: _Source, columns: dict[str, str | None]) -> None:
    """No rating column but other columns: one of them is probably the weight, under a name
    the aliases miss (``clicked``, ``stars``); say so rather than weigh every row 1.0 silently."""
    if columns["rating"] is not None:
        return
    unused = [name for name in source.columns if name not in columns.values()]
    if unused:
        _warn(
            f"{source.path}: no rating column recognised, so every row weighs 1.0; column(s) "
            f"{_listing(unused)} unused; name one with {_OPTION['rating']} to weigh rows by it",
            options=(_OPTION["rating"],),
        )


def _check_positive(source: _Source, weights: np.ndarray, column: str) -> None:
    """Ratings ≤ 0 are no positive weight: name the first one's line and the options."""
    row = first_nonpositive(weights)
    if row is not None:
        error = nonpositive_error(f"{source.where(row)} (column {column!r})", weights)
        raise DataError(f"{source.path}: {error}", options=error.options)


def _build(
    path: Path,
    rows: _Rows,
    features: dict[str, tuple[np.ndarray, FeatureTable]],
    options: dict[str, Any],
    name: str,
    provenance: dict[str, Any],
) -> Dataset:
    """Hand the arrays to :func:`build_dataset`; its errors and merges name the file."""
    item_ids, item_table = features.get("item", (None, None))
    user_ids, user_table = features.get("user", (None, None))
    try:
        dataset = build_dataset(
            rows.users,
            rows.items,
            rows.weights,
            rows.timestamps,
            item_ids=item_ids,
            user_ids=user_ids,
            item_table=item_table,
            user_table=user_table,
            name=name,
            provenance=provenance,
            **options,
        )
    except DataError as err:
        if str(path) in str(err):
            raise
        raise DataError(f"{path}: {err}", options=err.options) from err
    logger.info(
        "loaded %s: %d rows -> %d users x %d items",
        path,
        rows.count,
        dataset.n_users,
        dataset.n_items,
    )
    merged = dataset.provenance["filtered"].get(merged_key(options["duplicates"]), 0)
    if merged:
        _warn(
            f"{path}: {merged} repeated (user, item) rows merged by keeping the "
            f"{options['duplicates']!r} one; choose another duplicates policy: sum, max, last, "
            "first or error",
            options=("duplicates",),
        )
    return dataset


# -- sources ----------------------------------------------------------------------------------


@dataclass
class _Source:
    """One input file: where it is, how to parse it, and how to point at a row in it."""

    path: Path  # for a DataFrame, its label (``interactions (pandas DataFrame)``)
    format: str  # "csv" (any delimited text), "parquet" or "frame" (in memory)
    columns: list[str]
    sep: str = ","
    compressed: bool = False
    multiline: bool = False  # quoted values may hold newlines (feature files)
    table: pa.Table | None = None  # the DataFrame as Arrow (format "frame")
    labels: pd.Index | None = None  # a pandas DataFrame's index, to name rows by
    row_groups: tuple[int, ...] | None = None  # Parquet: read only these (a rank's shard)
    positions: np.ndarray | None = None  # each row's 0-based row in the whole file, if not k

    # ---- reading ----------------------------------------------------------------------------
    def read(self, include: list[str], as_string: list[str]) -> pa.Table:
        """The named columns as an Arrow table; ``as_string`` columns are not type-inferred."""
        if self.table is not None:  # typed already: ids keep their type
            return self.table.select(include)
        if self.format == "parquet":
            try:
                if self.row_groups is not None:
                    parquet = pq.ParquetFile(self.path)
                    return parquet.read_row_groups(list(self.row_groups), columns=include)
                return pq.read_table(self.path, columns=include)
            except (pa.ArrowException, OSError) as err:
                raise DataError(f"{self.path}: cannot read Parquet: {_first_line(err)}") from err
        read_options = pacsv.ReadOptions(use_threads=True, block_size=1 << 22)
        parse_options = pacsv.ParseOptions(
            delimiter=self.delimiter, newlines_in_values=self.multiline, ignore_empty_lines=True
        )
        convert_options = pacsv.ConvertOptions(
            include_columns=include,
            column_types={c: pa.string() for c in as_string},
            null_values=[""],
            strings_can_be_null=True,
        )
        try:
            with self.open_bytes() as stream:
                return pacsv.read_csv(
                    stream,
                    read_options=read_options,
                    parse_options=parse_options,
                    convert_options=convert_options,
                )
        except pa.ArrowInvalid as err:
            raise self._explain(err) from err
        except (pa.ArrowException, OSError, EOFError) as err:
            raise DataError(f"{self.path}: cannot read: {_first_line(err)}") from err

    @property
    def delimiter(self) -> str:
        return self.sep if len(self.sep) == 1 else _UNIT_SEP

    def open_bytes(self) -> IO[bytes]:
        """The file's bytes, decompressed, multi-character separators turned into one byte."""
        raw: IO[bytes] = gzip.open(self.path, "rb") if self.compressed else open(self.path, "rb")
        if len(self.sep) > 1:
            return io.BufferedReader(
                _Replacing(raw, self.sep.encode(), _UNIT_SEP.encode()), buffer_size=1 << 20
            )
        return raw

    def records(self) -> Iterator[tuple[int, list[str]]]:
        """(first line number, fields) for every non-blank record, header included (slow path)."""
        with io.TextIOWrapper(
            self.open_bytes(), encoding="utf-8-sig", errors="replace", newline=""
        ) as text:
            reader = csv.reader(text, delimiter=self.delimiter)
            previous = 0
            for fields in reader:
                if fields:
                    yield previous + 1, fields
                previous = reader.line_num

    # ---- pointing at rows -------------------------------------------------------------------
    def where(self, row: int) -> str:
        """Human pointer to 0-based data row ``row``: ``line N`` (text) or ``row N`` (Parquet)."""
        if self.format == "parquet":
            return f"row {(row if self.positions is None else int(self.positions[row])) + 1}"
        if self.format == "frame":
            return f"row {row}" if self.labels is None else f"index {_py(self.labels[row])!r}"
        for k, (line, _) in enumerate(self.records()):
            if k == row + 1:  # record 0 is the header
                return f"line {line}"
        return f"data row {row + 1}"

    def _explain(self, err: pa.ArrowInvalid) -> DataError:
        """Turn a pyarrow parse failure into a message naming the line at fault."""
        message = str(err)
        if "UTF8" in message or "UTF-8" in message:
            return self.bad_utf8()
        if "Expected" in message and "columns" in message:
            n_fields = len(self.columns)
            for line, fields in self.records():
                if line > 1 and len(fields) != n_fields:
                    return DataError(
                        f"{self.path}: line {line} has {len(fields)} fields, expected {n_fields} "
                        f"like the header ({_SEP_NAMES.get(self.sep, repr(self.sep))}-separated);"
                        " fix or remove that row"
                    )
        if "Empty CSV file" in message:
            return DataError(f"{self.path}: empty file; expected a header row, then data rows")
        return DataError(f"{self.path}: cannot parse: {_first_line(err)}")

    def bad_utf8(self) -> DataError:
        """The error for a non-UTF-8 byte, naming its line and byte offset."""
        if self.format == "frame":
            return DataError(f"{self.path}: a column holds bytes; decode it to str first")
        opener = gzip.open if self.compressed else open
        offset = 0
        with opener(self.path, "rb") as handle:
            for line_no, line in enumerate(cast(IO[bytes], handle), start=1):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as exc:
                    return _utf8_error(self.path, line_no, offset + exc.start, line[exc.start])
                offset += len(line)
        return DataError(
            f"{self.path}: not valid UTF-8; re-encode it, e.g. "
            f"iconv -f latin1 -t utf-8 {self.path.name} > fixed{self.path.suffix}"
        )


class _Replacing(io.RawIOBase):
    """A read-only stream that replaces ``old`` with ``new`` (line by line, so never split)."""

    def __init__(self, raw: IO[bytes], old: bytes, new: bytes, chunk: int = 1 << 20) -> None:
        self._raw, self._old, self._new, self._chunk = raw, old, new, chunk
        self._carry = b""
        self._out = memoryview(b"")
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not len(self._out) and not self._eof:
            data = self._raw.read(self._chunk)
            if not data:
                self._eof = True
                ready, self._carry = self._carry, b""
            else:
                data = self._carry + data
                cut = data.rfind(b"\n") + 1
                ready, self._carry = data[:cut], data[cut:]
            self._out = memoryview(ready.replace(self._old, self._new))
        n = min(len(buffer), len(self._out))
        buffer[:n] = self._out[:n]
        self._out = self._out[n:]
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


def _source_for(
    given: str | Path | Any, sep: str | None, role: str, *, multiline: bool = False
) -> _Source:
    """A file's source, or a DataFrame's (``sep`` means nothing for one in memory)."""
    if not is_frame(given):
        return _open_source(Path(given).expanduser(), sep, multiline=multiline)
    label = Path(frame_label(given, role))
    if sep is not None:
        raise DataError(f"{label}: sep applies to text files, not to a DataFrame")
    table = as_arrow_table(given, role)
    labels = given.index if isinstance(given, pd.DataFrame) else None
    return _Source(label, "frame", list(table.column_names), table=table, labels=labels)


def _open_source(path: Path, sep: str | None, *, multiline: bool = False) -> _Source:
    """Check the file exists and is non-empty, work out its format, separator and header."""
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a folder; pass the interactions file itself")
    kind = _kind(path)
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file; expected a header row, then data rows")
    if kind == "parquet":
        try:
            names = pq.read_schema(path).names
        except (pa.ArrowException, OSError) as err:
            raise DataError(f"{path}: not a readable Parquet file ({_first_line(err)})") from err
        return _Source(path, "parquet", list(names))

    compressed = path.name.lower().endswith(".gz")
    try:
        opener = gzip.open if compressed else open
        with opener(path, "rb") as handle:
            head = cast(IO[bytes], handle).read(1 << 16)
    except (OSError, EOFError) as err:
        raise DataError(f"{path}: cannot read ({_first_line(err)})") from err
    lines = head.splitlines()
    if len(head) == (1 << 16) and lines and not head.endswith(b"\n"):
        lines = lines[:-1]  # the last line was cut by the sample size
    lines = [line for line in lines if line.strip()]
    if not lines:
        raise DataError(f"{path}: empty file; expected a header row, then data rows")
    lines[0] = lines[0].removeprefix(b"\xef\xbb\xbf")
    try:
        lines[0].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _utf8_error(path, 1, exc.start, lines[0][exc.start]) from exc
    sample = [line.decode("utf-8", errors="replace") for line in lines[:50]]
    chosen = _normalise_sep(sep) if sep is not None else _sniff(sample, kind)
    source = _Source(path, "csv", [], sep=chosen, compressed=compressed, multiline=multiline)
    line = sample[0].replace(chosen, _UNIT_SEP) if len(chosen) > 1 else sample[0]
    source.columns = next(csv.reader([line], delimiter=source.delimiter))
    return source


def _kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(TEXT_SUFFIXES) or name.endswith(tuple(s + ".gz" for s in TEXT_SUFFIXES)):
        return name.removesuffix(".gz").rsplit(".", 1)[-1]
    raise DataError(
        f"{path}: unsupported file type; expected one of {', '.join(SUPPORTED_SUFFIXES)}"
    )


def _normalise_sep(sep: str) -> str:
    named = {"\\t": "\t", "tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
    sep = named.get(sep.lower(), sep)
    if not sep or "\n" in sep or "\r" in sep or '"' in sep:
        raise DataError(f"separator {sep!r} cannot work; use e.g. ',' or '\\t' or '::'")
    return sep


def _sniff(sample: list[str], kind: str) -> str:
    """The separator that splits the header into ≥ 2 fields and most sample lines into as many.

    ``::`` goes first (a single ``:`` is never a candidate), then the suffix's usual one.
    """
    preferred = {"tsv": "\t", "csv": ","}.get(kind)
    order = ["::", *([preferred] if preferred else []), *_SNIFF_ORDER]
    for candidate in dict.fromkeys(order):
        if candidate not in sample[0]:
            continue
        delimiter = candidate if len(candidate) == 1 else _UNIT_SEP
        rows = [
            line.replace(candidate, _UNIT_SEP) if len(candidate) > 1 else line for line in sample
        ]
        widths = [len(fields) for fields in csv.reader(rows, delimiter=delimiter)]
        agreeing = sum(width == widths[0] for width in widths[1:])
        if widths[0] >= 2 and agreeing * 2 >= len(widths) - 1:  # a bad row must not hide it
            return candidate
    return preferred or ","


# -- columns ----------------------------------------------------------------------------------


def _resolve_columns(source: _Source, explicit: dict[str, str | None]) -> dict[str, str | None]:
    """Map each role to a column of the file: explicit names first, then recognised aliases."""
    names = source.columns
    resolved: dict[str, str | None] = dict.fromkeys(COLUMN_ALIASES)
    for role, wanted in explicit.items():
        if wanted is None:
            continue
        matches = [n for n in names if n == wanted] or [
            n for n in names if n.strip().lower() == wanted.strip().lower()
        ]
        if not matches:
            raise DataError(
                f"{source.path}: no column {wanted!r} (given as {_OPTION[role]}); "
                f"columns found: {_listing(names)}",
                options=(_OPTION[role],),
            )
        resolved[role] = matches[0]
    used = {n for n in resolved.values() if n is not None}
    lowered: dict[str, str] = {}
    for n in names:
        lowered.setdefault(n.strip().lower(), n)
    for role, aliases in COLUMN_ALIASES.items():
        if resolved[role] is not None:
            continue
        for alias in aliases:
            if alias in lowered and lowered[alias] not in used:
                resolved[role] = lowered[alias]
                used.add(lowered[alias])
                break
    for role in ("user", "item"):
        if resolved[role] is None:
            hint = ""
            if all(_is_number(n) for n in names):
                hint = (
                    "; the first line looks like data: headerless files are not supported, add "
                    "a header row naming the columns (e.g. user,item,rating,timestamp)"
                )
            raise DataError(
                f"{source.path}: no {role} column found (columns: {_listing(names)}); name it "
                f"with {_OPTION[role]}{hint}",
                options=(_OPTION[role],),
            )
    for name in used:
        if names.count(name) > 1:
            raise DataError(f"{source.path}: column {name!r} appears more than once in the header")
    return resolved


# -- column conversion ------------------------------------------------------------------------


def _id_array(source: _Source, table: pa.Table, column: str, role: str) -> np.ndarray:
    """Raw ids as int64 when every value is a plain integer, else as an object array of str."""
    values = _plain(table.column(column))
    kind = values.type
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        raise source.bad_utf8()
    if pa.types.is_floating(kind):
        nan = pc.is_nan(values)
        if pc.any(nan).as_py():
            values = pc.if_else(nan, pa.scalar(None, kind), values)
        if _all_integral(values):
            values = pc.cast(values, pa.int64())
    elif not (
        pa.types.is_integer(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind)
    ):
        values = pc.cast(values, pa.string())
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        values = pc.utf8_trim_whitespace(values)
        values = pc.if_else(pc.equal(values, ""), pa.scalar(None, values.type), values)
    if values.null_count:
        row = _first_true(pc.is_null(values))
        raise DataError(
            f"{source.path}: missing {role} id at {source.where(row)} (column {column!r}); "
            "every row needs a user and an item"
        )
    if pa.types.is_integer(values.type):
        return values.to_numpy().astype(np.int64, copy=False)
    if pc.all(pc.match_substring_regex(values, _INT_PATTERN)).as_py():
        try:
            return pc.cast(values, pa.int64()).to_numpy()
        except pa.ArrowInvalid:  # out of int64 range: keep as text
            pass
    encoded = values.combine_chunks().dictionary_encode()
    labels = encoded.dictionary.to_numpy(zero_copy_only=False).astype(object)
    return labels[encoded.indices.to_numpy()]


def _rating_array(source: _Source, table: pa.Table, column: str) -> np.ndarray:
    """Finite float weights; names the line of the first missing or non-numeric value."""
    values = _plain(table.column(column))
    kind = values.type
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        raise source.bad_utf8()
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        text = pc.utf8_trim_whitespace(values)
        try:
            values = pc.cast(text, pa.float64())
        except pa.ArrowInvalid as err:
            strings = text.to_numpy(zero_copy_only=False)
            for row, value in enumerate(strings):
                if value is not None and not _is_number(value):
                    raise DataError(
                        f"{source.path}: non-numeric rating {value!r} at {source.where(row)} "
                        f"(column {column!r}); expected a number"
                    ) from err
            raise DataError(
                f"{source.path}: rating column {column!r} is not numeric; expected numbers"
            ) from err
    elif not (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_decimal(kind)
    ):
        raise DataError(
            f"{source.path}: rating column {column!r} holds {kind}, expected numbers; pick "
            f"another with {_OPTION['rating']}",
            options=(_OPTION["rating"],),
        )
    weights = pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)
    bad = ~np.isfinite(weights)
    if bad.any():
        row = int(np.argmax(bad))
        what = "missing" if np.isnan(weights[row]) else f"non-finite ({weights[row]})"
        raise DataError(
            f"{source.path}: {what} rating at {source.where(row)} (column {column!r}); "
            "expected a number"
        )
    return weights


def _timestamp_array(source: _Source, table: pa.Table, column: str) -> np.ndarray:
    """Unix seconds (int64): integers kept, date-times and ISO 8601 strings converted (UTC)."""
    values = _plain(table.column(column))
    kind = values.type
    if values.null_count:
        raise DataError(
            f"{source.path}: missing timestamp at {source.where(_first_true(pc.is_null(values)))} "
            f"(column {column!r}); expected unix seconds or an ISO 8601 date-time"
        )
    if pa.types.is_integer(kind):
        return values.to_numpy().astype(np.int64, copy=False)
    if pa.types.is_floating(kind):
        seconds = values.to_numpy()
        bad = ~np.isfinite(seconds)
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(
                f"{source.path}: unparseable timestamp {seconds[row]!r} at {source.where(row)} "
                f"(column {column!r}); expected unix seconds or an ISO 8601 date-time"
            )
        return np.floor(seconds).astype(np.int64)
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        stamps = pd.Series(values.to_numpy(zero_copy_only=False))
        parsed = pd.to_datetime(stamps, utc=True)
        return parsed.dt.as_unit("s").astype("int64").to_numpy()
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        raise source.bad_utf8()
    if pa.types.is_time(kind):
        raise DataError(
            f"{source.path}: timestamp column {column!r} holds times of day without a date "
            f"(e.g. {values[0].as_py()}); expected unix seconds or an ISO 8601 date-time"
        )
    text = pd.Series(pc.cast(values, pa.string()).to_numpy(zero_copy_only=False), dtype=object)
    text = text.str.strip()
    numeric = text.str.fullmatch(r"-?\d+")
    seconds = np.zeros(len(text), np.int64)
    if numeric.any():
        seconds[numeric.to_numpy()] = text[numeric].astype(np.int64).to_numpy()
    rest = ~numeric.to_numpy()
    if rest.any():
        parsed = pd.to_datetime(text[rest], utc=True, errors="coerce", format="ISO8601")
        if parsed.isna().any():
            retry = parsed.isna().to_numpy()
            parsed[retry] = pd.to_datetime(
                text[rest][retry], utc=True, errors="coerce", format="mixed"
            )
        if parsed.isna().any():
            row = int(np.flatnonzero(rest)[np.argmax(parsed.isna().to_numpy())])
            raise DataError(
                f"{source.path}: unparseable timestamp {text.iloc[row]!r} at {source.where(row)} "
                f"(column {column!r}); expected unix seconds or an ISO 8601 date-time"
            )
        seconds[rest] = parsed.dt.as_unit("s").astype("int64").to_numpy()
    return seconds


def _check_no_duplicates(source: _Source, users: np.ndarray, items: np.ndarray) -> None:
    """For ``duplicates="error"``: name the first repeated (user, item) pair and both its lines."""
    pairs = pd.DataFrame({"u": users, "i": items})
    repeated = pairs.duplicated(keep=False).to_numpy()
    if not repeated.any():
        return
    later = pairs.duplicated(keep="first").to_numpy()
    second = int(np.argmax(later))
    user, item = _py(users[second]), _py(items[second])
    first = int(np.flatnonzero(repeated & (users == users[second]) & (items == items[second]))[0])
    raise DataError(
        f"{source.path}: {int(later.sum())} duplicate (user, item) rows, first the pair "
        f"({user!r}, {item!r}) at {source.where(first)} and {source.where(second)}; choose a "
        "duplicates policy: sum, max, last or first",
        options=("duplicates",),
    )


# -- feature files ----------------------------------------------------------------------------


def load_item_features(
    source: str | Path | Any, *, multi_valued: Mapping[str, str] | None = None
) -> tuple[np.ndarray, FeatureTable]:
    """Item features on their own (new items for ``add-items``): ids in file order and their
    table, checked like a feature file (keyed by ``item``, ``id`` or the first column)."""
    notes: list[str] = []
    ids, table, _ = _load_features(source, "item", "item", dict(multi_valued or {}), notes)
    for note in notes:
        logger.info(note)
    return ids, table


def _load_features(
    given: str | Path | Any,
    role: str,
    id_name: str,
    multi_valued: Mapping[str, str],
    notes: list[str],
) -> tuple[np.ndarray, FeatureTable, set[str]]:
    """Ids in file order and their FeatureTable; also the ``multi_valued`` columns it held."""
    source = _source_for(given, None, role + "s", multiline=True)
    path, names = source.path, source.columns
    lowered = {n.strip().lower(): n for n in reversed(names)}
    key = lowered.get(id_name.strip().lower()) or lowered.get("id") or names[0]
    table = source.read(list(names), [key])
    if table.num_rows == 0:
        raise DataError(f"{path}: no data rows after the header; expected one {role} per row")
    ids = _id_array(source, table, key, role)
    _check_unique_ids(source, ids, role)
    label = f"{role} features {path.name}"
    frame: dict[str, pd.Series] = {}
    bags: dict[str, Bags] = {}
    used: set[str] = set()
    for name in names:
        if name == key:
            continue
        values = _plain(table.column(name))
        if pa.types.is_binary(values.type) or pa.types.is_large_binary(values.type):
            raise source.bad_utf8()
        if name in multi_valued:
            used.add(name)
            text = pc.cast(values, pa.string()).to_pylist()
            bags[name] = Bags.from_strings(text, sep=multi_valued[name])
            continue
        converted = _feature_column(name, values, f"{label}: column {name!r}", notes)
        if isinstance(converted, Bags):
            bags[name] = converted
        else:
            frame[name] = converted
    table_ = FeatureTable(pd.DataFrame(frame, index=pd.RangeIndex(len(ids))), bags)
    return ids, table_, used


def _check_unique_ids(source: _Source, ids: np.ndarray, role: str) -> None:
    duplicated = pd.Index(ids).duplicated()
    if duplicated.any():
        second = int(np.argmax(duplicated))
        first = int(np.flatnonzero(ids == ids[second])[0])
        raise DataError(
            f"{source.path}: {role} id {_py(ids[second])!r} appears more than once "
            f"({source.where(first)} and {source.where(second)}); a feature file needs one row "
            f"per {role}"
        )


def _feature_column(
    name: str, values: pa.ChunkedArray, label: str, notes: list[str]
) -> pd.Series | Bags:
    """Numbers stay numeric (NaN for gaps), ``|``-separated text becomes a bag, other text a
    categorical; ``title`` stays free text."""
    kind = values.type
    if (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_boolean(kind)
    ):
        if pa.types.is_decimal(kind) or (pa.types.is_boolean(kind) and values.null_count):
            values = pc.cast(values, pa.float64())
        series = pd.Series(values.to_numpy(zero_copy_only=False))
        missing = int(series.isna().sum())
        if missing:
            notes.append(f"{label} has {missing} missing values (kept as NaN)")
        return series
    text = pc.cast(values, pa.string())
    if name.strip().lower() not in _FREE_TEXT and _looks_multi_valued(text):
        notes.append(f"{label} read as multi-valued ('|'-separated)")
        return Bags.from_strings(text.to_pylist(), sep="|")
    return text.to_pandas()


def _looks_multi_valued(text: pa.ChunkedArray) -> bool:
    """True when at least half of the non-empty values contain ``|`` (e.g. ``Comedy|Drama``)."""
    present = pc.drop_null(text)
    present = present.filter(pc.not_equal(pc.utf8_trim_whitespace(present), ""))
    if len(present) == 0:
        return False
    with_pipe = pc.sum(pc.cast(pc.match_substring(present, "|"), pa.int64())).as_py() or 0
    return with_pipe * 2 >= len(present)


def _harmonise(declared: np.ndarray, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Give feature-file ids and interaction ids one type (both int, else both str)."""
    if (declared.dtype.kind == "O") == (raw.dtype.kind == "O"):
        return declared, raw

    def as_str(a: np.ndarray) -> np.ndarray:
        return a if a.dtype.kind == "O" else a.astype(str).astype(object)

    return as_str(declared), as_str(raw)


# -- joining feature files --------------------------------------------------------------------


def _join_features(
    rows: _Rows,
    columns: dict[str, str | None],
    files: dict[str, str | Path | Any | None],
    multi_valued: Mapping[str, str] | None,
    keep_unrated: bool,
    provenance: dict[str, Any],
) -> dict[str, tuple[np.ndarray, FeatureTable]]:
    """Each given feature file's (ids, table), its ids matched to the interactions'."""
    features: dict[str, tuple[np.ndarray, FeatureTable]] = {}
    wanted_bags = dict(multi_valued or {})
    seen_bag_columns: set[str] = set()
    for role, given in files.items():
        if given is None:
            continue
        framed = is_frame(given)
        path = Path(frame_label(given, role + "s")) if framed else Path(given).expanduser()
        ids, table, used = _load_features(
            given if framed else path,
            role,
            cast(str, columns[role]),
            wanted_bags,
            provenance["notes"],
        )
        seen_bag_columns |= used
        raw = rows.users if role == "user" else rows.items
        ids, raw = _harmonise(ids, raw)
        if role == "user":
            rows.users = raw
        else:
            rows.items = raw
        features[role] = _match_ids(path, role, ids, table, raw, keep_unrated)
        provenance.setdefault("features", {})[role + "s"] = str(path) if framed else str(given)
    unknown_bags = set(wanted_bags) - seen_bag_columns
    if unknown_bags:
        where = "the feature files" if features else "no feature file (pass item_features=...)"
        raise DataError(
            f"multi_valued names column(s) {_listing(sorted(unknown_bags))} not found in {where}"
        )
    return features


def _match_ids(
    path: Path, role: str, declared: np.ndarray, table: FeatureTable, raw: np.ndarray, keep: bool
) -> tuple[np.ndarray, FeatureTable]:
    """Warn about ids only one side has; leave out feature rows with no interactions.

    A feature file sharing no id with the interactions is an error: its ids are keyed by
    something else (``m1`` against ``1``, another column), and every item would be doubled.
    """
    present = pd.Index(pd.unique(raw))
    rated = pd.Index(declared).isin(present)
    if not rated.any():
        raise DataError(
            f"{path}: none of its {len(declared)} {role} ids appear in the interactions (here "
            f"{_examples(declared)}, there {_examples(present.to_numpy())}); key the feature "
            "file by the same ids"
        )
    featureless = present[~present.isin(declared)].to_numpy()
    if len(featureless):
        _warn(
            f"{path}: {len(featureless)} of {len(present)} {role}s in the interactions have no "
            f"row here (e.g. {_examples(featureless)}); they get empty features"
        )
    if rated.all():
        return declared, table
    unrated = declared[~rated]
    if keep:
        _warn(
            f"{path}: {len(unrated)} {role} ids have no interactions (e.g. {_examples(unrated)});"
            f" kept as {role}s with no interactions (keep_unrated)"
        )
        return declared, table
    _warn(
        f"{path}: {len(unrated)} {role} ids have no interactions (e.g. {_examples(unrated)}); "
        "left out; pass keep_unrated=True to keep them",
        options=("keep_unrated",),
    )
    return declared[rated], table.take(np.flatnonzero(rated))


# -- small helpers ----------------------------------------------------------------------------


def _plain(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """Undo dictionary encoding (Parquet string columns often come that way)."""
    if pa.types.is_dictionary(values.type):
        return pc.cast(values, values.type.value_type)
    return values


def _all_integral(values: pa.ChunkedArray) -> bool:
    present = pc.drop_null(values)
    return bool(pc.all(pc.equal(pc.floor(present), present)).as_py() is not False)


def _first_true(mask: pa.ChunkedArray) -> int:
    return int(pc.index(mask, True).as_py())


def _py(value: Any) -> Any:
    """A numpy scalar as a plain Python value (so messages read ``7``, not ``np.int64(7)``)."""
    return value.item() if isinstance(value, np.generic) else value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _utf8_error(path: Path, line: int, offset: int, byte: int) -> DataError:
    return DataError(
        f"{path}: byte 0x{byte:02x} at line {line} (byte offset {offset}) is not valid UTF-8; "
        f"re-encode the file, e.g. iconv -f latin1 -t utf-8 {path.name} > fixed{path.suffix}"
    )


def _examples(ids: np.ndarray, limit: int = 3) -> str:
    """A few ids for a message: ``5, 7, 9, …``."""
    shown = ", ".join(repr(_py(v)) for v in ids[:limit])
    return shown + (", …" if len(ids) > limit else "")


def _warn(message: str, options: tuple[str, ...] = ()) -> None:
    warnings.warn(DataWarning(message, options=options), stacklevel=3)


def _listing(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:20])
    return shown + (f", … ({len(names)} in all)" if len(names) > 20 else "")


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _stem(path: Path) -> str:
    name = path.name
    if name.lower().endswith(".gz"):
        name = name[:-3]
    for suffix in (*TEXT_SUFFIXES, *PARQUET_SUFFIXES):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)] or path.name
    return name
