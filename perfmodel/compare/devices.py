r"""The same model, network and scheme on different devices: ``compare_devices``.

Each device becomes a cluster of its own -- one device per node, every node with one NIC of the
given link, joined by the given topology -- and the model is scaled over it at a fixed global
batch (strong scaling). Per device and worker count the result gives the predicted step time, the
scaling efficiency :math:`E(n) = T(1) / (n\,T(n))`, the share of the step that is exposed
communication, the elasticity of the step time to the link bandwidth, and each device's crossover
(the workers at which the scheme's communication equals its compute; :mod:`perfmodel.crossover.find`).

Nothing here says which device should win. With the same bytes to synchronise over the same link,
the device whose compute per worker is faster runs out of compute to hide them behind sooner: the
GPU's crossover comes at fewer workers and its efficiency falls first, the classic observation
that GPU clusters are more sensitive to the network than CPU clusters (e.g. Shi, Wang & Chu,
"Performance Modeling and Evaluation of Distributed Deep Learning Frameworks on GPUs", 2018,
Section V) -- here it follows from the devices' spec files through the formulas.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from perfmodel.errors import PlanError, UnknownNameError, did_you_mean
from perfmodel.frozen import FrozenDict

__all__ = ["DeviceComparison", "compare_devices", "device_cluster", "DEFAULT_WORKERS"]

DEFAULT_WORKERS = (1, 2, 4, 8, 16, 32, 64)
COMPARE_SCHEMES = ("dp", "tp")


def device_cluster(device, link, topology: str = "switch"):
    """A system of single-device nodes of ``device``, one NIC of ``link`` each, joined by ``topology``."""
    from perfmodel.specs.loader import NETWORK_TOPOLOGIES
    from perfmodel.specs.registry import load_device, load_link
    from perfmodel.specs.schema import Fabric, Network, System

    if topology not in NETWORK_TOPOLOGIES:
        raise UnknownNameError(f"unknown topology '{topology}'{did_you_mean(topology, NETWORK_TOPOLOGIES)} "
                               f"(expected one of {', '.join(NETWORK_TOPOLOGIES)})")
    dev = load_device(device) if isinstance(device, str) else device
    lk = load_link(link) if isinstance(link, str) else link
    return System(name=f"{dev.name} x {lk.name}", description=f"{dev.description}; one per node, one {lk.name} "
                  f"NIC per node, {topology} network (built by compare_devices)", device=dev, devices_per_node=1,
                  fabric=Fabric(kind="none", link=None), network=Network(topology=topology, link=lk, nics_per_node=1))


@dataclass(frozen=True)
class DeviceComparison:
    """Scaling of one model over the same network on several devices (see :func:`compare_devices`).

    ``rows``: one per device and worker count (device, kind, workers, step_time_s, speedup,
    efficiency, comm_fraction, comm_total_s, bandwidth_elasticity, bound, fits_in_memory,
    memory_bytes_per_device: a row that does not fit is still timed, and says so). ``crossovers``: one per
    device (device, kind, crossover_workers, integer_workers, t_compute_s, t_comm_s, note).
    """

    model: str
    link: str
    topology: str
    scheme: str
    global_batch: int
    micro_batch: int | None  # None: global batch / dp, one micro-batch per step
    dtype: str
    workers: tuple[int, ...]
    rows: tuple[Mapping[str, object], ...]
    crossovers: tuple[Mapping[str, object], ...]
    stack: str = ""

    @property
    def devices(self) -> tuple[str, ...]:
        return tuple(c["device"] for c in self.crossovers)

    def efficiency(self, device: str, workers: int) -> float:
        return self._row(device, workers)["efficiency"]

    def crossover(self, device: str) -> float | None:
        return next(c["crossover_workers"] for c in self.crossovers if c["device"] == device)

    def _row(self, device: str, workers: int) -> Mapping[str, object]:
        for row in self.rows:
            if row["device"] == device and row["workers"] == workers:
                return row
        raise KeyError(f"no row for {device} at {workers} workers")

    def to_dict(self) -> dict:
        return {"model": self.model, "link": self.link, "topology": self.topology, "scheme": self.scheme,
                "global_batch": self.global_batch, "micro_batch": self.micro_batch, "dtype": self.dtype,
                "workers": list(self.workers), "rows": [dict(r) for r in self.rows],
                "crossovers": [dict(c) for c in self.crossovers], "stack": self.stack,
                "definitions": dict(DEFINITIONS)}

    CSV_COLUMNS = ("device", "kind", "workers", "step_time_s", "speedup", "efficiency", "comm_fraction",
                   "comm_total_s", "bandwidth_elasticity", "bound", "crossover_workers")

    def to_rows(self) -> list[dict]:
        """One CSV row per device and worker count, with the device's crossover (:attr:`CSV_COLUMNS`)."""
        cross = {c["device"]: c["crossover_workers"] for c in self.crossovers}
        return [{**dict(r), "crossover_workers": cross[r["device"]]} for r in self.rows]

    def to_frame(self):
        """The rows as a pandas DataFrame indexed by (device, workers)."""
        import pandas as pd

        return pd.DataFrame([dict(r) for r in self.rows]).set_index(["device", "workers"])

    def __rich_console__(self, console, options):
        from perfmodel.tables import from_rows, packed
        from perfmodel.units import format_quantity

        mb = "global batch / dp" if self.micro_batch is None else str(self.micro_batch)
        rows = [{"device": r["device"], "kind": r["kind"], "workers": str(r["workers"]),
                 "step time": format_quantity(r["step_time_s"], "time"), "speedup": f"{r['speedup']:.2f}",
                 "efficiency": f"{r['efficiency'] * 100:.1f} %", "comm share": f"{r['comm_fraction'] * 100:.1f} %",
                 "d ln T / d ln B": f"{r['bandwidth_elasticity']:+.3f}",
                 "comm / compute": ("-" if r["comm_over_compute"] is None else
                                    f"{r['comm_over_compute']:.2f}" + (" (past)" if r["comm_over_compute"] > 1 else "")),
                 "bound": r["bound"],
                 "fits": "yes" if r["fits_in_memory"] else f"no ({format_quantity(r['memory_bytes_per_device'], 'bytes')})"}
                for r in self.rows]
        yield packed(from_rows(rows, left=("device", "kind", "bound")), options.max_width,
                     title=f"{self.model}, {self.scheme} over {self.link} ({self.topology}), global batch "
                           f"{self.global_batch}, micro-batch {mb}, {self.dtype}, stack {self.stack}",
                     caption=f"comm / compute: {DEFINITIONS['comm_over_compute']}; bound: {DEFINITIONS['bound']}")
        cross = [{"device": c["device"], "kind": c["kind"],
                  "crossover (workers)": "-" if c["crossover_workers"] is None else f"{c['crossover_workers']:.4g}",
                  "first comm-bound count": str(c["integer_workers"] or "-"),
                  "t_comm = t_compute": "-" if c["t_comm_s"] is None else format_quantity(c["t_comm_s"], "time"),
                  "note": c["note"] or ""} for c in self.crossovers]
        yield packed(from_rows(cross, text=("note",), left=("device", "kind")), options.max_width,
                     title="crossover: workers at which the gradient sync equals the backward compute",
                     caption=f"crossover: {DEFINITIONS['crossover']}; first comm-bound count: "
                             f"{DEFINITIONS['first_comm_bound_count']}")


