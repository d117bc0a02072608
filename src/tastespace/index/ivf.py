"""IVF top-k in a fixed memory budget (kind ``ivfpq``): for catalogs too big to keep raw.

The vectors are rotated onto their principal directions (of the uncentred second moment, so
inner products are kept, not shifted) and only the leading ``dims`` directions holding 99 % of
the energy are kept; the residuals from ``nlist`` k-means cells are stored as ``bits``-bit
scalar-quantiser codes (faiss ``IndexIVFScalarQuantizer`` behind a ``LinearTransform``) and
``nprobe`` cells are scanned per query. ``bits`` is the most (8, 6, 4) that fits
``memory_share`` of the raw float32 vectors, counting everything the index holds: codes, the
8-byte id faiss stores per vector, the cell centroids and the rotation (4 bits, over the
budget and reported, when nothing fits). ``nprobe`` is the smallest whose recall@10 against
exact search, measured at build on a seeded sample of items used as queries (each excluding
itself), reaches ``target_recall``.

Why not product-quantiser codes: on 50k low-rank 64-d vectors (``bench/topk.py``), 16-byte PQ
codes reached recall@10 0.55 at nprobe 32, PQ on the principal directions 0.67 at nprobe 64
and its training took minutes, while 8-bit scalar codes of the 16 leading directions reached
0.95 at nprobe 64 of 256 cells, trained in a second, in under 1/10 of the raw memory.
"""

from __future__ import annotations

import functools
from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from tastespace.errors import BundleError, ConfigError
from tastespace.index.approximate import FaissIndex, import_faiss
from tastespace.index.base import Metric
from tastespace.index.blocks import dot_scores
from tastespace.index.exact import ExactIndex
from tastespace.index.recall import measure_recall

ENERGY = 0.99
"""Share of the vectors' energy (sum of squared coordinates) the kept directions must hold."""
TUNE_QUERIES = 256
TUNE_K = 10
ID_BYTES = 8
BITS = (8, 6, 4)


