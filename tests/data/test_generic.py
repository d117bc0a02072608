"""Tests for the generic CSV / TSV / Parquet interactions loader and its feature files."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tastespace.data.generic import load_interactions
from tastespace.errors import DataError, DataWarning


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def weight(ds, user, item) -> float:
    return float(ds.interactions[ds.user_ids.index(user), ds.item_ids.index(item)])


def at(path: Path, *details: str) -> str:
    """A regex that demands the file name and every detail, in order, in one message."""
    return re.escape(path.name) + ".*" + ".*".join(re.escape(d) for d in details)


def _fault(case: str, role: str) -> pytest.MarkDecorator:
    return pytest.mark.fault("data", case, f"DataError naming file and line: missing {role} id")


# -- columns and formats ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "userId,movieId,rating,timestamp",
        "user_id,item_id,score,ts",
        "customer_id,product_id,clicks,datetime",
        "UID,IID,Weight,Time",
        "user,item,count,date",
        "userid,itemid,value,TIMESTAMP",
    ],
)
def test_columns_recognised_by_name(tmp_path, header):
    path = write(tmp_path / "x.csv", f"{header}\n1,10,4,100\n1,20,2,200\n2,10,5,300\n")
    ds = load_interactions(path)
    names = header.split(",")
    assert ds.provenance["columns"] == dict(
        zip(["user", "item", "rating", "timestamp"], names, strict=True)
    )
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (2, 2, 3)
    assert weight(ds, 2, 10) == 5.0
    assert sorted(ds.timestamps.tolist()) == [100, 200, 300]
    assert ds.name == "x"
    assert ds.provenance["format"] == "csv" and ds.provenance["rows_read"] == 3


def test_explicit_columns_override_recognition(tmp_path):
    path = write(tmp_path / "x.csv", "who,what,rating,stars,when\na,p,1,5,10\nb,p,1,3,20\n")
    ds = load_interactions(
        path, user_col="who", item_col="WHAT", rating_col="stars", timestamp_col="when"
    )
    assert ds.provenance["columns"] == {
        "user": "who",
        "item": "what",
        "rating": "stars",
        "timestamp": "when",
    }
    assert weight(ds, "a", "p") == 5.0


def test_no_rating_column_means_weight_one(tmp_path):
    ds = load_interactions(write(tmp_path / "x.csv", "user,item\n1,2\n1,3\n"))
    assert ds.interactions.data.tolist() == [1.0, 1.0]
    assert ds.timestamps is None
    assert ds.provenance["columns"]["rating"] is None


@pytest.mark.parametrize(
    ("name", "text", "sep"),
    [
        ("x.tsv", "user\titem\trating\n1\t10\t4\n2\t20\t3\n", "\t"),
        ("x.dat", "user::item::rating\n1::10::4\n2::20::3\n", "::"),
        ("x.txt", "user|item|rating\n1|10|4\n2|20|3\n", "|"),
        ("x.txt", "user;item;rating\n1;10;4\n2;20;3\n", ";"),
        ("x.csv", "user\titem\trating\n1\t10\t4\n2\t20\t3\n", "\t"),
    ],
)
def test_separator_sniffed(tmp_path, name, text, sep):
    ds = load_interactions(write(tmp_path / name, text))
    assert ds.provenance["separator"] == sep
    assert weight(ds, 1, 10) == 4.0 and weight(ds, 2, 20) == 3.0


def test_double_colon_keeps_colons_inside_values(tmp_path):
    text = "user::item::time\n1::a::2020-01-01T10:00:00\n2::b::2020-01-01T10:00:30\n"
    ds = load_interactions(write(tmp_path / "x.dat", text))
    assert sorted(ds.timestamps.tolist()) == [1577872800, 1577872830]


def test_explicit_separator(tmp_path):
    ds = load_interactions(write(tmp_path / "x.txt", "user\titem\n1\t2\n"), sep="\\t")
    assert ds.provenance["separator"] == "\t" and ds.n_interactions == 1


def test_gzip_and_quoted_fields(tmp_path):
    path = tmp_path / "clicks.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write('user,item,rating\n"a, b",x,1\nc,"y ""z""",2\n')
    ds = load_interactions(path)
    assert ds.name == "clicks"
    assert weight(ds, "a, b", "x") == 1.0 and weight(ds, "c", 'y "z"') == 2.0


