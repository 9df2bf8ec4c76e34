"""Exposed tensor-parallel time of one layer when the stack overlaps its collectives with GEMMs.

Under the stack's ``[tp_overlap]`` slots (:mod:`perfmodel.specs.tp_overlap`), every collective of
a layer runs under its GEMM by the slot's method (:mod:`perfmodel.formulas.gemm_overlap`); what
a layer pays for its tensor parallelism is the time of each GEMM with its collective minus the
GEMM alone: the SMs the collective's kernels take, the last chunk of a pipelined collective, and
any collective longer than its GEMM. With sequence parallelism a layer has 2 all-gathers and 2
reduce-scatters forward; backward 4 all-gathers (2 of output gradients before the row-parallel
dgrads, 2 of the layer inputs the column-parallel wgrads need) and 2 reduce-scatters, each of b s h
activations (Korthikanti et al. 2022 Section 4.2.2; Megatron-LM
``LinearWithGradAccumulationAndAsyncCommunication`` re-gathers the input for the wgrad).

Without slots a stack counts 2 all-gathers and 2 reduce-scatters backward, as before: Megatron-LM's
own sequence-parallel path re-gathers the input asynchronously under the dgrad GEMM, so that
all-gather is hidden there; the slots count it and time it under its GEMM explicitly. What the slots
do not cover waits: a mixture-of-experts layer's MLP side (Megatron-Core's token
dispatcher gathers and reduce-scatters the routed tokens itself, outside Transformer Engine's
userbuffers, in megatron/core/transformer/moe/token_dispatcher.py: top_k x capacity of the dense
layer's pair each way per pass, and the shared experts' own, :func:`perfmodel.prediction.moe.tp_mlp_pairs`),
and the QKV all-gather of more TP ranks than key/value heads. A parallel attention + MLP block
shares its collectives between two GEMMs; it keeps the pass-level rule (each pass's collectives
under its GEMMs, :func:`pass_level_exposed`).
"""

from __future__ import annotations

from perfmodel.errors import SpecError
from perfmodel.formulas import gemm_overlap as go
from perfmodel.formulas._backend import maximum, minimum
from perfmodel.formulas.collectives import ring_allgather_time
from perfmodel.frozen import MEMO_LIMIT, FrozenDict
from perfmodel.prediction import moe as moe_
from perfmodel.prediction.layers import linear_shapes
from perfmodel.prediction.shapes import qkv_gather_times
from perfmodel.specs.tp_overlap import SLOTS

__all__ = ["FORWARD", "BACKWARD", "mode", "slot_gemm_times", "slot_time", "layer_exposed", "pass_level_exposed",
           "slots_exposed", "exposed_times"]

FORWARD = ("qkv_fprop", "fc1_fprop", "proj_fprop", "fc2_fprop")
BACKWARD = ("proj_dgrad", "fc2_dgrad", "qkv_dgrad", "fc1_dgrad", "qkv_wgrad", "fc1_wgrad")
_MLP = ("fc1", "fc2")
_PASS = {"fwd": 0, "dgrad": 1, "wgrad": 2}


def mode(stack, model, sp) -> str:
    """How a layer's TP collectives overlap: "none" (the stack waits for them, or its Transformer
    Engine slots need sequence parallelism and the plan has none: Megatron-Core turns
    ``tp_comm_overlap`` off without it), "pass" (no ``[tp_overlap]`` slots, or a parallel block:
    :func:`pass_level_exposed`) or "slots" (:func:`layer_exposed`)."""
    if not stack.tp_comm_overlap:
        return "none"
    overlap = stack.tp_overlap
    if overlap is not None and overlap.needs_sequence_parallel and not sp:
        return "none"
    return "pass" if overlap is None or model.parallel_block else "slots"


