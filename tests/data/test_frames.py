"""DataFrames in: pandas and polars tables load like files, with the same checks and reports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tastespace.data import load_dataset
from tastespace.errors import DataError

polars = pytest.importorskip("polars", reason="polars is not installed")

RATINGS = pd.DataFrame(
    {
        "customer": ["a", "a", "b", "b", "c"],
        "sku": [10, 20, 10, 30, 20],
        "stars": [5.0, 3.0, 4.0, 1.0, 2.0],
        "when": [100, 200, 300, 400, 500],
    }
)
ITEMS = pd.DataFrame(
    {
        "sku": [10, 20, 30],
        "title": ["Alpha (1990)", "Beta (1991)", "Gamma (1992)"],
        "genres": ["Drama|Comedy", "Drama|War", "Horror"],
        "year": [1990, 1991, 1992],
    }
)
COLUMNS = dict(user_col="customer", item_col="sku", rating_col="stars", timestamp_col="when")


def as_csv(tmp_path: Path) -> tuple[Path, Path]:
    ratings, items = tmp_path / "ratings.csv", tmp_path / "items.csv"
    RATINGS.to_csv(ratings, index=False)
    ITEMS.to_csv(items, index=False)
    return ratings, items


@pytest.mark.parametrize("kind", ["pandas", "polars"])
def test_frames_load_exactly_like_the_same_files(tmp_path, kind):
    ratings, items = as_csv(tmp_path)
    from_files = load_dataset(ratings, item_features=items, **COLUMNS)
    convert = polars.from_pandas if kind == "polars" else (lambda f: f)
    ds = load_dataset(convert(RATINGS), items=convert(ITEMS), **COLUMNS)
    assert ds.item_ids == from_files.item_ids and ds.user_ids == from_files.user_ids
    assert (ds.interactions != from_files.interactions).nnz == 0
    np.testing.assert_array_equal(ds.timestamps, from_files.timestamps)
    assert ds.items.bags["genres"].vocab == from_files.items.bags["genres"].vocab
    assert ds.items.frame["title"].tolist() == from_files.items.frame["title"].tolist()
    assert ds.item_ids.raw(0) == 10 and isinstance(ds.item_ids.raw(0), int)  # ids keep type
    assert ds.provenance["source"] == f"interactions ({kind} DataFrame)"
    assert ds.provenance["features"]["items"] == f"items ({kind} DataFrame)"
    assert ds.provenance["columns"]["rating"] == "stars" and ds.name == "dataframe"


def test_min_rating_and_duplicates_report_as_for_files():
    doubled = pd.concat([RATINGS, RATINGS.iloc[:1]], ignore_index=True)
    ds = load_dataset(doubled, min_rating=4, duplicates="max", **COLUMNS)
    assert ds.n_interactions == 2 and ds.provenance["rows_read"] == 6
    assert ds.provenance["filtered"]  # the binarised-away rows are counted


def test_mixed_id_types_become_text():
    frame = pd.DataFrame({"user": [1, "u2"], "item": [7, 8]})
    ds = load_dataset(frame)
    assert ds.user_ids.raws([0, 1]) == ["1", "u2"]


@pytest.mark.fault("frames", "missing user id", "DataError naming column and index label")
def test_missing_id_names_the_row_by_its_index():
    frame = RATINGS.set_axis(["r1", "r2", "r3", "r4", "r5"]).copy()
    frame.loc["r3", "customer"] = None
    with pytest.raises(
        DataError, match=r"interactions \(pandas DataFrame\): missing user id at index 'r3'"
    ):
        load_dataset(frame, **COLUMNS)


@pytest.mark.fault("frames", "non-numeric rating", "DataError naming the value and row")
def test_bad_rating_names_the_row_in_polars():
    frame = polars.DataFrame({"user": ["a", "b"], "item": [1, 2], "rating": ["4", "lots"]})
    with pytest.raises(DataError, match=r"polars DataFrame\): non-numeric rating 'lots' at row 1"):
        load_dataset(frame)


@pytest.mark.fault("frames", "unknown column", "DataError listing the columns")
def test_unknown_column_lists_what_is_there():
    with pytest.raises(DataError, match=r"no column 'rating_x'.*'customer', 'sku'"):
        load_dataset(RATINGS, user_col="customer", item_col="sku", rating_col="rating_x")


@pytest.mark.fault("frames", "duplicate feature ids", "DataError naming the id and rows")
def test_feature_frame_with_repeated_ids():
    items = pd.concat([ITEMS, ITEMS.iloc[:1]], ignore_index=True)
    with pytest.raises(DataError, match=r"items \(pandas DataFrame\): item id 10 appears more"):
        load_dataset(RATINGS, items=items, **COLUMNS)


@pytest.mark.fault("frames", "lazy frame or empty frame", "DataError saying what to pass")
def test_lazy_and_empty_frames():
    with pytest.raises(DataError, match=r"call \.collect\(\)"):
        load_dataset(polars.from_pandas(RATINGS).lazy(), **COLUMNS)
    with pytest.raises(DataError, match="no data rows"):
        load_dataset(RATINGS.iloc[:0], **COLUMNS)
    with pytest.raises(DataError, match="sep applies to text files"):
        load_dataset(RATINGS, sep=",", **COLUMNS)
    with pytest.raises(DataError, match="items= or item_features=, not both"):
        load_dataset(RATINGS, items=ITEMS, item_features=ITEMS, **COLUMNS)
