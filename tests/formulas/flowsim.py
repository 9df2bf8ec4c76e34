"""A small flow-level network simulator: max-min fair sharing, flows start after their route latency.

The model SimGrid uses for flows, run on the actual links, against which the contention forms of
perfmodel.formulas.contention are checked (and which reproduces the textbook ring all-reduce of
perfmodel.formulas.collectives when nothing is shared). Links are keys of a ``capacity`` dict
(bytes/s per direction); a route is the list of links a flow crosses. Used by test_contention.py
and test_collectives.py.
"""

from __future__ import annotations

from collections import Counter

# the scenario the simulator comparisons run: message (B), link bandwidth (B/s), startup (s),
# per-hop latency (s)
S, BETA, ALPHA, DELTA = 64e6, 25e9, 3e-6, 0.7e-6

# --- flow-level simulator: max-min fair sharing, flows start after their route latency ------------


def maxmin_rates(routes, capacity):
    """Progressive filling: raise all unfrozen flows together until a link saturates."""
    rates = [0.0] * len(routes)
    remaining = dict(capacity)
    active = set(range(len(routes)))
    while active:
        load = Counter(link for f in active for link in routes[f])
        bottleneck = min(load, key=lambda link: remaining[link] / load[link])
        step = remaining[bottleneck] / load[bottleneck]
        for f in active:
            rates[f] += step
            for link in routes[f]:
                remaining[link] -= step
        saturated = {link for link in load if remaining[link] <= 1e-12 * capacity[link]}
        active = {f for f in active if not saturated.intersection(routes[f])}
    return rates


def phase_time(flows, capacity, alpha, hop_latency):
    """flows: list of (route, bytes). Each starts after alpha + hop_latency per link of its route
    (a switch backplane shares bandwidth but adds no hop)."""
    start = [alpha + sum(link != "backplane" for link in route) * hop_latency for route, _ in flows]
    left = [float(size) for _, size in flows]
    done = [False] * len(flows)
    t, finish = 0.0, 0.0
    while not all(done):
        active = [i for i in range(len(flows)) if not done[i] and start[i] <= t + 1e-18]
        pending = [start[i] for i in range(len(flows)) if not done[i] and start[i] > t + 1e-18]
        if not active:
            t = min(pending)
            continue
        rates = maxmin_rates([flows[i][0] for i in active], capacity)
        dt = min(left[i] / r for i, r in zip(active, rates))
        if pending:
            dt = min(dt, min(pending) - t)
        t += dt
        for i, r in zip(active, rates):
            left[i] -= r * dt
            if left[i] <= 1e-9 * flows[i][1]:
                done[i], finish = True, t
    return finish


def run(phases, capacity, alpha=0.0, hop_latency=0.0):
    """Synchronous phases: each starts when the previous one has fully finished."""
    return sum(phase_time(p, capacity, alpha, hop_latency) for p in phases)


# --- topologies for the simulator --------------------------------------------------------------


def ring_capacity(n, beta):
    return {**{("cw", j): beta for j in range(n)}, **{("ccw", j): beta for j in range(n)}}


def ring_route(src, dist, clockwise, n):
    if clockwise:
        return [("cw", (src + k) % n) for k in range(dist)]
    return [("ccw", (src - k) % n) for k in range(dist)]


def recursive_phases(n, sizes_by_distance, tie_clockwise=False):
    """Recursive halving/doubling on a ring in ring order: one phase per (distance, bytes)."""
    phases = []
    for dist, nbytes in sizes_by_distance:
        flows = []
        for r in range(n):
            lower = (r & dist) == 0
            clockwise = lower or (tie_clockwise and dist == n // 2)
            flows.append((ring_route(r, dist, clockwise, n), nbytes))
        phases.append(flows)
    return phases


def fat_tree_ring_phases(n, p, size, strided):
    leaves = n // p

    def leaf(r):
        return r % leaves if strided else r // p

    flows = []
    for r in range(n):
        s = (r + 1) % n
        if leaf(r) == leaf(s):
            route = [("up", r), ("down", s)]
        else:
            route = [("up", r), ("leaf_up", leaf(r)), ("leaf_down", leaf(s)), ("down", s)]
        flows.append((route, size / n))
    return [flows] * (2 * (n - 1))


def fat_tree_capacity(n, p, beta, o):
    cap = {}
    for r in range(n):
        cap[("up", r)] = cap[("down", r)] = beta
    for leaf in range(n // p):
        cap[("leaf_up", leaf)] = cap[("leaf_down", leaf)] = p * beta / o
    return cap


def switch_capacity(n, beta, backplane):
    cap = {("up", r): beta for r in range(n)}
    cap.update({("down", r): beta for r in range(n)})
    cap["backplane"] = backplane
    return cap


def switch_route(src, dst):
    return [("up", src), "backplane", ("down", dst)]
