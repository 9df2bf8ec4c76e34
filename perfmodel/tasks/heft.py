"""HEFT list scheduling (Topcuoglu, Hariri & Wu, IEEE TPDS 13(3), 2002) with the insertion policy, on
the workers :func:`perfmodel.tasks.schedule.schedule_tasks` considers.

Its cost grows with the tasks, not with the workers or the length of a chain: busy intervals are
searched by bisection and only the workers that can differ are tried (:class:`_Candidates`).
"""

from __future__ import annotations

import bisect

__all__ = ["heft"]


def _earliest_gap(busy: list[tuple[float, float]], ends: list[float], ready: float, duration: float) -> float:
    """Earliest start >= ready of a gap of ``duration`` in the sorted busy intervals (insertion policy).

    The intervals are disjoint, so their ends are sorted too: those ending by ``ready`` cannot hold
    the task and are skipped by bisection (a chain of n tasks is then O(n log n), not O(n^2))."""
    start = ready
    for j in range(bisect.bisect_right(ends, ready), len(busy)):
        s, f = busy[j]
        if start + duration <= s:
            return start
        start = max(start, f)
    return start


class _Candidates:
    """The workers HEFT has to try for the next task, in index order: every busy worker, and of the idle
    ones only the first of each place in each node already used and in the first unused node. Any other
    idle worker has an equal one of lower index among these (same place, no predecessor on either,
    same transfers), and HEFT breaks ties towards the lower index, so the schedule is the same as when
    every worker is tried -- at a cost that grows with the tasks placed, not with the workers."""

    def __init__(self, workers):
        self.nodes: dict[int, list[int]] = {}
        self.hosts: dict[int, int] = {}
        for i, w in enumerate(workers):
            if w.host:
                self.hosts[w.node] = i
            else:
                self.nodes.setdefault(w.node, []).append(i)
        self.order = sorted(set(self.nodes) | set(self.hosts))
        self.next_device = {j: 0 for j in self.order}
        self.used_nodes = 0  # nodes order[:used_nodes] hold a busy worker; the others are idle
        self.busy: set[int] = set()

    def __iter__(self):
        out = set(self.busy)
        for j in self.order[:self.used_nodes + 1]:
            devices, k = self.nodes.get(j, []), self.next_device[j]
            if k < len(devices):
                out.add(devices[k])
            if j in self.hosts and self.hosts[j] not in self.busy:
                out.add(self.hosts[j])
        return iter(sorted(out))

    def take(self, i: int, worker) -> None:
        if i in self.busy:
            return
        self.busy.add(i)
        if not worker.host:
            self.next_device[worker.node] += 1
        while self.used_nodes < len(self.order) and self._touched(self.order[self.used_nodes]):
            self.used_nodes += 1

    def _touched(self, j: int) -> bool:
        return self.next_device[j] > 0 or self.hosts.get(j) in self.busy


def heft(graph, workers, times, links, order):
    """HEFT's placement of the tasks in ``order``: each on the worker where it finishes first (ties: the
    lower index), in the earliest idle gap long enough. Returns (task -> (worker index, start, finish, ready),
    task -> (worker index, finish))."""
    busy: dict[int, list[tuple[float, float]]] = {}
    ends: dict[int, list[float]] = {}
    where: dict[str, tuple[int, float]] = {}
    placements = {}
    candidates = _Candidates(workers)
    for k in order:
        task = graph.tasks[k]
        preds = graph.predecessors(task.name)
        best = None
        for i in candidates:
            if (task.name, i) not in times:
                continue
            w = workers[i]
            ready = max((where[e.source][1] + links.time(workers[where[e.source][0]], w, e.transfer_bytes)
                         for e in preds), default=0.0)
            start = _earliest_gap(busy.get(i, []), ends.get(i, []), ready, times[(task.name, i)])
            finish = start + times[(task.name, i)]
            if best is None or finish < best[0] - 1e-15:
                best = (finish, start, ready, i)
        finish, start, ready, i = best
        at = bisect.bisect_left(busy.setdefault(i, []), (start, finish))
        busy[i].insert(at, (start, finish))
        ends.setdefault(i, []).insert(at, finish)
        candidates.take(i, workers[i])
        where[task.name] = (i, finish)
        placements[task.name] = (i, start, finish, ready)
    return placements, where
