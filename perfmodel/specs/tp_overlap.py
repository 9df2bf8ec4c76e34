"""A stack's ``[tp_overlap]`` table: how each tensor-parallel collective of a layer runs under its GEMM.

The slots are Transformer Engine's names for the ten GEMM + collective pairs of a transformer
layer with sequence parallelism (``initialize_ub``'s ``ub_cfgs`` keys), so a NeMo / Megatron
preset copies over one to one:

========== ======================== =====================================================
slot       GEMM it runs under       collective
========== ======================== =====================================================
qkv_fprop  QKV forward              all-gather of the attention input
fc1_fprop  MLP up forward           all-gather of the MLP input
proj_fprop attention proj forward   reduce-scatter of its output
fc2_fprop  MLP down forward         reduce-scatter of its output
proj_dgrad attention proj dgrad     all-gather of the output gradient
fc2_dgrad  MLP down dgrad           all-gather of the output gradient
qkv_dgrad  QKV dgrad                all-gather of the attention input (for the wgrad)
fc1_dgrad  MLP up dgrad             all-gather of the MLP input (for the wgrad)
qkv_wgrad  QKV wgrad                reduce-scatter of the input gradient
fc1_wgrad  MLP up wgrad             reduce-scatter of the input gradient
========== ======================== =====================================================

Each slot is ``{ method = "bulk" | "pipeline" | "ring_exchange", sms = n, splits = k, margin =
true|false }`` (:mod:`perfmodel.formulas.gemm_overlap`); a slot left out waits for its collective.
``streams``: the compute streams a chunked GEMM's chunks are issued on round-robin (up to that many
chunks run at once; 0, the default: the chunks cost what the whole GEMM costs);
``needs_sequence_parallel`` (default true): the overlap only runs with sequence parallelism.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from perfmodel.frozen import FrozenDict
from perfmodel.specs.reader import Table

__all__ = ["SLOTS", "METHODS", "INDEPENDENT", "OverlapSlot", "TpOverlap", "read_tp_overlap"]

# slot -> (linear layer, GEMM, collective: "ag" all-gather | "rs" reduce-scatter)
SLOTS = {
    "qkv_fprop": ("qkv", "fwd", "ag"), "fc1_fprop": ("fc1", "fwd", "ag"),
    "proj_fprop": ("proj", "fwd", "rs"), "fc2_fprop": ("fc2", "fwd", "rs"),
    "proj_dgrad": ("proj", "dgrad", "ag"), "fc2_dgrad": ("fc2", "dgrad", "ag"),
    "qkv_dgrad": ("qkv", "dgrad", "ag"), "fc1_dgrad": ("fc1", "dgrad", "ag"),
    "qkv_wgrad": ("qkv", "wgrad", "rs"), "fc1_wgrad": ("fc1", "wgrad", "rs"),
}
METHODS = ("bulk", "pipeline", "ring_exchange")
# the slots whose collective is independent of their GEMM (TE's "bulk" layers); the others feed
# their GEMM (all-gathers) or carry its output (reduce-scatters)
INDEPENDENT = ("qkv_dgrad", "fc1_dgrad", "qkv_wgrad", "fc1_wgrad")


@dataclass(frozen=True)
class OverlapSlot:
    method: str
    sms: int = 0  # SMs the collective's kernels hold
    splits: int = 1  # chunks of a pipelined GEMM
    margin: bool = False  # the GEMM launched on the SMs left over for its whole run


@dataclass(frozen=True)
class TpOverlap:
    """The overlapped slots of a stack (a slot not in ``slots`` waits for its collective)."""

    slots: FrozenDict  # slot name -> OverlapSlot
    source: str = ""
    # Transformer Engine's userbuffers overlap only runs with sequence parallelism (Megatron-Core
    # turns tp_comm_overlap off without it)
    needs_sequence_parallel: bool = True
    # compute streams a chunked GEMM's chunks are issued round-robin on (TE _NUM_MAX_UB_STREAMS):
    # up to that many chunks share the device at once; 0: the chunks run as one GEMM
    streams: int = 0

    @functools.cached_property
    def max_sms(self) -> int:
        """The most SMs any slot's collective holds (0 without SMs)."""
        return max((slot.sms for slot in self.slots.values()), default=0)


def read_tp_overlap(top: Table) -> TpOverlap | None:
    """The optional ``[tp_overlap]`` table (with its ``source``), or None."""
    table = top.table("tp_overlap", required=False)
    if table is None:
        return None
    slots = {}
    for name in SLOTS:
        if not table.has(name):
            continue
        slot = table.table(name)
        method = slot.string("method", choices=METHODS)
        dependent = name not in INDEPENDENT
        if dependent == (method == "bulk"):
            allowed = "ring_exchange or pipeline (its GEMM consumes or produces the collective's data)" if dependent \
                else "bulk (the collective is independent of its GEMM)"
            raise slot.fail("method", f"{name} runs as {allowed} in Transformer Engine, got {method!r}")
        if slot.has("splits") and method != "pipeline":
            raise slot.fail("splits", f"only a pipeline slot splits its GEMM (a ring exchange runs in tp steps), got "
                                      f"method {method!r}")
        slots[name] = OverlapSlot(method, sms=slot.integer("sms", default=0, minimum=0, maximum=1024),
                                  splits=slot.integer("splits", default=1, maximum=64),
                                  margin=slot.boolean("margin", False))
        slot.finish()
    out = TpOverlap(FrozenDict(slots), table.string("source"),
                    needs_sequence_parallel=table.boolean("needs_sequence_parallel", True),
                    streams=table.integer("streams", default=0, minimum=0, maximum=64))
    table.string("streams_source", default=... if out.streams else "")  # required once streams are named
    table.finish()
    return out
