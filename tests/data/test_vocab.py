"""Vocabulary: raw ids ↔ dense indices, checked as properties over generated id lists."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tastespace.data.vocab import Vocabulary
from tastespace.errors import DataError, UnknownIdError

int_ids = st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=60, unique=True)
str_ids = st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=60, unique=True)
any_ids = int_ids | str_ids


@given(any_ids)
def test_index_and_raw_are_inverse(ids):
    vocab = Vocabulary(ids)
    positions = vocab.indices(ids)
    assert positions.tolist() == list(range(len(ids)))
    assert vocab.raws(positions) == ids
    assert [vocab.raw(k) for k in range(len(ids))] == ids


@given(any_ids)
def test_json_round_trip_keeps_ids_and_their_type(ids):
    vocab = Vocabulary(ids, name="item")
    again = Vocabulary.from_json(json.loads(json.dumps(vocab.to_json())))
    assert again == vocab and again.name == "item"
    assert [type(x) for x in again.raws(range(len(ids)))] == [type(x) for x in ids]


@given(int_ids, st.integers(-(2**63), 2**63 - 1))
def test_raws_refuses_every_index_outside_the_range(ids, index):
    vocab = Vocabulary(ids)
    if 0 <= index < len(ids):
        assert vocab.raws([index]) == [ids[index]]
    else:
        with pytest.raises(IndexError, match="out of range"):
            vocab.raws([0, index])


@pytest.mark.fault("vocabulary", "padding -1 mapped to a raw id", "IndexError")
def test_padding_minus_one_is_not_the_last_id():
    vocab = Vocabulary([10, 20, 30], name="item")
    with pytest.raises(IndexError, match=r"item index -1 out of range 0\.\.2 \(-1 is padding"):
        vocab.raws(np.array([0, -1]))
    with pytest.raises(IndexError):
        vocab.raw(-1)


@given(int_ids, st.integers(-(2**41), 2**41))
def test_unknown_ids_follow_the_missing_policy(ids, query):
    vocab = Vocabulary(ids)
    expected = ids.index(query) if query in ids else -1
    assert vocab.indices([query], missing="negative").tolist() == [expected]
    if expected < 0:
        with pytest.raises(UnknownIdError, match=f"unknown id {query}"):
            vocab.indices([query])
        with pytest.raises(KeyError):
            vocab.index(query)


@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=40, unique=True))
def test_ids_typed_as_strings_find_int_ids(ids):
    vocab = Vocabulary(ids)
    assert vocab.indices([str(x) for x in ids]).tolist() == list(range(len(ids)))
    assert all(vocab.index(str(x)) == k for k, x in enumerate(ids))


@pytest.mark.fault("vocabulary", "duplicate raw ids", "DataError")
def test_duplicates_are_refused_naming_them():
    with pytest.raises(DataError, match=r"user vocabulary has duplicate ids, e.g. \[2\]"):
        Vocabulary([1, 2, 2, 3], name="user")
