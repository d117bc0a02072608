"""Prototype: multinomial matrix factorisation without an encoder (docs/neural.md, fifth round).

Usage: python bench/multinomial_mf.py [--l2 3] [--seeds 6] [--dim 100]

Free user and item vectors are fitted full-batch to each training user's whole history under a
multinomial likelihood plus l2 · (mean ‖u‖² + Σ‖v‖² / n_users); a held-out user is folded in by
Adam steps on the same objective with the items fixed. It runs as a leaderboard contender beside
EASE, so both see ``bench/neural.py``'s splits (strong generalisation, ratings >= 4, 10 %
validation / 10 % test users) and EASE's l2 is tuned on the same validation users.
It answers one question — is the neural model's gap to EASE on ml-latest-small the encoder's
amortisation? — and prints Recall@20 / NDCG@100 of both and their ratio.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from tastespace.data import Dataset, load_dataset
from tastespace.evaluate.leaderboard import Contender, run_leaderboard
from tastespace.evaluate.protocol import evaluate_model
from tastespace.index.topk import mask_rows, topk_rows

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "movielens"
EVAL_EVERY, PATIENCE, MAX_EPOCHS = 10, 5, 400
FOLD_IN_STEPS, FOLD_IN_LR, TRAIN_LR = 100, 0.05, 0.01


class MultinomialMF:
    """Just enough of the Recommender protocol for ``evaluate_model``: fit, score, recommend."""

    def __init__(self, l2: float, dim: int, seed: int) -> None:
        self.l2, self.dim, self.seed = l2, dim, seed

    def fit(self, train: Dataset, validation) -> MultinomialMF:
        torch.manual_seed(self.seed)
        x = torch.as_tensor((train.interactions > 0).toarray(), dtype=torch.float32)
        n_users, n_items = x.shape
        users = (0.01 * torch.randn(n_users, self.dim)).requires_grad_(True)
        self.items = (0.01 * torch.randn(n_items, self.dim)).requires_grad_(True)
        self.bias = torch.zeros(n_items, requires_grad=True)
        optimiser = torch.optim.Adam([users, self.items, self.bias], lr=TRAIN_LR)
        best, best_state, stale = -1.0, None, 0
        for epoch in range(1, MAX_EPOCHS + 1):
            nll = -(x * torch.log_softmax(users @ self.items.T + self.bias, 1)).sum(1).mean()
            penalty = (users**2).sum(1).mean() + (self.items**2).sum() / n_users
            optimiser.zero_grad()
            (nll + self.l2 * penalty).backward()
            optimiser.step()
            if epoch % EVAL_EVERY:
                continue
            score = evaluate_model(self, validation, cutoffs=(20,))["recall@20"]
            if score > best:
                best, stale = score, 0
                best_state = (self.items.detach().clone(), self.bias.detach().clone())
            else:
                stale += 1
                if stale >= PATIENCE:
                    break
        self.items, self.bias = best_state
        self.validation_recall = best
        return self

    def score(self, histories: sp.csr_matrix) -> np.ndarray:
        x = torch.as_tensor((histories > 0).toarray(), dtype=torch.float32)
        items, bias = self.items.detach(), self.bias.detach()
        users = torch.zeros(x.shape[0], self.dim, requires_grad=True)
        optimiser = torch.optim.Adam([users], lr=FOLD_IN_LR)
        with torch.enable_grad():
            for _ in range(FOLD_IN_STEPS):
                logits = users @ items.T + bias
                loss = -(x * torch.log_softmax(logits, 1)).sum() + self.l2 * (users**2).sum()
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
        return (users @ items.T + bias).detach().numpy()

    def recommend(self, histories: sp.csr_matrix, k: int, exclude_seen: bool = True):
        scores = self.score(histories)
        return topk_rows(mask_rows(scores, histories.tocsr() if exclude_seen else None), k)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--l2", type=float, default=3.0)
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=6)
    args = parser.parse_args()
    contender = Contender(
        name="multinomial-mf",
        build=lambda params: MultinomialMF(args.l2, args.dim, params["seed"]),
    )
    metrics = ("recall@20", "ndcg@100")
    for name in ("ml-100k", "ml-latest-small"):
        board = run_leaderboard(
            load_dataset(SHARED / f"{name}.zip"),
            ["ease", contender],
            seeds=tuple(range(args.seeds)),
            min_rating=4,
            progress=lambda line, name=name: print(f"{name} {line}", flush=True),
        )
        ours = [board.row("multinomial-mf").mean(m) for m in metrics]
        ease = [board.row("ease").mean(m) for m in metrics]
        print(
            f"{name}: multinomial MF (l2 {args.l2}) R@20 {ours[0]:.3f} NDCG@100 {ours[1]:.3f} | "
            f"EASE {ease[0]:.3f} / {ease[1]:.3f} | ratio {ours[0] / ease[0]:.3f} / "
            f"{ours[1] / ease[1]:.3f}"
        )


if __name__ == "__main__":
    main()
