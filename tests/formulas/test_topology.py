"""Tests of perfmodel.formulas.topology (fully connected, rings, hypercube).

Truth comes from (a) the closed forms of Grama et al. (2003) Table 2.1 and Dally & Towles (2004)
Ch. 5 typed in again, and (b) brute force on the actual graphs: breadth-first search for hop
counts and exhaustive enumeration of balanced cuts for the bisection, on small instances
(tests/formulas/graphs.py).
"""

from __future__ import annotations

import pytest
import sympy as sp

from perfmodel.formulas import topology as topo
from tests.formulas.backends import (
    assert_sympy_equals,
    check_numpy_broadcasting,
    check_sympy_matches_float,
)
from tests.formulas.graphs import BETA, check_graph, fully_connected, hypercube, ring

# --- brute force against the formulas ----------------------------------------------------------


@pytest.mark.parametrize("n", [2, 5, 8])
def test_fully_connected_graph(n):
    check_graph(fully_connected(n), topo.fully_connected_diameter(n), topo.fully_connected_average_hops(n),
                topo.fully_connected_bisection_bandwidth(n, BETA), topo.fully_connected_links_per_node(n),
                topo.fully_connected_total_links(n))


@pytest.mark.parametrize("n", [3, 8, 9])
def test_unidirectional_ring_graph(n):
    check_graph(ring(n, directed=True), topo.unidirectional_ring_diameter(n),
                topo.unidirectional_ring_average_hops(n), topo.unidirectional_ring_bisection_bandwidth(n, BETA),
                topo.unidirectional_ring_links_per_node(n), topo.unidirectional_ring_total_links(n))


@pytest.mark.parametrize("n", [3, 8, 9, 12, 13])
def test_ring_graph(n):
    check_graph(ring(n), topo.ring_diameter(n), topo.ring_average_hops(n), topo.ring_bisection_bandwidth(n, BETA),
                topo.ring_links_per_node(n), topo.ring_total_links(n))


@pytest.mark.parametrize("d", [1, 2, 3, 4])
def test_hypercube_graph(d):
    n = 2**d
    check_graph(hypercube(d), topo.hypercube_diameter(n), topo.hypercube_average_hops(n),
                topo.hypercube_bisection_bandwidth(n, BETA), topo.hypercube_links_per_node(n),
                topo.hypercube_total_links(n))


# --- published closed forms, typed again -------------------------------------------------------


def test_grama_table_2_1_values():
    # Grama et al. (2003) Table 2.1 for p = 16: hypercube diameter log p = 4, bisection width p/2 = 8,
    # links (p log p)/2 = 32; completely connected: bisection p^2/4 = 64, links p(p-1)/2 = 120.
    # (The 2D mesh and wraparound mesh rows are in test_torus.py.)
    assert topo.hypercube_diameter(16) == 4
    assert topo.hypercube_bisection_bandwidth(16, 1.0) == 8
    assert topo.hypercube_total_links(16) == 32
    assert topo.fully_connected_bisection_bandwidth(16, 1.0) == 64
    assert topo.fully_connected_total_links(16) == 120


def test_odd_and_even_ring_lengths():
    # bidirectional ring: n^2/(4(n-1)) for even n, (n+1)/4 for odd n
    assert topo.ring_average_hops(10) == pytest.approx(100 / 36)
    assert topo.ring_average_hops(11) == pytest.approx(3.0)
    assert topo.ring_diameter(10) == 5 and topo.ring_diameter(11) == 5


# --- three backends -----------------------------------------------------------------------------

VALUES = {
    "n": [4.0, 16.0, 64.0],
    "beta": [1e9, 25e9],
}

FUNCTIONS = [getattr(topo, name) for name in topo.__all__]


@pytest.mark.parametrize("func", FUNCTIONS, ids=lambda f: f.__name__)
def test_numpy_broadcasting_matches_loop(func):
    check_numpy_broadcasting(func, VALUES, rest="first")


@pytest.mark.parametrize("func", FUNCTIONS, ids=lambda f: f.__name__)
def test_sympy_matches_float(func):
    check_sympy_matches_float(func, VALUES)


def test_sympy_equals_typed_expressions():
    f = sp.floor
    assert_sympy_equals(topo.ring_average_hops, lambda n: f(n / 2) * (n - f(n / 2)) / (n - 1))
    assert_sympy_equals(topo.hypercube_average_hops, lambda n: n * sp.log(n, 2) / (2 * (n - 1)))
    assert_sympy_equals(topo.fully_connected_total_links, lambda n: n**2 / 2 - n / 2)
