"""Adam whose embedding tables cost the rows a step touches, with dense Adam's arithmetic.

Dense Adam moves every row of a table on every step: a row without gradient still has moments,
they decay, and they keep moving it. Lazy Adam (``torch.optim.SparseAdam``) skips those rows, so
it drops the momentum tail a row earns each time it is touched — the free user vectors, touched
once an epoch, move a fraction of what they move under dense Adam — and on ml-latest-small that
cost 0.012 Recall@20 (docs/benchmarks-scale.md).

:class:`CatchUpAdam` defers the tail instead of dropping it. A row not touched for ``k`` steps
owes the updates its moments would have made; without a gradient they are geometric in the
step, so they are applied in one go, in closed form, the next time the row is read (a forward
pre-hook on its table), updated, or when :meth:`CatchUpAdam.flush` settles every row before the
weights are read whole (validation, checkpoints, the weight average). The result is
``torch.optim.Adam`` without weight decay up to where ``eps`` enters (taken at the first
missed step), and a step costs the rows it reads, not the table.

For a row last updated at step ``t`` with moments ``m``, ``v``, the missed steps
``s = t + j`` (``j = 1 … k``) move it by::

    lr · m / (√v + eps · √(1 − β2^(t+1))) · Σ_j (β1 / √β2)^j · √(1 − β2^s) / (1 − β1^s)

and leave ``m · β1^k``, ``v · β2^k``. The ratio ``β1/√β2`` is 0.9005 for the usual betas, so
terms past :data:`TAIL_STEPS` are below 1e-7 of the first and are left out.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

TAIL_STEPS = 160
"""Missed steps summed in a catch-up; (0.9 / √0.999)^160 < 1e-7, the rest is negligible."""

Table = nn.Embedding | nn.EmbeddingBag


class CatchUpAdam(torch.optim.Optimizer):
    """Adam over embedding tables with sparse gradients (see the module docstring).

    ``close()`` removes the forward hooks when training ends; :meth:`flush` first if the
    weights are to be read whole.
    """

    def __init__(
        self,
        tables: Iterable[Table],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        tables = list(tables)
        super().__init__([t.weight for t in tables], {"lr": lr, "betas": betas, "eps": eps})
        self._hooks = []
        for table in tables:
            weight = table.weight
            state = self.state[weight]
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(weight, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(weight, memory_format=torch.preserve_format)
            state["last"] = torch.zeros(len(weight), dtype=torch.int64, device=weight.device)
            self._hooks.append(table.register_forward_pre_hook(self._reading_hook(weight)))

    def _reading_hook(self, weight: nn.Parameter):
        def settle_rows(module: nn.Module, args: tuple) -> None:
            # The rows this lookup reads must first receive the updates they are owed.
            self.catch_up(weight, torch.unique(args[0]))

        return settle_rows

    def _group(self, weight: torch.Tensor) -> dict:
        return next(g for g in self.param_groups if any(p is weight for p in g["params"]))

    @torch.no_grad()
    def catch_up(self, weight: torch.Tensor, rows: torch.Tensor) -> None:
        """Apply to ``rows`` (unique) the updates of the steps they missed so far."""
        state = self.state[weight]
        through = state["step"]
        rows = rows[state["last"][rows] < through]
        if not len(rows):
            return
        group = self._group(weight)
        beta1, beta2 = group["betas"]
        last = state["last"][rows]
        m, v = state["exp_avg"][rows], state["exp_avg_sq"][rows]
        factor = _tail_factor(last, through, beta1, beta2).to(weight.dtype)[:, None]
        # eps enters as dense Adam adds it at the first missed step (where the terms are large).
        eps = group["eps"] * (1 - beta2 ** (last + 1).to(torch.float64)).sqrt().to(weight.dtype)
        weight.index_add_(0, rows, m / (v.sqrt() + eps[:, None]) * (-group["lr"] * factor))
        missed = (through - last).to(weight.dtype)[:, None]
        state["exp_avg"].index_copy_(0, rows, m * beta1**missed)
        state["exp_avg_sq"].index_copy_(0, rows, v * beta2**missed)
        state["last"][rows] = through

    @torch.no_grad()
    def flush(self) -> None:
        """Settle every row: afterwards the weights are what dense Adam would hold now."""
        for group in self.param_groups:
            for weight in group["params"]:
                self.catch_up(weight, torch.arange(len(weight), device=weight.device))

    @torch.no_grad()
    def step(self, closure: None = None) -> None:  # type: ignore[override]
        """One Adam step on the rows of each table's sparse gradient (the others owe it)."""
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for weight in group["params"]:
                state = self.state[weight]
                if weight.grad is not None:
                    grad = weight.grad.coalesce()
                    rows, values = grad.indices()[0], grad.values()
                    self.catch_up(weight, rows)
                state["step"] += 1
                if weight.grad is None:
                    continue
                step = state["step"]
                m = state["exp_avg"][rows].mul_(beta1).add_(values, alpha=1 - beta1)
                v = state["exp_avg_sq"][rows].mul_(beta2).addcmul_(values, values, value=1 - beta2)
                denom = (v / (1 - beta2**step)).sqrt_().add_(group["eps"])
                weight.index_add_(0, rows, m / denom * (-group["lr"] / (1 - beta1**step)))
                state["exp_avg"].index_copy_(0, rows, m)
                state["exp_avg_sq"].index_copy_(0, rows, v)
                state["last"][rows] = step

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        for state in self.state.values():
            # torch casts a loaded state's tensors to the weight's dtype; ``last`` is a step.
            state["last"] = state["last"].to(torch.int64)

    def close(self) -> None:
        """Remove the tables' forward hooks (training is over)."""
        for hook in self._hooks:
            hook.remove()
        self._hooks = []


