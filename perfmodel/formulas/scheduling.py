r"""Task parallelism: bounds on the makespan of a task graph on m workers.

A task graph (a DAG of tasks with execution times, precedence edges) scheduled on m workers
finishes no sooner than its total work spread over all workers, nor sooner than its critical
path (the longest chain of dependent tasks); and any list schedule (a worker never idles while a
task is ready) on identical workers finishes within Graham's bound. The list-scheduling
estimate with transfers on a system's links (HEFT) is in :mod:`perfmodel.tasks.schedule`.

Quantities: ``work_time`` W is the sum of the task times (s), ``critical_path_time`` the sum
along the longest chain (s), ``n_workers`` m. For heterogeneous workers take each task at its
fastest allowed worker: the lower bounds stay valid (no schedule runs a task faster), Graham's
upper bound does not (it needs identical workers).

Sources: R. L. Graham, "Bounds for certain multiprocessing anomalies", Bell System Technical
Journal 45(9), 1966, 1563-1581, and "Bounds on multiprocessing timing anomalies", SIAM J. Appl.
Math. 17(2), 1969, 416-429 (list scheduling with precedence constraints:
:math:`T \le W/m + (1 - 1/m)\,T_{cp} \le (2 - 1/m)\,T_{opt}`); H. Topcuoglu, S. Hariri, M.-Y.
Wu, "Performance-effective and low-complexity task scheduling for heterogeneous computing",
IEEE TPDS 13(3), 2002 (speedup and efficiency as reported for HEFT).
"""

from __future__ import annotations

from perfmodel.formulas._backend import maximum

__all__ = [
    "work_bound_time", "makespan_lower_bound_time", "graham_list_schedule_time", "graham_ratio",
    "parallel_speedup", "parallel_efficiency",
]


def work_bound_time(work_time, n_workers):
    r"""Lower bound from the total work: all workers busy all the time.

    .. math:: T \ge \frac{W}{m}

    work_time: W, sum of the task times (s); n_workers: m (1). Source: Graham (1969) (the
    trivial bound his ratio is measured against).

    >>> work_bound_time(work_time=12.0, n_workers=4)
    3.0
    """
    return work_time / n_workers


def makespan_lower_bound_time(work_time, critical_path_time, n_workers):
    r"""Lower bound on the makespan of any schedule: the larger of the work and critical-path bounds.

    .. math:: T_{opt} \ge \max\left(\frac{W}{m},\ T_{cp}\right)

    work_time: W (s); critical_path_time: :math:`T_{cp}`, longest chain of task times (s);
    n_workers: m (1). Communication, if any, only adds. Source: Graham (1969) Sec. 2.

    >>> makespan_lower_bound_time(work_time=12.0, critical_path_time=5.0, n_workers=4)
    5.0
    """
    return maximum(work_time / n_workers, critical_path_time)


def graham_list_schedule_time(work_time, critical_path_time, n_workers):
    r"""Graham's upper bound on any list schedule of a task graph on m identical workers.

    .. math:: T_{list} \le \frac{W}{m} + \left(1 - \frac{1}{m}\right) T_{cp}
              \le \left(2 - \frac{1}{m}\right) T_{opt}

    Whenever a worker idles, a task of a critical chain is running; the busy rest is at most
    (W - chain)/m. Assumes identical workers and no communication time. work_time: W (s);
    critical_path_time (s); n_workers: m (1). Source: Graham (1966) Sec. 3; Graham (1969) Th. 1.

    >>> graham_list_schedule_time(work_time=12.0, critical_path_time=5.0, n_workers=4)
    6.75
    """
    return work_time / n_workers + (1 - 1 / n_workers) * critical_path_time


def graham_ratio(n_workers):
    r"""Graham's worst-case ratio of a list schedule to the optimum on m identical workers.

    .. math:: \rho = 2 - \frac{1}{m}

    n_workers: m (1). Tight: some task graphs reach it. Source: Graham (1966) Sec. 3.

    >>> graham_ratio(n_workers=4)
    1.75
    """
    return 2 - 1 / n_workers


def parallel_speedup(serial_time, makespan_time):
    r"""Speedup of a schedule over running every task in turn on the fastest single worker.

    .. math:: S_p = \frac{T_1}{T}

    serial_time: :math:`T_1` (s); makespan_time: T (s). Source: Topcuoglu et al. (2002) Sec. 5
    (speedup: sequential time on the fastest processor over the makespan).

    >>> parallel_speedup(serial_time=12.0, makespan_time=4.0)
    3.0
    """
    return serial_time / makespan_time


def parallel_efficiency(serial_time, makespan_time, n_workers):
    r"""Parallel efficiency: speedup per worker.

    .. math:: E = \frac{T_1}{m\,T}

    serial_time: :math:`T_1` (s); makespan_time: T (s); n_workers: m (1). Source: Topcuoglu et
    al. (2002) Sec. 5 (efficiency = speedup / processors).

    >>> parallel_efficiency(serial_time=12.0, makespan_time=4.0, n_workers=4)
    0.75
    """
    return serial_time / (n_workers * makespan_time)
