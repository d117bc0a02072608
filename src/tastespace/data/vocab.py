"""Vocabulary: raw ids ↔ dense indices, in both directions, keeping the raw ids' type.

Raw ids are whatever the source file holds (ints for MovieLens, strings for most CSVs). Models only
ever see dense indices ``0..n-1``; the vocabulary is how results get back to the user's own ids.

Example
-------
>>> v = Vocabulary([10, 20, 30])
>>> v.index(20), v.raw(2)
(1, 30)
>>> v.indices([30, 99], missing="negative").tolist()
[2, -1]
>>> v.raws([0, 2])
[10, 30]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from tastespace.errors import DataError, UnknownIdError

MissingPolicy = Literal["error", "negative"]


class Vocabulary:
    """An ordered, duplicate-free list of raw ids with O(1) lookup both ways."""

    def __init__(self, ids: Iterable[Any], name: str = "id") -> None:
        # A list goes to pandas as it is: through a fixed-width numpy unicode array, trailing
        # NUL characters would vanish and two ids could collapse into one.
        values = ids if isinstance(ids, np.ndarray) else list(ids)
        if isinstance(values, np.ndarray) and values.dtype.kind == "U":
            values = values.astype(object)
        self._index = pd.Index(values)
        if not self._index.is_unique:
            dupes = self._index[self._index.duplicated()].unique()[:5].tolist()
            raise DataError(f"{name} vocabulary has duplicate ids, e.g. {dupes}")
        self.name = name

    @property
    def ids(self) -> np.ndarray:
        """Raw ids in dense-index order (read-only view)."""
        values = self._index.to_numpy()
        values.flags.writeable = False
        return values

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, raw: object) -> bool:
        try:
            return raw in self._index
        except TypeError:
            return False

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self._index.equals(other._index)

    def __repr__(self) -> str:
        return f"Vocabulary({self.name!r}, n={len(self)})"

    def index(self, raw: object) -> int:
        """Dense index of one raw id; :class:`UnknownIdError` (a ``KeyError``) if unknown."""
        try:
            position = self._index.get_loc(raw)
        except (KeyError, TypeError):
            position = self._coerced_loc(raw)
        if not isinstance(position, int | np.integer):
            raise UnknownIdError(f"unknown {self.name} {raw!r}")
        return int(position)

    def _coerced_loc(self, raw: object) -> int:
        """Retry a lookup across int/str (ids typed on a command line arrive as strings)."""
        candidates: list[object] = []
        if isinstance(raw, str) and self._index.dtype.kind in "iu":
            try:
                candidates.append(int(raw))
            except ValueError:
                pass
        elif isinstance(raw, int | np.integer) and self._index.dtype.kind == "O":
            candidates.append(str(raw))
        for candidate in candidates:
            if candidate in self._index:
                return int(self._index.get_loc(candidate))
        raise UnknownIdError(f"unknown {self.name} {raw!r}")

    def indices(
        self, raws: Sequence[Any] | np.ndarray, missing: MissingPolicy = "error"
    ) -> np.ndarray:
        """Dense indices (int64) of many raw ids.

        ``missing="error"`` raises naming the first unknown id; ``"negative"`` marks them -1.
        """
        positions = self._index.get_indexer(
            pd.Index(
                np.asarray(
                    raws, dtype=self._index.dtype if self._index.dtype.kind != "O" else object
                )
                if len(raws)
                else []
            )
        )
        positions = np.asarray(positions, dtype=np.int64)
        unknown = positions < 0
        if unknown.any():
            for k in np.flatnonzero(unknown):
                try:
                    positions[k] = self._coerced_loc(raws[k])
                except UnknownIdError:
                    if missing == "error":
                        raise
        return positions

    def raw(self, index: int) -> Any:
        """Raw id at one dense index, as a plain Python value."""
        if not 0 <= index < len(self):
            raise IndexError(f"{self.name} index {index} out of range 0..{len(self) - 1}")
        value = self._index[index]
        return value.item() if isinstance(value, np.generic) else value

    def raws(self, indices: np.ndarray | Sequence[int]) -> list[Any]:
        """Raw ids of many dense indices, as plain Python values (JSON-ready).

        Every index must lie in ``0..n-1``: a negative one is refused, never counted from the
        end, because ``-1`` is the padding ``recommend`` and ``similar_items`` put in short
        rows; drop padding first (``ids[ids >= 0]``).
        """
        positions = np.asarray(indices, dtype=np.int64).ravel()
        outside = (positions < 0) | (positions >= len(self))
        if outside.any():
            bad = int(positions[np.flatnonzero(outside)[0]])
            hint = " (-1 is padding: drop it before mapping)" if bad == -1 else ""
            raise IndexError(f"{self.name} index {bad} out of range 0..{len(self) - 1}{hint}")
        return self._index.take(positions).tolist()

    def to_json(self) -> dict[str, Any]:
        """JSON form for bundle manifests; raw ids keep their JSON type (int or str)."""
        return {"name": self.name, "ids": self._index.tolist()}

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> Vocabulary:
        """Inverse of :meth:`to_json`."""
        return cls(
            np.asarray(payload["ids"], dtype=object if _has_str(payload["ids"]) else None),
            name=payload.get("name", "id"),
        )


def _has_str(values: list[Any]) -> bool:
    return any(isinstance(v, str) for v in values[:1000])
