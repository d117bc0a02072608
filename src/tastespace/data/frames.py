"""In-memory tables as loader input: pandas and polars DataFrames (and Arrow tables).

The generic loader reads files through pyarrow; a DataFrame becomes the same Arrow table here,
so it meets exactly the validation a CSV does (``data/generic.py``) — the messages name the
DataFrame, the column and the row instead of a file and a line.

>>> import pandas as pd
>>> table = as_arrow_table(pd.DataFrame({"user": ["a", "b"], "item": [1, 2]}), "clicks")
>>> table.column_names, table.num_rows
(['user', 'item'], 2)
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tastespace.errors import DataError


def is_frame(value: Any) -> bool:
    """True for a pandas / polars DataFrame or an Arrow table (not for paths or strings)."""
    return isinstance(value, pd.DataFrame | pa.Table) or _module(value) == "polars"


def frame_label(value: Any, role: str) -> str:
    """How messages name an in-memory table, e.g. ``interactions (pandas DataFrame)``."""
    kind = "Arrow table" if isinstance(value, pa.Table) else f"{_module(value)} DataFrame"
    return f"{role} ({kind})"


def as_arrow_table(value: Any, role: str) -> pa.Table:
    """The table as Arrow, string columns as ``string``; names must be unique text."""
    if isinstance(value, pd.DataFrame):
        table = _from_pandas(value, role)
    elif isinstance(value, pa.Table):
        table = value
    elif _module(value) == "polars" and type(value).__name__ == "DataFrame":
        table = value.to_arrow()
    elif _module(value) == "polars":
        raise DataError(
            f"{role}: got a polars {type(value).__name__}; pass a DataFrame (call .collect())"
        )
    else:
        raise DataError(f"{role}: expected a pandas or polars DataFrame, got {type(value)}")
    names = [str(n) for n in table.column_names]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DataError(f"{frame_label(value, role)}: column {repeated[0]!r} appears twice")
    columns = [_plain_strings(c) for c in table.columns]
    return pa.Table.from_arrays(columns, names=names)


def _from_pandas(frame: pd.DataFrame, role: str) -> pa.Table:
    """Column by column, so one column of mixed types (ids 7 and ``"u7"``) reads as text."""
    arrays, names = [], []
    for position, name in enumerate(frame.columns):
        series = frame.iloc[:, position]
        try:
            array = pa.array(series, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            text = series.map(lambda v: None if _missing(v) else str(v))
            array = pa.array(text, type=pa.string(), from_pandas=True)
        except pa.ArrowNotImplementedError as err:
            raise DataError(
                f"{role} (pandas DataFrame): column {name!r} of dtype {series.dtype} cannot be "
                f"read ({err}); convert it to numbers or text"
            ) from err
        arrays.append(array)
        names.append(str(name))
    return pa.Table.from_arrays(arrays, names=names)


def _plain_strings(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Text as ``string``; a list column (genres as lists) joined the way files write it."""
    kind = column.type
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return _plain_strings(pc.binary_join(column.cast(pa.list_(pa.string())), "|"))
    if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return column.cast(pa.string())
    return column


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _module(value: Any) -> str:
    return type(value).__module__.split(".")[0]