def _tail_factor(last: torch.Tensor, through: int, beta1: float, beta2: float) -> torch.Tensor:
    """``Σ_j (β1/√β2)^j · √(1 − β2^s) / (1 − β1^s)`` over the missed steps ``s = last + j``,
    ``j = 1 … through − last`` (at most :data:`TAIL_STEPS`), per row.

    Rows last updated at the same step share their factor, so it is computed once per distinct
    ``last`` (a few hundred at most: the steps since the rows were last touched)."""
    starts, inverse = torch.unique(last, return_inverse=True)
    j = torch.arange(1, TAIL_STEPS + 1, dtype=torch.float64, device=last.device)
    s = starts.to(torch.float64)[:, None] + j
    terms = (beta1 / beta2**0.5) ** j * (1 - beta2**s).sqrt() / (1 - beta1**s)
    terms = torch.where(j <= (through - starts).to(torch.float64)[:, None], terms, 0.0)
    return terms.sum(dim=1)[inverse]


class TableAwareAdam:
    """Fused Adam for the dense weights, :class:`CatchUpAdam` for tables with sparse gradients.

    The tables carry no weight decay (the free user vectors and ID rows are regularised by
    ``vector_l2`` in the loss); otherwise the two together step as one ``torch.optim.Adam``.
    """

    def __init__(self, module: nn.Module, lr: float, weight_decay: float) -> None:
        tables = [m for m in module.modules() if isinstance(m, Table) and m.sparse]
        sparse = {id(t.weight) for t in tables}
        dense = [p for p in module.parameters() if id(p) not in sparse]
        self.dense = torch.optim.Adam(
            dense, lr=lr, weight_decay=weight_decay, fused=_fused_supported(dense)
        )
        self.sparse = CatchUpAdam(tables, lr=lr) if tables else None

    def zero_grad(self) -> None:
        self.dense.zero_grad(set_to_none=True)
        if self.sparse is not None:
            self.sparse.zero_grad(set_to_none=True)

    def step(self) -> None:
        self.dense.step()
        if self.sparse is not None:
            self.sparse.step()

    def flush(self) -> None:
        """Bring every table row up to date (see :meth:`CatchUpAdam.flush`)."""
        if self.sparse is not None:
            self.sparse.flush()

    def close(self) -> None:
        if self.sparse is not None:
            self.sparse.close()

    def state_dict(self) -> dict:
        return {
            "dense": self.dense.state_dict(),
            "sparse": None if self.sparse is None else self.sparse.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.dense.load_state_dict(state["dense"])
        if self.sparse is not None:
            self.sparse.load_state_dict(state["sparse"])


def _fused_supported(parameters: list[nn.Parameter]) -> bool:
    """Fused Adam (one kernel for all parameters, ~8 % faster per epoch on CPU) where torch
    offers it for the parameters' device."""
    return all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in parameters)