def slot_gemm_times(overlap, model, rates, tokens, t, *, moe=False, alone_times=()) -> dict:
    """slot -> (alone, as run): seconds of the slot's GEMM on one tensor-parallel rank on its own,
    and as the slot runs it: in t chunks of tokens / t for a ring exchange, in ``splits`` chunks for
    a pipeline (TE splits the GEMM along the tokens), whole beside a bulk collective. The forward
    is C[m,n] = X[m,k] W[k,n], the dgrad dX = dY W^T, the wgrad dW = X^T dY; fc1 is up and, when
    gated, gate (one fused GEMM in TE's LayerNormMLP, timed as the sum). A mixture of experts'
    MLP slots are left out (:func:`layer_exposed`). ``alone_times``: the (forward, dgrad, wgrad)
    seconds of each GEMM of :func:`~perfmodel.prediction.layers.linear_shapes` when the layer's
    timing already has them (``LayerTimes.linear_gemm_times``), else they are timed here. Float
    results are kept in the rates' memo, with the model and the overlap table they were timed for."""
    plain = type(tokens) in _PLAIN and type(t) in _PLAIN and all(type(x) in _PLAIN for a in alone_times for x in a)
    if not plain:
        return _slot_gemm_times(overlap, model, rates, tokens, t, moe, alone_times)
    key = ("slot_gemm_times", id(model), id(overlap), tokens, t, moe, alone_times)
    kept = rates._memo.get(key)
    if kept is None or kept[0] is not model or kept[1] is not overlap:  # kept with it: the ids cannot be reused
        if len(rates._memo) > MEMO_LIMIT:
            rates._memo.clear()
        kept = rates._memo[key] = (model, overlap, FrozenDict(_slot_gemm_times(overlap, model, rates, tokens, t, moe,
                                                                                alone_times)))
    return kept[2]


_PLAIN = (int, float)


def _slot_gemm_times(overlap, model, rates, tokens, t, moe, alone_times) -> dict:
    shapes = {}
    for i, (name, shape) in enumerate(zip(("qkv", "proj", "fc1", "fc2", "fc1"), linear_shapes(model, tokens, t))):
        shapes.setdefault(name, []).append((shape, alone_times[i] if alone_times else None))
    out = {}
    for slot_name, slot in overlap.slots.items():
        layer, gemm_pass, _ = SLOTS[slot_name]
        if moe and layer in _MLP:
            continue
        chunks = t if slot.method == "ring_exchange" else slot.splits  # 1 for a bulk slot: the GEMM whole
        # up to `streams` chunks share the device at once: timed as one GEMM of their rows
        together = chunks if overlap.streams == 0 else minimum(overlap.streams, chunks)
        alone = run = 0.0
        index = _PASS[gemm_pass]
        for (m, k, n), known in shapes[layer]:
            dims = ((m, n, k), (m, k, n), (k, n, m))[index]
            whole = known[index] if known is not None else rates.linear_gemm(*dims)
            alone = alone + whole
            run = run + (whole if slot.method == "bulk" else
                         chunks / together * rates.linear_gemm(dims[0] * together / chunks, dims[1], dims[2]))
        out[slot_name] = (alone, run)
    return out


def slot_time(slot, gemm_time, comm_time, tp, units):
    """Seconds of one GEMM with its collective under the slot's method."""
    g = gemm_time
    if units > slot.sms > 0:  # a device without a stated SM count (CPUs, XPUs): no SM cost
        g = go.sm_shared_gemm_time(gemm_time, comm_time, slot.sms, units, 1 if slot.margin else 0)
    if slot.method == "bulk":
        return go.bulk_overlap_time(g, comm_time)
    if slot.method == "pipeline":
        return go.pipelined_overlap_time(g, comm_time, slot.splits)
    return go.ring_exchange_overlap_time(g, comm_time, tp)


