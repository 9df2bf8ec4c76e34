"""Point-to-point transfers between pipeline stages: what one transfer costs, and how much of a
stage's transfers per micro-batch it waits for.

A stage sends its output activation forward and receives its input's gradient back, v times per
micro-batch under the interleaved schedule. What travels depends on the stack and the plan:

- sequence parallelism: each tensor-parallel rank holds s/t of the tokens and sends its part
  (Megatron-Core ``get_tensor_shapes``; Megatron-LM of 2022 switches scatter/gather off under
  sequence parallelism), nothing to gather;
- scatter/gather (Megatron-LM of 2021-22, DeepSpeed's pipeline engine with ``pipe_partitioned``):
  a 1/t slice a rank over the stage link, then an all-gather of the whole tensor over the
  tensor-parallel group after every receive
  (:func:`perfmodel.formulas.pipeline.scatter_gather_p2p_time`). Not charged: DeepSpeed's third
  gather a micro-batch on a middle stage (its own output, gathered again for the backward) and its
  copies, PyTorch 1.8's copy out of a list all-gather's flat buffer (Megatron-LM of 2021);
- otherwise the whole tensor from every rank.
"""

from __future__ import annotations

from perfmodel.formulas import collectives as coll
from perfmodel.formulas import pipeline as pipe
from perfmodel.formulas._backend import where

__all__ = ["p2p_transfer_time", "pipeline_p2p_time"]


def p2p_transfer_time(size, t, sequence_parallel: bool, scatter_gather: bool, alpha, beta, alpha_tp, beta_tp):
    """Seconds of one stage-to-stage transfer of a ``size``-byte activation (or gradient) of the
    whole micro-batch, as the module docstring says. alpha / beta: latency (s) and bandwidth per
    direction (B/s) between the pipeline neighbours; alpha_tp / beta_tp: of the tensor-parallel
    group (t ranks)."""
    if sequence_parallel:
        return coll.point_to_point_time(size / t, alpha, beta)
    if scatter_gather:
        return pipe.scatter_gather_p2p_time(size, t, alpha, beta, alpha_tp, beta_tp)
    return coll.point_to_point_time(size, alpha, beta)


def pipeline_p2p_time(p2p_one, schedule: str, virtual_stages, stage_compute, overlap: bool):
    """Exposed point-to-point time of one stage per micro-batch: 2v transfers (each chunk receives
    its input and sends its output gradient), each under the next chunk's compute when the stack
    overlaps them and the schedule is interleaved with v > 1
    (:func:`perfmodel.formulas.pipeline.overlapped_p2p_exposed_time`), else waited for."""
    n = 2 * virtual_stages
    if overlap and schedule == "interleaved":  # Megatron turns the overlap off without virtual stages
        return where(virtual_stages > 1, pipe.overlapped_p2p_exposed_time(p2p_one, n, stage_compute), n * p2p_one)
    return n * p2p_one
