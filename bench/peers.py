"""tastespace against the field's libraries, each run through its OWN API on the identical split.

Install the LightFM peer first (bench-only; the original ``lightfm`` no longer builds)::

    pip install lightfm-next        # into the same virtualenv; not a tastespace dependency

Protocol (Liang et al. 2018, the Mult-VAE protocol): ratings ≥ 4 are positives; per seed, ~10 %
of users are held out for validation and ~10 % for test (each keeps 80 % of their items as
fold-in history, 20 % as targets); every row trains on the remaining users of that seed's split
and is scored on the test users' targets from their fold-in histories. Grids (EASE's l2, here
and in tastespace) are chosen on the validation users' Recall@20. The split, the metrics and the
seen-item filter are shared through :func:`tastespace.evaluate.leaderboard.run_leaderboard`;
nothing else of tastespace touches a peer.

Two kinds of rows besides tastespace's own. **Peers** (``source = peer``) are other libraries
as their users call them: the competitors that tastespace's best model is judged against.
**Engine controls** (``source = engine``) run the engine under a tastespace wrapper directly with
the same options; "wrapper vs own engine" compares each pair, and they are not competitors (a
wrapper and its engine tie by design).

* ``implicit-als`` / ``implicit-bpr`` (peers): ``implicit`` directly with implicit's own
  defaults. ALS folds unseen users in with implicit's own ``recommend(...,
  recalculate_user=True)``. implicit's BPR has no fold-in (``recalculate_user`` raises), so the
  peer does what a user would have to write: a ridge least-squares fit of the binary history on
  the fixed item factors (the BPR bias column included, ridge = the model's regularization).
* ``implicit-als-same`` / ``implicit-bpr-same`` (engine controls): the same, with tastespace's
  ``als`` / ``bpr`` default options (for BPR also its fold-in ridge, scaled by the Gram's mean
  diagonal, so the pair differs only in the wrapping).
* ``lightfm-warp``: ``LightFM(loss="warp")`` with users described by their (row-normalised)
  watched-item bag as user features and no per-user ID, LightFM's own way to serve users it
  never trained on; scores from ``get_user_representations`` · ``get_item_representations``.
* ``gensim-w2v``: ``gensim.models.Word2Vec`` as an item2vec user would call it (Barkan &
  Koenigstein 2016: skip-gram, the whole history as the context window; every other option at
  gensim's default: 100 dims, ``min_count=5``, negative 5, ``ns_exponent=0.75``,
  ``sample=1e-3``, 5 epochs), time-ordered histories as sentences, recommendations from
  ``wv.most_similar(positive=history)`` (cosine to the mean of the history's unit vectors).
  Two defaults matter a lot (validation Recall@20, seed 0): gensim's window of 5 instead of the
  whole history gives 0.07 / 0.10 on ml-100k / ml-latest-small instead of 0.29 / 0.21
  (MovieLens timestamps come in rating sessions, so time order carries little signal), and
  ``min_count=1`` instead of 5 gives 0.24 / 0.02 (barely trained rare-item vectors win
  cosine ties).
* ``gensim-w2v-same`` (engine control): the same, but with tastespace item2vec's default options
  (dim, window over the whole history, negative, ns_exponent, sample, epochs, lr). tastespace
  also centres the vectors and reshuffles each history every epoch, which gensim cannot do.
* ``ease-numpy``: the textbook closed form (Steck 2019) in ten lines of numpy on the full
  catalog, l2 from the same validation grid as tastespace's EASE.

Then: the table (tastespace rows bold), whether tastespace's best beats every peer on Recall@20
and NDCG@100, and "wrapper vs own engine" ratios (tastespace ÷ engine control or, for EASE, the
numpy peer; mean over seeds; the target is ≥ 0.98, i.e. within 2 %).

Usage::

    python bench/peers.py                                   # both datasets, 3 seeds (~20 min)
    python bench/peers.py --data ml-100k --seeds 1 --skip neural
    python bench/peers.py --json bench-peers.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from leaderboard import load, machine, markdown_table, summary_lines  # noqa: E402
from tastespace.evaluate.leaderboard import DEFAULT_GRIDS, Contender  # noqa: E402

#: (tastespace row, peer row) pairs that run the same engine with the same options.
WRAPPER_PAIRS = (
    ("als", "implicit-als-same"),
    ("bpr", "implicit-bpr-same"),
    ("item2vec", "gensim-w2v-same"),
    ("ease", "ease-numpy"),
)


# -- shared helpers (numpy only) ------------------------------------------------------------------
def top_k(scores: np.ndarray, seen: sp.csr_matrix | None, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` per row with seen items removed: argpartition, then sort the k."""
    scores = np.array(scores, dtype=np.float32)
    if seen is not None:
        rows = np.repeat(np.arange(seen.shape[0]), np.diff(seen.indptr))
        scores[rows, seen.indices] = -np.inf
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    ids = np.take_along_axis(part, order, axis=1)
    return ids, np.take_along_axis(scores, ids, axis=1)


