"""Task parallelism: a task graph on a system's heterogeneous workers -- bounds and a HEFT schedule.

``schedule_tasks(graph, system)`` takes a :class:`~perfmodel.tasks.graph.TaskGraph` and a system:

* **workers** are the system's devices (``devices`` of them, whole nodes; default one node) plus
  one host CPU per node when the system names a ``host_cpu``. A task runs on a worker whose kind it
  allows, in its roofline time at the datasheet peak of its dtype and the device's (measured) memory
  bandwidth (:func:`perfmodel.formulas.compute.roofline_time`, efficiency 1: a lower bound of the
  kernel time).
* **transfers** along an edge cost nothing on the same worker; between devices of one node the
  point-to-point time on the node fabric (:func:`perfmodel.prediction.hardware.intra_node_level`);
  between a host CPU and a device of its node the device's host link; between nodes the network
  (:func:`perfmodel.prediction.hardware.inter_node_level`). Links are not shared between transfers
  (the HEFT model).
* **bounds** (:mod:`perfmodel.formulas.scheduling`), without communication: every task at its
  fastest allowed worker gives the work bound W/m and the critical path; their maximum is a lower
  bound on any schedule. Graham's list-scheduling bound :math:`W/m + (1 - 1/m)\\,T_{cp}` (ratio
  2 - 1/m) holds for identical workers; with heterogeneous workers it is given for the largest group
  of identical workers that can run every task (a schedule on those alone is a valid schedule, so it
  bounds the optimum from above), and is absent when no such group exists.
* **estimate**: HEFT list scheduling (Topcuoglu, Hariri & Wu, IEEE TPDS 13(3), 2002): tasks in
  decreasing upward rank (mean execution time over the allowed workers plus the longest path of
  mean transfer and execution times to an exit task), each placed on the worker where it finishes
  first, inserted into the earliest idle gap long enough.

**Many devices.** ``devices`` may be up to :data:`perfmodel.plan.MAX_DEVICES` (10^7), yet a schedule
of n tasks uses at most n workers, and workers that nothing runs on yet are interchangeable: every
idle node is alike, so is every idle device of a node. HEFT breaks ties towards the first worker, so
the nodes it uses are always the first ones, and the devices it uses in a node the first ones of
that node. The schedule is therefore computed on the workers it could ever pick -- the first
min(nodes, n) nodes, the first min(devices per node, n - j) devices of node j and the host CPUs of
those nodes -- and is the same as on all of them (``TaskSchedule.workers``); the means of the upward
ranks, the bounds and the worker counts (``n_workers``) are those of all the workers. The cost is
then independent of ``devices`` above n x devices per node.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from perfmodel.errors import OUT_OF_RANGE, MissingSpecError, PerfModelError, PlanError, SpecError
from perfmodel.formulas import collectives as coll
from perfmodel.formulas import compute as cf
from perfmodel.formulas import scheduling as sch
from perfmodel.tasks.heft import heft
from perfmodel.units import format_quantity

__all__ = ["Worker", "Placement", "TaskSchedule", "workers_of", "schedule_tasks"]


TABLE_ROWS = 1000  # placements shown in the terminal table (json and csv have them all)


@dataclass(frozen=True)
class Worker:
    name: str  # "node0/gpu3", "node0/host"
    kind: str  # cpu | gpu | xpu
    device: str
    node: int
    host: bool  # the node's host CPU (reached over the devices' host link)


@dataclass(frozen=True)
class Placement:
    task: str
    worker: str
    start_s: float
    finish_s: float
    ready_s: float  # when its inputs had arrived on that worker

    def to_dict(self) -> dict:
        return {"task": self.task, "worker": self.worker, "start_s": self.start_s, "finish_s": self.finish_s,
                "duration_s": self.finish_s - self.start_s, "ready_s": self.ready_s}


@dataclass(frozen=True)
class TaskSchedule:
    """Bounds and the HEFT estimate of one task graph on one system."""

    graph: str
    system: str
    workers: tuple[Worker, ...]  # the workers the schedule considered (see the module doc, many devices)
    makespan_s: float
    lower_bound_s: float
    work_bound_s: float
    critical_path_s: float
    graham_bound_s: float | None
    graham_workers: str  # the identical workers the Graham bound is for, or why there is none
    serial_time_s: float | None  # all tasks in turn on the fastest single worker able to run them all
    speedup: float | None
    efficiency: float | None
    transfer_s: float  # sum of the transfer times the schedule pays
    placements: tuple[Placement, ...]
    n_workers: int  # all the workers: devices + host CPUs
    worker_counts: tuple[tuple[str, int], ...]  # (device name, how many of it) over all the workers

    def to_dict(self) -> dict:
        return {"graph": self.graph, "system": self.system, "workers": dict(self.worker_counts),
                "n_workers": self.n_workers,
                "makespan_s": self.makespan_s,
                "bounds": {"lower_bound_s": self.lower_bound_s, "work_bound_s": self.work_bound_s,
                           "critical_path_s": self.critical_path_s, "graham_bound_s": self.graham_bound_s,
                           "graham_workers": self.graham_workers},
                "serial_time_s": self.serial_time_s, "speedup": self.speedup, "efficiency": self.efficiency,
                "transfer_s": self.transfer_s, "schedule": [p.to_dict() for p in self.placements]}

    def summary_rows(self) -> list[tuple[str, str]]:
        t = lambda x: "n/a" if x is None else format_quantity(x, "time")  # noqa: E731
        return [("makespan (HEFT, with transfers)", t(self.makespan_s)),
                ("lower bound max(W/m, critical path)", t(self.lower_bound_s)),
                ("work bound W/m", t(self.work_bound_s)), ("critical path", t(self.critical_path_s)),
                (f"Graham bound ({self.graham_workers})", t(self.graham_bound_s)),
                ("serial on the best single worker", t(self.serial_time_s)),
                ("speedup", "n/a" if self.speedup is None else f"{self.speedup:.2f}"),
                ("transfers paid", t(self.transfer_s)), ("workers", str(self.n_workers))]

    def __rich__(self):
        from rich.console import Group
        from rich.table import Table

        head = Table(title=f"task graph {self.graph} on {self.system}", show_header=False)
        head.add_column("", style="bold")
        head.add_column("")
        for k, v in self.summary_rows():
            head.add_row(k, v)
        sched = Table(title="schedule")
        for col in ("task", "worker", "start", "finish", "inputs ready"):
            sched.add_column(col)
        for p in self.placements[:TABLE_ROWS]:
            sched.add_row(p.task, p.worker, *(format_quantity(x, "time") for x in (p.start_s, p.finish_s, p.ready_s)))
        if len(self.placements) > TABLE_ROWS:  # a terminal table of 20,000 rows takes a minute to lay out
            sched.add_row(f"... {len(self.placements) - TABLE_ROWS} more tasks", "(--format json lists every one)")
        return Group(head, sched)


# --- workers, execution and transfer times ---------------------------------------------------------


def _count_devices(system, devices: int | None) -> tuple[int, int]:
    """(devices, nodes): ``devices`` (default one node) checked against ``system``."""
    from perfmodel.plan import MAX_DEVICES

    per_node = system.devices_per_node
    devices = per_node if devices is None else devices
    if isinstance(devices, bool) or not isinstance(devices, int) or not 1 <= devices <= MAX_DEVICES:
        raise PlanError(f"devices: expected an integer in [1, {MAX_DEVICES}], got {devices!r}")
    if system.network is None and devices > per_node:
        raise PlanError(f"{system.name} has {per_node} devices and no network; asked for {devices}")
    max_nodes = system.network.max_nodes if system.network is not None else 1
    nodes = math.ceil(devices / per_node)
    if max_nodes is not None and nodes > max_nodes:
        raise PlanError(f"{system.name} has at most {max_nodes * per_node} devices; asked for {devices}")
    return devices, nodes


def _device_worker(system, i: int) -> Worker:
    node, local = divmod(i, system.devices_per_node)
    return Worker(f"node{node}/{system.device.kind}{local}", system.device.kind, system.device.name, node, False)


def _host_worker(system, node: int) -> Worker:
    return Worker(f"node{node}/host", "cpu", system.host_cpu.name, node, True)


def workers_of(system, devices: int | None = None) -> list[Worker]:
    """The workers of ``devices`` devices of ``system`` (whole nodes) plus a host CPU per node."""
    devices, nodes = _count_devices(system, devices)
    out = [_device_worker(system, i) for i in range(devices)]
    if system.host_cpu is not None:
        out += [_host_worker(system, n) for n in range(nodes)]
    return out


def _considered(system, devices: int, nodes: int, n_tasks: int) -> list[Worker]:
    """The workers HEFT can pick for ``n_tasks`` tasks, in the order of :func:`workers_of` (module doc)."""
    per_node = system.devices_per_node
    used_nodes = min(nodes, n_tasks)
    out = [_device_worker(system, j * per_node + d) for j in range(used_nodes)
           for d in range(min(per_node, n_tasks - j, devices - j * per_node))]
    if system.host_cpu is not None:
        out += [_host_worker(system, j) for j in range(used_nodes)]
    return out


class _Population:
    """How many workers of each place there are among all of them: devices per node, a host per node."""

    def __init__(self, system, devices: int, nodes: int):
        per_node = system.devices_per_node
        self.devices, self.nodes = devices, nodes
        self.hosts = nodes if system.host_cpu is not None else 0
        last = devices - (nodes - 1) * per_node
        self.sum_sq = (nodes - 1) * per_node * per_node + last * last  # sum over nodes of (devices on it)^2

    def count(self, on_device: bool, on_host: bool) -> int:
        return (self.devices if on_device else 0) + (self.hosts if on_host else 0)


class _Times:
    """(task name, worker index) -> roofline time, for the workers a task may run on. A time depends on
    the worker's place only (a device, or a host CPU), so it is stored once per place: n tasks on
    thousands of workers cost O(n), not O(n x workers)."""

    def __init__(self, by_place: dict[tuple[str, bool], float], workers):
        self.by_place = by_place
        self.host = [w.host for w in workers]

    def __contains__(self, key) -> bool:
        return (key[0], self.host[key[1]]) in self.by_place

    def __getitem__(self, key) -> float:
        return self.by_place[(key[0], self.host[key[1]])]

    def fastest(self, name: str) -> float:
        return min(v for v in (self.by_place.get((name, False)), self.by_place.get((name, True))) if v is not None)


def _exec_times(graph, system, workers) -> _Times:
    """The roofline time of each task on each place (device, host CPU) it may run on."""
    out = {}
    devices = {False: system.device, True: system.host_cpu}
    places = {w.host: w for w in reversed(workers)}  # the first worker of each place
    for task in graph.tasks:
        for host, w in places.items():
            if w.kind not in task.device_kinds:
                continue
            dev = devices[host]
            try:
                peak = dev.peak(task.dtype)
            except PerfModelError:
                continue  # no datasheet rate for this dtype: the worker cannot run the task
            bandwidth = dev.measured_memory_bandwidth or dev.memory_bandwidth
            out[(task.name, host)] = float(cf.roofline_time(task.flops, task.bytes_moved, peak, 1.0, bandwidth))
        if not any((task.name, host) in out for host in places):
            kinds = sorted({f"{w.kind} ({w.device})" for w in places.values()})
            raise PlanError(f"task '{task.name}' (devices {', '.join(task.device_kinds)}, dtype {task.dtype}) "
                                 f"can run on no worker of {system.name}: it has {', '.join(kinds)}")
    return _Times(out, workers)


class _Links:
    """alpha/beta between two workers: same worker, node fabric, host link, network."""

    def __init__(self, system):
        from perfmodel.prediction.hardware import (
            hw_params,
            inter_node_level,
            intra_node_level,
            link_data_bandwidth,
        )

        # the levels do not depend on the dtype; any dtype the device has a rate for will do
        self.hw = hw_params(system, next(iter(system.device.peak_flops_per_s)))
        self.fabric = intra_node_level(self.hw, 2, 1)
        self.network = inter_node_level(self.hw, 1)
        host = system.device.host_link
        self.host = None if host is None else (host.latency, link_data_bandwidth(host))
        self.system = system.name

    def level(self, a: tuple[int, bool], b: tuple[int, bool]):
        """(alpha, beta) between a worker at (node, is host) ``a`` and a different one at ``b``."""
        if a[0] != b[0]:
            return self.network
        if a[1] or b[1]:
            if self.host is None:
                raise MissingSpecError(f"{self.system}: the device has no host_link to reach the host CPU")
            return self.host
        return self.fabric

    def time(self, a: Worker, b: Worker, nbytes: float) -> float:
        if a == b:
            return 0.0
        alpha, beta = self.level((a.node, a.host), (b.node, b.host))
        return float(coll.point_to_point_time(nbytes, alpha, beta))


def _mean_transfer(links, pop: _Population, src: tuple[bool, bool], dst: tuple[bool, bool], nbytes) -> float:
    """Mean transfer time over ordered pairs of distinct workers, one allowed for each end (HEFT's c-bar),
    over all the workers. ``src``/``dst``: (devices allowed, host CPUs allowed) of each end."""
    (sd, sh), (dd, dh) = src, dst
    h = 1 if pop.hosts else 0
    sh, dh = sh and h, dh and h
    fabric = pop.sum_sq - pop.devices if sd and dd else 0  # same node, two different devices
    host = pop.devices * ((1 if sd and dh else 0) + (1 if sh and dd else 0))  # a device and its node's host
    same_node = (sd * dd * pop.sum_sq + (sd * dh + sh * dd) * pop.devices + sh * dh * pop.nodes)
    network = pop.count(sd, sh) * pop.count(dd, dh) - same_node  # pairs on different nodes
    total, count = 0.0, 0
    for pairs, a, b in ((fabric, (0, False), (0, False)), (host, (0, False), (0, True)),
                        (network, (0, False), (1, False))):
        if pairs > 0:
            alpha, beta = links.level(a, b)
            total += pairs * float(coll.point_to_point_time(nbytes, alpha, beta))
            count += pairs
    return total / count if count else 0.0


# --- bounds and HEFT -------------------------------------------------------------------------------


def _longest_path(graph, cost) -> float:
    finish: dict[str, float] = {}
    for task in graph.tasks:  # topological order
        start = max((finish[e.source] for e in graph.predecessors(task.name)), default=0.0)
        finish[task.name] = start + cost[task.name]
    return max(finish.values(), default=0.0)


def _graham(graph, workers, times, counts: dict[str, int]) -> tuple[float | None, str]:
    """Graham's bound for the largest group of identical workers that can run every task."""
    first: dict[str, int] = {}
    for i, w in enumerate(workers):
        first.setdefault(w.device, i)
    able = [(counts[dev], dev, i) for dev, i in first.items() if all((t.name, i) in times for t in graph.tasks)]
    if not able:
        return None, "no group of identical workers can run every task"
    m, device, i = max(able)
    cost = {t.name: times[(t.name, i)] for t in graph.tasks}
    work = sum(cost.values())
    bound = float(sch.graham_list_schedule_time(work, _longest_path(graph, cost), m))
    return bound, f"{m} x {device}"


def _allowed_places(graph, workers, times) -> dict[str, tuple[bool, bool]]:
    """task -> (may run on the devices, may run on the host CPUs): the same for every worker of a place."""
    dev = next((i for i, w in enumerate(workers) if not w.host), None)
    host = next((i for i, w in enumerate(workers) if w.host), None)
    return {t.name: (dev is not None and (t.name, dev) in times, host is not None and (t.name, host) in times)
            for t in graph.tasks}


def _upward_ranks(graph, workers, times, links, pop: _Population) -> dict[str, float]:
    dev = next((i for i, w in enumerate(workers) if not w.host), None)
    host = next((i for i, w in enumerate(workers) if w.host), None)
    places = _allowed_places(graph, workers, times)
    mean_exec = {}
    for t in graph.tasks:
        on_dev, on_host = places[t.name]
        total = (pop.devices * times[(t.name, dev)] if on_dev else 0.0) + (
            pop.hosts * times[(t.name, host)] if on_host else 0.0)
        mean_exec[t.name] = total / pop.count(on_dev, on_host)
    rank: dict[str, float] = {}
    for task in reversed(graph.tasks):
        tail = max((_mean_transfer(links, pop, places[task.name], places[e.target], e.transfer_bytes)
                    + rank[e.target] for e in graph.successors(task.name)), default=0.0)
        rank[task.name] = mean_exec[task.name] + tail
    return rank


def schedule_tasks(graph, system, devices: int | None = None) -> TaskSchedule:
    """Bounds and the HEFT schedule of ``graph`` (a TaskGraph or a file/bundled name) on ``system``."""
    from perfmodel.specs.registry import load_system
    from perfmodel.tasks.graph import load_task_graph

    if isinstance(graph, str):
        graph = load_task_graph(graph)
    if isinstance(system, str):
        system = load_system(system)
    devices, nodes = _count_devices(system, devices)
    workers = _considered(system, devices, nodes, len(graph.tasks))
    pop = _Population(system, devices, nodes)
    counts = {system.device.name: devices}
    if system.host_cpu is not None:
        counts[system.host_cpu.name] = counts.get(system.host_cpu.name, 0) + nodes
    times = _exec_times(graph, system, workers)
    links = _Links(system)

    fastest = {t.name: times.fastest(t.name) for t in graph.tasks}
    work, critical = sum(fastest.values()), _longest_path(graph, fastest)
    m = pop.count(True, True)
    lower = float(sch.makespan_lower_bound_time(work, critical, m))
    work_bound = float(sch.work_bound_time(work, m))
    graham, graham_workers = _graham(graph, workers, times, counts)

    ranks = _upward_ranks(graph, workers, times, links, pop)
    order = sorted(range(len(graph.tasks)), key=lambda k: (-ranks[graph.tasks[k].name], k))
    placed, where = heft(graph, workers, times, links, order)
    placements = {name: Placement(name, workers[i].name, start, finish, ready)
                  for name, (i, start, finish, ready) in placed.items()}
    paid = sum(links.time(workers[where[e.source][0]], workers[where[e.target][0]], e.transfer_bytes)
               for e in graph.edges)
    makespan = max(p.finish_s for p in placements.values())
    for what, value in (("makespan", makespan), ("lower bound", lower), ("critical path", critical)):
        if not math.isfinite(value):  # as predict refuses a step time that is not finite
            raise SpecError(f"task graph {graph.name} on {system.name}: the {what} comes out as {value!r}, not a "
                            f"finite number: {OUT_OF_RANGE}")

    serial = None
    for i in {w.host: i for i, w in reversed(list(enumerate(workers)))}.values():  # one worker per place
        if all((t.name, i) in times for t in graph.tasks):
            total = sum(times[(t.name, i)] for t in graph.tasks)
            serial = total if serial is None else min(serial, total)
    speedup = None if serial is None or makespan <= 0 else float(sch.parallel_speedup(serial, makespan))
    efficiency = None if speedup is None else float(sch.parallel_efficiency(serial, makespan, m))
    ordered = tuple(sorted(placements.values(), key=lambda p: (p.start_s, p.task)))
    return TaskSchedule(graph.name, system.name, tuple(workers), makespan, lower, work_bound, critical, graham,
                        graham_workers, serial, speedup, efficiency, paid, ordered, m, tuple(counts.items()))
