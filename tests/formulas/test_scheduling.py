"""Tests of perfmodel.formulas.scheduling (makespan bounds of task graphs).

Truth: Graham's bound checked on his worst case (it is tight), and against exhaustive search of
every list schedule of small random task graphs on identical workers; expressions typed from
Graham (1966, 1969) for the sympy forms.
"""

from __future__ import annotations

import inspect
import itertools
import random

import pytest
import sympy as sp

from perfmodel.formulas import scheduling as sch
from tests.formulas.backends import (
    assert_sympy_equals,
    assert_sympy_matches_float,
    check_each_parameter_on_its_own_axis,
)

EXPECTED = {
    sch.work_bound_time: lambda work_time, n_workers: work_time / n_workers,
    sch.makespan_lower_bound_time: lambda work_time, critical_path_time, n_workers: sp.Max(work_time / n_workers,
                                                                                          critical_path_time),
    sch.graham_list_schedule_time: lambda work_time, critical_path_time, n_workers: (
        work_time / n_workers + (1 - 1 / n_workers) * critical_path_time),
    sch.graham_ratio: lambda n_workers: 2 - 1 / n_workers,
    sch.parallel_speedup: lambda serial_time, makespan_time: serial_time / makespan_time,
    sch.parallel_efficiency: lambda serial_time, makespan_time, n_workers: serial_time / (n_workers * makespan_time),
}
ARGS = {"work_time": [12.0, 30.0], "critical_path_time": [5.0, 2.0], "n_workers": [1.0, 4.0],
        "serial_time": [12.0, 40.0], "makespan_time": [4.0, 10.0]}


@pytest.mark.parametrize("func", list(EXPECTED), ids=lambda f: f.__name__)
def test_backends(func):
    assert_sympy_equals(func, EXPECTED[func])
    names = list(inspect.signature(func).parameters)
    check_each_parameter_on_its_own_axis(func, ARGS)
    assert_sympy_matches_float(func, **{name: ARGS[name][-1] for name in names})


def test_graham_worst_case_is_reached():
    """m(m-1) unit tasks then one task of length m: a list that runs the long task last takes
    2m - 1 while the optimum is m (Graham 1966)."""
    m = 5
    work, critical = m * (m - 1) + m, m
    list_schedule = (m - 1) + m  # the short tasks fill m-1 rounds, then the long one alone
    optimum = m
    assert list_schedule == pytest.approx(sch.graham_list_schedule_time(work, critical, m))
    assert list_schedule / optimum == pytest.approx(sch.graham_ratio(m))


def _list_schedules(durations, preds, m):
    """Makespans of list scheduling for every priority order (greedy: a free worker takes the first
    ready task of the list)."""
    n = len(durations)
    out = []
    for order in itertools.permutations(range(n)):
        free = [0.0] * m
        finish = {}
        pending = list(order)
        t = 0.0
        running = []
        while pending or running:
            ready = [k for k in pending if all(p in finish and finish[p] <= t for p in preds[k])]
            idle = [w for w in range(m) if free[w] <= t]
            while ready and idle:
                k, w = ready.pop(0), idle.pop(0)
                pending.remove(k)
                free[w] = finish[k] = t + durations[k]
                running.append(k)
            running = [k for k in running if finish[k] > t]
            events = [finish[k] for k in running] + [f for f in free if f > t]
            if not events:
                break
            t = min(events)
        out.append(max(finish.values()))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_every_list_schedule_is_within_graham_and_above_the_lower_bound(seed):
    rng = random.Random(seed)
    n, m = 6, 2 + seed % 2
    durations = [float(rng.randint(1, 6)) for _ in range(n)]
    preds = {k: [j for j in range(k) if rng.random() < 0.3] for k in range(n)}
    finish = {}
    for k in range(n):
        finish[k] = durations[k] + max((finish[j] for j in preds[k]), default=0.0)
    work, critical = sum(durations), max(finish.values())
    makespans = _list_schedules(durations, preds, m)
    lower = sch.makespan_lower_bound_time(work, critical, m)
    upper = sch.graham_list_schedule_time(work, critical, m)
    assert min(makespans) >= lower - 1e-12
    assert max(makespans) <= upper + 1e-12
