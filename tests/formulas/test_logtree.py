"""Tests of perfmodel.formulas.logtree (trees, recursive halving / doubling, Rabenseifner, Bruck).

Truth comes from: the cost formulas of Thakur, Rabenseifner & Gropp (2005) and NCCL (the 2.4 blog
and src/graph/tuning.cc) typed in again, hand-checked values, and the claims of Thakur et al. and
Sanders et al. (2009) about which algorithm wins where.
"""

from __future__ import annotations

import pytest
import sympy as sp

from perfmodel.formulas import busbw as bw
from perfmodel.formulas import collectives as coll
from perfmodel.formulas import logtree
from tests.formulas.backends import (
    assert_sympy_equals,
    check_numpy_broadcasting,
    check_sympy_matches_float,
)

# --- textbook forms: values typed from the papers ------------------------------------------------


def test_thakur_costs_evaluated():
    # Thakur et al. (2005) Sec. 4 with p = 64, n = 8 MiB, alpha = 10 us, beta = 1/(1 GB/s),
    # gamma = 1/(4 GB/s); the formulas typed from the paper:
    p, n, a, b, g = 64, 8 * 2**20, 10e-6, 1e-9, 0.25e-9
    lgp = 6
    assert logtree.recursive_doubling_allgather_time(p, n, a, 1 / b) == pytest.approx(lgp * a + n * (p - 1) / p * b)
    assert coll.ring_allgather_time(p, n, a, 1 / b) == pytest.approx((p - 1) * a + n * (p - 1) / p * b)
    assert (logtree.recursive_halving_reduce_scatter_time(p, n, a, 1 / b) + coll.reduce_scatter_compute_time(p, n, g)
            == pytest.approx(lgp * a + n * (p - 1) / p * b + n * (p - 1) / p * g))
    assert (logtree.recursive_doubling_allreduce_time(p, n, a, 1 / b) + coll.recursive_doubling_compute_time(p, n, g)
            == pytest.approx(lgp * a + n * lgp * b + n * lgp * g))
    assert (logtree.rabenseifner_allreduce_time(p, n, a, 1 / b) + coll.reduce_scatter_compute_time(p, n, g)
            == pytest.approx(2 * lgp * a + 2 * n * (p - 1) / p * b + n * (p - 1) / p * g))
    assert (logtree.rabenseifner_reduce_time(p, n, a, 1 / b)
            == pytest.approx(2 * lgp * a + 2 * n * (p - 1) / p * b))
    assert logtree.binomial_tree_broadcast_time(p, n, a, 1 / b) == pytest.approx(lgp * (a + n * b))
    assert logtree.scatter_allgather_broadcast_time(p, n, a, 1 / b) == pytest.approx(
        (lgp + p - 1) * a + 2 * n * (p - 1) / p * b)
    assert logtree.bruck_alltoall_time(p, n, a, 1 / b) == pytest.approx(lgp * a + n / 2 * lgp * b)
    # pairwise: Thakur's n counts only the bytes sent to others, (p-1)/p of the nccl-tests buffer
    assert logtree.pairwise_alltoall_time(p, n, a, 1 / b) == pytest.approx((p - 1) * a + (n * (p - 1) / p) * b)
    # the numbers themselves (hand-checked): Rabenseifner = 120 us + 16.515072 ms, + 2.064384 ms compute
    assert logtree.rabenseifner_allreduce_time(p, n, a, 1 / b) == pytest.approx(0.016635072, rel=1e-12)
    assert coll.reduce_scatter_compute_time(p, n, g) == pytest.approx(0.002064384, rel=1e-12)


def test_mpich_long_message_broadcast_claim():
    # MPICH bcast comment (Thakur et al. 2005 Sec. 4, broadcast): scatter + allgather needs 2n(p-1)/p beta
    # versus n lg p beta for the binomial tree, so it wins for long messages when lg p > 2.
    for p in [8, 64, 1024]:
        assert logtree.scatter_allgather_broadcast_time(p, 1e9, 1e-6, 25e9) < logtree.binomial_tree_broadcast_time(
            p, 1e9, 1e-6, 25e9)


def test_double_binary_tree():
    n, size, a, b = 64, 1e9, 5e-6, 25e9
    # NCCL tuning.cc: tree latency 2 log2(n) x lat, algbw = busbw / 2
    assert logtree.double_binary_tree_allreduce_time(n, 0.0, a, b) == pytest.approx(12 * a)
    assert bw.nccl_algbw(size, logtree.double_binary_tree_allreduce_time(n, size, 0.0, b)) == pytest.approx(b / 2)
    # two trees halve what one tree moves per port (broadcast: Sanders et al. 2009, "twice as fast")
    assert logtree.binary_tree_broadcast_time(n, size, 0.0, b) == pytest.approx(
        2 * logtree.double_binary_tree_broadcast_time(n, size, 0.0, b))
    assert logtree.binary_tree_allreduce_time(n, size, 0.0, b) > logtree.double_binary_tree_allreduce_time(n, size, 0.0, b)
    # the chunked pipeline never beats the pipelined limit and approaches it for many chunks
    for c in [1, 4, 64, 4096]:
        assert logtree.double_binary_tree_allreduce_chunked_time(n, size, a, b, c) >= (
            logtree.double_binary_tree_allreduce_time(n, size, a, b))
    many_chunks = logtree.double_binary_tree_allreduce_chunked_time(n, size, 0.0, b, 1e9)
    assert many_chunks == pytest.approx(2 * size / b, rel=1e-6)


