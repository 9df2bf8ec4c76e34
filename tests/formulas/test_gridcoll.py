"""Tests of perfmodel.formulas.gridcoll (dimension-ordered collectives on tori and meshes).

Truth: the textbook ring and chain forms the dimension phases are made of (each phase a ring over
one line of the grid on the share the previous phases left), the flow simulator for the ring
embedded in a line of a mesh (dilation 2, no link shared), and the expressions typed from the
docstrings (sympy).
"""

from __future__ import annotations

import inspect

import pytest
import sympy as sp

from perfmodel.formulas import collectives as coll
from perfmodel.formulas import gridcoll as gc
from perfmodel.formulas import mapped as mp
from tests.formulas.backends import (
    assert_sympy_equals,
    assert_sympy_matches_float,
    check_each_parameter_on_its_own_axis,
)
from tests.formulas.flowsim import ALPHA, BETA, DELTA, S, run

A1 = ALPHA + DELTA  # one hop per step on a torus line
A2 = ALPHA + 2 * DELTA  # the mesh's embedded ring: two hops per step


@pytest.mark.parametrize("kx,ky", [(2, 2), (4, 4), (8, 4), (3, 5)])
def test_torus2d_phases_are_bidirectional_rings(kx, ky):
    rs_x = mp.bidirectional_ring_reduce_scatter_time(kx, S, A1, BETA)
    ar_y = coll.bidirectional_ring_allreduce_time(ky, S / kx, A1, BETA)
    assert gc.torus2d_ring_allreduce_time(kx, ky, S, ALPHA, BETA, DELTA) == pytest.approx(2 * rs_x + ar_y)
    ag = mp.bidirectional_ring_allgather_time(kx, S / ky, A1, BETA) + mp.bidirectional_ring_allgather_time(ky, S, A1, BETA)
    assert gc.torus2d_ring_allgather_time(kx, ky, S, ALPHA, BETA, DELTA) == pytest.approx(ag)
    assert gc.torus2d_ring_reduce_scatter_time(kx, ky, S, ALPHA, BETA, DELTA) == pytest.approx(ag)
    bc = (mp.bidirectional_pipelined_ring_broadcast_time(kx, S, A1, BETA, 16)
          + mp.bidirectional_pipelined_ring_broadcast_time(ky, S, A1, BETA, 16))
    assert gc.torus2d_pipelined_broadcast_time(kx, ky, S, ALPHA, BETA, DELTA, 16) == pytest.approx(bc)


@pytest.mark.parametrize("dims", [(2, 2, 2), (4, 4, 4), (8, 4, 2), (3, 3, 5)])
def test_torus3d_phases_are_bidirectional_rings(dims):
    kx, ky, kz = dims
    rs = (mp.bidirectional_ring_reduce_scatter_time(kx, S, A1, BETA)
          + mp.bidirectional_ring_reduce_scatter_time(ky, S / kx, A1, BETA))
    ar = coll.bidirectional_ring_allreduce_time(kz, S / (kx * ky), A1, BETA)
    assert gc.torus3d_ring_allreduce_time(kx, ky, kz, S, ALPHA, BETA, DELTA) == pytest.approx(2 * rs + ar)
    ag = (mp.bidirectional_ring_allgather_time(kx, S / (ky * kz), A1, BETA)
          + mp.bidirectional_ring_allgather_time(ky, S / kz, A1, BETA) + mp.bidirectional_ring_allgather_time(kz, S, A1, BETA))
    assert gc.torus3d_ring_allgather_time(kx, ky, kz, S, ALPHA, BETA, DELTA) == pytest.approx(ag)
    assert gc.torus3d_ring_reduce_scatter_time(kx, ky, kz, S, ALPHA, BETA, DELTA) == pytest.approx(ag)
    bc = sum(mp.bidirectional_pipelined_ring_broadcast_time(k, S, A1, BETA, 8) for k in dims)
    assert gc.torus3d_pipelined_broadcast_time(kx, ky, kz, S, ALPHA, BETA, DELTA, 8) == pytest.approx(bc)


@pytest.mark.parametrize("kx,ky", [(4, 4), (8, 2), (3, 5)])
def test_mesh2d_phases_are_rings_with_two_hops_and_chains(kx, ky):
    ar = (2 * coll.ring_reduce_scatter_time(kx, S, A2, BETA) + coll.ring_allreduce_time(ky, S / kx, A2, BETA))
    assert gc.mesh2d_ring_allreduce_time(kx, ky, S, ALPHA, BETA, DELTA) == pytest.approx(ar)
    ag = coll.ring_allgather_time(kx, S / ky, A2, BETA) + coll.ring_allgather_time(ky, S, A2, BETA)
    assert gc.mesh2d_ring_allgather_time(kx, ky, S, ALPHA, BETA, DELTA) == pytest.approx(ag)
    assert gc.mesh2d_ring_reduce_scatter_time(kx, ky, S, ALPHA, BETA, DELTA) == pytest.approx(ag)
    bc = sum(coll.pipelined_ring_broadcast_time(k, S, A1, BETA, 16) for k in (kx, ky))
    assert gc.mesh2d_pipelined_broadcast_time(kx, ky, S, ALPHA, BETA, DELTA, 16) == pytest.approx(bc)