# what each number of the comparison means (the crossover and the rows' comm / compute are one measure)
DEFINITIONS = {
    "crossover": "the worker count at which the step's gradient sync equals its backward compute on one device "
                 "(past it the sync cannot hide under the backward); the rows' comm / compute passes 1 there",
    "comm_over_compute": "that sync over that backward at the row's worker count (the crossover's measure)",
    "bound": "the full prediction's largest part (compute, exposed communication or memory-bound kernels): a step "
             "whose pointwise kernels dominate stays memory-bound past the crossover while the exposed sync grows",
    "first_comm_bound_count": "the first valid worker count at which the full prediction's exposed communication "
                              "is its largest part (the bound column), which can lie well past the crossover",
}

COMMON_STACK = "megatron"  # the stack every device of a comparison runs unless --stack says otherwise


def _crossover(model, system, scheme, plan):
    """(the Crossover or None, its row for the crossovers table)."""
    from perfmodel.crossover.find import NoCrossoverError, find_crossover

    kind = system.device.kind
    try:
        c = find_crossover(model, system, scheme, "devices", plan)
    except (NoCrossoverError, PlanError) as exc:  # no crossover in range, or a plan that cannot scale: say why
        return None, FrozenDict({"device": system.device.name, "kind": kind, "crossover_workers": None,
                                 "integer_workers": None, "t_compute_s": None, "t_comm_s": None, "note": str(exc)})
    return c, FrozenDict({
        "device": system.device.name, "kind": kind, "crossover_workers": c.value,
        "integer_workers": c.integer_value, "t_compute_s": c.t_compute_s, "t_comm_s": c.t_comm_s,
        "note": "; ".join(n for n in c.notes if "integer" not in n) or None})


