"""Tests of perfmodel.formulas.treecoll (collectives on trees of switches, fat trees, two-level systems).

Truth: the max-min flow simulator (tests/formulas/flowsim.py) run on the actual links of a binary tree
of switches and of a leaf-spine fat tree, with the algorithms' steps as flows; the textbook forms the
two-level ones are built from; and the expressions typed from the docstrings (sympy).
"""

from __future__ import annotations

import inspect
import math

import pytest
import sympy as sp

from perfmodel.formulas import collectives as coll
from perfmodel.formulas import contention as cont
from perfmodel.formulas import logtree
from perfmodel.formulas import treecoll as tc
from tests.formulas.backends import (
    assert_sympy_equals,
    assert_sympy_matches_float,
    check_each_parameter_on_its_own_axis,
)
from tests.formulas.flowsim import (
    ALPHA,
    BETA,
    DELTA,
    S,
    fat_tree_capacity,
    phase_time,
    run,
)

# --- the binary tree of switches in the simulator --------------------------------------------------


def tree_route(src, dst, levels):
    """Links from leaf src up to the lowest common ancestor and down to leaf dst."""
    up, down = [], []
    a, b, level = src, dst, levels
    while a != b:
        up.append(("up", level, a))
        down.append(("down", level, b))
        a, b, level = a // 2, b // 2, level - 1
    return up + down[::-1]


def tree_capacity(levels):
    cap = {}
    for level in range(1, levels + 1):
        for i in range(2**level):
            cap[("up", level, i)] = cap[("down", level, i)] = BETA
    return cap


def _recursive_phases(n, route, sizes):
    return [[(route(r, r ^ dist), nbytes) for r in range(n)] for dist, nbytes in sizes]


@pytest.mark.parametrize("n", [2, 4, 8, 16, 32])
def test_recursive_doubling_on_a_binary_tree_matches_the_simulator(n):
    levels = int(math.log2(n))
    route = lambda s, d: tree_route(s, d, levels)  # noqa: E731
    cap = tree_capacity(levels)
    ag = [(2**i, 2**i * S / n) for i in range(levels)]
    sim_ag = run(_recursive_phases(n, route, ag), cap, ALPHA, DELTA)
    assert sim_ag == pytest.approx(tc.recursive_doubling_allgather_binary_tree_time(n, S, ALPHA, BETA, DELTA), rel=1e-9)
    sim_rs = run(_recursive_phases(n, route, ag[::-1]), cap, ALPHA, DELTA)
    assert sim_rs == pytest.approx(tc.recursive_halving_reduce_scatter_binary_tree_time(n, S, ALPHA, BETA, DELTA),
                                   rel=1e-9)
    assert sim_ag + sim_rs == pytest.approx(tc.rabenseifner_allreduce_binary_tree_time(n, S, ALPHA, BETA, DELTA),
                                            rel=1e-9)
    ar = [(2**i, S) for i in range(levels)]
    sim_ar = run(_recursive_phases(n, route, ar), cap, ALPHA, DELTA)
    assert sim_ar == pytest.approx(tc.recursive_doubling_allreduce_binary_tree_time(n, S, ALPHA, BETA, DELTA), rel=1e-9)


@pytest.mark.parametrize("n", [2, 4, 8, 32])
def test_binomial_broadcast_on_a_binary_tree_matches_the_simulator(n):
    levels = int(math.log2(n))
    phases = []
    for j in range(1, levels + 1):
        spacing, dist = n // 2 ** (j - 1), n // 2**j
        phases.append([(tree_route(r, r + dist, levels), S) for r in range(0, n, spacing)])
    sim = run(phases, tree_capacity(levels), ALPHA, DELTA)
    assert sim == pytest.approx(tc.binomial_broadcast_binary_tree_time(n, S, ALPHA, BETA, DELTA), rel=1e-9)


def test_a_thin_tree_slows_recursive_doubling_by_its_root_link():
    n = 64
    placed = tc.recursive_doubling_allgather_binary_tree_time(n, 1e9, 0.0, BETA, 0.0)
    textbook = logtree.recursive_doubling_allgather_time(n, 1e9, 0.0, BETA)
    assert placed / textbook == pytest.approx((n + 1) / 3)


# --- the leaf-spine fat tree in the simulator ------------------------------------------------------