def test_parquet_round_trip(tmp_path):
    frame = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u2"],
            "item_id": [7, 8, 7],
            "rating": [4.5, 3.0, 5.0],
            "timestamp": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03"], utc=True),
        }
    )
    path = tmp_path / "events.parquet"
    frame.to_parquet(path)
    ds = load_interactions(path)
    assert ds.provenance["format"] == "parquet"
    assert isinstance(ds.user_ids.raw(0), str) and isinstance(ds.item_ids.raw(0), int)
    assert weight(ds, "u2", 7) == 5.0
    assert sorted(ds.timestamps.tolist()) == [1577836800, 1577923200, 1578009600]


def test_ids_keep_their_type(tmp_path):
    ints = load_interactions(write(tmp_path / "i.csv", "user,item\n3,10\n1,20\n"))
    assert all(type(ints.user_ids.raw(k)) is int for k in range(ints.n_users))
    assert all(type(ints.item_ids.raw(k)) is int for k in range(ints.n_items))
    strs = load_interactions(write(tmp_path / "s.csv", "user,item\nalice,007\nbob,10\n"))
    assert strs.user_ids.raws([0, 1]) == ["alice", "bob"]
    assert sorted(strs.item_ids.raws([0, 1])) == ["007", "10"]  # a leading zero keeps it text


def test_iso_timestamps_become_unix_seconds(tmp_path):
    text = (
        "user,item,timestamp\n"
        "1,1,2020-01-01T00:00:00Z\n"
        "1,2,2020-01-01T02:00:00+02:00\n"
        "1,3,2020-01-01\n"
        "1,4,2020-01-01 00:01:00\n"
    )
    ds = load_interactions(write(tmp_path / "t.csv", text))
    assert ds.timestamps.dtype == np.int64
    assert ds.timestamps.tolist() == [1577836800, 1577836800, 1577836800, 1577836860]


def test_integer_timestamps_kept(tmp_path):
    ds = load_interactions(write(tmp_path / "t.csv", "user,item,ts\n1,1,964982703\n"))
    assert ds.timestamps.tolist() == [964982703]


def test_min_rating_binarises_and_counts(tmp_path):
    text = "user,item,rating\n1,1,5\n1,2,3.5\n2,1,4\n2,2,1\n"
    ds = load_interactions(write(tmp_path / "r.csv", text), min_rating=4)
    assert ds.n_interactions == 2
    assert set(ds.interactions.data.tolist()) == {1.0}
    assert ds.provenance["filtered"] == {"rating < 4": 2}
    assert ds.provenance["rows_read"] == 4


@pytest.mark.parametrize(
    ("policy", "expected"), [("sum", 10.0), ("max", 5.0), ("last", 3.0), ("first", 2.0)]
)
def test_duplicate_policies(tmp_path, policy, expected):
    path = write(tmp_path / "d.csv", "user,item,rating\n1,9,2\n1,9,5\n1,9,3\n")
    ds = load_interactions(path, duplicates=policy)
    assert ds.n_interactions == 1
    assert weight(ds, 1, 9) == expected
    assert list(ds.provenance["filtered"].values()) == [2]


@pytest.mark.fault(
    "data",
    "duplicate (user, item) rows with duplicates=error",
    "DataError naming the pair, both lines and the duplicates policies",
)
def test_duplicate_policy_error_names_lines(tmp_path):
    path = write(tmp_path / "d.csv", "user,item,rating\n1,9,2\n2,9,5\n1,9,3\n")
    with pytest.raises(
        DataError, match=at(path, "(1, 9)", "line 2", "line 4", "duplicates")
    ) as err:
        load_interactions(path, duplicates="error")
    assert str(err.value).endswith("choose a duplicates policy: sum, max, last or first")
    assert err.value.options == ("duplicates",)


@pytest.mark.fault(
    "data", "unknown duplicates policy ('mean')", "DataError listing sum|max|last|first|error"
)
def test_unknown_duplicate_policy(tmp_path):
    with pytest.raises(DataError, match="sum|max"):
        load_interactions(write(tmp_path / "d.csv", "user,item\n1,2\n"), duplicates="mean")


# -- feature files ------------------------------------------------------------------------------


@pytest.fixture
def catalog(tmp_path):
    ratings = write(
        tmp_path / "ratings.csv",
        "userId,movieId,rating\n1,30,4\n1,10,5\n2,20,3\n3,10,1\n2,99,2\n",
    )
    movies = write(
        tmp_path / "movies.csv",
        "movieId,title,year,studio,genres,tags\n"
        '10,"Heat, the film",1995,Warner,Action|Crime|Thriller,heist;la\n'
        "20,Toy Story,1995,Pixar,Animation|Children|Comedy,\n"
        "30,Babe,,Universal,Children|Drama,pig\n"
        "40,Unrated Gem,2001,Indie,Drama,\n",
    )
    people = write(tmp_path / "users.tsv", "id\tage\tgender\n3\t31\tF\n1\t25\tM\n")
    return ratings, movies, people


