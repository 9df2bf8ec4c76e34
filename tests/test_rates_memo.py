"""The per-shape memo of DeviceRates.gemm and the one DeviceRates per hw and stack that keeps it:
a remembered float must equal the formula's, and arrays or symbols must never be remembered."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import perfmodel as pm
from perfmodel.frozen import replaced
from tests.test_power_cap import _rates

H100 = "dgx-h100"


def test_one_rates_object_per_hw_dtype_and_stack():
    assert _rates(H100) is _rates(H100)
    assert _rates(H100, stack="fsdp") is not _rates(H100)
    assert _rates(H100, dtype="fp8") is not _rates(H100)


@pytest.mark.parametrize("system,dtype", [("dgx-h100", "bf16"), ("dgx-h100", "fp8"), ("dgx-a100", "bf16")])
def test_a_remembered_gemm_equals_the_array_path(system, dtype):
    rates = _rates(system, dtype)
    shapes = [(8192.0, 28672.0, 8192.0), (4096.0, 1536.0, 12288.0), (512.0, 512.0, 512.0)]
    for m, n, k in shapes:
        first, again = rates.gemm(m, n, k), rates.gemm(m, n, k)
        assert first == again
        assert first == pytest.approx(float(rates.gemm(np.array([m]), n, k)[0]), rel=1e-12)
        assert rates.linear_gemm(m, n, k) == pytest.approx(float(rates.linear_gemm(np.array([m]), n, k)[0]), rel=1e-12)


@pytest.mark.parametrize("system", ["dgx-h100", "dgx-a100"])
def test_aligned_and_one_element_alignment_are_remembered_apart(system):
    # True (aligned) == 1.0 (one element: the misaligned kernel) as dict keys; either order
    shape = (8192.0, 50257.0, 4096.0)
    for first, second in ((True, 1.0), (1.0, True)):
        rates = replace(_rates(system))  # a fresh memo
        a, b = rates.gemm(*shape, aligned=first), rates.gemm(*shape, aligned=second)
        fresh = replace(_rates(system))
        assert b == fresh.gemm(*shape, aligned=second) and a != b


def test_swept_numbers_are_not_remembered():
    rates = replace(_rates(H100), gemm_scale=np.array([1.0, 0.5]))
    t = rates.gemm(8192.0, 8192.0, 8192.0)
    assert isinstance(t, np.ndarray) and t[1] > t[0]
    assert not rates._memo


def test_replaced_is_dataclasses_replace_for_a_plan():
    plan = pm.Plan(tp=2, devices=16)
    assert replaced(plan, pp=4, stack="megatron") == replace(plan, pp=4, stack="megatron")
    with pytest.raises(TypeError, match="no init field"):
        replaced(plan, tensor_parallel=2)
    rates = _rates(H100)
    with pytest.raises(TypeError):  # an init=False field, as dataclasses.replace
        replaced(rates, _memo={})
    with pytest.raises(TypeError, match="__post_init__"):  # DeviceRates derives a flag after init
        replaced(rates, gemm_scale=0.5)
