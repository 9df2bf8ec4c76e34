"""Readers of a stack file's keys for the copies and reductions autograd adds to a layer's backward
(:mod:`perfmodel.specs.stack` lists them; :mod:`perfmodel.prediction.layers` times them):

* ``qkv_split = true`` (with ``qkv_split_source``): one fused QKV projection split into views
  (``torch.split``), whose backward concatenates dq, dk, dv: a read and a write of the projection's
  output a layer (Megatron-LM's ``query_key_value``, LLM Foundry's ``Wqkv``); default false.
* ``grad_accumulation``: the sum of a residual branch's two input gradients in the backward, one per
  residual add: ``"kernel"`` (default; PyTorch's autograd engine, ``InputBuffer::accumulate``, an
  add kernel of 3 accesses, as the CNN path and the profiled eager inventories count it) or
  ``"fused"`` (XLA, TorchInductor: one more read in a neighbouring fusion).
* ``bias_grad``: a biased linear layer's bias gradient, the sum of its output gradient over the
  tokens: ``"reduction"`` (default; a reduction kernel reading that gradient, PyTorch's ``addmm``
  backward or the broadcast's ``sum_to_size``, as the profiled eager inventories count it; in an
  FP8 run the linear layers are Transformer Engine's, which fuse it), ``"fused"`` (in the
  weight-gradient GEMM's epilogue: Transformer Engine's cuBLASLt bias-gradient output; or a
  compiler's fusion) or ``"qkv-fused"`` (Megatron-Core: the QKV projection's bias in Transformer
  Engine's epilogue; the output, up and down projections skip their bias add, ``skip_bias_add``, and
  the fused bias-GELU / bias-dropout-add backward sums theirs, FP8 or not).
"""

from __future__ import annotations

from perfmodel.specs.reader import Table

__all__ = ["GRAD_ACCUMULATION", "BIAS_GRAD", "backward_fields"]

GRAD_ACCUMULATION = ("kernel", "fused")
BIAS_GRAD = ("reduction", "fused", "qkv-fused")


def backward_fields(top: Table) -> dict:
    """The Stack fields of the keys above, with their sources where a file sets them."""
    split = top.boolean("qkv_split", False)
    top.string("qkv_split_source", default=... if split else "")  # required when true
    out = dict(qkv_split=split,
               grad_accumulation=top.string("grad_accumulation", default="kernel", choices=GRAD_ACCUMULATION),
               bias_grad=top.string("bias_grad", default="reduction", choices=BIAS_GRAD))
    if top.has("bias_grad"):
        top.string("bias_grad_source")
    return out
