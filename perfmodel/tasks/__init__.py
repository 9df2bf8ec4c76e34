"""Task parallelism: a task graph in TOML (``graph``) scheduled on workers (``schedule``: work and
critical-path bounds, Graham's bound, HEFT)."""

from perfmodel.tasks.graph import TaskGraph, bundled_task_graphs, load_task_graph, parse_task_graph
from perfmodel.tasks.schedule import TaskSchedule, schedule_tasks, workers_of

__all__ = ["TaskGraph", "load_task_graph", "parse_task_graph", "bundled_task_graphs", "TaskSchedule",
           "schedule_tasks", "workers_of"]
