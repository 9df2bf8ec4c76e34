"""Tests of perfmodel.formulas.switched (switch, k-ary tree, fat tree, hierarchical system).

Truth comes from (a) closed forms typed in again, and (b) brute force on the actual graphs with
their switches: breadth-first search for hop counts and exhaustive enumeration of balanced cuts
(switches placed on either side) for the bisection, on small instances (tests/formulas/graphs.py).
"""

from __future__ import annotations

import pytest
import sympy as sp

from perfmodel.formulas import switched as sw
from tests.formulas.backends import (
    assert_sympy_equals,
    check_numpy_broadcasting,
    check_sympy_matches_float,
)
from tests.formulas.graphs import (
    BETA,
    check_graph,
    fat_tree,
    hierarchical,
    kary_tree,
    star,
)

# --- brute force against the formulas ----------------------------------------------------------


@pytest.mark.parametrize("n", [2, 7, 8])
def test_switch_graph(n):
    check_graph(star(n), sw.switch_diameter(n), sw.switch_average_hops(n),
                sw.switch_bisection_bandwidth(n, BETA), sw.switch_links_per_node(n), sw.switch_total_links(n))


@pytest.mark.parametrize("levels,k", [(3, 2), (2, 2), (1, 6), (2, 4), (2, 3)])
def test_kary_tree_graph(levels, k):
    n = k**levels
    g = kary_tree(levels, k)
    bisection = sw.kary_tree_bisection_bandwidth(n, k, BETA) if k % 2 == 0 or levels == 1 else None
    if n > 12:  # enumeration of every balanced cut is too slow; hop counts only
        bisection = None
    check_graph(g, sw.kary_tree_diameter(n, k), sw.kary_tree_average_hops(n, k), bisection,
                sw.kary_tree_links_per_node(n, k), sw.kary_tree_total_links(n, k))


def test_kary_tree_odd_arity_bisection_is_a_lower_bound():
    g = kary_tree(2, 3)  # 9 leaves: the best 4/5 split needs 2 links, the formula says 1
    assert g.bisection() >= sw.kary_tree_bisection_bandwidth(9, 3, BETA)


@pytest.mark.parametrize("n,p,o", [(8, 2, 1), (8, 2, 2), (8, 4, 4), (8, 2, 0.5), (4, 4, 2), (12, 3, 3)])
def test_fat_tree_graph(n, p, o):
    bisection = sw.fat_tree_bisection_bandwidth(n, p, BETA, o) if (n // p) % 2 == 0 or n == p else None
    check_graph(fat_tree(n, p, o), sw.fat_tree_diameter(n, p), sw.fat_tree_average_hops(n, p), bisection,
                sw.fat_tree_links_per_node(n))


def test_fat_tree_total_links_counts_physical_uplinks():
    # 64 nodes, 16 per leaf, 2:1 -> 8 uplinks of beta per leaf, 4 leaves: 64 + 32
    assert sw.fat_tree_total_links(64, 2) == 96
    assert sw.fat_tree_leaf_uplink_bandwidth(16, 1e9, 2) == 8e9


@pytest.mark.parametrize("nodes,d", [(2, 4), (4, 2), (1, 4)])
def test_hierarchical_graph(nodes, d):
    g = hierarchical(nodes, d, beta_intra=10 * BETA, beta_inter=BETA)
    bisection = sw.hierarchical_bisection_bandwidth(nodes, d, BETA) if nodes % 2 == 0 else None
    check_graph(g, sw.hierarchical_diameter(nodes, d), sw.hierarchical_average_hops(nodes, d), bisection)
    # device links + one network link per device (the graph merges a node's d NIC links into one)
    assert sw.hierarchical_total_links(nodes, d) == len(g.edges) - nodes + nodes * d
    assert sw.hierarchical_links_per_node(nodes, d) == 1


# --- closed forms -------------------------------------------------------------------------------


def test_blocking_switch_bisection():
    # non-blocking when the backplane carries every port: 8 ports of 1 GB/s, backplane 8 GB/s
    assert sw.blocking_switch_bisection_bandwidth(8, 1e9, 8e9) == sw.switch_bisection_bandwidth(8, 1e9)
    # 2:1 blocking backplane (4 GB/s): 2 GB/s each way instead of 4
    assert sw.blocking_switch_bisection_bandwidth(8, 1e9, 4e9) == 2e9


# --- three backends -----------------------------------------------------------------------------

VALUES = {
    "n": [4.0, 16.0, 64.0],
    "beta": [1e9, 25e9],
    "arity": [2.0, 4.0],
    "backplane_bandwidth": [4e9, 1e12],
    "n_nodes_per_leaf": [4.0, 16.0],
    "oversubscription": [0.5, 1.0, 3.0],
    "n_nodes": [1.0, 2.0, 8.0],
    "n_devices_per_node": [4.0, 8.0],
    "beta_inter": [25e9, 50e9],
}

FUNCTIONS = [getattr(sw, name) for name in sw.__all__]


@pytest.mark.parametrize("func", FUNCTIONS, ids=lambda f: f.__name__)
def test_numpy_broadcasting_matches_loop(func):
    check_numpy_broadcasting(func, VALUES, rest="first")


@pytest.mark.parametrize("func", FUNCTIONS, ids=lambda f: f.__name__)
def test_sympy_matches_float(func):
    check_sympy_matches_float(func, VALUES)


def test_sympy_equals_typed_expressions():
    assert_sympy_equals(sw.kary_tree_diameter, lambda n, arity: 2 * sp.log(n) / sp.log(arity))
    assert_sympy_equals(sw.fat_tree_average_hops,
                        lambda n, n_nodes_per_leaf: (4 * n - 2 * n_nodes_per_leaf - 2) / (n - 1))
    assert_sympy_equals(sw.hierarchical_bisection_bandwidth,
                        lambda n_nodes, n_devices_per_node, beta_inter: n_nodes * n_devices_per_node * beta_inter / 2)