def binary(matrix: sp.csr_matrix) -> sp.csr_matrix:
    out = (matrix > 0).astype(np.float32).tocsr()
    out.sort_indices()
    return out


def single_threaded_blas() -> Any:
    """implicit runs its own threads and warns that a threaded BLAS underneath oversubscribes."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def stable_hash(text: str) -> int:
    """gensim seeds each vector with ``hashfxn(word + seed)``; Python's ``hash`` of a str changes
    per process (PYTHONHASHSEED), so runs would not repeat."""
    return zlib.crc32(text.encode())


def tastespace_defaults(kind: str) -> dict[str, Any]:
    """Default options of a tastespace model, read from its config (so the peer follows them)."""
    import dataclasses

    from tastespace.models.registry import model_class

    return dataclasses.asdict(model_class(kind).Config())


# -- implicit -------------------------------------------------------------------------------------
class ImplicitALS:
    """implicit's ALS (its defaults unless options are given); unseen users via its own
    ``recalculate_user=True``."""

    def __init__(self, seed: int, **options: Any) -> None:
        from implicit.als import AlternatingLeastSquares

        self.model = AlternatingLeastSquares(**options, random_state=seed)

    def fit(self, train: Any, validation: Any = None) -> ImplicitALS:
        with single_threaded_blas():  # what implicit's own start-up warning asks for
            self.model.fit(binary(train.interactions), show_progress=False)
        return self

    def recommend(self, histories: sp.csr_matrix, k: int, exclude_seen: bool = True):
        history = binary(histories)
        with single_threaded_blas():
            ids, scores = self.model.recommend(
                np.arange(history.shape[0]),
                history,
                N=k,
                filter_already_liked_items=exclude_seen,
                recalculate_user=True,
            )
        return np.asarray(ids), np.asarray(scores)


class ImplicitBPR:
    """implicit's BPR (its defaults unless options are given); fold-in = ridge least squares on
    the fixed item factors (see the module docstring)."""

    def __init__(self, seed: int, fold_in_l2: float | None = None, **options: Any) -> None:
        from implicit.bpr import BayesianPersonalizedRanking

        self.model = BayesianPersonalizedRanking(**options, random_state=seed)
        self.regularization = float(self.model.regularization)
        self.fold_in_l2 = fold_in_l2

    def fit(self, train: Any, validation: Any = None) -> ImplicitBPR:
        with single_threaded_blas():
            self.model.fit(binary(train.interactions), show_progress=False)
        items = np.asarray(self.model.item_factors, dtype=np.float64)  # bias = last column
        gram = items.T @ items
        ridge = (  # absolute, as a user would write it; relative, as tastespace scales it
            self.regularization
            if self.fold_in_l2 is None
            else self.fold_in_l2 * np.trace(gram) / len(gram)
        )
        gram += ridge * np.eye(items.shape[1])
        self.items = items
        self.projection = np.linalg.solve(gram, items.T)  # (d, n_items)
        return self

    def recommend(self, histories: sp.csr_matrix, k: int, exclude_seen: bool = True):
        history = binary(histories)
        users = (history @ self.projection.T).astype(np.float32)  # (n, d)
        scores = users @ self.items.T.astype(np.float32)
        return top_k(scores, history if exclude_seen else None, k)


# -- LightFM --------------------------------------------------------------------------------------
class LightFMWarp:
    """LightFM WARP with users = their watched-item bag (user features), no per-user ID."""

    def __init__(
        self,
        seed: int,
        no_components: int = 64,
        epochs: int = 30,
        learning_rate: float = 0.05,
        max_sampled: int = 10,
        num_threads: int = 2,
    ) -> None:
        from lightfm import LightFM

        self.model = LightFM(
            no_components=no_components,
            loss="warp",
            learning_rate=learning_rate,
            max_sampled=max_sampled,
            random_state=seed,
        )
        self.epochs = epochs
        self.num_threads = num_threads

    @staticmethod
    def _features(history: sp.csr_matrix) -> sp.csr_matrix:
        counts = np.asarray(history.sum(axis=1)).ravel()
        return sp.diags(1.0 / np.maximum(counts, 1.0)).astype(np.float32) @ history

    def fit(self, train: Any, validation: Any = None) -> LightFMWarp:
        x = binary(train.interactions)
        self.model.fit(
            x.tocoo(),
            user_features=self._features(x),
            epochs=self.epochs,
            num_threads=self.num_threads,
        )
        return self

    def recommend(self, histories: sp.csr_matrix, k: int, exclude_seen: bool = True):
        history = binary(histories)
        _, users = self.model.get_user_representations(self._features(history))
        biases, items = self.model.get_item_representations()
        scores = users @ items.T + biases[None, :]
        return top_k(scores, history if exclude_seen else None, k)


# -- gensim ---------------------------------------------------------------------------------------
class GensimWord2Vec:
    """gensim Word2Vec on time-ordered histories; ``wv.most_similar`` recommends."""

    def __init__(self, seed: int, **options: Any) -> None:
        self.options = {"sg": 1, **options, "seed": seed, "hashfxn": stable_hash}

    def fit(self, train: Any, validation: Any = None) -> GensimWord2Vec:
        from gensim.models import Word2Vec

        sentences = [[str(i) for i in train.history(u)] for u in range(train.n_users)]
        sentences = [s for s in sentences if s]
        options = dict(self.options)
        if options.get("window") == "whole":
            options["window"] = max(len(s) for s in sentences)
            options["shrink_windows"] = False
        self.wv = Word2Vec(sentences, **options).wv
        self.n_items = train.n_items
        return self

    def recommend(self, histories: sp.csr_matrix, k: int, exclude_seen: bool = True):
        ids = np.full((histories.shape[0], k), -1, np.int64)
        scores = np.full((histories.shape[0], k), -np.inf, np.float32)
        for r in range(histories.shape[0]):
            keys = [str(i) for i in histories[r].indices if str(i) in self.wv.key_to_index]
            if not keys:
                continue
            found = self.wv.most_similar(positive=keys, topn=k)  # excludes the history itself
            ids[r, : len(found)] = [int(key) for key, _ in found]
            scores[r, : len(found)] = [score for _, score in found]
        return ids, scores


def gensim_same_as_tastespace() -> dict[str, Any]:
    """gensim options equal to tastespace item2vec's defaults (window 0 = whole history,
    workers 0 = every core); its 50 epochs are what the default pair budget gives MovieLens."""
    from tastespace.models.item2vec import available_cores

    cfg = tastespace_defaults("item2vec")
    return {
        "vector_size": cfg["dim"],
        "window": "whole" if not cfg["window"] else cfg["window"],
        "negative": cfg["negative"],
        "ns_exponent": cfg["ns_exponent"],
        "sample": cfg["sample"],
        "epochs": cfg["epochs"],
        "alpha": cfg["lr"],
        "min_alpha": cfg["min_lr"],
        "min_count": cfg["min_count"],
        "workers": cfg["workers"] or available_cores(),
    }


# -- EASE -----------------------------------------------------------------------------------------
class NumpyEASE:
    """Steck (2019), the paper's listing: B = I − P·diag(1/diag(P)), P = (XᵀX + λI)⁻¹."""

    def __init__(self, seed: int, l2: float) -> None:
        self.l2 = l2

    def fit(self, train: Any, validation: Any = None) -> NumpyEASE:
        x = binary(train.interactions)
        g = (x.T @ x).toarray().astype(np.float64)
        g[np.diag_indices(g.shape[0])] += self.l2
        p = np.linalg.inv(g)
        self.b = (p / -np.diag(p)).astype(np.float32)
        self.b[np.diag_indices(g.shape[0])] = 0.0
        return self

    def recommend(self, histories: sp.csr_matrix, k: int, exclude_seen: bool = True):
        history = binary(histories)
        return top_k(history @ self.b, history if exclude_seen else None, k)


