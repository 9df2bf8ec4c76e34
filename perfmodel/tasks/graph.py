"""Task graphs in TOML: tasks with FLOPs, memory traffic and the device kinds they may run on,
edges with the bytes they transfer. Read by :func:`load_task_graph`; scheduled by
:mod:`perfmodel.tasks.schedule`.

Format (every quantity a number in SI units or a string with a unit, "2.5 TFLOP", "512 MiB")::

    name = "two-tower"                 # optional (default: the file name)
    description = "..."                # optional
    dtype = "bf16"                     # optional: FLOP rate of every task (fp32 | tf32 | bf16 | fp16 | fp8;
                                       #   default fp32)

    [[task]]
    name = "tokenize"                  # unique
    flops = "2 GFLOP"                  # floating-point operations (>= 0)
    bytes = "4 GiB"                    # device-memory traffic, reads + writes (>= 0)
    devices = ["cpu"]                  # kinds allowed: cpu, gpu, xpu (default: all three)
    dtype = "fp32"                     # optional, overrides the graph's

    [[edge]]
    from = "tokenize"                  # the task that produces the data
    to = "embed"                       # the task that needs it (runs after `from` finishes)
    bytes = "256 MiB"                  # transferred when the two run on different workers (>= 0; default 0)

Rules: task names are unique; edges name existing tasks and form no cycle; values are finite and
non-negative; unknown keys are errors (a typo must not be ignored). Every problem is one line that
names the file, the entry and the key. Bundled examples: ``perfmodel/data/tasks/*.toml``
(:func:`bundled_task_graphs`).
"""

from __future__ import annotations

import collections
import functools
import math
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import perfmodel._io as _io
from perfmodel.errors import (
    InputFileError,
    SpecError,
    UnitError,
    UnknownNameError,
    did_you_mean,
)
from perfmodel.units import parse_quantity

__all__ = ["DEVICE_KINDS", "Task", "Edge", "TaskGraph", "load_task_graph", "parse_task_graph",
           "bundled_task_graphs"]

DEVICE_KINDS = ("cpu", "gpu", "xpu")
DTYPES = ("fp32", "tf32", "bf16", "fp16", "fp8")
_GRAPH_KEYS = {"name", "description", "dtype", "task", "edge"}
_TASK_KEYS = {"name", "flops", "bytes", "devices", "dtype"}
_EDGE_KEYS = {"from", "to", "bytes"}


@dataclass(frozen=True)
class Task:
    name: str
    flops: float  # FLOP
    bytes_moved: float  # B of device-memory traffic
    device_kinds: tuple[str, ...]
    dtype: str


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    transfer_bytes: float


@dataclass(frozen=True)
class TaskGraph:
    """A DAG of tasks; ``tasks`` are in a topological order (every edge goes forward)."""

    name: str
    description: str
    tasks: tuple[Task, ...]
    edges: tuple[Edge, ...]
    path: str | None = None

    def task(self, name: str) -> Task:
        return next(t for t in self.tasks if t.name == name)

    def predecessors(self, name: str) -> list[Edge]:
        return list(self._edges_by[1].get(name, ()))

    def successors(self, name: str) -> list[Edge]:
        return list(self._edges_by[0].get(name, ()))

    @functools.cached_property
    def _edges_by(self) -> tuple[dict[str, list[Edge]], dict[str, list[Edge]]]:
        """(source -> its edges, target -> its edges), in file order: one pass, not one per question."""
        by_source: dict[str, list[Edge]] = {}
        by_target: dict[str, list[Edge]] = {}
        for e in self.edges:
            by_source.setdefault(e.source, []).append(e)
            by_target.setdefault(e.target, []).append(e)
        return by_source, by_target


