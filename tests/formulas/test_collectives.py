"""Tests of perfmodel.formulas.collectives (point-to-point, ring, direct, hierarchical, gamma terms).

Truth comes from: the cost formulas of Thakur, Rabenseifner & Gropp (2005), Patarasuk & Yuan
(2009) and Sanders et al. (2009) typed in again; hand-checked values; and, for the textbook ring,
the flow-level simulator with max-min fair sharing (tests/formulas/flowsim.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from perfmodel.formulas import collectives as coll
from perfmodel.formulas import logtree
from tests.formulas.backends import (
    assert_sympy_equals,
    check_numpy_broadcasting,
    check_sympy_matches_float,
)
from tests.formulas.flowsim import ALPHA, BETA, S, ring_capacity, ring_route, run

# --- the simulator with nothing shared ------------------------------------------------------------


def test_textbook_ring_matches_maxmin_on_a_ring():
    # one hop per step, no sharing: the simulator reproduces the alpha-beta ring all-reduce
    n = 8
    phases = [[(ring_route(r, 1, True, n), S / n) for r in range(n)]] * (2 * (n - 1))
    sim = run(phases, ring_capacity(n, BETA), ALPHA, 0.0)
    assert sim == pytest.approx(coll.ring_allreduce_time(n, S, ALPHA, BETA), rel=1e-9)


# --- textbook forms: values typed from the papers ------------------------------------------------


def test_brief_example_ring_allreduce():
    # 8 ranks, 1 GB, 5 us, 100 GB/s: 14 * 5e-6 + 1.75 * 0.01 = 0.01757 s
    assert coll.ring_allreduce_time(8, 1e9, 5e-6, 100e9) == pytest.approx(0.01757, rel=1e-12)


def test_hierarchical_allreduce_reduces_to_flat_rings():
    args = dict(size=1e9, alpha_intra=1e-6, beta_intra=300e9, alpha_inter=5e-6, beta_inter=25e9)
    # one node: intra ring only; one device per node: inter ring only
    flat_intra = coll.ring_allreduce_time(8, 1e9, 1e-6, 300e9)
    flat_inter = coll.ring_allreduce_time(16, 1e9, 5e-6, 25e9)
    assert coll.hierarchical_allreduce_time(1, 8, **args) == pytest.approx(flat_intra)
    assert coll.hierarchical_allreduce_time(16, 1, **args) == pytest.approx(flat_inter)
    # 4 x 8: 0.013377 s (hand check in the docstring); beats a flat ring on the slow network
    assert coll.hierarchical_allreduce_time(4, 8, **args) == pytest.approx(0.0133773333, rel=1e-8)
    assert coll.hierarchical_allreduce_time(4, 8, **args) < coll.ring_allreduce_time(32, 1e9, 5e-6, 25e9)


def test_pipelined_broadcast_optimum():
    n, size, a, b = 16, 1e8, 5e-6, 25e9
    best = coll.pipelined_ring_broadcast_optimal_time(n, size, a, b)
    chunks = np.arange(1, 5000)
    sampled = coll.pipelined_ring_broadcast_time(n, size, a, b, chunks)
    assert best <= sampled.min() * (1 + 1e-12)
    c_star = np.sqrt((n - 2) * size / (a * b))
    assert coll.pipelined_ring_broadcast_time(n, size, a, b, c_star) == pytest.approx(best, rel=1e-12)
    assert sampled.min() == pytest.approx(best, rel=1e-4)


# --- sanity facts --------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [4, 8, 64, 1024])
def test_ring_beats_recursive_doubling_for_large_messages(n):
    big = 1e10
    assert coll.ring_allreduce_time(n, big, 0.0, 1e9) < logtree.recursive_doubling_allreduce_time(n, big, 0.0, 1e9)
    assert coll.ring_allreduce_time(n, big, 1e-6, 1e9) < logtree.recursive_doubling_allreduce_time(n, big, 1e-6, 1e9)


@pytest.mark.parametrize("n", [2, 4, 8, 64])
def test_direct_on_fully_connected_has_the_lowest_latency(n):
    a = 1e-6
    one_step = coll.one_shot_allreduce_time(n, 0.0, a, 1e9)
    assert one_step == pytest.approx(a)  # one step
    others = [coll.ring_allreduce_time, logtree.recursive_doubling_allreduce_time, logtree.rabenseifner_allreduce_time,
              logtree.double_binary_tree_allreduce_time, logtree.binary_tree_allreduce_time,
              coll.two_shot_allreduce_time, coll.bidirectional_ring_allreduce_time]
    assert all(one_step <= f(n, 0.0, a, 1e9) for f in others)
    assert coll.direct_alltoall_time(n, 0.0, a, 1e9) <= min(logtree.pairwise_alltoall_time(n, 0.0, a, 1e9),
                                                            logtree.bruck_alltoall_time(n, 0.0, a, 1e9))
    assert coll.direct_allgather_time(n, 0.0, a, 1e9) <= logtree.recursive_doubling_allgather_time(n, 0.0, a, 1e9)


def test_sympy_solves_ring_allreduce_for_bandwidth():
    n, size, a, b, t = sp.symbols("n S alpha beta T", positive=True)
    solution = sp.solve(coll.ring_allreduce_time(n, size, a, b) - t, b)
    assert len(solution) == 1
    assert sp.simplify(solution[0] - 2 * (n - 1) * size / (n * (t - 2 * (n - 1) * a))) == 0


# --- three backends -----------------------------------------------------------------------------

VALUES = {
    "n": [4.0, 8.0, 64.0],
    "size": [1e6, 1e9],
    "alpha": [1e-6, 5e-6],
    "beta": [25e9, 100e9],
    "n_chunks": [1.0, 8.0, 64.0],
    "gamma": [1e-11, 4e-11],
    "n_nodes": [1.0, 2.0, 4.0],
    "n_devices_per_node": [2.0, 8.0],
    "alpha_intra": [1e-6],
    "beta_intra": [300e9],
    "alpha_inter": [5e-6],
    "beta_inter": [25e9],
}

FUNCTIONS = [getattr(coll, name) for name in coll.__all__]


@pytest.mark.parametrize("func", FUNCTIONS, ids=lambda f: f.__name__)
def test_numpy_broadcasting_matches_loop(func):
    check_numpy_broadcasting(func, VALUES, rest="last")


@pytest.mark.parametrize("func", FUNCTIONS, ids=lambda f: f.__name__)
def test_sympy_matches_float(func):
    check_sympy_matches_float(func, VALUES)


def test_sympy_equals_typed_expressions():
    typed = {
        coll.ring_allreduce_time: lambda n, size, alpha, beta: 2 * (n - 1) * alpha + 2 * (n - 1) * size / (n * beta),
        coll.ring_reduce_scatter_time: lambda n, size, alpha, beta: (n - 1) * (alpha + size / (n * beta)),
        coll.ring_allgather_time: lambda n, size, alpha, beta: (n - 1) * (alpha + size / (n * beta)),
        coll.bidirectional_ring_allreduce_time:
            lambda n, size, alpha, beta: 2 * (n - 1) * alpha + (n - 1) * size / (n * beta),
        coll.pipelined_ring_broadcast_time:
            lambda n, size, alpha, beta, n_chunks: (n + n_chunks - 2) * alpha + (n + n_chunks - 2) * size / (
                n_chunks * beta),
        coll.pipelined_ring_broadcast_optimal_time:
            lambda n, size, alpha, beta: (n - 2) * alpha + size / beta + 2 * sp.sqrt((n - 2) * alpha * size / beta),
        coll.direct_alltoall_time: lambda n, size, alpha, beta: alpha + size / (n * beta),
        coll.one_shot_allreduce_time: lambda n, size, alpha, beta: alpha + size / beta,
        coll.two_shot_allreduce_time: lambda n, size, alpha, beta: 2 * (alpha + size / (n * beta)),
        coll.reduce_scatter_compute_time: lambda n, size, gamma: size * gamma - size * gamma / n,
        coll.hierarchical_allreduce_time:
            lambda n_nodes, n_devices_per_node, size, alpha_intra, beta_intra, alpha_inter, beta_inter:
            2 * (n_devices_per_node - 1) * (alpha_intra + size / (n_devices_per_node * beta_intra))
            + 2 * (n_nodes - 1) * (alpha_inter + size / (n_nodes * n_devices_per_node * beta_inter)),
    }
    for func, expected in typed.items():
        assert_sympy_equals(func, expected)
