"""A stack's ``[zero3]`` table: how its ZeRO-3 / FSDP FULL_SHARD communicates the parameter shards.

``gather``: ``"layer"`` (default) - one all-gather of each layer's parameters and one
reduce-scatter of its gradients, the next layer's gather prefetched under the current layer's
compute (FSDP's flat parameter per wrapped unit; DeepSpeed from v0.6 with ``all_gather_coalesced``):
:func:`perfmodel.prediction.rules.sharded_sync_times`. ``"tensor"`` - one collective per parameter
tensor, as the DeepSpeed of 2021 (v0.3 to v0.4.2) ran it: :mod:`perfmodel.prediction.zero3_tensorwise`,
which reads the other keys (transformers only; a CNN or MLP keeps the layer model; with
``gather = "layer"`` they are refused):

``prefetch`` (default true): the next module's gathers start before the current one computes.
``persistence_threshold``: tensors of fewer elements are gathered once a step and kept (DeepSpeed
``stage3_param_persistence_threshold``); default 0.
``reuse_distance``: parameters within whose reuse a module's gathered parameters are kept
(``stage3_max_reuse_distance``); default: no limit.
``grad_reduce``: ``"reduce-scatter"`` (each gradient tensor on its own; default) or ``"all-reduce"``
(flattened buckets of ``grad_bucket`` elements, all-reduced); ``grad_overlap`` (default true):
whether the reduction runs beside the backward (DeepSpeed ``overlap_comm``).
``copy_passes``: ``[gather, gradient]`` passes over each gathered / reduced byte through device memory
besides the collective itself (zero-filled buffers, list collectives' flat copies, divisions), at
the device's copy bandwidth; default ``[0, 0]``.
``per_rank_ops`` (default false): a gather runs work per rank of its group: DeepSpeed v0.3's
``_allgather_param`` narrows its flat buffer once per rank in a Python loop (after its device
synchronize, the GPU idle), and PyTorch 1.x's list all-gather copies each rank's block out of its own
flat buffer (``ProcessGroupNCCL::allgather``): dp eager ops a gather, each at the stack's per-op
launch overhead; and after each optimizer step the persistent tensors, gathered in one call, are
rebuilt tensor by tensor and rank by rank (``_allgather_params``: a device copy of each rank's slice
of each tensor): one eager op per tensor and rank holding a slice of it.
``synchronize`` (default false): every gather runs under a device-wide synchronize (DeepSpeed v0.3's
``torch.cuda.synchronize()`` in ``_allgather_param`` and ``fetch_sub_module``): no gather hides under
compute (with ``prefetch = false`` only), and a gradient bucket's all-reduce hides under at most the
compute of the window between two gathers it was flushed in, being waited for at the next gather
(:func:`perfmodel.prediction.zero3_tensorwise.backward_windows`; a layout other than Megatron's
sequential block: under its layer's backward compute).
Each with its ``source``.
"""

from __future__ import annotations

from dataclasses import dataclass

from perfmodel.specs.reader import Table

__all__ = ["GATHERS", "GRAD_REDUCES", "Zero3", "read_zero3"]

GATHERS = ("layer", "tensor")
GRAD_REDUCES = ("reduce-scatter", "all-reduce")


@dataclass(frozen=True)
class Zero3:
    """How a stack's ZeRO-3 communicates (see the module docstring)."""

    gather: str = "layer"
    prefetch: bool = True
    persistence_threshold: float = 0.0
    reuse_distance_params: float = float("inf")
    grad_reduce: str = "reduce-scatter"
    grad_bucket: float = 5e8
    grad_overlap: bool = True
    gather_copy_passes: float = 0.0
    grad_copy_passes: float = 0.0
    synchronize: bool = False
    per_rank_ops: bool = False
    source: str = ""

    @property
    def holds_one_module(self) -> bool:
        """Tensor by tensor with no prefetch and no reuse: only the running module stays gathered."""
        return self.gather == "tensor" and not self.prefetch and self.reuse_distance_params == 0


def read_zero3(top: Table) -> Zero3:
    """The stack's optional ``[zero3]`` table (defaults: layer by layer, prefetched, no copies)."""
    table = top.table("zero3", required=False)
    if table is None:
        return Zero3()
    if table.raw("gather", "layer") == "layer":  # the layer model reads none of the other keys
        extra = next((k for k in table.keys() if k not in ("gather", "source")), None)
        if extra is not None:
            raise table.fail(extra, 'applies to gather = "tensor" only (the layer model is FSDP\'s: '
                                    'prefetched, reduce-scattered, no copies)')
    passes = table.raw("copy_passes", [0, 0])
    if not (isinstance(passes, list) and len(passes) == 2 and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and 0 <= x <= 16 for x in passes)):
        raise table.fail("copy_passes", f"expected [gather, gradient] passes per byte, each in [0, 16], got {passes!r}")
    out = Zero3(gather=table.string("gather", default="layer", choices=GATHERS),
                prefetch=table.boolean("prefetch", True),
                persistence_threshold=table.number("persistence_threshold", 0.0, maximum=1e15),
                reuse_distance_params=table.number("reuse_distance", float("inf"), minimum=0.0),
                grad_reduce=table.string("grad_reduce", default="reduce-scatter", choices=GRAD_REDUCES),
                grad_bucket=table.number("grad_bucket", 5e8, minimum=1.0, maximum=1e15),
                grad_overlap=table.boolean("grad_overlap", True),
                gather_copy_passes=float(passes[0]), grad_copy_passes=float(passes[1]),
                synchronize=table.boolean("synchronize", False),
                per_rank_ops=table.boolean("per_rank_ops", False),
                source=table.string("source"))
    if out.synchronize and out.prefetch:
        raise table.fail("synchronize", "models gathers that wait for everything: expected prefetch = false with it")
    table.finish()
    return out