def _quantity(where: str, key: str, value, dimension: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise SpecError(f"{where} {key}: expected a number or a string with a unit, got {value!r}")
    if isinstance(value, str):
        try:
            number = parse_quantity(value, dimension, allow_negative=True) if value.strip() else math.nan
        except UnitError as exc:
            raise SpecError(f"{where} {key}: {exc}") from None
        text = value
    else:
        number, text = float(value), repr(value)
    if not math.isfinite(number):
        raise SpecError(f"{where} {key}: expected a finite value, got {text}")
    if number < 0:
        raise SpecError(f"{where} {key}: expected a non-negative value, got {text}")
    return number


def _unknown_keys(where: str, got, allowed) -> None:
    extra = sorted(set(got) - set(allowed))
    if extra:
        raise SpecError(f"{where}: unknown key '{extra[0]}'{did_you_mean(extra[0], allowed)} "
                        f"(allowed: {', '.join(sorted(allowed))})")


def _dtype(where: str, value, default: str) -> str:
    if value is None:
        return default
    if value not in DTYPES:
        raise SpecError(f"{where} dtype: expected one of {', '.join(DTYPES)}, got {value!r}"
                        f"{did_you_mean(str(value), DTYPES)}")
    return value


def _task(where: str, raw, default_dtype: str) -> Task:
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: expected a table ([[task]]), got {raw!r}")
    _unknown_keys(where, raw, _TASK_KEYS)
    for key in ("name", "flops", "bytes"):
        if key not in raw:
            raise SpecError(f"{where}: missing key '{key}'")
    name = raw["name"]
    if not isinstance(name, str) or not name.strip():
        raise SpecError(f"{where} name: expected a non-empty string, got {name!r}")
    where = f"{where} ('{name}')"
    kinds = raw.get("devices", list(DEVICE_KINDS))
    if isinstance(kinds, str):
        kinds = [kinds]
    if not isinstance(kinds, list) or not kinds:
        raise SpecError(f"{where} devices: expected a non-empty list of {', '.join(DEVICE_KINDS)}, got {kinds!r}")
    for kind in kinds:
        if kind not in DEVICE_KINDS:
            raise SpecError(f"{where} devices: unknown device kind {kind!r}{did_you_mean(str(kind), DEVICE_KINDS)} "
                            f"(expected {', '.join(DEVICE_KINDS)})")
    return Task(name, _quantity(where, "flops", raw["flops"], "flops"),
                _quantity(where, "bytes", raw["bytes"], "bytes"), tuple(dict.fromkeys(kinds)),
                _dtype(where, raw.get("dtype"), default_dtype))


def _edge(where: str, raw, names: set[str]) -> Edge:
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: expected a table ([[edge]]), got {raw!r}")
    _unknown_keys(where, raw, _EDGE_KEYS)
    for key in ("from", "to"):
        if key not in raw:
            raise SpecError(f"{where}: missing key '{key}'")
        if raw[key] not in names:
            raise SpecError(f"{where} {key}: unknown task {raw[key]!r}{did_you_mean(str(raw[key]), names)}")
    if raw["from"] == raw["to"]:
        raise SpecError(f"{where}: an edge from '{raw['from']}' to itself is a cycle")
    return Edge(raw["from"], raw["to"], _quantity(where, "bytes", raw.get("bytes", 0.0), "bytes"))


def _topological(where: str, tasks: list[Task], edges: list[Edge]) -> list[Task]:
    """Kahn's algorithm, keeping file order among ready tasks; a cycle is named in the error."""
    succ = {t.name: [] for t in tasks}
    indeg = {t.name: 0 for t in tasks}
    for e in edges:
        succ[e.source].append(e.target)
        indeg[e.target] += 1
    order, ready = [], collections.deque(t.name for t in tasks if indeg[t.name] == 0)
    while ready:
        name = ready.popleft()
        order.append(name)
        for nxt in succ[name]:
            indeg[nxt] -= 1
            if indeg[nxt] == 0:
                ready.append(nxt)
    if len(order) < len(tasks):
        left = {n for n, d in indeg.items() if d > 0}
        # walk back along predecessors inside the remainder until a name repeats: that is a cycle
        preds: dict[str, list[str]] = {}
        for e in edges:
            if e.target in left and e.source in left:
                preds.setdefault(e.target, []).append(e.source)
        path, seen, node = [], set(), next(t.name for t in tasks if t.name in left)
        while node not in seen:
            path.append(node)
            seen.add(node)
            node = preds[node][0]
        cycle = path[path.index(node):][::-1]
        position = {t.name: i for i, t in enumerate(tasks)}
        first = min(range(len(cycle)), key=lambda i: position[cycle[i]])
        cycle = cycle[first:] + cycle[:first]  # start at the task listed first in the file
        raise SpecError(f"{where}: the edges form a cycle: {' -> '.join(cycle + [cycle[0]])}")
    by_name = {t.name: t for t in tasks}
    return [by_name[n] for n in order]


def parse_task_graph(data: dict, where: str = "task graph", default_name: str = "tasks") -> TaskGraph:
    """A :class:`TaskGraph` from the parsed TOML ``data`` (``where`` names it in errors)."""
    _unknown_keys(where, data, _GRAPH_KEYS)
    dtype = _dtype(where, data.get("dtype"), "fp32")
    raw_tasks = data.get("task")
    if not isinstance(raw_tasks, list) or not raw_tasks:
        raise SpecError(f"{where}: no tasks (add [[task]] tables with name, flops, bytes)")
    tasks, seen = [], set()
    for i, raw in enumerate(raw_tasks, 1):
        task = _task(f"{where} [[task]] #{i}", raw, dtype)
        if task.name in seen:
            raise SpecError(f"{where} [[task]] #{i}: duplicate task name '{task.name}'")
        seen.add(task.name)
        tasks.append(task)
    raw_edges = data.get("edge", [])
    if not isinstance(raw_edges, list):
        raise SpecError(f"{where} edge: expected [[edge]] tables, got {raw_edges!r}")
    edges = [_edge(f"{where} [[edge]] #{i}", raw, seen) for i, raw in enumerate(raw_edges, 1)]
    pairs: set[tuple[str, str]] = set()
    for i, e in enumerate(edges, 1):
        if (e.source, e.target) in pairs:
            raise SpecError(f"{where} [[edge]] #{i}: duplicate edge {e.source} -> {e.target}")
        pairs.add((e.source, e.target))
    name = data.get("name", default_name)
    if not isinstance(name, str):
        raise SpecError(f"{where} name: expected a string, got {name!r}")
    return TaskGraph(name, str(data.get("description", "")), tuple(_topological(where, tasks, edges)), tuple(edges))


def bundled_task_graphs() -> dict[str, Path]:
    """name -> path of the task graphs shipped in ``perfmodel/data/tasks``."""
    folder = Path(str(resources.files("perfmodel") / "data" / "tasks"))
    return {p.stem: p for p in sorted(folder.glob("*.toml"))} if folder.is_dir() else {}


def load_task_graph(name_or_path) -> TaskGraph:
    """Read a task graph from a TOML file (or a bundled example by name)."""
    bundled = bundled_task_graphs()
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise InputFileError(f"task graph: expected a bundled name or a path to a TOML file, got {name_or_path!r} "
                             f"({type(name_or_path).__name__})")
    path = Path(name_or_path)
    try:
        exists = path.exists() or path.is_symlink()
    except (OSError, ValueError):  # a name too long for the OS, a NUL byte: no such file
        exists = False
    if not exists or (str(name_or_path) in bundled and not path.is_file()):
        if str(name_or_path) in bundled:
            path = bundled[str(name_or_path)]
        elif path.suffix == ".toml" or "/" in str(name_or_path):
            raise InputFileError(f"task graph file '{name_or_path}' not found")
        else:
            raise UnknownNameError(f"unknown task graph '{name_or_path}'{did_you_mean(str(name_or_path), bundled)}"
                                   f" (give a TOML file; bundled: {', '.join(bundled) or 'none'})")
    # an existing FIFO, device or folder is refused by the reader, never called "not found"
    text = _io.read_text(path, "a task graph TOML file")
    data = _io.parse_toml(text, str(path), SpecError)
    graph = parse_task_graph(data, str(path), path.stem)
    return TaskGraph(graph.name, graph.description, graph.tasks, graph.edges, str(path))