# -- the run --------------------------------------------------------------------------------------
def peer_contenders(skip: set[str]) -> list[Contender]:
    """Every peer whose library imports; missing ones are reported and skipped."""
    out = []

    def add(
        name: str, build: Any, grid: dict | None = None, needs: str = "", source: str = "peer"
    ) -> None:
        if name in skip:
            return
        if needs:
            try:
                __import__(needs)
            except ImportError as err:
                print(f"skipping {name}: {err} (see the install line at the top)", flush=True)
                return
        out.append(Contender(name, build, grid=grid or {}, source=source))

    def add_implicit(name: str, peer: type, kind: str, keys: tuple[str, ...]) -> None:
        """implicit with its own defaults, and again with tastespace's ``kind`` options."""
        try:
            same = {k: v for k, v in tastespace_defaults(kind).items() if k in keys}
        except ImportError:
            print(f"skipping {name}: tastespace {kind} does not import", flush=True)
            return
        add(name, lambda p: peer(p["seed"]), needs="implicit")
        add(f"{name}-same", lambda p: peer(p["seed"], **same), needs="implicit", source="engine")

    add_implicit(
        "implicit-als",
        ImplicitALS,
        "als",
        ("factors", "regularization", "alpha", "iterations", "num_threads"),
    )
    add_implicit(
        "implicit-bpr",
        ImplicitBPR,
        "bpr",
        ("factors", "learning_rate", "regularization", "iterations", "num_threads", "fold_in_l2"),
    )
    add("lightfm-warp", lambda p: LightFMWarp(p["seed"]), needs="lightfm")
    add("gensim-w2v", lambda p: GensimWord2Vec(p["seed"], window="whole"), needs="gensim")
    try:
        same = gensim_same_as_tastespace()
        add(
            "gensim-w2v-same",
            lambda p: GensimWord2Vec(p["seed"], **same),
            needs="gensim",
            source="engine",
        )
    except ImportError:
        print("skipping gensim-w2v-same: tastespace item2vec does not import", flush=True)
    add("ease-numpy", lambda p: NumpyEASE(**p), grid=dict(DEFAULT_GRIDS["ease"]))
    return out


