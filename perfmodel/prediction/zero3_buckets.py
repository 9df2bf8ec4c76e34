"""How DeepSpeed v0.3's ZeRO-3 flushes its gradient buckets in a layer's backward, and what of
their all-reduces is waited for (:mod:`perfmodel.prediction.zero3_tensorwise` with ``[zero3]
synchronize``): the windows between two device synchronizes, the buckets each window's gradient
hooks flush, and the seconds the flushes outlast their window's compute. Read from DeepSpeed
v0.3.15 ``deepspeed/runtime/zero/stage3.py`` (``reduce_independent_p_g_buckets_and_remove_grads``,
``reduce_ipg_grads``, ``fetch_sub_module``)."""

from __future__ import annotations

from perfmodel.formulas import collectives as coll
from perfmodel.formulas._backend import maximum, where

__all__ = ["backward_windows", "hook_order_windows", "window_flushes", "bucket_counts", "flush_windows",
           "flushes_waited_time"]


def backward_windows(block, threshold):
    """(share of the layer's backward compute, the tensors whose gradient hooks fire in it) of each
    window between two device synchronizes of a sequential Megatron block (``block`` as
    :func:`megatron_modules` gives it: norm, query_key_value, dense, norm, dense_h_to_4h,
    dense_4h_to_h) in backward order, or None for another layout. A module's backward starts with
    the gather of its parameters and a device synchronize (``fetch_sub_module`` synchronizes only
    when the module has partitioned parameters: a norm, all of whose tensors are below the
    persistence ``threshold`` and stay gathered, opens no window, and its hooks fire in the window
    before it). The hooks fire in the window that computes their gradients: a module's own weight
    (and a bias its linear adds), and the bias of the module before it where that module skips its
    bias add (``skip_bias_add``: Megatron-LM's dense, dense_h_to_4h and dense_4h_to_h, whose biases
    the fused bias-GELU and bias-dropout-add that follow them differentiate, before the module's own
    backward starts). Compute is shared by weight elements (the linear layers' GEMMs; the attention
    core, which runs in the dense window, and the norms are left out of the split)."""
    if len(block) != 6:
        return None
    norm1, qkv, dense, norm2, up, down = block
    modules = ((down, (down[0],) + up[1:]), (up, (up[0],)), (norm2, norm2 + dense[1:]), (dense, (dense[0],)),
               (qkv, qkv), (norm1, norm1 + down[1:]))
    windows = []
    for module, tensors in modules:
        persistent = all(type(n) in (int, float) and n < threshold for n in module)
        if persistent and windows:  # no gather, no synchronize: the hooks join the open window
            windows[-1] = (windows[-1][0], windows[-1][1] + tensors)
        else:
            windows.append((0.0 if persistent else module[0], tensors))
    total = sum(share for share, _ in windows)
    return tuple((share / total, tensors) for share, tensors in windows)


# layers simulated after a first one for the buckets' steady state (a bucket may span several layers)
_FLUSH_LAYERS = 32


def window_flushes(windows, bucket, layers=_FLUSH_LAYERS):
    """``layers`` consecutive layers' flushes, each ((window share, ((elements, alone), ...)) per
    window of ``windows``): the buckets its gradient hooks flush, each tensor joining a bucket of
    ``bucket`` elements that is flushed (``reduce_ipg_grads``) before it would overflow, the bucket
    carried from layer to layer (after a first layer, left out); ``alone``: a tensor larger than the
    bucket, which is reduced by itself. ``windows``: :func:`backward_windows`, or one window of a
    layer's tensors in backward order. Several layers, because a layer smaller than the bucket
    flushes in some layers only."""
    fill, out = 0.0, []
    for layer in range(layers + 1):
        this = []
        for share, tensors in windows:
            flushed = []
            for n in tensors:
                flush = fill + n > bucket
                flushed.append((where(flush, fill, 0.0), where(flush, fill > bucket, False)))
                fill = where(flush, n, fill + n)
            this.append((share, tuple(flushed)))
        if layer:
            out.append(tuple(this))
    return tuple(out)


def hook_order_windows(block, threshold):
    """:func:`backward_windows`, or for another layout one window of the layer's tensors in backward
    order."""
    return backward_windows(block, threshold) or ((1.0, tuple(n for m in reversed(block) for n in reversed(m))),)


def bucket_counts(block, bucket, threshold, layers=None):
    """(buckets a layer fills, its elements in buckets of several tensors), on average over the
    layers of :func:`window_flushes` of :func:`hook_order_windows` (``layers``: that simulation,
    when the caller has it)."""
    windows = hook_order_windows(block, threshold)
    layers = window_flushes(windows, bucket) if layers is None else layers
    flushes = sum(where(size > 0, 1.0, 0.0) for layer in layers for _, fl in layer for size, _ in fl) / len(layers)
    tensors = [n for _, ts in windows for n in ts]
    return flushes, sum(tensors) - sum(where(n > bucket, n, 0.0) for n in tensors)


def flush_windows(layers, grad_bytes, shared_s_per_byte, alone_s_per_byte):
    """:attr:`TensorwiseZero3.flush_windows` of :func:`window_flushes`' ``layers``, each an equal
    share: every flush as (bytes, seconds of its copies: flatten, divide and copy back for a shared
    bucket, the division alone for a lone tensor)."""
    share = 1.0 / len(layers)
    return tuple((share, tuple((w, tuple((size * grad_bytes, size * grad_bytes * where(alone, alone_s_per_byte,
                                                                                           shared_s_per_byte))
                                         for size, alone in flushes)) for w, flushes in layer))
                 for layer in layers)


def flushes_waited_time(flush_windows, backward_s, dp, alpha, beta):
    """Seconds a layer waits for its gradient buckets (:attr:`TensorwiseZero3.flush_windows`): each
    window's flushes run one after the other on the reduction stream (``reduce_ipg_grads`` first
    waits on the host for the bucket before: ``reduction_stream.synchronize()``), from the window's
    start, beside its share of the ``backward_s`` compute; the next module's gather synchronizes the
    device, so what outlasts the window's compute is waited for."""
    total = 0.0
    for layers_share, windows in flush_windows:
        layer = 0.0
        for share, flushes in windows:
            busy = sum((where(size > 0, coll.ring_allreduce_time(dp, size, alpha, beta) + copy_s, 0.0)
                        for size, copy_s in flushes), 0.0)
            layer = layer + maximum(busy - share * backward_s, 0.0)
        total = total + layers_share * layer
    return total
