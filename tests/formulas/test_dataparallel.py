"""Tests of perfmodel.formulas.dataparallel: parameter server, delta-W broadcast, bucketed overlap,
prefetched (FSDP / ZeRO-3) overlap.

Truth: the cost forms typed from their sources and values worked by hand.
"""

from __future__ import annotations

import pytest
import sympy as sp

from perfmodel.formulas import dataparallel as dpf
from tests.formulas.backends import assert_sympy_equals, check_numpy_broadcasting, check_sympy_matches_float

PREFETCH = {"comm_time": [0.002, 0.005, 0.008], "compute_time": [0.001, 0.005, 0.01], "n_units": [1, 8, 80]}


def test_prefetch_hides_everything_but_the_first_fetch_when_compute_covers_it():
    # 32 layers, 2 ms gathers under 5 ms of compute: only the first layer's gather waits
    assert dpf.prefetched_exposed_time(0.002, 0.005, 32) == pytest.approx(0.002, rel=1e-15)


def test_prefetch_exposes_the_excess_of_every_later_fetch():
    # by hand: 8 ms + 31 x (8 - 5) ms = 101 ms
    assert dpf.prefetched_exposed_time(0.008, 0.005, 32) == pytest.approx(0.101, rel=1e-12)


def test_prefetch_of_one_unit_is_its_fetch():
    assert dpf.prefetched_exposed_time(0.004, 1.0, 1) == pytest.approx(0.004, rel=1e-15)


def test_prefetch_numpy_broadcasting_equals_a_loop():
    for rest in ("first", "last"):
        check_numpy_broadcasting(dpf.prefetched_exposed_time, PREFETCH, rest=rest)


def test_prefetch_sympy_form():
    check_sympy_matches_float(dpf.prefetched_exposed_time, PREFETCH)
    assert_sympy_equals(dpf.prefetched_exposed_time,
                        lambda comm_time, compute_time, n_units: comm_time + (n_units - 1) * sp.Max(comm_time - compute_time, 0))
