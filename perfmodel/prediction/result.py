"""The frozen result of a prediction: step time, where it goes, memory, and how to show it."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Mapping

from perfmodel.frozen import FrozenDict
from perfmodel.units import format_quantity

__all__ = ["Prediction", "BREAKDOWN_KEYS", "MEMORY_KEYS"]

# docs/interface.md contract: these keys, in this order; they sum to step_time_s
BREAKDOWN_KEYS = ("compute", "recompute", "optimizer", "tp_comm", "pp_comm", "dp_comm", "cp_comm", "pipeline_bubble",
                  "other")
MEMORY_KEYS = ("weights", "gradients", "optimizer", "activations", "total")


@dataclass(frozen=True)
class Prediction:
    """One training step of ``model`` on ``system`` with ``plan``."""

    model: str
    system: str
    plan: object
    step_time_s: float
    breakdown_s: Mapping[str, float]
    comm_total_s: float
    bound: str
    memory_bytes_per_device: Mapping[str, float]
    memory_capacity_bytes: float | None
    fits_in_memory: bool
    mfu: float
    throughput: float
    throughput_unit: str  # "tokens_per_s" or "samples_per_s"
    details: Mapping[str, object] = field(default_factory=lambda: FrozenDict({}))
    # plan fields perfmodel chose (field -> "value: why") and notes for the reader (choices, memory hint)
    chosen: Mapping[str, str] = field(default_factory=lambda: FrozenDict({}))
    notes: tuple[str, ...] = ()

    @property
    def breakdown(self) -> Mapping[str, float]:
        return self.breakdown_s

    @property
    def tokens_per_s(self) -> float | None:
        return self.throughput if self.throughput_unit == "tokens_per_s" else None

    @property
    def samples_per_s(self) -> float | None:
        return self.throughput if self.throughput_unit == "samples_per_s" else None

    @property
    def memory_overflow_bytes(self) -> float:
        """How far the total exceeds device memory (0 when it fits)."""
        cap = self.memory_capacity_bytes
        return 0.0 if cap is None else max(0.0, self.memory_bytes_per_device["total"] - cap)

    def to_dict(self) -> dict:
        """The JSON object of ``perfmodel predict --format json`` (docs/interface.md keys, plus context)."""
        from dataclasses import asdict

        out = {
            "model": self.model,
            "system": self.system,
            "plan": {**asdict(self.plan), "n_microbatches": self.plan.n_microbatches},
            "step_time_s": self.step_time_s,
            "breakdown_s": dict(self.breakdown_s),
            "comm_total_s": self.comm_total_s,
            "bound": self.bound,
            "memory_bytes_per_device": dict(self.memory_bytes_per_device),
            "memory_capacity_bytes": self.memory_capacity_bytes,
            "fits_in_memory": self.fits_in_memory,
            "mfu": self.mfu,
            self.throughput_unit: self.throughput,
        }
        out["details"] = {k: v for k, v in self.details.items()}
        out["plan_summary"] = plan_summary(self.plan)
        out["chosen"] = dict(self.chosen)
        out["notes"] = list(self.notes)
        return out

    def to_frame(self):
        """The breakdown as a pandas DataFrame (seconds and share of the step)."""
        import pandas as pd

        rows = [(k, v, v / self.step_time_s if self.step_time_s else 0.0) for k, v in self.breakdown_s.items()]
        return pd.DataFrame(rows, columns=["part", "seconds", "share"]).set_index("part")

    # -- rendering ----------------------------------------------------------------------------
    def summary_rows(self) -> list[tuple[str, str]]:
        mem = self.memory_bytes_per_device
        cap = self.memory_capacity_bytes
        fits = "yes" if self.fits_in_memory else (
            f"NO: needs {format_quantity(mem['total'], 'bytes')}"
            + (f" of {format_quantity(cap, 'bytes')} (over by {format_quantity(self.memory_overflow_bytes, 'bytes')})"
               if cap is not None else " (device capacity unknown)"))
        return [
            ("plan", plan_summary(self.plan)),
            ("step time", format_quantity(self.step_time_s, "time")),
            ("bound", self.bound),
            ("MFU", f"{self.mfu * 100:.1f} %"),
            (self.throughput_unit.replace("_per_s", "/s"), f"{self.throughput:,.0f}"),
            ("communication (all)", format_quantity(self.comm_total_s, "time")),
            ("memory per device", format_quantity(mem["total"], "bytes")),
            ("fits in memory", fits),
        ] + ([("GEMM rates", str(self.details["gemm_curve"]))] if "gemm_curve" in self.details else [])

    def __rich__(self):
        from rich.console import Group
        from rich.table import Table

        head = Table(title=f"{self.model} on {self.system}", show_header=False)
        head.add_column("", style="bold")
        head.add_column("")
        for k, v in self.summary_rows():
            head.add_row(k, v)
        parts = Table(title="where the step goes")
        for col in ("part", "time", "share"):
            parts.add_column(col, justify="right" if col != "part" else "left")
        for k, v in self.breakdown_s.items():
            share = v / self.step_time_s if self.step_time_s else 0.0
            parts.add_row(k, format_quantity(v, "time"), f"{share * 100:.1f} %")
        mem = Table(title="memory per device")
        mem.add_column("part")
        mem.add_column("bytes", justify="right")
        for k, v in self.memory_bytes_per_device.items():
            mem.add_row(k, format_quantity(v, "bytes"))
        if "host_memory_bytes_per_device" in self.details:  # what --offload moved to host memory
            mem.add_row(f"on host ({self.plan.offload}; not in total)",
                        format_quantity(self.details["host_memory_bytes_per_device"], "bytes"))
        for k, v in self.details.items():  # where the activations are: items of one layer, one micro-batch
            if k.startswith("memory_layer_") and v:
                mem.add_row(f"  per layer: {k[len('memory_layer_'):-len('_bytes')]}", format_quantity(v, "bytes"))
            elif k in ("memory_layers_held", "memory_gathered_weights_bytes"):
                mem.add_row(f"  {k[len('memory_'):].replace('_', ' ').replace(' bytes', '')}",
                            f"{v:g}" if k == "memory_layers_held" else format_quantity(v, "bytes"))
        if not self.notes:
            return Group(head, parts, mem)
        from rich.text import Text

        return Group(head, parts, mem, *(Text(f"note: {n}") for n in self.notes))

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in self.summary_rows())
        parts = "".join(
            f"<tr><td>{k}</td><td>{format_quantity(v, 'time')}</td>"
            f"<td>{(v / self.step_time_s if self.step_time_s else 0) * 100:.1f} %</td></tr>"
            for k, v in self.breakdown_s.items())
        notes = "".join(f"<p>note: {html.escape(n)}</p>" for n in self.notes)
        return (f"<b>{self.model} on {self.system}</b><table>{rows}</table>"
                f"<table><tr><th>part</th><th>time</th><th>share</th></tr>{parts}</table>{notes}")


def plan_summary(plan) -> str:
    """One line of the resolved plan: parallel degrees, micro-batch x accumulation steps, memory
    savers, dtype, schedule and stack (what every predict output shows)."""
    pp = f"pp {plan.pp}"
    if plan.pp > 1:
        pp += f" ({plan.schedule}{f', v={plan.virtual_stages}' if plan.virtual_stages > 1 else ''})"
    tp = f"tp {plan.tp}" + (" +SP" if plan.sequence_parallel else "")
    steps = plan.n_microbatches
    cp = f" x cp {getattr(plan, 'cp', 1)}"  # context parallelism (Megatron-Core's rank order: tp, cp, dp, pp)
    ep = getattr(plan, "ep", 1)
    dp = f"dp {plan.dp}" + (f" (ep {ep} of it)" if ep > 1 else "")  # experts spread over ep of the dp ranks
    return (f"{tp}{cp} x {pp} x {dp} = {plan.devices} devices; micro-batch {plan.micro_batch} x {steps} "
            f"accumulation step{'s' if steps != 1 else ''} = global batch {plan.global_batch}; "
            f"recompute {plan.recompute}; ZeRO {plan.zero}{_hybrid(plan)}; {plan.dtype}; stack {_stack_name(plan.stack)}"
            + ("" if getattr(plan, "offload", "none") == "none" else f"; offload {plan.offload} to host"))


def _hybrid(plan) -> str:
    group = getattr(plan, "shard_group", None)
    return "" if group is None else f" (hybrid: shard group {group}, {plan.dp // group} replicas)"


def _stack_name(stack) -> str:
    return getattr(stack, "name", None) or str(stack)