def wrapper_ratios(board: Any) -> list[str]:
    lines = [
        "| tastespace | own engine | R@20 ratio | NDCG@100 ratio | fit s ratio |",
        "|---|---|---|---|---|",
    ]
    for ours, theirs in WRAPPER_PAIRS:
        try:
            a, b = board.row(ours), board.row(theirs)
        except KeyError:
            continue
        if not a.runs or not b.runs:
            continue
        cells = [f"{a.mean(m) / b.mean(m):.3f}" for m in ("recall@20", "ndcg@100")]
        speed = a.mean("fit_seconds") / max(b.mean("fit_seconds"), 1e-9)
        lines.append(f"| {ours} | {theirs} | {cells[0]} | {cells[1]} | {speed:.2f} |")
    return lines


def report(board: Any, title: str, png: str | None = None) -> None:
    """Print one dataset's table, the verdict lines and the wrapper ratios (+ chart)."""
    print(f"\n### {title}\n\n{markdown_table(board)}\n")
    if png:
        from tastespace.evaluate.chart import plot_leaderboard

        print(f"chart → {plot_leaderboard(board, png.format(name=board.dataset))}")
    print("\n".join(summary_lines(board)))
    print("\nwrapper vs own engine (tastespace ÷ peer, means over seeds; target ≥ 0.98):\n")
    print("\n".join(wrapper_ratios(board)) + "\n", flush=True)


def merge(paths: list[str], png: str | None = None) -> None:
    """Print the tables of earlier ``--json`` outputs, rows of the same dataset merged."""
    from tastespace.evaluate.leaderboard import Leaderboard, merge_leaderboards

    by_dataset: dict[str, list[Any]] = {}
    for path in paths:
        for doc in json.loads(Path(path).read_text())["boards"]:
            by_dataset.setdefault(doc["dataset"], []).append(Leaderboard.from_json(doc))
    for name, boards in by_dataset.items():
        report(merge_leaderboards(boards), f"{name} (merged from {len(boards)} run(s))", png)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", nargs="+", default=["ml-100k", "ml-latest-small"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--n-heldout", type=float, default=0.1)
    parser.add_argument("--skip", default="", help="comma list of row names to leave out")
    parser.add_argument("--only", default="", help="comma list: run just these rows")
    parser.add_argument("--json", help="write the leaderboards here (rewritten after each dataset)")
    parser.add_argument("--merge", nargs="+", metavar="JSON", help="print saved runs, merged")
    parser.add_argument("--png", help="bar chart per dataset; {name} = the dataset's name")
    args = parser.parse_args(argv)
    if args.merge:
        merge(args.merge, args.png)
        return

    from tastespace.models.registry import available_models

    skip = {s for s in args.skip.split(",") if s}
    only = {s for s in args.only.split(",") if s}
    ours = [kind for kind in available_models() if kind not in skip and (not only or kind in only)]
    peers = [p for p in peer_contenders(skip) if not only or p.name in only]
    print(
        f"machine: {machine()}\ntastespace rows: {', '.join(ours)}\n"
        f"peer rows: {', '.join(p.name for p in peers)}\n",
        flush=True,
    )

    from tastespace.evaluate.leaderboard import run_leaderboard

    documents = []
    total = time.perf_counter()
    for name in args.data:
        dataset = load(name)
        started = time.perf_counter()

        def progress(line: str, started: float = started) -> None:
            print(f"  [{time.perf_counter() - started:6.0f} s] {line}", file=sys.stderr, flush=True)

        board = run_leaderboard(
            dataset,
            [*ours, *peers],
            seeds=tuple(range(args.seeds)),
            n_heldout=args.n_heldout,
            progress=progress,
        )
        report(
            board,
            f"{dataset.name} ({dataset.n_users} users, {dataset.n_items} items, "
            f"{dataset.n_interactions} positives)",
            args.png,
        )
        documents.append(board.to_json())
        if args.json:
            Path(args.json).write_text(
                json.dumps({"machine": machine(), "boards": documents}, indent=1, default=str)
            )
    print(f"total wall time: {time.perf_counter() - total:.0f} s")


if __name__ == "__main__":
    main()
