"""pcie_copies: copy time and shared links; numpy broadcasting and sympy forms.

The copies are validated against the measured H100 host in test_pcie.py, with the link bandwidths they
take as beta.
"""

from __future__ import annotations

import numpy as np
import pytest

from perfmodel.formulas import pcie_copies as copies
from tests.formulas.backends import (
    assert_numpy_matches_loop,
    assert_sympy_equals,
    assert_sympy_matches_float,
)


def test_time_and_sharing():
    assert copies.pcie_copy_time(4096, 10.8e-6, 55e9) == pytest.approx(10.8e-6 + 4096 / 55e9, rel=1e-12)
    assert copies.pcie_copy_bandwidth(2**30, 10e-6, 50e9) == pytest.approx(2**30 / (10e-6 + 2**30 / 50e9), rel=1e-12)
    assert copies.pcie_concurrent_copy_bandwidth(8, 54e9) == 54e9 / 8
    # pcie-8gpu: two gen-4 GPUs per switch on a gen-4 x16 uplink: each gets half when both transfer.
    assert copies.pcie_switch_share_bandwidth(2, 25e9, 25e9) == 12.5e9
    assert copies.pcie_switch_share_bandwidth(1, 25e9, 50e9) == 25e9  # device link binds
    assert copies.pcie_root_share_bandwidth(2, 4, 25e9, 25e9, 80e9) == 10e9  # root binds: 80 / 8
    assert copies.pcie_root_share_bandwidth(2, 1, 25e9, 25e9, 80e9) == 12.5e9  # uplink binds


@pytest.mark.parametrize(
    "func, kwargs",
    [
        (copies.pcie_copy_time, dict(size=np.array([[4096], [2**26]]), alpha=10.8e-6, beta=np.array([25e9, 55e9]))),
        (copies.pcie_copy_bandwidth, dict(size=np.array([[4096], [2**26]]), alpha=10.8e-6, beta=np.array([25e9, 55e9]))),
        (copies.pcie_concurrent_copy_bandwidth, dict(n=np.array([[1], [2], [8]]), beta=np.array([25e9, 55e9]))),
        (copies.pcie_switch_share_bandwidth, dict(n=np.array([[1], [2], [4]]), beta=25e9, uplink_bandwidth=np.array([25e9, 60e9]))),
        (copies.pcie_root_share_bandwidth, dict(n=np.array([[1], [2], [4]]), n_switches=np.array([1, 4]), beta=25e9,
                                                uplink_bandwidth=50e9, root_bandwidth=80e9)),
    ],
    ids=lambda x: getattr(x, "__name__", ""),
)
def test_numpy_matches_loop(func, kwargs):
    assert_numpy_matches_loop(func, **kwargs)


def test_sympy_forms():
    import sympy as sp

    assert_sympy_equals(copies.pcie_copy_time, lambda size, alpha, beta: alpha + size / beta)
    assert_sympy_equals(copies.pcie_copy_bandwidth, lambda size, alpha, beta: size * beta / (alpha * beta + size))
    assert_sympy_equals(copies.pcie_concurrent_copy_bandwidth, lambda n, beta: beta / n)
    assert_sympy_equals(copies.pcie_switch_share_bandwidth, lambda n, beta, uplink_bandwidth: sp.Min(beta, uplink_bandwidth / n))
    assert_sympy_equals(copies.pcie_root_share_bandwidth, lambda n, n_switches, beta, uplink_bandwidth, root_bandwidth:
                        sp.Min(beta, uplink_bandwidth / n, root_bandwidth / (n * n_switches)))


def test_sympy_substituted_equals_float():
    assert_sympy_matches_float(copies.pcie_switch_share_bandwidth, n=4, beta=25e9, uplink_bandwidth=60e9)
    assert_sympy_matches_float(copies.pcie_root_share_bandwidth, n=2, n_switches=4, beta=25e9, uplink_bandwidth=25e9,
                               root_bandwidth=80e9)
