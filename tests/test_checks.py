"""The finiteness check of sequences: exact, also where a sum cannot tell."""

from __future__ import annotations

import math

import pytest
import torch

from rnngraph._checks import all_finite


def test_finite_values_whose_sum_overflows_are_finite():
    x = torch.full((2, 5000, 3), 3e38, dtype=torch.float32)  # the sum is inf
    assert not torch.isfinite(x.sum())
    assert all_finite(x)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_one_bad_value_anywhere_is_found(bad):
    x = torch.zeros(3, 70000, 2, dtype=torch.float64)  # several blocks of steps
    x[2, 65537, 1] = bad
    assert not all_finite(x)
    x[2, 65537, 1] = 1.0
    assert all_finite(x)


def test_values_are_judged_in_the_target_dtype():
    x = torch.full((1, 10, 2), 1e300, dtype=torch.float64)  # finite, but not as float32
    assert all_finite(x)
    assert not all_finite(x, torch.float32)
    assert all_finite(x.clamp(max=1e30), torch.float32)


@pytest.mark.parametrize("value", [0.5, math.nan, math.inf, -math.inf])
def test_a_single_value_is_judged_by_itself(value):
    assert all_finite(torch.tensor([[value]])) is math.isfinite(value)
    assert all_finite(torch.tensor([[value]], requires_grad=True)) is math.isfinite(value)
