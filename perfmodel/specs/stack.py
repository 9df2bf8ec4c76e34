"""Software-stack profiles: what a framework fuses, its attention kernel, launch overhead, optimizer.

Profiles are TOML files in ``perfmodel/specs/stacks/`` (bundled: ``megatron``, ``megatron-core``,
``pytorch-eager``) or a user path. Every number carries a source, as in the hardware files.

Two optional parts (older files without them load unchanged):

* ``autocast = true``: the stack trains 16-bit dtypes under PyTorch autocast: fp32 parameters,
  gradients and optimizer states (no separate master copy), weights cast to 16 bits at each use.
* ``[inventory]``: the kernels of one transformer layer per model family, forward and backward
  (grammar in :mod:`perfmodel.specs.inventory`). A stack with an inventory for the model's family
  is timed and its activation memory counted kernel by kernel; otherwise the role-based
  ``[layer] kernels`` list is used.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Mapping

from perfmodel.errors import UnknownNameError, did_you_mean
from perfmodel.specs.inventory import Inventory, read_inventory
from perfmodel.specs.reader import Table, read_toml

__all__ = ["Stack", "load_stack", "stack_names", "ROLES"]

ROLES = ("norm", "activation", "dropout", "residual_add", "softmax")
ATTENTION = ("flash", "materialized")


@dataclass(frozen=True)
class Stack:
    """A software stack. Kernels are tuples of roles; roles fused in one kernel share one pass."""

    name: str
    description: str
    attention: str
    gemm_rate_scale: float
    launch_overhead_time: float
    layer_kernels: tuple[tuple[str, ...], ...]
    score_kernels: tuple[tuple[str, ...], ...]
    optimizer_fused: bool
    optimizer_bytes_per_param: float
    p2p_scatter_gather: bool
    grad_reduce_bytes: int
    logits_bytes: int
    cross_entropy_passes: float
    pad_vocab_multiple: int
    tp_comm_overlap: bool
    param_gather_overlap: bool
    memory_efficiency: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    source: str = ""
    autocast: bool = False
    inventory: Mapping[str, Inventory] = field(default_factory=dict)

    def kernel_efficiency(self, ops, direction: str) -> float:
        """Achieved fraction of copy bandwidth of a kernel running ``ops`` (the slowest op's)."""
        index = 0 if direction == "fwd" else 1
        return min(self.memory_efficiency.get(op, (1.0, 1.0))[index] for op in ops)


@functools.cache
def stack_names() -> tuple[str, ...]:
    folder = Path(str(resources.files("perfmodel.specs") / "stacks"))
    return tuple(sorted(p.stem for p in folder.glob("*.toml")))


def _kernels(table: Table, key: str) -> tuple[tuple[str, ...], ...]:
    value = table.raw(key)
    ok = isinstance(value, list) and all(
        isinstance(k, list) and k and all(isinstance(r, str) and r in ROLES for r in k) for k in value)
    if not ok:
        raise table.fail(key, f"expected a list of kernels, each a non-empty list of roles ({', '.join(ROLES)}), got {value!r}")
    return tuple(tuple(k) for k in value)


def _scale(top: Table) -> float:
    q = top.quantity("gemm_rate_scale", "ratio")
    if not 0 < q.value <= 1:
        raise top.fail("gemm_rate_scale", f"expected a fraction in (0, 1], got {q.text!r}")
    return q.value


def _efficiencies(table: Table) -> dict[str, tuple[float, float]]:
    from perfmodel.formulas.compute import POINTWISE_OPS

    table.string("source")
    out = {}
    for op in table.keys():
        if op == "source":
            continue
        if op not in POINTWISE_OPS:
            raise table.fail(op, f"expected a pointwise op ({', '.join(POINTWISE_OPS)}){did_you_mean(op, POINTWISE_OPS)}")
        pair = table.raw(op)
        if not (isinstance(pair, list) and len(pair) == 2 and all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and 0 < x <= 1 for x in pair)):
            raise table.fail(op, f"expected [forward, backward] fractions in (0, 1], got {pair!r}")
        out[op] = (float(pair[0]), float(pair[1]))
    table.finish()
    return out


def _build(data: dict, file: str, stem: str) -> Stack:
    top = Table(data, file)
    name = top.string("name")
    if name != stem:
        raise top.fail("name", f"expected the file's stem {stem!r}, got {name!r}")
    layer = top.table("layer")
    opt = top.table("optimizer")
    bpp = opt.table("bytes_per_param")
    bytes_per_param = bpp.raw("value")
    try:
        bytes_per_param = float(bytes_per_param)
    except (TypeError, ValueError):
        raise bpp.fail("value", f"expected a number of bytes per parameter, got {bytes_per_param!r}") from None
    if not 0 < bytes_per_param < 1e4:
        raise bpp.fail("value", f"expected a positive number of bytes per parameter, got {bytes_per_param}")
    bpp.string("source")
    bpp.finish()
    stack = Stack(
        name=name,
        description=top.string("description"),
        source=top.string("source"),
        attention=top.string("attention", choices=ATTENTION),
        gemm_rate_scale=_scale(top),
        launch_overhead_time=top.quantity("launch_overhead", "time").value,
        layer_kernels=_kernels(layer, "kernels"),
        score_kernels=_kernels(layer, "score_kernels"),
        optimizer_fused=opt.boolean("fused"),
        optimizer_bytes_per_param=bytes_per_param,
        p2p_scatter_gather=top.boolean("p2p_scatter_gather"),
        grad_reduce_bytes=top.integer("grad_reduce_bytes", maximum=8),
        logits_bytes=top.integer("logits_bytes", maximum=8),
        cross_entropy_passes=top.number("cross_entropy_passes", minimum=0.0, maximum=100.0),
        pad_vocab_multiple=top.integer("pad_vocab_multiple", maximum=4096),
        tp_comm_overlap=top.boolean("tp_comm_overlap"),
        param_gather_overlap=top.boolean("param_gather_overlap"),
        memory_efficiency=_efficiencies(top.table("memory_efficiency")),
        autocast=top.boolean("autocast", False),
        inventory=read_inventory(top.table("inventory", required=False)),
    )
    top.string("cross_entropy_source")
    layer.finish()
    opt.finish()
    top.finish()
    return stack


@functools.cache
def _bundled(name: str) -> Stack:
    path = Path(str(resources.files("perfmodel.specs") / "stacks" / f"{name}.toml"))
    return _build(read_toml(path), str(path), name)


def load_stack(name_or_path: str | Stack) -> Stack:
    """A bundled stack by name, or a stack TOML file by path."""
    if isinstance(name_or_path, Stack):
        return name_or_path
    text = str(name_or_path)
    if text.endswith(".toml") or "/" in text:
        path = Path(text)
        return _build(read_toml(path), str(path), path.stem)
    if text not in stack_names():
        raise UnknownNameError(f"unknown stack '{text}'{did_you_mean(text, stack_names())}"
                               f" (bundled: {', '.join(stack_names())})")
    return _bundled(text)