def test_item_and_user_features(catalog):
    ratings, movies, people = catalog
    with pytest.warns(DataWarning) as caught:
        ds = load_interactions(
            ratings,
            item_features=movies,
            user_features=people,
            multi_valued={"tags": ";"},
            keep_unrated=True,
        )
    assert [str(w.message).split(": ", 1)[1] for w in caught] == [
        "1 of 4 items in the interactions have no row here (e.g. 99); they get empty features",
        "1 item ids have no interactions (e.g. 40); kept as items with no interactions"
        " (keep_unrated)",
        "1 of 3 users in the interactions have no row here (e.g. 2); they get empty features",
    ]
    # declared order first (the feature file's), ids seen only in interactions after
    assert ds.item_ids.raws(np.arange(ds.n_items)) == [10, 20, 30, 40, 99]
    assert ds.user_ids.raws(np.arange(ds.n_users)) == [3, 1, 2]
    items = ds.items
    assert set(items.bags) == {"genres", "tags"}
    assert items.bags["genres"].row(ds.item_ids.index(20)) == ["Animation", "Children", "Comedy"]
    assert items.bags["genres"].row(ds.item_ids.index(30)) == ["Children", "Drama"]
    assert items.bags["genres"].row(ds.item_ids.index(99)) == []
    assert items.bags["tags"].row(ds.item_ids.index(10)) == ["heist", "la"]
    assert items.bags["tags"].row(ds.item_ids.index(20)) == []
    assert items.frame.loc[ds.item_ids.index(10), "title"] == "Heat, the film"
    assert items.frame.loc[ds.item_ids.index(40), "year"] == 2001
    assert np.isnan(items.frame.loc[ds.item_ids.index(30), "year"])
    assert items.numeric_columns == ["year"]
    assert items.categorical_columns == ["studio"]
    assert items.frame.loc[ds.item_ids.index(20), "studio"] == "Pixar"
    # the catalog item nobody rated is still an item
    assert ds.interactions[:, ds.item_ids.index(40)].nnz == 0
    users = ds.users
    assert users.frame.loc[ds.user_ids.index(1), "age"] == 25
    assert users.frame.loc[ds.user_ids.index(3), "gender"] == "F"
    assert users.categorical_columns == ["gender"]
    notes = " ".join(ds.provenance["notes"])
    assert "'year' has 1 missing" in notes
    assert "1 item ids appear in interactions but not in the item table" in notes
    assert ds.provenance["features"] == {"items": str(movies), "users": str(people)}


def test_multi_valued_explicit_separator_and_auto_threshold(tmp_path):
    ratings = write(tmp_path / "r.csv", "user,item\n1,a\n")
    feats = write(
        tmp_path / "items.csv",
        "item,kind,labels\na,x|y,red/blue\nb,z,green\nc,w,\n",
    )
    ds = load_interactions(
        ratings, item_features=feats, multi_valued={"labels": "/"}, keep_unrated=True
    )
    assert "kind" in ds.items.frame  # '|' in 1 of 3 rows: a plain categorical
    assert ds.items.bags["labels"].row(ds.item_ids.index("a")) == ["red", "blue"]
    assert ds.items.bags["labels"].row(ds.item_ids.index("c")) == []


def test_feature_ids_match_across_types(tmp_path):
    ratings = write(tmp_path / "r.csv", "user,item\n1,5\n")
    feats = write(tmp_path / "items.csv", "item,size\nx7,1\n5,2\n")
    ds = load_interactions(ratings, item_features=feats, keep_unrated=True)
    assert ds.item_ids.raws([0, 1]) == ["x7", "5"]
    assert ds.n_items == 2  # '5' in both files is one item


@pytest.mark.fault(
    "data", "feature file lists one item id twice", "DataError naming the id and both lines"
)
def test_feature_file_duplicate_id(tmp_path, catalog):
    ratings, _, _ = catalog
    feats = write(tmp_path / "dup.csv", "movieId,year\n10,1990\n20,1991\n10,1992\n")
    with pytest.raises(DataError, match=at(feats, "10", "line 2", "line 4")):
        load_interactions(ratings, item_features=feats)


@pytest.mark.fault(
    "data", "feature file row without an id", "DataError naming file and line: missing item id"
)
def test_feature_file_missing_id(tmp_path, catalog):
    ratings, _, _ = catalog
    feats = write(tmp_path / "gap.csv", "movieId,year\n10,1990\n,1991\n")
    with pytest.raises(DataError, match=at(feats, "missing item id", "line 3")):
        load_interactions(ratings, item_features=feats)