def compare_devices(model, devices: Sequence[str], link, topology: str = "switch", scheme: str = "dp",
                    workers: Sequence[int] = DEFAULT_WORKERS, *, global_batch: int | None = None,
                    micro_batch: int | None = None, **plan_fields) -> DeviceComparison:
    """Scale ``model`` with ``scheme`` (dp | tp) over ``workers`` single-device nodes of each of
    ``devices``, joined by ``link`` NICs in ``topology``, at a fixed global batch.

    The global batch defaults to the model family's published one (512 sequences, 256 images).
    Without ``micro_batch`` each data-parallel rank runs its whole share of the batch as one
    micro-batch (global batch / dp, as PyTorch DDP does without gradient accumulation), so a
    device's kernels shrink as workers are added, as they do in strong scaling; with it, every
    worker count accumulates gradients over micro-batches of that size. Other plan fields (dtype,
    stack, overlap, grad_sync, zero, ...) pass through to every plan. Every device runs the same stack
    (``stack``, default :data:`COMMON_STACK`), not its generation's default: the comparison isolates the
    device, so nothing but its spec tells the model which device is which.

    Long on purpose: one loop over devices and worker counts builds the rows, crossovers and notes that share the same per-device cluster; split, each part would take the same six locals.
    """
    from perfmodel.crossover.find import sensitivity
    from perfmodel.crossover.equations import default_global_batch
    from perfmodel.plan import Plan
    from perfmodel.prediction import predict
    from perfmodel.workloads import load_model

    if scheme not in COMPARE_SCHEMES:
        raise UnknownNameError(f"unknown scheme '{scheme}'{did_you_mean(str(scheme), COMPARE_SCHEMES)} "
                               f"(compare devices takes {' or '.join(COMPARE_SCHEMES)})")
    if not devices:
        raise PlanError("compare devices needs at least one device")
    workers = tuple(sorted(set(int(n) for n in workers)))
    if not workers or workers[0] < 1:
        raise PlanError(f"workers must be positive integers, got {list(workers)}")
    if not hasattr(model, "n_params"):
        model = load_model(model)
    if global_batch is None:
        global_batch = default_global_batch(model, 1, 1)
    if scheme == "dp" and micro_batch is None:
        uneven = [n for n in workers if global_batch % n]
        if uneven:
            raise PlanError(f"global batch {global_batch} does not divide evenly over {uneven[0]} workers; "
                            f"give worker counts that divide it, or another --global-batch")
    plan_fields.setdefault("stack", COMMON_STACK)
    base = Plan(global_batch=global_batch, **plan_fields)

    def plan_for(n):
        if scheme == "dp":
            return base.replace(devices=n, dp=n, micro_batch=micro_batch or global_batch // n)
        return base.replace(devices=n, tp=n, dp=1, micro_batch=micro_batch or global_batch)

    rows, crossovers = [], []
    for name in devices:
        system = device_cluster(name, link, topology)
        kind = system.device.kind
        c, entry = _crossover(model, system, scheme, plan_for(1))
        crossovers.append(entry)
        reference = predict(model, system, plan_for(1)).step_time_s
        for n in workers:
            r = predict(model, system, plan_for(n))
            b = r.breakdown_s
            exposed = b["tp_comm"] + b["pp_comm"] + b["dp_comm"]
            ratio = None
            if c is not None and n > 1:
                comm, comp = c.curve([n])
                ratio = comm[0] / comp[0]
            rows.append(FrozenDict({
                "device": system.device.name, "kind": kind, "workers": n, "step_time_s": r.step_time_s,
                "speedup": reference / r.step_time_s, "efficiency": reference / (n * r.step_time_s),
                "comm_fraction": exposed / r.step_time_s, "comm_total_s": r.comm_total_s,
                "bandwidth_elasticity": sensitivity(model, system, r.plan, "network")["bandwidth"] if n > 1 else 0.0,
                # the crossover's own measure at n: > 1 past the crossover (the sync no longer hides)
                "comm_over_compute": ratio, "past_crossover": None if ratio is None else ratio > 1,
                "bound": r.bound, "fits_in_memory": r.fits_in_memory,
                "memory_bytes_per_device": r.memory_bytes_per_device["total"]}))
    return DeviceComparison(model=model.name, link=str(getattr(link, "name", link)), topology=topology,
                            scheme=scheme, global_batch=global_batch, micro_batch=micro_batch, dtype=base.dtype,
                            workers=workers, rows=tuple(rows), crossovers=tuple(crossovers), stack=str(base.stack))