@pytest.mark.parametrize("k", [3, 4, 5, 8])
def test_a_ring_embedded_in_a_line_shares_no_link(k):
    """Even positions outwards, odd ones back: every ring edge spans <= 2 links, each used once a way."""
    order = list(range(0, k, 2)) + list(range(k - 1 - (k % 2 == 1), 0, -2))
    assert sorted(order) == list(range(k))
    cap = {(i, i + 1): BETA for i in range(k - 1)}
    cap.update({(i + 1, i): BETA for i in range(k - 1)})

    def route(a, b):
        step = 1 if b > a else -1
        return [(i, i + step) for i in range(a, b, step)]

    ring = [(route(order[i], order[(i + 1) % k]), S / k) for i in range(k)]
    sim = run([ring] * (k - 1), cap, ALPHA, DELTA)
    assert sim == pytest.approx(coll.ring_allgather_time(k, S, A2, BETA), rel=1e-9)


def test_more_dimensions_cut_the_latency_term_at_the_same_bandwidth_term():
    """64 nodes: ring 126 steps, 8x8 torus 28, 4x4x4 torus 18; every torus all-gather moves (n-1)/n S/2."""
    n = 64
    ring = coll.bidirectional_ring_allreduce_time(n, 0.0, 1.0, BETA)
    t2 = gc.torus2d_ring_allreduce_time(8, 8, 0.0, 1.0, BETA, 0.0)
    t3 = gc.torus3d_ring_allreduce_time(4, 4, 4, 0.0, 1.0, BETA, 0.0)
    assert (ring, t2, t3) == (126, 28, 18)
    ag2 = gc.torus2d_ring_allgather_time(8, 8, S, 0.0, BETA, 0.0)
    ag3 = gc.torus3d_ring_allgather_time(4, 4, 4, S, 0.0, BETA, 0.0)
    assert ag2 == pytest.approx(ag3) == pytest.approx(mp.bidirectional_ring_allgather_time(n, S, 0.0, BETA))


# --- backends ------------------------------------------------------------------------------------

EXPECTED = {
    gc.torus2d_ring_allreduce_time: lambda dim_x, dim_y, size, alpha, beta, hop_latency: (
        2 * (dim_x - 1) * (alpha + hop_latency) + (dim_x - 1) * size / (dim_x * beta)
        + 2 * (dim_y - 1) * (alpha + hop_latency) + (dim_y - 1) * size / (dim_y * dim_x * beta)),
    gc.torus2d_ring_allgather_time: lambda dim_x, dim_y, size, alpha, beta, hop_latency: (
        (dim_x + dim_y - 2) * (alpha + hop_latency) + (dim_x * dim_y - 1) * size / (2 * dim_x * dim_y * beta)),
    gc.torus3d_ring_allgather_time: lambda dim_x, dim_y, dim_z, size, alpha, beta, hop_latency: (
        (dim_x + dim_y + dim_z - 3) * (alpha + hop_latency)
        + (dim_x * dim_y * dim_z - 1) * size / (2 * dim_x * dim_y * dim_z * beta)),
    gc.mesh2d_ring_allgather_time: lambda dim_x, dim_y, size, alpha, beta, hop_latency: (
        (dim_x + dim_y - 2) * (alpha + 2 * hop_latency) + (dim_x * dim_y - 1) * size / (dim_x * dim_y * beta)),
    gc.torus2d_pipelined_broadcast_time: lambda dim_x, dim_y, size, alpha, beta, hop_latency, n_chunks: (
        (dim_x + dim_y + 2 * n_chunks - 4) * (alpha + hop_latency + size / (2 * n_chunks * beta))),
}
ARGS = {"dim_x": [4.0, 8.0], "dim_y": [2.0, 4.0], "dim_z": [3.0, 4.0], "size": [1e6, 1e9], "alpha": [0.0, 5e-6],
        "beta": [25e9, 100e9], "hop_latency": [1e-7, 1e-6], "n_chunks": [1.0, 16.0]}
ALL = [getattr(gc, name) for name in gc.__all__]


@pytest.mark.parametrize("func", list(EXPECTED), ids=lambda f: f.__name__)
def test_sympy_equals_the_typed_expression(func):
    assert_sympy_equals(func, EXPECTED[func])


@pytest.mark.parametrize("func", ALL, ids=lambda f: f.__name__)
def test_numpy_broadcasting_matches_a_loop_and_sympy_the_floats(func):
    names = list(inspect.signature(func).parameters)
    check_each_parameter_on_its_own_axis(func, ARGS)
    assert_sympy_matches_float(func, **{name: ARGS[name][-1] for name in names})
    assert isinstance(func(**{n: sp.Symbol(n, positive=True) for n in names}), sp.Basic)
