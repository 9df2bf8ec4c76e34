"""Tests of perfmodel.formulas.mapped (collectives mapped onto direct networks).

Truth: the expressions typed from the sources (sympy), the textbook forms they extend, explicit step
sums, and the max-min flow simulator (tests/formulas/flowsim.py) run on the actual links for the
ring all-to-all schedules and for the claim that direct all-to-all attains the larger of the
injection and bisection bounds on the symmetric networks.
"""

from __future__ import annotations

import itertools
import math

import pytest
import sympy as sp

from perfmodel.formulas import collectives as coll
from perfmodel.formulas import logtree
from perfmodel.formulas import mapped as mp
from perfmodel.formulas import topology as topo
from perfmodel.formulas import torus as tor
from tests.formulas.backends import (
    assert_sympy_equals,
    assert_sympy_matches_float,
    check_each_parameter_on_its_own_axis,
)
from tests.formulas.flowsim import BETA, S, phase_time, run

log2 = lambda x: sp.log(x, 2)  # noqa: E731

# expected expressions typed from the docstrings' sources
EXPECTED = {
    mp.step_latency_time: lambda alpha, hop_latency, n_hops: alpha + n_hops * hop_latency,
    mp.direct_broadcast_time: lambda n, size, alpha, beta: alpha + size / beta,
    mp.direct_scatter_allgather_broadcast_time: lambda n, size, alpha, beta: 2 * alpha + 2 * size / (n * beta),
    mp.bidirectional_ring_allgather_time: lambda n, size, alpha, beta: (n - 1) * alpha + (n - 1) / n * size / (2 * beta),
    mp.bidirectional_ring_reduce_scatter_time: lambda n, size, alpha, beta: (n - 1) * alpha + (n - 1) * size / (2 * n * beta),
    mp.bidirectional_pipelined_ring_broadcast_time:
        lambda n, size, alpha, beta, n_chunks: (n + n_chunks - 2) * (alpha + size / (2 * n_chunks * beta)),
    mp.unidirectional_ring_alltoall_time: lambda n, size, alpha, beta: (n - 1) * alpha + (n - 1) * size / (2 * beta),
    mp.ring_alltoall_time: lambda n, size, alpha, beta: (sp.floor(n / 2) * alpha
                                                         + sp.floor(n / 2) * (n - sp.floor(n / 2)) * size / (2 * n * beta)),
    mp.scatter_recursive_doubling_broadcast_time:
        lambda n, size, alpha, beta: 2 * log2(n) * alpha + 2 * (n - 1) * size / (n * beta),
    mp.direct_alltoall_bisection_time:
        lambda n, size, alpha, beta, hop_latency, n_ports, n_hops, bisection_bandwidth: (
            sp.ceiling((n - 1) / n_ports) * alpha + n_hops * hop_latency
            + sp.Max((n - 1) * size / (n * n_ports * beta), n * size / (4 * bisection_bandwidth))),
}
ARGS = {"n": [4.0, 8.0, 16.0], "size": [1e6, 1e9], "alpha": [0.0, 5e-6], "beta": [25e9, 100e9],
        "hop_latency": [1e-7, 1e-6], "n_hops": [1.0, 4.0], "n_chunks": [1.0, 64.0], "n_ports": [1.0, 3.0],
        "bisection_bandwidth": [1e11, 4e11]}


@pytest.mark.parametrize("func", list(EXPECTED), ids=lambda f: f.__name__)
def test_sympy_equals_the_typed_expression(func):
    assert_sympy_equals(func, EXPECTED[func])


@pytest.mark.parametrize("func", list(EXPECTED), ids=lambda f: f.__name__)
def test_numpy_broadcasting_matches_a_loop(func):
    check_each_parameter_on_its_own_axis(func, ARGS)


@pytest.mark.parametrize("func", list(EXPECTED), ids=lambda f: f.__name__)
def test_sympy_with_numbers_matches_the_float_call(func):
    import inspect

    kwargs = {name: ARGS[name][-1] for name in inspect.signature(func).parameters}
    assert_sympy_matches_float(func, **kwargs)


