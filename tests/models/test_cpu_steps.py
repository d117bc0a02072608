"""The compiled steps' own exponential and dot products: float32 ``exp`` to within a few
units in the last place over the range the steps and retrieval use (``value − peak ≤ 0``), 0
where float32 underflows (and for ``-inf``, the pads' logits), NaN kept NaN; a candidate's
logit the same bits wherever its row sits in memory; the Hessian's bfloat16 operands the
bits torch's own rounding gives."""

from __future__ import annotations

import numpy as np
import torch
from numba import njit

from tastespace.models.neural.cpu_steps import EXP_FLOOR, _row_dots, centred_bfloat16, exp32


@njit
def _each(values: np.ndarray) -> np.ndarray:
    out = np.empty_like(values)
    for i in range(len(values)):
        out[i] = exp32(values[i])
    return out


def test_exp32_is_float32_exp_over_the_range_a_softmax_uses():
    values = np.linspace(float(EXP_FLOOR), 0.0, 200_001, dtype=np.float32)
    values = np.concatenate([values, np.float32([1.0, 3.5, 10.0])])  # above 0 too
    exact = np.exp(values.astype(np.float64))
    relative = np.abs(_each(values) - exact) / exact
    assert relative.max() < 2e-7  # float32's own exp: 2.1e-7
    assert _each(np.float32([0.0]))[0] == 1.0


def test_exp32_gives_zero_below_float32_normals_and_keeps_nan():
    out = _each(np.float32([-np.inf, -1e30, -88.0, np.nan]))
    assert out[:3].tolist() == [0.0, 0.0, 0.0]
    assert np.isnan(out[3])


def test_row_dots_give_a_row_the_same_bits_at_any_address_and_with_any_neighbours():
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((5, 100)).astype(np.float32)
    vector = rng.standard_normal(100).astype(np.float32)
    alone = np.empty(1, np.float32)
    _row_dots(rows[2:3], vector, alone)
    assert abs(alone[0] - float(rows[2].astype(np.float64) @ vector)) < 1e-4
    for shift in (1, 3, 7):  # the rows at addresses no longer 16-byte aligned
        buffer = np.zeros(rows.size + shift, np.float32)
        moved = buffer[shift:].reshape(rows.shape)
        moved[:] = rows
        out = np.empty(5, np.float32)
        _row_dots(moved, vector, out)
        assert out[2] == alone[0]


def test_centred_bfloat16_rounds_as_torch_does():
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((3, 70, 9)).astype(np.float32)
    vectors[0, 0, :3] = [1.00390625, 1.01171875, -1.00390625]  # halfway: ties go to even
    means = rng.standard_normal((3, 9)).astype(np.float32)
    means[0, :3] = 0.0
    probs = rng.random((3, 71)).astype(np.float32)
    weighted, centred = (
        torch.from_numpy(bits).view(torch.bfloat16)
        for bits in centred_bfloat16(vectors, probs, means)
    )
    plain = torch.from_numpy(vectors) - torch.from_numpy(means).unsqueeze(1)
    scaled = plain * torch.from_numpy(probs[:, :70]).unsqueeze(2)
    assert torch.equal(centred, plain.to(torch.bfloat16))
    assert torch.equal(weighted, scaled.to(torch.bfloat16))
    assert centred[0, 0, :3].tolist() == [1.0, 1.015625, -1.0]
