"""Tests of perfmodel.formulas.torus (2D and 3D torus, 2D mesh).

Truth comes from (a) the closed forms of Grama et al. (2003) Table 2.1 and Dally & Towles (2004)
Ch. 5 typed in again, and (b) brute force on the actual grids: breadth-first search for hop
counts and exhaustive enumeration of balanced cuts for the bisection, on small instances
(tests/formulas/graphs.py).
"""

from __future__ import annotations

import pytest
import sympy as sp

from perfmodel.formulas import torus
from tests.formulas.backends import (
    assert_sympy_equals,
    check_numpy_broadcasting,
    check_sympy_matches_float,
)
from tests.formulas.graphs import BETA, check_graph, grid

# --- brute force against the formulas ----------------------------------------------------------


@pytest.mark.parametrize("dims", [(4, 4), (3, 4), (5, 3), (6, 4), (5, 5)])
def test_torus2d_graph(dims):
    x, y = dims
    bisection = torus.torus2d_bisection_bandwidth(x, y, BETA) if max(dims) % 2 == 0 and x * y <= 16 else None
    check_graph(grid(dims, wrap=True), torus.torus2d_diameter(x, y), torus.torus2d_average_hops(x, y), bisection,
                torus.torus2d_links_per_node(x, y), torus.torus2d_total_links(x, y))


@pytest.mark.parametrize("dims", [(3, 3, 3), (4, 4, 4), (3, 4, 5)])
def test_torus3d_graph(dims):
    x, y, z = dims
    check_graph(grid(dims, wrap=True), torus.torus3d_diameter(x, y, z), torus.torus3d_average_hops(x, y, z), None,
                torus.torus3d_links_per_node(x, y, z), torus.torus3d_total_links(x, y, z))


def test_torus3d_bisection_brute_force():
    # 2 x 2 x 4 torus as a multigraph (length-2 rings have their two links in parallel)
    assert grid((2, 2, 4), wrap=True).bisection() == pytest.approx(torus.torus3d_bisection_bandwidth(2, 2, 4, BETA))


@pytest.mark.parametrize("dims", [(4, 4), (3, 4), (5, 3), (2, 6)])
def test_mesh2d_graph(dims):
    x, y = dims
    bisection = torus.mesh2d_bisection_bandwidth(x, y, BETA) if max(dims) % 2 == 0 else None
    degree = torus.mesh2d_links_per_node(x, y) if min(dims) >= 3 else None
    check_graph(grid(dims, wrap=False), torus.mesh2d_diameter(x, y), torus.mesh2d_average_hops(x, y), bisection,
                degree, torus.mesh2d_total_links(x, y))


# --- published closed forms, typed again -------------------------------------------------------


def test_grama_table_2_1_values():
    # Grama et al. (2003) Table 2.1 for p = 16:
    # 2D wraparound mesh 4x4: diameter 2*floor(sqrt(p)/2) = 4, bisection 2*sqrt(p) = 8, links 2p = 32;
    # 2D mesh 4x4: diameter 2(sqrt(p)-1) = 6, bisection sqrt(p) = 4, links 2(p - sqrt(p)) = 24.
    # (The hypercube and completely connected rows are in test_topology.py.)
    assert torus.torus2d_diameter(4, 4) == 4
    assert torus.torus2d_bisection_bandwidth(4, 4, 1.0) == 8
    assert torus.torus2d_total_links(4, 4) == 32
    assert torus.mesh2d_diameter(4, 4) == 6
    assert torus.mesh2d_bisection_bandwidth(4, 4, 1.0) == 4
    assert torus.mesh2d_total_links(4, 4) == 24


def test_dally_towles_torus_hmin():
    # Dally & Towles (2004) Ch. 5: H_min = n k / 4 (k even), n (k/4 - 1/(4k)) (k odd), over all N^2
    # pairs; our average excludes self pairs: H_min * N / (N - 1).
    for k, dims in [(8, 2), (7, 2), (4, 3), (5, 3)]:
        hmin = dims * k / 4 if k % 2 == 0 else dims * (k / 4 - 1 / (4 * k))
        total = k**dims
        got = torus.torus2d_average_hops(k, k) if dims == 2 else torus.torus3d_average_hops(k, k, k)
        assert got == pytest.approx(hmin * total / (total - 1), rel=1e-12)
        # and the channel bisection B_C = 4 k^(n-1) counts both directions: ours is half of it
        got_b = torus.torus2d_bisection_bandwidth(k, k, 1.0) if dims == 2 else torus.torus3d_bisection_bandwidth(
            k, k, k, 1.0)
        if k % 2 == 0:
            assert got_b == 4 * k ** (dims - 1) / 2


# --- three backends -----------------------------------------------------------------------------

VALUES = {
    "beta": [1e9, 25e9],
    "dim_x": [3.0, 4.0, 5.0],
    "dim_y": [4.0, 6.0],
    "dim_z": [3.0, 8.0],
}

FUNCTIONS = [getattr(torus, name) for name in torus.__all__]


@pytest.mark.parametrize("func", FUNCTIONS, ids=lambda f: f.__name__)
def test_numpy_broadcasting_matches_loop(func):
    check_numpy_broadcasting(func, VALUES, rest="first")


@pytest.mark.parametrize("func", FUNCTIONS, ids=lambda f: f.__name__)
def test_sympy_matches_float(func):
    check_sympy_matches_float(func, VALUES)


def test_sympy_equals_typed_expressions():
    f = sp.floor
    assert_sympy_equals(torus.torus3d_diameter, lambda dim_x, dim_y, dim_z: f(dim_x / 2) + f(dim_y / 2) + f(dim_z / 2))
    assert_sympy_equals(
        torus.torus3d_bisection_bandwidth,
        lambda dim_x, dim_y, dim_z, beta: 2 * dim_x * dim_y * dim_z * beta / sp.Max(dim_x, dim_y, dim_z))
    assert_sympy_equals(torus.torus2d_bisection_bandwidth, lambda dim_x, dim_y, beta: 2 * sp.Min(dim_x, dim_y) * beta)
    assert_sympy_equals(torus.mesh2d_average_hops,
                        lambda dim_x, dim_y: (dim_x * dim_y) / (dim_x * dim_y - 1)
                        * ((dim_x**2 - 1) / (3 * dim_x) + (dim_y**2 - 1) / (3 * dim_y)))