# --- against the textbook forms they extend ------------------------------------------------------


def test_bidirectional_forms_are_the_ring_forms_on_half_the_data():
    n, a = 8, 5e-6
    assert mp.bidirectional_ring_allgather_time(n, S, a, BETA) == pytest.approx(coll.ring_allgather_time(n, S / 2, a, BETA))
    assert mp.bidirectional_pipelined_ring_broadcast_time(n, S, a, BETA, 32) == pytest.approx(
        coll.pipelined_ring_broadcast_time(n, S / 2, a, BETA, 32))


def test_scatter_allgather_broadcasts_on_one_step_per_phase():
    # Thakur et al. (2005): scatter + recursive-doubling allgather = 2 lg p alpha + 2 (p-1)/p n beta
    n, a = 16, 3e-6
    scatter = math.log2(n) * a + (n - 1) / n * S / BETA  # binomial scatter
    assert mp.scatter_recursive_doubling_broadcast_time(n, S, a, BETA) == pytest.approx(
        scatter + logtree.recursive_doubling_allgather_time(n, S, a, BETA))
    # fully connected, (n-1)-port: both phases in one step each
    assert mp.direct_scatter_allgather_broadcast_time(n, S, a, BETA) == pytest.approx(
        2 * coll.direct_allgather_time(n, S, a, BETA))


def test_direct_alltoall_reduces_to_the_fully_connected_and_pairwise_forms():
    n, a, d = 8, 5e-6, 1e-7
    fc = mp.direct_alltoall_bisection_time(n, S, a, BETA, d, n - 1, 1, topo.fully_connected_bisection_bandwidth(n, BETA))
    assert fc == pytest.approx(coll.direct_alltoall_time(n, S, a + d, BETA))
    # one port: n - 1 startups, the pairwise exchange's bandwidth term
    sw = mp.direct_alltoall_bisection_time(n, S, a, BETA, 0.0, 1, 2, n / 2 * BETA)
    assert sw == pytest.approx(logtree.pairwise_alltoall_time(n, S, a, BETA))


# --- against the flow simulator ------------------------------------------------------------------


def _ring_links(n):
    return {**{("cw", j): BETA for j in range(n)}, **{("ccw", j): BETA for j in range(n)}}


@pytest.mark.parametrize("n", [4, 5, 8, 9, 16])
def test_ring_alltoall_store_and_forward_matches_the_simulator(n):
    # step j: every rank forwards, each way, the blocks still travelling at least j hops that way
    half = n // 2
    phases = []
    for j in range(1, half + 1):
        flows = []
        for r in range(n):
            for way in ("cw", "ccw"):
                blocks = sum(1.0 if (d < n - d) else 0.5 for d in range(j, half + 1) if d <= n - d)
                flows.append(([(way, r)], blocks * S / n))
        phases.append(flows)
    sim = run(phases, _ring_links(n), 2e-6, 1e-7)
    assert sim == pytest.approx(mp.ring_alltoall_time(n, S, 2e-6 + 1e-7, BETA), rel=1e-9)


@pytest.mark.parametrize("n", [4, 7, 8])
def test_unidirectional_ring_alltoall_matches_the_simulator(n):
    phases = [[([("cw", r)], (n - i) * S / n) for r in range(n)] for i in range(1, n)]
    sim = run(phases, _ring_links(n), 2e-6, 1e-7)
    assert sim == pytest.approx(mp.unidirectional_ring_alltoall_time(n, S, 2e-6 + 1e-7, BETA), rel=1e-9)


