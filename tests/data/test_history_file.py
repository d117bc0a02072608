"""``recommend --history-file``: JSON Lines of histories, every bad line named by its number."""

from __future__ import annotations

import json
import re
import sys

import pytest

from tastespace.cli import main
from tastespace.data.history_file import HistoryRecord, read_history_file
from tastespace.errors import DataError


def fault(case: str, outcome: str) -> pytest.MarkDecorator:
    return pytest.mark.fault("history-file", case, outcome)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """An EASE bundle over items 1..6 (two co-watched groups), titles from a feature file."""
    root = tmp_path_factory.mktemp("histories")
    rows = ["user,item,rating"]
    for user in range(30):
        rows += [f"u{user},{item},5" for item in ((1, 2, 3) if user % 2 else (4, 5, 6))]
    (root / "r.csv").write_text("\n".join(rows) + "\n")
    titles = "item,title\n" + "".join(f"{i},Film {i}\n" for i in range(1, 7))
    (root / "items.csv").write_text(titles)
    out = root / "ease"
    argv = ["tastespace", "fit", "--data", str(root / "r.csv"), "--item-features"]
    argv += [str(root / "items.csv"), "-m", "ease", "-p", "l2=1", "-o", str(out)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", argv)
        with pytest.raises(SystemExit) as exited:
            main()
    assert exited.value.code in (0, None)
    return out


def recommend(monkeypatch, capsys, bundle, path) -> tuple[int, str, str]:
    argv = ["tastespace", "recommend", str(bundle), "--history-file", str(path), "--json"]
    monkeypatch.setattr(sys, "argv", [*argv, "-k", "2"])
    with pytest.raises(SystemExit) as exited:
        main()
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.out, captured.err


BAD_LINES = [
    pytest.param(
        b"not json",
        "not valid JSON (Expecting value at column 1)",
        marks=fault("a line that is not JSON", "DataError naming FILE:LINE and the JSON error"),
        id="not-json",
    ),
    pytest.param(
        b'{"user": "a", "history": [1, 2',
        "not valid JSON",
        marks=fault("a JSON line cut short", "DataError naming FILE:LINE: not valid JSON"),
        id="truncated",
    ),
    pytest.param(
        b"[1, 2, 3]",
        'a JSON list; expected an object {"user": ..., "history": [item ids or titles]}',
        marks=fault("a bare JSON list instead of an object", "DataError naming FILE:LINE"),
        id="list",
    ),
    pytest.param(
        b'{"user": "a", "items": [1]}',
        "no \"history\" key (keys: 'user', 'items')",
        marks=fault('an object without "history"', "DataError naming FILE:LINE and the keys found"),
        id="no-history",
    ),
    pytest.param(
        b'{"user": "a", "history": "1,2"}',
        '"history" is a JSON string; expected a list',
        marks=fault('"history" is a string, not a list', "DataError naming FILE:LINE"),
        id="history-string",
    ),
    pytest.param(
        b'{"user": "a", "history": [1, true]}',
        "history entry 2 is true; expected an item id (string or integer) or a title",
        marks=fault("JSON true in a history (would read as item 1)", "DataError naming FILE:LINE"),
        id="true",
    ),
    pytest.param(
        b'{"history": [null]}',
        "history entry 1 is null",
        marks=fault("JSON null in a history", "DataError naming FILE:LINE and the entry"),
        id="null",
    ),
    pytest.param(
        b'{"history": [2.5]}',
        "history entry 1 is 2.5",
        marks=fault(
            "a fractional number as an item id", "DataError naming FILE:LINE and the entry"
        ),
        id="float",
    ),
    pytest.param(
        b'{"user": {"id": 1}, "history": [1]}',
        '"user" is {"id": 1}; expected a string or integer',
        marks=fault('"user" is an object', "DataError naming FILE:LINE"),
        id="user-object",
    ),
    pytest.param(
        b'{"history": [1]}\xff',
        "byte 0xff at column 17 is not valid UTF-8",
        marks=fault("non-UTF-8 byte in --history-file", "DataError naming FILE:LINE and column"),
        id="latin1",
    ),
]


@pytest.mark.parametrize(("line", "message"), BAD_LINES)
def test_bad_line_is_named(tmp_path, monkeypatch, capsys, bundle, line, message):
    path = tmp_path / "users.jsonl"
    path.write_bytes(b'{"user": "ok", "history": [1]}\n\n' + line + b"\n")
    with pytest.raises(DataError, match=re.escape(f"{path}:3: {message}")):
        read_history_file(path)
    code, out, err = recommend(monkeypatch, capsys, bundle, path)
    assert code == 2 and out == "" and err.strip().count("\n") == 0
    assert err.startswith(f"error: {path}:3: ")


@fault("an item id the catalog lacks, on line 2", "DataError naming FILE:LINE and the id; exit 2")
def test_unknown_item_names_its_line(tmp_path, monkeypatch, capsys, bundle):
    path = tmp_path / "users.jsonl"
    path.write_text('{"user": "a", "history": [1]}\n{"user": "b", "history": [1, 99]}\n')
    code, _, err = recommend(monkeypatch, capsys, bundle, path)
    assert code == 2 and err.startswith(f"error: {path}:2: no item matches '99'")


@fault("an empty history [] on line 1", "popularity fallback, flagged in that user's line")
def test_empty_history_gets_the_flagged_popularity_fallback(tmp_path, monkeypatch, capsys, bundle):
    path = tmp_path / "users.jsonl"
    path.write_text('{"user": "a", "history": []}\n{"user": "b", "history": [1]}\n')
    code, out, _ = recommend(monkeypatch, capsys, bundle, path)
    first, second = (json.loads(line) for line in out.splitlines())
    assert code == 0 and first["fallback"] is True and second["fallback"] is False
    assert len(first["items"]) == 2 and first["items"] != second["items"]


@fault("--history-file with only blank lines", "DataError: no histories in the file")
def test_blank_file(tmp_path):
    path = tmp_path / "users.jsonl"
    path.write_text("\n  \n")
    with pytest.raises(DataError, match="no histories in the file"):
        read_history_file(path)


@fault("--history-file is a folder", "DataError: is a folder")
def test_folder(tmp_path):
    with pytest.raises(DataError, match="is a folder; expected a JSON Lines file"):
        read_history_file(tmp_path)


@fault("--history-file does not exist", "DataError: no such file")
def test_missing(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_history_file(tmp_path / "nope.jsonl")


@fault("UTF-8 byte-order mark on a history file", "ignored; the first line parses")
def test_byte_order_mark_and_titles(tmp_path, monkeypatch, capsys, bundle):
    path = tmp_path / "users.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"user": "a", "history": ["Film 1", 2]}\n{"history": [4]}\n')
    assert read_history_file(path) == [
        HistoryRecord(1, "a", ["Film 1", 2]),
        HistoryRecord(2, 2, [4]),
    ]
    code, out, err = recommend(monkeypatch, capsys, bundle, path)
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [x["user"] for x in lines] == ["a", 2]
    assert lines[0]["items"][0] == 3 and sorted(lines[1]["items"]) == [5, 6]  # co-watched


@fault("a history longer than the server's limit", "DataError naming FILE:LINE and the limit")
def test_too_long_history_names_its_line(tmp_path, monkeypatch, capsys, bundle):
    from tastespace.session import MAX_HISTORY

    path = tmp_path / "users.jsonl"
    long = json.dumps({"user": "greedy", "history": [1] * (MAX_HISTORY + 1)})
    path.write_text('{"user": "a", "history": [1]}\n' + long + "\n")
    code, _, err = recommend(monkeypatch, capsys, bundle, path)
    assert code == 2 and err.startswith(
        f"error: {path}:2: history of 'greedy' has {MAX_HISTORY + 1}"
    )
