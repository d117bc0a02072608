"""Input policies for files users bring: ratings ≤ 0, feature files keyed by other ids, odd shapes.

Each case goes through the library and through the console entry point (``tastespace.cli.main``,
in-process: a tastespace error must become one stderr line and exit code 2, never a traceback).
"""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tastespace.cli import main
from tastespace.data import load_dataset
from tastespace.data.generic import load_interactions
from tastespace.errors import DataError, DataWarning
from tests.conftest import movielens_zip


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Run the console entry point in-process: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["tastespace", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.out, captured.err


def one_line_error(monkeypatch, capsys, *args: str) -> str:
    """The stderr of a command that must fail with exit 2 and a single ``error:`` line."""
    code, _, err = cli(monkeypatch, capsys, *args)
    assert code == 2, err
    assert err.startswith("error: ") and err.strip().count("\n") == 0, err
    return err


def fault(case: str, outcome: str) -> pytest.MarkDecorator:
    return pytest.mark.fault("data", case, outcome)


RATINGS = "user,item,rating\n1,10,5\n1,11,-1\n2,10,3\n2,12,0\n3,11,4\n"


# -- ratings ≤ 0 ------------------------------------------------------------------------------


@fault(
    "negative rating in ratings.csv", "DataError naming file:line, --min-rating and --nonpositive"
)
def test_negative_rating_is_an_error_naming_line_and_options(tmp_path, monkeypatch, capsys):
    path = write(tmp_path / "ratings.csv", RATINGS)
    with pytest.raises(DataError) as info:
        load_interactions(path)
    assert str(info.value) == (
        f"{path}: rating -1 at line 3 (column 'rating'): 2 of 5 rows are ≤ 0, and ratings are "
        "read as positive weights; pass min_rating=N to keep ratings ≥ N as positives, or "
        "nonpositive='drop' to drop the rows ≤ 0"
    )
    assert info.value.options == ("min_rating", "nonpositive")
    err = one_line_error(monkeypatch, capsys, "data", "info", str(path))
    assert "line 3" in err and err.rstrip().endswith(
        "pass --min-rating N to keep ratings ≥ N as positives, or --nonpositive drop to drop "
        "the rows ≤ 0"
    )


@fault("rating 0 (a 'not rated' marker)", "DataError naming file:line, like a negative rating")
def test_zero_rating_is_refused_like_a_negative(tmp_path):
    path = write(tmp_path / "zeros.csv", "user,item,rating\n1,10,5\n2,11,0\n")
    with pytest.raises(DataError, match=re.escape("rating 0 at line 3 (column 'rating')")):
        load_interactions(path)


@fault("negative ratings in a Parquet file", "DataError naming the file and row")
def test_negative_rating_in_parquet_names_row(tmp_path):
    path = tmp_path / "r.parquet"
    pq.write_table(
        pa.table({"user": [1, 2, 3], "item": [5, 6, 7], "rating": [1.0, 2.0, -3.0]}), path
    )
    with pytest.raises(DataError, match=re.escape("rating -3 at row 3 (column 'rating')")):
        load_interactions(path)


@fault("ratings <= 0 with --nonpositive drop", "rows dropped and counted in provenance; exit 0")
def test_nonpositive_drop_keeps_the_positive_weights(tmp_path, monkeypatch, capsys):
    path = write(tmp_path / "ratings.csv", RATINGS)
    ds = load_interactions(path, nonpositive="drop")
    assert ds.n_interactions == 3
    assert sorted(ds.interactions.data.tolist()) == [3.0, 4.0, 5.0]
    assert ds.provenance["filtered"] == {"rating ≤ 0 (dropped by nonpositive='drop')": 2}
    code, out, _ = cli(monkeypatch, capsys, "data", "info", str(path), "--nonpositive", "drop")
    assert code == 0 and "2 rows: rating ≤ 0" in out


@fault("ratings <= 0 with --min-rating", "binarised: ratings >= N become 1.0, the rest dropped")
def test_min_rating_handles_negative_ratings(tmp_path):
    ds = load_interactions(write(tmp_path / "r.csv", RATINGS), min_rating=3)
    assert ds.n_interactions == 3 and set(ds.interactions.data.tolist()) == {1.0}
    assert ds.provenance["filtered"] == {"rating < 3": 2}


@fault("unknown --nonpositive policy ('clip')", "DataError listing error|drop; exit 2")
def test_unknown_nonpositive_policy(tmp_path, monkeypatch, capsys):
    path = write(tmp_path / "r.csv", RATINGS)
    err = one_line_error(monkeypatch, capsys, "data", "info", str(path), "--nonpositive", "clip")
    assert "error|drop" in err and "'clip'" in err


@fault("negative ratings reaching fit (ALS, EASE)", "fit refuses before training; exit 2")
@pytest.mark.parametrize("model", ["als", "ease"])
def test_fit_refuses_negative_ratings_instead_of_an_all_zero_model(
    tmp_path, monkeypatch, capsys, model
):
    path = write(tmp_path / "ratings.csv", RATINGS)
    out = tmp_path / "bundle"
    err = one_line_error(
        monkeypatch, capsys, "fit", "--data", str(path), "-m", model, "-o", str(out)
    )
    assert "line 3" in err and not out.exists()


def test_nonpositive_drop_fits_a_model_that_ranks(tmp_path, monkeypatch, capsys):
    rows = ["user,item,rating"]
    for user in range(40):
        liked = (1, 2, 3) if user % 2 else (4, 5, 6)
        rows += [f"{user},{item},4" for item in liked] + [f"{user},{7 + user % 3},-1"]
    path = write(tmp_path / "likes.csv", "\n".join(rows) + "\n")
    out = tmp_path / "ease"
    args = ["fit", "--data", str(path), "-m", "ease", "--nonpositive", "drop", "-o", str(out)]
    code, _, err = cli(monkeypatch, capsys, *args)
    assert code == 0, err
    code, recs, err = cli(
        monkeypatch, capsys, "recommend", str(out), "-H", "1", "-k", "2", "--json"
    )
    assert code == 0, err
    assert '"items": [2, 3]' in recs or '"items": [3, 2]' in recs  # the co-liked items


# -- odd but valid shapes: documented treatments ----------------------------------------------


@fault("duplicate (user, item) rows, default policy", "merged keeping the last; counted and warned")
def test_duplicates_are_merged_with_a_warning(tmp_path):
    path = write(tmp_path / "dup.csv", "user,item,rating\n1,10,5\n1,10,3\n2,11,4\n")
    with pytest.warns(DataWarning, match=r"dup\.csv: 1 repeated \(user, item\) rows .*'last'"):
        ds = load_interactions(path)
    assert ds.interactions[ds.user_ids.index(1), ds.item_ids.index(10)] == 3.0


@fault("ids with surrounding whitespace", "trimmed: ' 1 ' and '1' are one id")
def test_ids_are_trimmed(tmp_path):
    path = write(tmp_path / "ws.csv", "user,item,rating\n 1 ,10 ,5\n2, 11,4\n1,12,3\n")
    ds = load_interactions(path)
    assert ds.user_ids.raws(np.arange(ds.n_users)) == [1, 2]
    assert ds.item_ids.raws(np.arange(ds.n_items)) == [10, 11, 12]


@fault("mixed integer and text ids in one column", "every id in the column read as text")
def test_mixed_ids_become_text(tmp_path):
    path = write(tmp_path / "mixed.csv", "user,item,rating\n1,10,5\nu2,11,4\n3,x7,4\n")
    ds = load_interactions(path)
    assert ds.user_ids.raws(np.arange(ds.n_users)) == ["1", "3", "u2"]
    assert ds.item_ids.raws(np.arange(ds.n_items)) == ["10", "11", "x7"]


@fault("tab-separated file named .csv", "separator sniffed from the header; loads")
def test_tsv_named_csv_is_sniffed(tmp_path):
    ds = load_interactions(write(tmp_path / "t.csv", "user\titem\trating\n1\t10\t5\n2\t11\t4\n"))
    assert ds.provenance["separator"] == "\t" and ds.n_interactions == 2


@fault("UTF-8 byte-order mark before the header", "ignored: the first column is still 'user'")
def test_byte_order_mark_is_ignored(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfuser,item,rating\n1,10,5\n2,11,4\n")
    ds = load_interactions(path)
    assert ds.provenance["columns"]["user"] == "user" and ds.n_users == 2


@fault("rating 'nan' written as text", "DataError naming the line: missing rating")
def test_nan_rating_text(tmp_path):
    path = write(tmp_path / "nan.csv", "user,item,rating\n1,10,4\n2,11,nan\n")
    with pytest.raises(DataError, match=re.escape("missing rating at line 3 (column 'rating')")):
        load_interactions(path)


@fault("rating 'inf'", "DataError naming the line: non-finite rating")
def test_infinite_rating(tmp_path):
    path = write(tmp_path / "inf.csv", "user,item,rating\n1,10,4\n2,11,inf\n")
    with pytest.raises(DataError, match=re.escape("non-finite (inf) rating at line 3")):
        load_interactions(path)


# -- Parquet with the wrong types -------------------------------------------------------------


@fault("Parquet rating column of text with a non-number", "DataError naming the row and value")
def test_parquet_text_rating(tmp_path):
    path = tmp_path / "r.parquet"
    pq.write_table(pa.table({"user": [1, 2], "item": [5, 6], "rating": ["4", "great"]}), path)
    with pytest.raises(DataError, match=re.escape("non-numeric rating 'great' at row 2")):
        load_interactions(path)


@fault("Parquet rating column of lists", "DataError: holds list<item: int64>, expected numbers")
def test_parquet_list_rating(tmp_path):
    path = tmp_path / "r.parquet"
    pq.write_table(pa.table({"user": [1, 2], "item": [5, 6], "rating": [[1], [2, 3]]}), path)
    with pytest.raises(DataError, match="rating column 'rating' holds list.*expected numbers"):
        load_interactions(path)


@fault("Parquet float ids (1.0, 2.0)", "read as the integers 1 and 2")
def test_parquet_integral_float_ids(tmp_path):
    path = tmp_path / "r.parquet"
    pq.write_table(pa.table({"user": [1.0, 2.0], "item": [5.0, 6.0]}), path)
    ds = load_interactions(path)
    assert ds.user_ids.raws([0, 1]) == [1, 2] and ds.item_ids.raws([0, 1]) == [5, 6]


@fault("Parquet float id column with a NaN", "DataError naming the row: missing user id")
def test_parquet_nan_id(tmp_path):
    path = tmp_path / "r.parquet"
    pq.write_table(pa.table({"user": [1.0, float("nan")], "item": [5, 6]}), path)
    with pytest.raises(DataError, match=re.escape("missing user id at row 2 (column 'user')")):
        load_interactions(path)


# -- sources that are not interactions files --------------------------------------------------


@fault("a zip that is not MovieLens", "DataError: zip is not a MovieLens release; exit 2")
def test_zip_that_is_not_movielens(tmp_path, monkeypatch, capsys):
    path = tmp_path / "photos.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.txt", "hello")
    err = one_line_error(monkeypatch, capsys, "data", "info", str(path))
    assert "photos.zip: zip is not a MovieLens release" in err


@fault("a .zip that is not a zip archive", "DataError: not a zip archive; exit 2")
def test_damaged_zip(tmp_path, monkeypatch, capsys):
    path = write(tmp_path / "ml-fake.zip", "garbage")
    err = one_line_error(monkeypatch, capsys, "data", "info", str(path))
    assert "ml-fake.zip" in err


@fault("a folder instead of a file", "DataError: folder is not a MovieLens release; exit 2")
def test_folder_instead_of_file(tmp_path, monkeypatch, capsys):
    (tmp_path / "notes.txt").write_text("x")
    err = one_line_error(monkeypatch, capsys, "data", "info", str(tmp_path))
    assert "folder is not a MovieLens release" in err
    with pytest.raises(DataError, match="is a folder; pass the interactions file itself"):
        load_interactions(tmp_path)


@fault("CSV options (--item-col) on a MovieLens zip", "DataError: applies only to CSV / Parquet")
def test_generic_options_on_movielens(monkeypatch, capsys):
    zipped = movielens_zip("ml-100k")
    err = one_line_error(monkeypatch, capsys, "data", "info", str(zipped), "--item-col", "sku")
    assert "--item-col applies only to CSV / Parquet files" in err


@fault("--item-features on the synthetic catalog", "DataError: applies only to CSV / Parquet")
def test_feature_file_on_synthetic():
    with pytest.raises(DataError, match="item_features applies only to CSV / Parquet") as err:
        load_dataset("synthetic:tiny", item_features="items.csv")
    assert err.value.options == ("item_features",)


# -- feature files keyed by other ids ---------------------------------------------------------


@fault("item feature file sharing no id with the ratings", "DataError with examples of both sides")
def test_feature_file_with_no_common_ids(tmp_path, monkeypatch, capsys):
    ratings = write(tmp_path / "r.csv", "user,item\n1,10\n2,11\n")
    items = write(tmp_path / "items.csv", "item,genres\nm10,Drama\nm11,Comedy\n")
    with pytest.raises(DataError) as info:
        load_interactions(ratings, item_features=items)
    assert str(info.value) == (
        f"{items}: none of its 2 item ids appear in the interactions (here 'm10', 'm11', there "
        "'10', '11'); key the feature file by the same ids"
    )
    args = ["data", "info", str(ratings), "--item-features", str(items)]
    assert "none of its 2 item ids" in one_line_error(monkeypatch, capsys, *args)


@fault("item feature file with ids nobody rated", "warning with count and examples; rows left out")
def test_unrated_feature_rows_are_left_out_with_a_warning(tmp_path):
    ratings = write(tmp_path / "r.csv", "user,item\n1,10\n2,11\n")
    items = write(
        tmp_path / "items.csv", "item,year\n10,1990\n11,1991\n12,1992\n13,1993\n14,1994\n15,1995\n"
    )
    with pytest.warns(DataWarning) as caught:
        ds = load_interactions(ratings, item_features=items)
    assert [str(w.message) for w in caught] == [
        f"{items}: 4 item ids have no interactions (e.g. 12, 13, 14, …); left out; "
        "pass keep_unrated=True to keep them"
    ]
    assert caught[0].message.options == ("keep_unrated",)
    assert ds.n_items == 2 and ds.items.frame["year"].tolist() == [1990, 1991]


@fault("--keep-unrated with unrated feature rows", "kept as items with no interactions; warned")
def test_keep_unrated_keeps_cold_items(tmp_path, monkeypatch, capsys):
    ratings = write(tmp_path / "r.csv", "user,item\n1,10\n2,11\n")
    items = write(tmp_path / "items.csv", "item,year\n10,1990\n11,1991\n12,1992\n")
    with pytest.warns(DataWarning, match="1 item ids have no interactions"):
        ds = load_interactions(ratings, item_features=items, keep_unrated=True)
    assert ds.n_items == 3 and ds.interactions[:, ds.item_ids.index(12)].nnz == 0
    args = ["data", "info", str(ratings), "--item-features", str(items), "--keep-unrated", "--json"]
    code, out, _ = cli(monkeypatch, capsys, *args)
    assert code == 0 and '"items": 3' in out


@fault("rated items missing from the item feature file", "warning with count and examples")
def test_rated_items_without_features_are_warned(tmp_path):
    ratings = write(tmp_path / "r.csv", "user,item\n1,10\n2,11\n3,12\n3,13\n")
    items = write(tmp_path / "items.csv", "item,year\n10,1990\n")
    with pytest.warns(DataWarning) as caught:
        ds = load_interactions(ratings, item_features=items)
    assert [str(w.message) for w in caught] == [
        f"{items}: 3 of 4 items in the interactions have no row here (e.g. 11, 12, 13); they get "
        "empty features"
    ]
    assert ds.n_items == 4 and np.isnan(ds.items.frame["year"].iloc[3])


@fault("user feature file with users who have no interactions", "warning; those users left out")
def test_unrated_users_are_left_out(tmp_path):
    ratings = write(tmp_path / "r.csv", "user,item\n1,10\n2,11\n")
    users = write(tmp_path / "users.csv", "user,age\n1,30\n2,40\n9,50\n")
    with pytest.warns(DataWarning, match="1 user ids have no interactions .*9"):
        ds = load_interactions(ratings, user_features=users)
    assert ds.n_users == 2 and ds.users.frame["age"].tolist() == [30, 40]


def test_warnings_reach_the_cli_as_one_line(tmp_path):
    """Through the real console script: a DataWarning is one ``warning:`` line on stderr."""
    ratings = write(tmp_path / "r.csv", "user,item\n1,10\n2,11\n")
    items = write(tmp_path / "items.csv", "item,year\n10,1990\n11,1991\n12,1992\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tastespace",
            "data",
            "info",
            str(ratings),
            "--item-features",
            str(items),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"warning: {items}: 1 item ids have no interactions (e.g. 12); left out; "
        "pass --keep-unrated to keep them"
    ]


# -- more shapes a user brings ----------------------------------------------------------------


@fault("no rating column but an unrecognised 'clicked' column", "warning naming it and rating_col")
def test_unrecognised_weight_column_is_warned(tmp_path):
    path = write(tmp_path / "clicks.csv", "user,item,clicked\n1,10,1\n2,11,0\n")
    with pytest.warns(
        DataWarning,
        match=r"no rating column recognised.*'clicked' unused; name one with rating_col",
    ):
        ds = load_interactions(path)
    assert ds.n_interactions == 2  # documented: without a rating column every row weighs 1.0


@fault("boolean weight column with false rows", "false is weight 0: DataError naming the line")
def test_boolean_weights(tmp_path):
    path = write(tmp_path / "w.csv", "user,item,weight\n1,10,true\n2,11,false\n")
    with pytest.raises(DataError, match=re.escape("rating 0 at line 3 (column 'weight')")):
        load_interactions(path)


@fault("the same column name twice in the header", "DataError naming the column")
def test_repeated_header_column(tmp_path):
    path = write(tmp_path / "h.csv", "user,user,item\n1,2,3\n")
    with pytest.raises(DataError, match="column 'user' appears more than once in the header"):
        load_interactions(path)


@fault("ids beyond the int64 range", "kept as text ids")
def test_huge_integer_ids(tmp_path):
    path = write(tmp_path / "big.csv", "user,item\n99999999999999999999,10\n2,11\n")
    ds = load_interactions(path)
    assert ds.user_ids.raws([0, 1]) == ["2", "99999999999999999999"]


@fault("ids with leading zeros ('007' and '7')", "read as text, so they stay two ids")
def test_leading_zero_ids(tmp_path):
    ds = load_interactions(write(tmp_path / "z.csv", "user,item\n007,10\n7,11\n"))
    assert ds.user_ids.raws([0, 1]) == ["007", "7"]


@fault("Windows CRLF line endings", "read like LF")
def test_crlf_line_endings(tmp_path):
    path = tmp_path / "crlf.csv"
    path.write_bytes(b"user,item,rating\r\n1,10,5\r\n2,11,4\r\n")
    ds = load_interactions(path)
    assert ds.provenance["columns"]["rating"] == "rating" and sorted(ds.interactions.data) == [4, 5]


@fault("empty timestamp cell", "DataError naming file, line and column")
def test_missing_timestamp(tmp_path):
    path = write(tmp_path / "t.csv", "user,item,timestamp\n1,10,100\n2,11,\n")
    with pytest.raises(
        DataError, match=re.escape("missing timestamp at line 3 (column 'timestamp')")
    ):
        load_interactions(path)


@fault("Parquet float rating column with a NaN", "DataError naming the row: missing rating")
def test_parquet_nan_rating(tmp_path):
    path = tmp_path / "r.parquet"
    pq.write_table(pa.table({"user": [1, 2], "item": [5, 6], "rating": [4.0, float("nan")]}), path)
    with pytest.raises(DataError, match=re.escape("missing rating at row 2 (column 'rating')")):
        load_interactions(path)


@fault("Parquet timestamp column of times of day", "DataError: times of day without a date")
def test_parquet_time_of_day_timestamps(tmp_path):
    import datetime

    path = tmp_path / "r.parquet"
    times = [datetime.time(9, 30), datetime.time(10, 0)]
    pq.write_table(pa.table({"user": [1, 2], "item": [5, 6], "timestamp": times}), path)
    with pytest.raises(DataError, match="holds times of day without a date"):
        load_interactions(path)


@fault("Latin-1 byte inside a .csv.gz", "DataError naming the line and an iconv command")
def test_non_utf8_in_gzip(tmp_path):
    import gzip

    path = tmp_path / "r.csv.gz"
    path.write_bytes(gzip.compress(b"user,item\n1,a\n2,Caf\xe9\n"))
    with pytest.raises(DataError, match=r"r\.csv\.gz: byte 0xe9 at line 3 .*iconv"):
        load_interactions(path)


@fault("a separator that cannot work (a quote)", "DataError naming the separator")
def test_impossible_separator(tmp_path):
    path = write(tmp_path / "r.csv", "user,item\n1,2\n")
    with pytest.raises(DataError, match="separator '\"' cannot work"):
        load_interactions(path, sep='"')


@fault("item feature file with a header only", "DataError naming it: no data rows")
def test_header_only_feature_file(tmp_path):
    ratings = write(tmp_path / "r.csv", "user,item\n1,10\n")
    items = write(tmp_path / "items.csv", "item,year\n")
    with pytest.raises(
        DataError, match=r"items\.csv: no data rows after the header; expected one item"
    ):
        load_interactions(ratings, item_features=items)


@fault("item feature file that does not exist", "DataError naming it: no such file")
def test_missing_feature_file(tmp_path):
    ratings = write(tmp_path / "r.csv", "user,item\n1,10\n")
    with pytest.raises(DataError, match=r"items\.csv: no such file"):
        load_interactions(ratings, item_features=tmp_path / "items.csv")


@fault("benchmark --data on ratings <= 0", "one stderr line naming --nonpositive; exit 2")
def test_benchmark_refuses_nonpositive(tmp_path, monkeypatch, capsys):
    path = write(tmp_path / "ratings.csv", RATINGS)
    err = one_line_error(monkeypatch, capsys, "benchmark", "--data", str(path), "--models", "ease")
    assert "line 3" in err and "--nonpositive drop" in err