class IVFPQIndex(FaissIndex):
    """Inverted file over compressed principal-direction codes; see the module docstring."""

    kind = "ivfpq"

    @classmethod
    def defaults(cls, n_items: int, dim: int) -> dict[str, Any]:
        nlist = int(max(1, min(n_items // 39, round(np.sqrt(n_items)))))
        return {
            "nlist": nlist,
            "dims": None,
            "bits": None,
            "nprobe": None,
            "memory_share": 0.125,
            "target_recall": 0.93,
            "seed": 0,
        }

    @classmethod
    def build(cls, vectors: np.ndarray, metric: Metric = "dot", **params: Any) -> Self:
        if params.get("bits") not in (None, *BITS):
            raise ConfigError(f"ivfpq bits must be one of {', '.join(map(str, BITS))}")
        index = super().build(vectors, metric, **params)
        if index.params["nprobe"] is None:
            index.params["nprobe"] = index._tune_nprobe(vectors)
        return index

    @classmethod
    def _engine(cls, faiss: Any, vectors: np.ndarray, settings: dict[str, Any]) -> Any:
        """The trained, filled faiss index; fills ``settings["dims"]`` / ``["bits"]`` in."""
        n_items, dim = vectors.shape
        basis, energy = principal_directions(vectors)
        if settings["dims"] is None or settings["bits"] is None:
            dims, bits = code_layout(energy, n_items, settings["nlist"], settings["memory_share"])
            settings["dims"] = settings["dims"] or dims
            settings["bits"] = settings["bits"] or bits
        dims, nlist = int(np.clip(settings["dims"], 1, dim)), min(settings["nlist"], n_items)
        settings["dims"], settings["nlist"] = dims, nlist
        rotation = faiss.LinearTransform(dim, dims, False)
        faiss.copy_array_to_vector(np.ascontiguousarray(basis[:, :dims].T).ravel(), rotation.A)
        rotation.is_trained = True
        quantizer = faiss.IndexFlatIP(dims)
        kind = getattr(faiss.ScalarQuantizer, f"QT_{settings['bits']}bit")
        ivf = faiss.IndexIVFScalarQuantizer(
            quantizer, dims, nlist, kind, faiss.METRIC_INNER_PRODUCT, True
        )
        ivf.cp.seed = settings["seed"]
        engine = faiss.IndexPreTransform(rotation, ivf)
        engine.train(vectors)
        engine.add(vectors)
        return engine

    def _parameters(self, faiss: Any, fetch: int) -> Any:
        return faiss.SearchParametersIVF(
            nprobe=int(min(self.params["nprobe"], self.params["nlist"]))
        )

    def _prepare(self, queries: np.ndarray) -> np.ndarray:
        """The queries rotated onto the kept directions in fixed blocks: faiss's own rotation
        is one BLAS product of the whole batch, whose rows' bits depend on its size (0 of 40
        queries alone matched their batched rows), and near-ties then probe other cells."""
        return dot_scores(queries, self._rotation)

    @functools.cached_property
    def _rotation(self) -> np.ndarray:
        """``(dims, dim)``: the rotation the engine applies to what it adds, read out of the
        engine once (a search would otherwise copy it on every call)."""
        faiss = import_faiss()
        transform = faiss.downcast_VectorTransform(self.engine.chain.at(0))
        return faiss.vector_to_array(transform.A).reshape(transform.d_out, transform.d_in)

    def _searched(self) -> Any:
        """The inverted file behind the rotation (:meth:`_prepare` rotates)."""
        return import_faiss().downcast_index(self.engine.index)

    def _tune_nprobe(self, vectors: np.ndarray) -> int:
        """Smallest nprobe whose recall@10 on sampled items (each excluding itself) reaches
        ``target_recall``; all cells when none does (recall grows with nprobe, so bisect)."""
        rng = np.random.default_rng(self.params["seed"])
        rows = np.sort(rng.choice(self.n_items, min(TUNE_QUERIES, self.n_items), replace=False))
        queries = vectors[rows]
        exclude = sp.csr_matrix(
            (np.ones(len(rows), np.float32), rows, np.arange(len(rows) + 1)),
            shape=(len(rows), self.n_items),
        )
        exact = ExactIndex.build(vectors, self.metric)
        k = min(TUNE_K, max(1, self.n_items - 1))

        def reaches(nprobe: int) -> bool:
            self.params["nprobe"] = nprobe
            recall = measure_recall(self, exact, queries, k, exclude)
            return not recall < self.params["target_recall"]

        low, high = 1, self.params["nlist"]
        if not reaches(high):
            return high
        while low < high:
            middle = (low + high) // 2
            if reaches(middle):
                high = middle
            else:
                low = middle + 1
        return high

    @classmethod
    def _from_payload(cls, header: dict[str, Any], payload: np.ndarray) -> Self:
        if header.get("params", {}).get("dims") is None:
            raise BundleError(
                "this ivfpq index was written by an older tastespace (product-quantiser "
                "codes); rebuild it with build_index('ivfpq')",
                options=("index",),
            )
        return super()._from_payload(header, payload)


def principal_directions(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal ``(dim, dim)`` columns of ``vectors.T @ vectors``, strongest first, and the
    energy (sum of squared coordinates) of the vectors along each."""
    gram = vectors.T.astype(np.float64) @ vectors.astype(np.float64)
    energy, basis = np.linalg.eigh(gram)
    order = np.argsort(-energy, kind="stable")
    return np.ascontiguousarray(basis[:, order], np.float32), np.clip(energy[order], 0, None)


def code_layout(
    energy: np.ndarray, n_items: int, nlist: int, memory_share: float
) -> tuple[int, int]:
    """``(dims, bits)``: the leading directions holding ``ENERGY`` of the energy, at the most
    bits per coordinate that fit the budget. When none fits (few dimensions: the 8-byte ids
    alone may exceed it), 4 bits on those directions: quality is kept, the memory reported."""
    dim = len(energy)
    share = np.cumsum(energy) / max(energy.sum(), np.finfo(np.float64).tiny)
    wanted = int(min(dim, np.searchsorted(share, ENERGY) + 1))
    budget = memory_share * 4 * dim * n_items
    for bits in BITS:
        codes = -(-wanted * bits // 8)
        if n_items * (codes + ID_BYTES) + 4 * wanted * (nlist + dim) <= budget:
            return wanted, bits
    return wanted, BITS[-1]