@pytest.mark.fault(
    "data", "multi_valued names a column no feature file has", "DataError naming the column"
)
def test_multi_valued_unknown_column(catalog):
    ratings, movies, _ = catalog
    with pytest.raises(DataError, match="'keywords' not found"):
        load_interactions(ratings, item_features=movies, multi_valued={"keywords": "|"})


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.fault(
    "data", "interactions file does not exist", "DataError naming the path: no such file"
)
def test_missing_file(tmp_path):
    path = tmp_path / "nope.csv"
    with pytest.raises(DataError, match=at(path, "no such file")):
        load_interactions(path)


@pytest.mark.fault(
    "data", "unsupported file suffix (.json)", "DataError listing the supported suffixes"
)
def test_unknown_suffix(tmp_path):
    path = write(tmp_path / "x.json", "{}")
    with pytest.raises(DataError, match=at(path, ".csv", ".tsv", ".parquet")):
        load_interactions(path)


@pytest.mark.fault(
    "data",
    "empty file (0 bytes, or blank lines only)",
    "DataError: empty file, expected a header row",
)
@pytest.mark.parametrize("text", ["", "\n\n  \n"])
def test_empty_file(tmp_path, text):
    path = write(tmp_path / "empty.csv", text)
    with pytest.raises(DataError, match=at(path, "empty file")):
        load_interactions(path)


@pytest.mark.fault(
    "data", "header row only, no data rows", "DataError: no data rows after the header"
)
def test_header_only(tmp_path):
    path = write(tmp_path / "head.csv", "user,item,rating\n")
    with pytest.raises(DataError, match=at(path, "no data rows")):
        load_interactions(path)


@pytest.mark.fault(
    "data",
    "a row with more fields than the header",
    "DataError naming the line and both field counts",
)
def test_malformed_row_names_its_line(tmp_path):
    path = write(tmp_path / "bad.csv", "user,item,rating\n1,2,3\n\n2,3,4\n4,5,6,7\n5,6,7\n")
    with pytest.raises(DataError, match=at(path, "line 5", "4 fields", "expected 3")) as info:
        load_interactions(path)
    assert isinstance(info.value.__cause__, pa.ArrowInvalid)
    assert "\n" not in str(info.value)


@pytest.mark.fault(
    "data",
    "a short row in a '::'-separated file",
    "DataError naming the line and both field counts",
)
def test_malformed_row_in_double_colon_file(tmp_path):
    path = write(tmp_path / "bad.dat", "user::item::rating\n1::2::3\n2::3\n")
    with pytest.raises(DataError, match=at(path, "line 3", "2 fields", "expected 3")):
        load_interactions(path)


@pytest.mark.fault(
    "data", "non-numeric rating ('five')", "DataError naming file, line, column and the value"
)
def test_non_numeric_rating(tmp_path):
    path = write(tmp_path / "r.csv", "user,item,rating\n1,2,4\n1,3,five\n")
    with pytest.raises(DataError, match=at(path, "non-numeric rating", "'five'", "line 3")):
        load_interactions(path)


@pytest.mark.fault(
    "data", "empty rating cell", "DataError naming file, line and column: missing rating"
)
def test_missing_rating(tmp_path):
    path = write(tmp_path / "r.csv", "user,item,rating\n1,2,4\n1,3,\n")
    with pytest.raises(DataError, match=at(path, "missing rating", "line 3")):
        load_interactions(path)


@pytest.mark.parametrize(
    ("row", "role"),
    [
        pytest.param(",5,1", "user", marks=_fault("empty user id cell", "user")),
        pytest.param("7,,1", "item", marks=_fault("empty item id cell", "item")),
        pytest.param("7, ,1", "item", marks=_fault("item id of spaces only", "item")),
    ],
)
def test_missing_id(tmp_path, row, role):
    path = write(tmp_path / "ids.csv", f"user,item,rating\n1,2,3\n2,3,4\n{row}\n")
    with pytest.raises(DataError, match=at(path, f"missing {role} id", "line 4")):
        load_interactions(path)


@pytest.mark.fault("data", "null user id in a Parquet file", "DataError naming the file and row")
def test_missing_id_in_parquet_names_row(tmp_path):
    path = tmp_path / "ids.parquet"
    pq.write_table(pa.table({"user": ["a", None], "item": ["x", "y"]}), path)
    with pytest.raises(DataError, match=at(path, "missing user id", "row 2")):
        load_interactions(path)


