"""Bytes per parameter of what a stack keeps and syncs for each weight, by plan dtype: the weights
a device holds, what a distributed optimizer gathers after its step, and the optimizer's master
copy (the stack's ``master_bytes`` and ``fp8_params``, :mod:`perfmodel.specs.stack`)."""

from __future__ import annotations

from perfmodel.plan import DTYPE_BYTES, precision_of

__all__ = ["FP8_PARAM_BYTES", "FP8_TRANSPOSE_BYTES", "MASTER_BYTES", "STATE_BYTES", "fp8_params", "bf16_stored",
           "weight_bytes_per_param", "param_sync_bytes", "master_bytes_per_param"]

MASTER_BYTES = 4  # an fp32 master copy
# optimizers whose states are not fp32: the bytes of a moment and of a master copy
# (adamw-bf16, perfmodel.plan.OPTIMIZERS)
STATE_BYTES = {"adamw-bf16": 2}
# an fp8 plan's weights kept as FP8 tensors (a stack's fp8_params): the FP8 weight and Transformer
# Engine's FP8 transpose cache, 1 B each (transformer_engine/pytorch/float8_tensor.py)
FP8_PARAM_BYTES = 2
# bytes TE moves per FP8 parameter to refill its transpose cache on a step's first micro-batch
# (read the FP8 weight, write its transpose)
FP8_TRANSPOSE_BYTES = 2


def fp8_params(stack, dtype: str) -> bool:
    """Whether an ``dtype`` plan under ``stack`` keeps its weights as FP8 tensors."""
    return dtype == "fp8" and getattr(stack, "fp8_params", False)


def bf16_stored(stack, dtype: str) -> bool:
    """Whether a ``dtype`` plan stores its weights in bf16 (bf16, or FP8 without FP8 parameters)."""
    return dtype == "bf16" or (dtype == "fp8" and not fp8_params(stack, dtype))


def weight_bytes_per_param(stack, dtype: str) -> int:
    """Bytes per parameter of the weights a device holds: :func:`perfmodel.plan.precision_of`'s, or
    2 (FP8 weight + FP8 transpose cache) where the stack keeps FP8 parameters."""
    return FP8_PARAM_BYTES if fp8_params(stack, dtype) else precision_of(dtype).weight_bytes


def param_sync_bytes(stack, dtype: str) -> int:
    """Bytes per parameter a distributed optimizer all-gathers after its step: the weights' dtype
    (1 B for FP8 parameters: Apex DistributedFusedAdam syncs them as uint8)."""
    return 1 if fp8_params(stack, dtype) else DTYPE_BYTES[dtype]


def master_bytes_per_param(stack, dtype: str, optimizer: str = "adamw") -> float:
    """Bytes per parameter of the optimizer's master copy under mixed precision: the stack's
    ``master_bytes`` for bf16 weights (4, fp32, by default; 2 for Apex's param remainders, the
    16 bits a bf16 weight lacks of its fp32 value), else 4: fp16 weights are not the top half of an
    fp32 value (NeMo and Apex keep remainders for bf16 only), and FP8 parameters sync as uint8,
    which makes Apex DistributedFusedAdam store the full fp32 master (store_params). An optimizer
    with 16-bit states (:data:`STATE_BYTES`) keeps none for weights stored in bf16 and a bf16 one for
    others (Apex DistributedFusedAdam with dtype bf16: store_params only where the parameters are
    not bf16; NVIDIA/apex @810ffae3 distributed_fused_adam.py)."""
    if optimizer in STATE_BYTES:
        return 0 if bf16_stored(stack, dtype) else STATE_BYTES[optimizer]
    return getattr(stack, "master_bytes", MASTER_BYTES) if dtype == "bf16" else MASTER_BYTES