# --- sanity facts --------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [4, 8, 64, 1024])
def test_tree_and_recursive_doubling_win_latency_for_small_messages(n):
    ring = coll.ring_allreduce_time(n, 0.0, 1e-6, 1e9)
    assert logtree.recursive_doubling_allreduce_time(n, 0.0, 1e-6, 1e9) < ring
    assert logtree.double_binary_tree_allreduce_time(n, 0.0, 1e-6, 1e9) < ring
    assert logtree.rabenseifner_allreduce_time(n, 0.0, 1e-6, 1e9) < ring
    assert logtree.recursive_doubling_allreduce_time(n, 8.0, 1e-6, 1e9) < coll.ring_allreduce_time(n, 8.0, 1e-6, 1e9)


# --- three backends -----------------------------------------------------------------------------

VALUES = {
    "n": [4.0, 8.0, 64.0],
    "size": [1e6, 1e9],
    "alpha": [1e-6, 5e-6],
    "beta": [25e9, 100e9],
    "n_chunks": [1.0, 8.0, 64.0],
    "n_nodes": [1.0, 2.0, 16.0],
    "n_devices_per_node": [1.0, 4.0, 8.0],
    "alpha_intra": [1e-6, 2e-6],
    "beta_intra": [100e9, 370e9],
    "alpha_inter": [5e-6, 8e-6],
    "beta_inter": [6e9, 48e9],
}

FUNCTIONS = [getattr(logtree, name) for name in logtree.__all__]


@pytest.mark.parametrize("func", FUNCTIONS, ids=lambda f: f.__name__)
def test_numpy_broadcasting_matches_loop(func):
    check_numpy_broadcasting(func, VALUES, rest="last")


@pytest.mark.parametrize("func", FUNCTIONS, ids=lambda f: f.__name__)
def test_sympy_matches_float(func):
    check_sympy_matches_float(func, VALUES)


def test_sympy_equals_typed_expressions():
    lg = lambda n: sp.log(n) / sp.log(2)  # noqa: E731
    typed = {
        logtree.binomial_tree_broadcast_time: lambda n, size, alpha, beta: lg(n) * (alpha + size / beta),
        logtree.double_binary_tree_allreduce_time: lambda n, size, alpha, beta: 2 * lg(n) * alpha + 2 * size / beta,
        logtree.double_binary_tree_broadcast_time: lambda n, size, alpha, beta: lg(n) * alpha + size / beta,
        logtree.recursive_doubling_allgather_time:
            lambda n, size, alpha, beta: lg(n) * alpha + (n - 1) * size / (n * beta),
        logtree.recursive_doubling_allreduce_time: lambda n, size, alpha, beta: lg(n) * (alpha + size / beta),
        logtree.rabenseifner_allreduce_time:
            lambda n, size, alpha, beta: 2 * lg(n) * alpha + 2 * (n - 1) * size / (n * beta),
        logtree.scatter_allgather_broadcast_time:
            lambda n, size, alpha, beta: (lg(n) + n - 1) * alpha + 2 * (n - 1) * size / (n * beta),
        logtree.bruck_alltoall_time: lambda n, size, alpha, beta: lg(n) * (alpha + size / (2 * beta)),
    }
    for func, expected in typed.items():
        assert_sympy_equals(func, expected)


@pytest.mark.parametrize("nodes, d", [(1, 8), (4, 1), (2, 4), (8, 2)])
def test_hierarchical_alltoall_is_pairwise_on_one_level_and_the_slower_level_otherwise(nodes, d):
    size, ai, bi, ae, be = 64e6, 1e-6, 300e9, 5e-6, 40e9
    got = logtree.hierarchical_alltoall_time(nodes, d, size, ai, bi, ae, be)
    if nodes == 1:
        assert got == pytest.approx(logtree.pairwise_alltoall_time(d, size, ai, bi))
    elif d == 1:
        assert got == pytest.approx(logtree.pairwise_alltoall_time(nodes, size, ae, be))
    else:
        n = nodes * d
        # never slower than sending every block over the network, never faster than the network's share
        assert got <= logtree.pairwise_alltoall_time(n, size, ae, be)
        assert got >= (nodes - 1) / nodes * size / be