@pytest.mark.fault(
    "data", "Latin-1 byte in a data row", "DataError naming line, byte offset and an iconv command"
)
def test_non_utf8_byte(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("user,item\n1,Caf\u00e9\n".encode() + b"2,Ol\xe9\n")
    with pytest.raises(DataError, match=at(path, "0xe9", "line 3", "byte offset 22", "iconv")):
        load_interactions(path)


@pytest.mark.fault(
    "data", "Latin-1 byte in the header row", "DataError naming line 1 and an iconv command"
)
def test_non_utf8_header(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(b"user,it\xe9m\n1,2\n")
    with pytest.raises(DataError, match=at(path, "line 1", "iconv -f latin1")):
        load_interactions(path)


@pytest.mark.fault(
    "data", "Latin-1 byte in an item feature file", "DataError naming the feature file and line"
)
def test_non_utf8_in_feature_file(tmp_path, catalog):
    ratings, _, _ = catalog
    feats = tmp_path / "movies.csv"
    feats.write_bytes(b"movieId,title\n10,Heat\n20,Am\xe9lie\n")
    with pytest.raises(DataError, match=at(feats, "line 3", "iconv")):
        load_interactions(ratings, item_features=feats)


@pytest.mark.fault(
    "data",
    "--min-rating above every rating",
    "DataError: no interactions left after keeping ratings >= N",
)
def test_empty_after_filtering(tmp_path):
    path = write(tmp_path / "low.csv", "user,item,rating\n1,2,1\n1,3,2\n")
    with pytest.raises(DataError, match=at(path, "no interactions left", "4")):
        load_interactions(path, min_rating=4)


@pytest.mark.fault(
    "data", "--min-rating on a file without a rating column", "DataError naming rating_col"
)
def test_min_rating_needs_rating_column(tmp_path):
    path = write(tmp_path / "x.csv", "user,item\n1,2\n")
    with pytest.raises(DataError, match=at(path, "name it with rating_col")) as err:
        load_interactions(path, min_rating=4)
    assert err.value.options == ("min_rating", "rating_col")


@pytest.mark.fault(
    "data", "no recognisable item column", "DataError listing the columns and item_col"
)
def test_missing_item_column_names_the_option(tmp_path):
    path = write(tmp_path / "x.csv", "user_id,sku,qty\n1,2,3\n")
    with pytest.raises(DataError, match=at(path, "no item column", "'sku'", "item_col")) as err:
        load_interactions(path)
    assert err.value.options == ("item_col",)


@pytest.mark.fault(
    "data", "--rating-col names a column the file lacks", "DataError listing the columns found"
)
def test_explicit_column_not_found(tmp_path):
    path = write(tmp_path / "x.csv", "user,item\n1,2\n")
    with pytest.raises(DataError, match=at(path, "'stars'", "rating_col", "'user', 'item'")):
        load_interactions(path, rating_col="stars")


@pytest.mark.fault(
    "data",
    "headerless file (first line is data)",
    "DataError: headerless files are not supported, add a header",
)
def test_headerless_file(tmp_path):
    path = write(tmp_path / "u.data", "x")  # suffix check comes first
    with pytest.raises(DataError, match="unsupported file type"):
        load_interactions(path)
    path = write(tmp_path / "u.tsv", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    with pytest.raises(DataError, match=at(path, "headerless files are not supported")):
        load_interactions(path)


@pytest.mark.fault(
    "data",
    "unparseable timestamp ('yesterday')",
    "DataError naming file, line, column and the value",
)
def test_unparseable_timestamp(tmp_path):
    text = "user,item,timestamp\n1,2,2020-01-01T00:00:00\n1,3,yesterday\n"
    path = write(tmp_path / "t.csv", text)
    with pytest.raises(DataError, match=at(path, "unparseable timestamp", "'yesterday'", "line 3")):
        load_interactions(path)


@pytest.mark.fault("data", "a .csv.gz that is not gzip", "DataError naming the file: cannot read")
def test_corrupt_gzip(tmp_path):
    path = tmp_path / "x.csv.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match=at(path, "cannot read")):
        load_interactions(path)


@pytest.mark.fault(
    "data",
    "a .parquet file holding CSV text",
    "DataError naming the file: not a readable Parquet file",
)
def test_not_parquet(tmp_path):
    path = write(tmp_path / "x.parquet", "user,item\n1,2\n")
    with pytest.raises(DataError, match=at(path, "Parquet")):
        load_interactions(path)


def test_load_dataset_dispatches_here(tmp_path):
    from tastespace.data.load import load_dataset

    ds = load_dataset(write(tmp_path / "x.csv", "user,item\n1,2\n"), duplicates="sum")
    assert ds.n_interactions == 1