def _dor_routes(dims, wrap, src, dst):
    """Dimension-order routes on a grid; on a torus a tie (k/2 either way) is split over both ways."""
    routes = [([], 1.0)]
    cur = list(src)
    for axis, k in enumerate(dims):
        delta = (dst[axis] - src[axis]) % k if wrap else dst[axis] - src[axis]
        if wrap:
            ways = [(+1, delta)] if delta < k - delta else [(-1, k - delta)] if delta > k - delta else \
                [(+1, delta), (-1, k - delta)] if delta else []
        else:
            ways = [(1 if delta > 0 else -1, abs(delta))] if delta else []
        new = []
        for route, w in routes:
            for step, count in ways:
                hops, c = [], list(cur)
                for _ in range(count):
                    nxt = list(c)
                    nxt[axis] = (c[axis] + step) % k if wrap else c[axis] + step
                    hops.append((tuple(c), tuple(nxt)))
                    c = nxt
                new.append((route + hops, w / len(ways)))
        routes = new if ways else routes
        cur[axis] = dst[axis]
    return routes


def _alltoall_sim(nodes, routes_of, capacity):
    flows = []
    for s, d in itertools.permutations(nodes, 2):
        for route, share in routes_of(s, d):
            flows.append((route, share * S / len(nodes)))
    return phase_time(flows, capacity, 0.0, 0.0)


def _grid_links(dims, wrap):
    links = {}
    for c in itertools.product(*[range(k) for k in dims]):
        for axis, k in enumerate(dims):
            for step in (+1, -1):
                nb = list(c)
                nb[axis] = (c[axis] + step) % k if wrap else c[axis] + step
                if wrap or 0 <= nb[axis] < k:
                    links[(c, tuple(nb))] = BETA
    return links


@pytest.mark.parametrize("case", ["fully-connected-6", "switch-8", "hypercube-8", "hypercube-16", "torus-4x4",
                                  "torus-4x2", "mesh-4x4"])
def test_direct_alltoall_bandwidth_term_matches_the_simulator(case):
    """Direct all-to-all with shortest (dimension-order) routes reaches max(injection, bisection)."""
    name, shape = case.rsplit("-", 1)
    if name == "fully-connected":
        n = int(shape)
        links = {(i, j): BETA for i, j in itertools.permutations(range(n), 2)}
        sim = _alltoall_sim(range(n), lambda s, d: [([(s, d)], 1.0)], links)
        ports, bis = n - 1, topo.fully_connected_bisection_bandwidth(n, BETA)
    elif name == "switch":
        n = int(shape)
        links = {**{(i, "sw"): BETA for i in range(n)}, **{("sw", i): BETA for i in range(n)}}
        sim = _alltoall_sim(range(n), lambda s, d: [([(s, "sw"), ("sw", d)], 1.0)], links)
        ports, bis = 1, n / 2 * BETA
    elif name == "hypercube":
        n = int(shape)
        links = {(v, v ^ (1 << b)): BETA for v in range(n) for b in range(int(math.log2(n)))}

        def ecube(s, d):
            route, cur = [], s
            for b in range(int(math.log2(n))):
                if (s ^ d) >> b & 1:
                    route.append((cur, cur ^ (1 << b)))
                    cur ^= 1 << b
            return [(route, 1.0)]

        sim = _alltoall_sim(range(n), ecube, links)
        ports, bis = math.log2(n), topo.hypercube_bisection_bandwidth(n, BETA)
    else:
        dims = tuple(int(x) for x in shape.split("x"))
        wrap = name == "torus"
        n = math.prod(dims)
        nodes = list(itertools.product(*[range(k) for k in dims]))
        sim = _alltoall_sim(nodes, lambda s, d: _dor_routes(dims, wrap, s, d), _grid_links(dims, wrap))
        ports = 4 if wrap else 2
        bis = tor.torus2d_bisection_bandwidth(*dims, BETA) if wrap else tor.mesh2d_bisection_bandwidth(*dims, BETA)
    formula = mp.direct_alltoall_bisection_time(n, S, 0.0, BETA, 0.0, ports, 1, bis)
    assert sim == pytest.approx(formula, rel=1e-6)


def test_step_latency_is_the_multi_hop_latency():
    from perfmodel.formulas import links

    assert mp.step_latency_time(5e-6, 1e-7, 3) == pytest.approx(links.multi_hop_time(0.0, 5e-6, 1e9, 3, 1e-7))
