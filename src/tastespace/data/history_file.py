"""Batches of watch histories from a JSON Lines file (``tastespace recommend --history-file``).

One JSON object per line, ``user`` optional (the line number stands in for it)::

    {"user": "u1", "history": ["Toy Story (1995)", 50, "Heat"]}
    {"history": [1, 2, 3]}

Blank lines are skipped and a UTF-8 byte-order mark is ignored. Each entry is a raw item id
(string or integer) or a title; anything else (``true``, ``null``, ``1.5``, a list) is refused,
since ``true == 1`` in Python would quietly read as item 1. Every problem is one
:class:`~tastespace.errors.DataError` line naming ``FILE:LINE`` and what was expected.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "users.jsonl"
>>> _ = path.write_text('{"user": "ann", "history": [1, "Heat"]}\\n\\n{"history": [2]}\\n')
>>> [(r.line, r.user, r.history) for r in read_history_file(path)]
[(1, 'ann', [1, 'Heat']), (3, 3, [2])]
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tastespace.errors import DataError

EXPECTED = '{"user": ..., "history": [item ids or titles]}'


@dataclass(frozen=True)
class HistoryRecord:
    """One line of the file: its 1-based number, the user label and the raw history."""

    line: int
    user: str | int
    history: list[str | int]


def read_history_file(path: str | Path) -> list[HistoryRecord]:
    """Every history in ``path``, in file order; raises on the first bad line."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise DataError(f"{path}: is a folder; expected a JSON Lines file of histories")
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    records = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            text = _decode(path, number, raw.removeprefix(b"\xef\xbb\xbf") if number == 1 else raw)
            if text.strip():
                records.append(_parse(f"{path}:{number}", number, text))
    if not records:
        raise DataError(f"{path}: no histories in the file; expected one {EXPECTED} per line")
    return records


def _decode(path: Path, number: int, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path}:{number}: byte 0x{raw[err.start]:02x} at column {err.start + 1} is not "
            "valid UTF-8; save the file as UTF-8"
        ) from err


def _parse(where: str, number: int, text: str) -> HistoryRecord:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"{where}: not valid JSON ({err.msg} at column {err.colno})") from err
    if not isinstance(record, dict):
        raise DataError(f"{where}: a JSON {_kind(record)}; expected an object {EXPECTED}")
    if "history" not in record:
        keys = ", ".join(repr(k) for k in record) or "none"
        raise DataError(f'{where}: no "history" key (keys: {keys}); expected {EXPECTED}')
    history = record["history"]
    if not isinstance(history, list):
        raise DataError(f'{where}: "history" is a JSON {_kind(history)}; expected a list')
    for position, entry in enumerate(history, 1):
        if not _is_id(entry):
            raise DataError(
                f"{where}: history entry {position} is {json.dumps(entry)}; expected an item "
                "id (string or integer) or a title"
            )
    user = record.get("user", number)
    if not _is_id(user):
        raise DataError(f'{where}: "user" is {json.dumps(user)}; expected a string or integer')
    return HistoryRecord(number, user, history)


def _is_id(value: Any) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")
