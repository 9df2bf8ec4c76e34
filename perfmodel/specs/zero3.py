"""A stack's ``[zero3]`` table: how its ZeRO-3 / FSDP FULL_SHARD communicates the parameter shards.

``gather``: ``"layer"`` (default) - one all-gather of each layer's parameters and one
reduce-scatter of its gradients (FSDP's flat parameter per wrapped unit, DeepSpeed from v0.6 with
``all_gather_coalesced``); ``"tensor"`` - one collective per parameter tensor, each paying the
collective's latency again (DeepSpeed v0.3-v0.5, 2021: ``_allgather_param`` and
``_reduce_scatter_gradient`` per parameter).
``prefetch`` (default true): the next layer's gather runs under the current layer's compute; false:
every gather and reduce-scatter waits (DeepSpeed v0.3-v0.5 calls ``torch.cuda.synchronize()``
before each parameter's all-gather and after fetching a module's parameters).
``copy_passes``: ``[gather, scatter]`` passes over each gathered / reduce-scattered byte through
device memory besides the collective itself (a zero-filled output buffer, a list all-gather's
copy-out, a list reduce-scatter's flattening, a pre-division), at the device's copy bandwidth;
default ``[0, 0]``.
``reuse_distance``: parameters (elements) within which a layer's gathered parameters are kept for
their next use; a layer larger than that, under full recomputation, is gathered again for the
backward after the recompute's forward released it (DeepSpeed ``stage3_max_reuse_distance``,
default 1e9 in v0.3-v0.5); default: no limit (FSDP gathers a unit once for recompute and backward).
Each with its ``source``.
"""

from __future__ import annotations

from dataclasses import dataclass

from perfmodel.specs.reader import Table

__all__ = ["GATHERS", "Zero3", "read_zero3"]

GATHERS = ("layer", "tensor")


@dataclass(frozen=True)
class Zero3:
    """How a stack's ZeRO-3 communicates (see the module docstring)."""

    gather: str = "layer"
    prefetch: bool = True
    gather_copy_passes: float = 0.0
    scatter_copy_passes: float = 0.0
    reuse_distance_params: float = float("inf")
    source: str = ""


def read_zero3(top: Table) -> Zero3:
    """The stack's optional ``[zero3]`` table (defaults: layer by layer, prefetched, no copies)."""
    table = top.table("zero3", required=False)
    if table is None:
        return Zero3()
    passes = table.raw("copy_passes", [0, 0])
    if not (isinstance(passes, list) and len(passes) == 2 and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and 0 <= x <= 16 for x in passes)):
        raise table.fail("copy_passes", f"expected [gather, scatter] passes per byte, each in [0, 16], got {passes!r}")
    out = Zero3(gather=table.string("gather", default="layer", choices=GATHERS),
                prefetch=table.boolean("prefetch", True),
                gather_copy_passes=float(passes[0]), scatter_copy_passes=float(passes[1]),
                reuse_distance_params=table.number("reuse_distance", float("inf"), minimum=0.0),
                source=table.string("source"))
    table.finish()
    return out