def layer_exposed(overlap, slot_gemms, collective, tp, units, *, moe_pairs=None, gather=None):
    """(forward, backward) seconds one layer's TP collectives add to its GEMMs for one micro-batch.

    overlap: the stack's :class:`~perfmodel.specs.tp_overlap.TpOverlap`; slot_gemms: slot ->
    (alone, as run) seconds of its GEMM (:func:`slot_gemm_times`); collective: seconds of one
    reduce-scatter (= one all-gather at the same width) of the layer's activations over the tp
    ranks; gather: the slots' all-gathers when they move fewer bytes (FP8 buffers), else
    ``collective``; units: the device's SMs (0: unknown, no SM cost); moe_pairs: a mixture of
    experts' MLP side, its all-gather + reduce-scatter pairs each way per pass
    (:func:`perfmodel.prediction.moe.tp_mlp_pairs`), which wait; None: a dense layer."""
    gather = collective if gather is None else gather
    out = []
    for names in (FORWARD, BACKWARD):
        exposed = 0.0 if moe_pairs is None else 2 * collective * moe_pairs
        for name in names:
            layer, _, kind = SLOTS[name]
            if moe_pairs is not None and layer in _MLP:
                continue
            comm = gather if kind == "ag" else collective
            slot = overlap.slots.get(name)
            if slot is None:
                exposed = exposed + comm
                continue
            alone, run = slot_gemms[name]
            exposed = exposed + slot_time(slot, run, comm, tp, units) - alone
        out.append(exposed)
    return out[0], out[1]


def pass_level_exposed(comm_forward, comm_backward, gemm_forward):
    """(forward, backward) exposed seconds when each pass's collectives hide under that pass's
    GEMMs (the forward GEMMs, twice that for dgrad + wgrad) and only the excess waits."""
    return maximum(comm_forward - gemm_forward, 0.0), maximum(comm_backward - 2 * gemm_forward, 0.0)


def slots_exposed(stack, model, slot_gemms, collective, gather, qkv_gather, tp, units):
    """(forward, backward) exposed TP seconds of one layer under the stack's slots, for the step
    (:func:`exposed_times`) and the crossover equations alike: :func:`layer_exposed` of a dense
    layer and of a MoE layer, weighted by the model's share of MoE layers, plus the QKV all-gather
    of more TP ranks than key/value heads (``qkv_gather``: forward, backward; it waits). A slot
    holding as many SMs as the device has is a one-line error (the GEMM beside it would have none)."""
    overlap = stack.tp_overlap
    if units and overlap.max_sms >= units:
        busy = next(name for name, slot in overlap.slots.items() if slot.sms >= units)
        raise SpecError(f"stack '{stack.name}' [tp_overlap] {busy}: its collective holds {overlap.slots[busy].sms} "
                        f"SMs, at least as many as the device has ({units}): the GEMM beside it would have none")
    f = moe_.moe_fraction(model)  # 0 for a dense model
    forward, backward = qkv_gather
    for share, pairs in ((1 - f, None), (f, moe_.tp_mlp_pairs(model, tp) if f else None)):
        if share:
            part = layer_exposed(overlap, slot_gemms, collective, tp, units, moe_pairs=pairs, gather=gather)
            forward, backward = forward + share * part[0], backward + share * part[1]
    return forward, backward


def exposed_times(stack, model, rates, lt, *, tokens, t, alpha, beta, units, sp):
    """(forward, backward) exposed TP seconds of one layer for one micro-batch under the stack's
    overlap, or None when every collective waits (``lt``: the layer's
    :class:`~perfmodel.prediction.layers.LayerTimes`; alpha, beta: the tensor-parallel level)."""
    how = mode(stack, model, sp)
    if how == "none":
        return None
    if how == "pass":
        return pass_level_exposed(lt.tp_comm_forward, lt.tp_comm_backward, lt.gemm_forward)
    e = rates.bytes_per_element
    one = ring_allgather_time(t, tokens * model.hidden * e, alpha, beta)
    # under FP8 Transformer Engine all-gathers the FP8 copies the GEMMs read (initialize_ub:
    # fp8_buf for the all-gather layers): 1 byte an element
    gather = ring_allgather_time(t, tokens * model.hidden * 1, alpha, beta) if rates.fp8_linear else one
    # a model whose every layer is a MoE layer needs no MLP slots (layer_exposed leaves them out)
    gemms = slot_gemm_times(stack.tp_overlap, model, rates, tokens, t, moe=moe_.moe_fraction(model) == 1,
                            alone_times=lt.linear_gemm_times)
    return slots_exposed(stack, model, gemms, one, gather, qkv_gather_times(model, tokens, e, t, alpha, beta),
                         t, units)
