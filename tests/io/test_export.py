"""Exports read back with each consumer library must equal ``model.item_vectors()``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tastespace.errors import ConfigError, DataError
from tastespace.io.export import export_vectors, write_word2vec


@pytest.fixture(scope="module")
def model():
    from tastespace.data import load_dataset
    from tastespace.models.neural import NeuralRecommender

    return NeuralRecommender(epochs=2, dim=12, hidden=24).fit(load_dataset("synthetic:tiny"))


@pytest.fixture(scope="module")
def meta(model):
    return model.catalog()


def test_word2vec_loads_in_gensim(model, tmp_path):
    from gensim.models import KeyedVectors

    (path,) = export_vectors(model, "word2vec", tmp_path / "vectors.txt")
    kv = KeyedVectors.load_word2vec_format(str(path), binary=False)
    keys = [str(i) for i in model.item_ids_.ids.tolist()]
    assert kv.index_to_key == keys
    np.testing.assert_array_equal(kv.vectors, model.item_vectors())  # %.9g is exact for float32


def test_projector_tsv_pair(model, meta, tmp_path):
    paths = export_vectors(model, "projector", tmp_path / "projector")
    assert [p.name for p in paths] == ["vectors.tsv", "metadata.tsv"]
    vectors = pd.read_csv(paths[0], sep="\t", header=None).to_numpy(np.float32)
    np.testing.assert_array_equal(vectors, model.item_vectors())
    table = pd.read_csv(paths[1], sep="\t", keep_default_na=False)
    assert list(table.columns) == ["id", "title", "genres", "year"]
    assert table["id"].tolist() == meta.raw_ids()
    assert table["title"].tolist() == meta.titles
    assert table["genres"].tolist() == ["|".join(g) for g in meta.genre_lists()]
    assert table["year"].tolist() == meta.year_list()


def test_parquet_has_typed_columns(model, meta, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (path,) = export_vectors(model, "parquet", tmp_path / "vectors.parquet")
    schema = pq.read_schema(path)
    assert schema.field("vector").type == pa.list_(pa.float32())
    assert schema.field("genres").type == pa.list_(pa.string())
    assert schema.field("id").type == pa.int64()
    frame = pd.read_parquet(path)
    assert frame["id"].tolist() == meta.raw_ids()
    assert frame["title"].tolist() == meta.titles
    assert [list(g) for g in frame["genres"]] == meta.genre_lists()
    np.testing.assert_array_equal(np.stack(frame["vector"].to_numpy()), model.item_vectors())


def test_npy_with_ids_sidecar(model, meta, tmp_path):
    paths = export_vectors(model, "npy", tmp_path / "npy")
    vectors = np.load(paths[0], allow_pickle=False)
    assert vectors.dtype == np.float32
    np.testing.assert_array_equal(vectors, model.item_vectors())
    assert json.loads(paths[1].read_text()) == meta.raw_ids()


def test_unknown_format_and_bad_targets(model, tmp_path):
    with pytest.raises(ConfigError, match="unknown export format 'csv'"):
        export_vectors(model, "csv", tmp_path / "x")
    (tmp_path / "file").write_text("")
    with pytest.raises(DataError, match="give a folder"):
        export_vectors(model, "npy", tmp_path / "file")
    with pytest.raises(DataError, match="give a file name"):
        export_vectors(model, "parquet", tmp_path)


def test_word2vec_refuses_keys_with_spaces(tmp_path):
    with pytest.raises(DataError, match="whitespace"):
        write_word2vec(tmp_path / "v.txt", ["a", "b c"], np.zeros((2, 3), np.float32))
    assert not (tmp_path / "v.txt").exists()