def fat_route(p):
    def route(s, d):
        if s // p == d // p:
            return [("up", s), ("down", d)]
        return [("up", s), ("leaf_up", s // p), ("leaf_down", d // p), ("down", d)]

    return route


@pytest.mark.parametrize("n,p", [(8, 2), (16, 4), (32, 4), (16, 8)])
@pytest.mark.parametrize("o", [0.5, 1.0, 2.0, 4.0])
def test_recursive_doubling_on_a_fat_tree_matches_the_simulator(n, p, o):
    cap, route = fat_tree_capacity(n, p, BETA, o), fat_route(p)
    levels = int(math.log2(n))
    ag = [(2**i, 2**i * S / n) for i in range(levels)]
    sim = run(_recursive_phases(n, route, ag), cap, ALPHA, DELTA)
    assert sim == pytest.approx(tc.recursive_doubling_allgather_fat_tree_time(n, S, ALPHA, BETA, DELTA, o, p), rel=1e-9)
    sim_rs = run(_recursive_phases(n, route, ag[::-1]), cap, ALPHA, DELTA)
    assert sim_rs == pytest.approx(tc.recursive_halving_reduce_scatter_fat_tree_time(n, S, ALPHA, BETA, DELTA, o, p),
                                   rel=1e-9)
    assert sim + sim_rs == pytest.approx(tc.rabenseifner_allreduce_fat_tree_time(n, S, ALPHA, BETA, DELTA, o, p),
                                         rel=1e-9)
    ar = [(2**i, S) for i in range(levels)]
    sim_ar = run(_recursive_phases(n, route, ar), cap, ALPHA, DELTA)
    assert sim_ar == pytest.approx(tc.recursive_doubling_allreduce_fat_tree_time(n, S, ALPHA, BETA, DELTA, o, p),
                                   rel=1e-9)


@pytest.mark.parametrize("n,p", [(8, 2), (16, 4), (32, 8)])
@pytest.mark.parametrize("o", [1.0, 4.0, 16.0])
def test_binomial_broadcast_and_chains_on_a_fat_tree_match_the_simulator(n, p, o):
    cap, route = fat_tree_capacity(n, p, BETA, o), fat_route(p)
    phases = []
    for j in range(1, int(math.log2(n)) + 1):
        spacing, dist = n // 2 ** (j - 1), n // 2**j
        phases.append([(route(r, r + dist), S) for r in range(0, n, spacing)])
    sim = run(phases, cap, ALPHA, DELTA)
    assert sim == pytest.approx(tc.binomial_broadcast_fat_tree_time(n, S, ALPHA, BETA, DELTA, o, p), rel=1e-9)
    # ring all-gather: n - 1 steps of S/n along the ring in rank order
    ring = [(route(r, (r + 1) % n), S / n) for r in range(n)]
    assert run([ring] * (n - 1), cap, ALPHA, DELTA) == pytest.approx(
        tc.contiguous_ring_allgather_fat_tree_time(n, S, ALPHA, BETA, DELTA, o, p), rel=1e-9)
    # pipelined chain: every steady-state step moves S/c on each of the n - 1 chain edges
    c = 16
    step = phase_time([(route(r, r + 1), S / c) for r in range(n - 1)], cap, ALPHA, DELTA)
    assert (n + c - 2) * step == pytest.approx(
        tc.contiguous_pipelined_broadcast_fat_tree_time(n, S, ALPHA, BETA, DELTA, o, p, c), rel=1e-9)


def test_ring_allgather_on_a_fat_tree_is_half_the_allreduce():
    args = (16, S, ALPHA, BETA, DELTA, 8.0, 4)
    assert 2 * tc.contiguous_ring_allgather_fat_tree_time(*args) == pytest.approx(
        cont.contiguous_ring_allreduce_fat_tree_time(*args))


# --- two-level system ------------------------------------------------------------------------------


def test_two_level_forms_are_their_levels_textbook_forms():
    nodes, d, ai, bi, ae, be = 4, 8, 1e-6, 300e9, 5e-6, 25e9
    ag = coll.ring_allgather_time(nodes, S / d, ae, be) + coll.ring_allgather_time(d, S, ai, bi)
    assert tc.hierarchical_allgather_time(nodes, d, S, ai, bi, ae, be) == pytest.approx(ag)
    assert tc.hierarchical_reduce_scatter_time(nodes, d, S, ai, bi, ae, be) == pytest.approx(ag)
    bc = logtree.binomial_tree_broadcast_time(nodes, S, ae, be) + logtree.binomial_tree_broadcast_time(d, S, ai, bi)
    assert tc.hierarchical_broadcast_time(nodes, d, S, ai, bi, ae, be) == pytest.approx(bc)
    # one node: the two-level forms are the node's own ring / tree
    assert tc.hierarchical_allgather_time(1, d, S, ai, bi, ae, be) == pytest.approx(coll.ring_allgather_time(d, S, ai, bi))
    # a binomial tree of 6 ranks needs 3 rounds
    assert tc.hierarchical_broadcast_time(6, 1, S, ai, bi, ae, be) == pytest.approx(3 * (ae + S / be))
    chain = tc.hierarchical_pipelined_broadcast_time(nodes, d, S, ai, bi, ae, be, 32)
    assert chain == pytest.approx(coll.pipelined_ring_broadcast_time(nodes * d, S, ae, be, 32))


# --- backends ------------------------------------------------------------------------------------

log2 = lambda x: sp.log(x, 2)  # noqa: E731
_RD_FAT = lambda n, size, alpha, beta, hop_latency, oversubscription, n_nodes_per_leaf: (  # noqa: E731
    log2(n) * alpha + (2 * log2(n_nodes_per_leaf) + 4 * log2(n / n_nodes_per_leaf)) * hop_latency
    + ((n_nodes_per_leaf - 1) + sp.Max(1, oversubscription) * (n - n_nodes_per_leaf)) * size / (n * beta))
EXPECTED = {
    tc.recursive_doubling_allgather_binary_tree_time: lambda n, size, alpha, beta, hop_latency: (
        log2(n) * alpha + log2(n) * (log2(n) + 1) * hop_latency + (n**2 - 1) / (3 * n) * size / beta),
    tc.recursive_doubling_allreduce_binary_tree_time: lambda n, size, alpha, beta, hop_latency: (
        log2(n) * alpha + log2(n) * (log2(n) + 1) * hop_latency + (n - 1) * size / beta),
    tc.binomial_broadcast_binary_tree_time: lambda n, size, alpha, beta, hop_latency: (
        log2(n) * (alpha + size / beta) + log2(n) * (log2(n) + 1) * hop_latency),
    tc.recursive_doubling_allgather_fat_tree_time: _RD_FAT,
    tc.rabenseifner_allreduce_fat_tree_time: lambda **k: 2 * _RD_FAT(**k),
    tc.contiguous_ring_allgather_fat_tree_time:
        lambda n, size, alpha, beta, hop_latency, oversubscription, n_nodes_per_leaf: (n - 1) * (
            alpha + 4 * hop_latency + sp.Max(1, oversubscription / n_nodes_per_leaf) * size / (n * beta)),
    tc.binomial_broadcast_fat_tree_time:
        lambda n, size, alpha, beta, hop_latency, oversubscription, n_nodes_per_leaf: (
            log2(n) * alpha + (2 * log2(n_nodes_per_leaf) + 4 * log2(n / n_nodes_per_leaf)) * hop_latency
            + (log2(n_nodes_per_leaf) + sp.Max(1, oversubscription / n_nodes_per_leaf) * log2(n / n_nodes_per_leaf))
            * size / beta),
    tc.hierarchical_allgather_time:
        lambda n_nodes, n_devices_per_node, size, alpha_intra, beta_intra, alpha_inter, beta_inter: (
            (n_nodes - 1) * alpha_inter + (n_nodes - 1) * size / (n_nodes * n_devices_per_node * beta_inter)
            + (n_devices_per_node - 1) * alpha_intra + (n_devices_per_node - 1) * size / (n_devices_per_node * beta_intra)),
}
ARGS = {"n": [8.0, 32.0], "size": [1e6, 1e9], "alpha": [0.0, 5e-6], "beta": [25e9, 100e9],
        "hop_latency": [1e-7, 1e-6], "oversubscription": [0.5, 4.0], "n_nodes_per_leaf": [2.0, 4.0],
        "n_nodes": [2.0, 6.0], "n_devices_per_node": [4.0, 8.0], "alpha_intra": [1e-6, 2e-6],
        "beta_intra": [3e11, 1e11], "alpha_inter": [5e-6, 1e-5], "beta_inter": [25e9, 50e9], "n_chunks": [1.0, 16.0]}
ALL = [getattr(tc, name) for name in tc.__all__]


@pytest.mark.parametrize("func", list(EXPECTED), ids=lambda f: f.__name__)
def test_sympy_equals_the_typed_expression(func):
    assert_sympy_equals(func, EXPECTED[func])


@pytest.mark.parametrize("func", ALL, ids=lambda f: f.__name__)
def test_numpy_broadcasting_matches_a_loop_and_sympy_the_floats(func):
    names = list(inspect.signature(func).parameters)
    check_each_parameter_on_its_own_axis(func, ARGS)
    assert_sympy_matches_float(func, **{name: ARGS[name][-1] for name in names})
