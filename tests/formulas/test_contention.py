"""Tests of perfmodel.formulas.contention (hops, shared links, algorithms laid on a topology).

Truth comes from a small flow-level simulator with max-min fair sharing (the model SimGrid uses)
run on the actual links (tests/formulas/flowsim.py), and from the explicit step sums the closed
forms add up.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import sympy as sp

from perfmodel.formulas import contention as cont
from perfmodel.formulas import logtree
from tests.formulas.backends import (
    assert_sympy_equals,
    check_numpy_broadcasting,
    check_sympy_matches_float,
)
from tests.formulas.flowsim import (
    ALPHA,
    BETA,
    DELTA,
    S,
    fat_tree_capacity,
    fat_tree_ring_phases,
    phase_time,
    recursive_phases,
    ring_capacity,
    run,
    switch_capacity,
    switch_route,
)

# --- contention forms against the simulator ----------------------------------------------------


@pytest.mark.parametrize("n", [4, 8, 16, 64])
@pytest.mark.parametrize("tie_clockwise", [False, True])
def test_recursive_doubling_allgather_on_ring_matches_maxmin(n, tie_clockwise):
    steps = [(2**i, 2**i * S / n) for i in range(int(np.log2(n)))]
    sim = run(recursive_phases(n, steps, tie_clockwise), ring_capacity(n, BETA), ALPHA, DELTA)
    assert sim == pytest.approx(cont.recursive_doubling_allgather_on_ring_time(n, S, ALPHA, BETA, DELTA), rel=1e-9)
    # reduce-scatter by recursive halving: the same steps, largest distance first
    sim_rs = run(recursive_phases(n, steps[::-1], tie_clockwise), ring_capacity(n, BETA), ALPHA, DELTA)
    assert sim_rs == pytest.approx(
        cont.recursive_halving_reduce_scatter_on_ring_time(n, S, ALPHA, BETA, DELTA), rel=1e-9)
    assert sim + sim_rs == pytest.approx(cont.rabenseifner_allreduce_on_ring_time(n, S, ALPHA, BETA, DELTA), rel=1e-9)


@pytest.mark.parametrize("n", [4, 16, 64])
def test_recursive_doubling_allreduce_on_ring_matches_maxmin(n):
    steps = [(2**i, S) for i in range(int(np.log2(n)))]
    sim = run(recursive_phases(n, steps), ring_capacity(n, BETA), ALPHA, DELTA)
    assert sim == pytest.approx(cont.recursive_doubling_allreduce_on_ring_time(n, S, ALPHA, BETA, DELTA), rel=1e-9)


def test_recursive_doubling_on_ring_is_several_times_slower_at_64_ranks():
    n = 64
    laid = cont.recursive_doubling_allreduce_on_ring_time(n, 1e9, 0.0, BETA, 0.0)
    textbook = logtree.recursive_doubling_allreduce_time(n, 1e9, 0.0, BETA)
    assert laid / textbook == pytest.approx(63 / 6)  # (n-1)/log2 n
    laid_ag = cont.recursive_doubling_allgather_on_ring_time(n, 1e9, 0.0, BETA, 0.0)
    assert laid_ag / logtree.recursive_doubling_allgather_time(n, 1e9, 0.0, BETA) == pytest.approx(65 / 3)


@pytest.mark.parametrize("o", [0.5, 1.0, 2.0, 4.0])
def test_strided_ring_on_fat_tree_matches_maxmin(o):
    n, p = 16, 4
    sim = run(fat_tree_ring_phases(n, p, S, strided=True), fat_tree_capacity(n, p, BETA, o), ALPHA, DELTA)
    assert sim == pytest.approx(cont.strided_ring_allreduce_fat_tree_time(n, S, ALPHA, BETA, DELTA, o), rel=1e-9)
    # the general form with 4 hops and the uplink share as the congestion factor agrees
    general = cont.contended_ring_allreduce_time(n, S, ALPHA, BETA, 4, DELTA, max(1.0, o))
    assert general == pytest.approx(sim, rel=1e-9)


@pytest.mark.parametrize("o", [2.0, 8.0, 16.0])
def test_contiguous_ring_on_fat_tree_matches_maxmin(o):
    n, p = 16, 4
    sim = run(fat_tree_ring_phases(n, p, S, strided=False), fat_tree_capacity(n, p, BETA, o), ALPHA, DELTA)
    assert sim == pytest.approx(cont.contiguous_ring_allreduce_fat_tree_time(n, S, ALPHA, BETA, DELTA, o, p),
                                rel=1e-9)


@pytest.mark.parametrize("backplane", [50e9, 150e9, 400e9])
def test_blocking_switch_ring_matches_maxmin(backplane):
    n = 8
    flows = [(switch_route(r, (r + 1) % n), S / n) for r in range(n)]
    step = phase_time(flows, switch_capacity(n, BETA, backplane), ALPHA, DELTA)
    assert 2 * (n - 1) * step == pytest.approx(
        cont.blocking_switch_ring_allreduce_time(n, S, ALPHA, BETA, DELTA, backplane), rel=1e-9)


@pytest.mark.parametrize("backplane", [50e9, 400e9, 2e12])
def test_blocking_switch_direct_alltoall_matches_maxmin(backplane):
    n = 8
    flows = [(switch_route(r, s), S / n) for r, s in itertools.permutations(range(n), 2)]
    sim = phase_time(flows, switch_capacity(n, BETA, backplane), ALPHA, DELTA)
    assert sim == pytest.approx(cont.blocking_switch_direct_alltoall_time(n, S, ALPHA, BETA, DELTA, backplane),
                                rel=1e-9)


@pytest.mark.parametrize("k", [1, 2, 4, 16])
def test_flows_behind_one_uplink_match_maxmin(k):
    uplink = 50e9
    cap = {("access", i): BETA for i in range(k)}
    cap["uplink"] = uplink
    cap["far"] = 1e15
    flows = [([("access", i), "uplink", "far"], S) for i in range(k)]
    sim = phase_time(flows, cap, ALPHA, DELTA)
    assert sim == pytest.approx(cont.shared_uplink_transfer_time(S, ALPHA, BETA, uplink, k, 3, DELTA), rel=1e-9)


def test_blocking_switch_flow_bandwidth():
    assert cont.blocking_switch_flow_bandwidth(8, 25e9, 400e9) == 25e9  # non-blocking
    assert cont.blocking_switch_flow_bandwidth(8, 25e9, 100e9) == 12.5e9  # 2:1 blocking


# --- three backends -----------------------------------------------------------------------------

VALUES = {
    "n": [4.0, 8.0, 64.0],
    "size": [1e6, 1e9],
    "alpha": [1e-6, 5e-6],
    "beta": [25e9, 100e9],
    "n_hops": [1.0, 4.0],
    "hop_latency": [5e-7, 1e-6],
    "congestion": [1.0, 2.0],
    "uplink_bandwidth": [50e9, 400e9],
    "n_flows": [1.0, 4.0, 16.0],
    "oversubscription": [0.5, 2.0, 8.0],
    "n_nodes_per_leaf": [2.0, 4.0],
    "backplane_bandwidth": [50e9, 1e12],
}

FUNCTIONS = [getattr(cont, name) for name in cont.__all__]


@pytest.mark.parametrize("func", FUNCTIONS, ids=lambda f: f.__name__)
def test_numpy_broadcasting_matches_loop(func):
    check_numpy_broadcasting(func, VALUES, rest="last")


@pytest.mark.parametrize("func", FUNCTIONS, ids=lambda f: f.__name__)
def test_sympy_matches_float(func):
    check_sympy_matches_float(func, VALUES)


def test_sympy_equals_typed_expressions():
    lg = lambda n: sp.log(n) / sp.log(2)  # noqa: E731
    typed = {
        cont.recursive_doubling_allgather_on_ring_time:
            lambda n, size, alpha, beta, hop_latency:
            lg(n) * alpha + (n - 1) * hop_latency + (n**2 - 1) * size / (3 * n * beta),
    }
    for func, expected in typed.items():
        assert_sympy_equals(func, expected)


def test_recursive_doubling_on_ring_closed_form_is_the_step_sum():
    # the geometric-series closed form equals the explicit sum over log2 n steps, for n = 2..2^10
    size, alpha, beta, delta = sp.symbols("size alpha beta delta", positive=True)
    for d in range(1, 11):
        n = 2**d
        steps = sum(alpha + 2**i * delta + 2**i * (2**i * size / n) / beta for i in range(d))
        closed = cont.recursive_doubling_allgather_on_ring_time(sp.Integer(n), size, alpha, beta, delta)
        assert sp.simplify(steps - closed) == 0
