r"""One block of a sweep's grid evaluated on numpy arrays: every output of every configuration.

A transformer model goes through :func:`perfmodel.prediction.step.transformer_terms` once per
combination of the categorical keys, with the numeric keys as arrays that broadcast against each
other (key ``i`` along axis ``i``); other models through ``predict``, once per configuration.
"""

from __future__ import annotations

import itertools
from dataclasses import fields, replace

from perfmodel.errors import OUT_OF_RANGE, MissingSpecError, PlanError, SweepError
from perfmodel.plan import Plan
from perfmodel.prediction.hardware import SWEEPABLE
from perfmodel.prediction.result import BREAKDOWN_KEYS, MEMORY_KEYS
from perfmodel.specs.stack import default_stack
from perfmodel.sweeps.grid import CATEGORICAL_KEYS, DERIVED, NUMERIC_KEYS, GridSpec
from perfmodel.sweeps.validity import (
    Reasons,
    choice_checks,
    derive,
    first_of,
    stack_check,
    zero_check,
)

__all__ = ["evaluate_block"]

_FLOAT_OUT = ("step_time_s", *(f"breakdown_{k}_s" for k in BREAKDOWN_KEYS), "comm_total_s",
              *(f"memory_{k}_bytes" for k in MEMORY_KEYS), "mfu")


# what a sweep uses for a field neither swept nor fixed where the Plan leaves it None: a sweep runs
# micro-batch 1 (put micro_batch in the grid to vary it) and the device generation's stack
_SWEEP_DEFAULTS = {"micro_batch": 1}


def sweep_default_stack(system, model) -> str:
    """The stack of rows whose grid names none: the device generation's, pytorch-eager for a CNN
    or MLP (:func:`perfmodel.specs.default_stack.default_stack`)."""
    return default_stack(system.device, model)[0]


def _plan_default(key, system=None, model=None):
    if key == "stack" and system is not None:
        return sweep_default_stack(system, model)
    if key in _SWEEP_DEFAULTS:
        return _SWEEP_DEFAULTS[key]
    return next(f.default for f in fields(Plan) if f.name == key)


def evaluate_block(model, system, spec: GridSpec, block, progress=None) -> dict:
    """Every output of the sub-grid ``block`` (one (start, stop) per axis) as arrays of its shape,
    plus ``messages`` (reason code -> text).

    Long on purpose: the block's arrays, validity codes and per-choice evaluation share one set of broadcast axes; split, each part would take them all.
    """
    import numpy as np

    from perfmodel.workloads.transformer import TransformerModel

    keys = spec.keys
    K = len(keys)
    shape = tuple(b - a for a, b in block)
    vals = [spec.values[i][a:b] for i, (a, b) in enumerate(block)]
    cat_axes = [i for i, k in enumerate(keys) if k in CATEGORICAL_KEYS]
    fixed = dict(spec.fixed)

    def axis_array(i):
        s = [1] * K
        s[i] = shape[i]
        return np.asarray(vals[i], dtype=float).reshape(s)

    num = {}
    for key in NUMERIC_KEYS:
        if key in keys:
            num[key] = axis_array(keys.index(key))
        elif key in fixed:
            num[key] = np.float64(fixed[key])
        else:
            default = _plan_default(key)
            num[key] = None if default is None else np.float64(default)
    hw_over = {}
    for key, field in SWEEPABLE.items():
        if key in keys:
            hw_over[field] = axis_array(keys.index(key))
        elif key in fixed:
            hw_over[field] = np.float64(fixed[key])

    reasons = Reasons()
    out = {name: np.empty(shape) for name in _FLOAT_OUT}
    throughput = "tokens_per_s" if isinstance(model, TransformerModel) else "samples_per_s"
    out[throughput] = np.empty(shape)
    out["fits_in_memory"] = np.empty(shape, dtype=bool)
    out["bound"] = np.empty(shape, dtype=np.int8)
    out["reason"] = np.empty(shape, dtype=np.int32)
    with np.errstate(all="ignore"):
        derived, pre, post = derive(num, model, system, reasons)
        for name in DERIVED:
            if name not in keys:
                out[name] = np.empty(shape)
                out[name][...] = derived[name]
        cache: dict = {}
        hw_cache: dict = {}
        for combo in itertools.product(*(range(shape[i]) for i in cat_axes)):
            choice = {k: fixed.get(k, _plan_default(k, system, model)) for k in CATEGORICAL_KEYS}
            sel = [slice(None)] * K
            for i, j in zip(cat_axes, combo):
                choice[keys[i]] = vals[i][j]
                sel[i] = slice(j, j + 1)
            sel = tuple(sel)
            reason = first_of(first_of(first_of(pre, choice_checks(choice, num, derived, reasons, cache, model)), post),
                              zero_check(choice, reasons))
            reason = first_of(reason, stack_check(choice, system, num, reasons, model))
            sub = out["reason"][sel]
            sub[...] = -1 if reason is None else reason
            try:
                if isinstance(model, TransformerModel):
                    host_over = _transformer(model, system, choice, num, derived, hw_over, hw_cache, out, sel)
                    if host_over is not None:  # predict refuses these plans (prediction.offload.offload_details)
                        np.copyto(sub, reasons.code(_host_message(choice, system)), where=host_over & (sub < 0))
                else:
                    _dense(model, system, choice, num, derived, hw_over, out, sel, reasons, keys)
            except MissingSpecError as exc:  # no rate for the row's dtype on the device: predict refuses it so
                sub[...] = reasons.code(str(exc))  # (its outputs cleared with the other invalid rows below)
            if progress is not None:
                progress(out["reason"][sel].size)
        # a spec value outside the range the model computes with: refused, as predict refuses it
        # (prediction.check_finite)
        finite = np.isfinite(out["step_time_s"]) & np.isfinite(out["mfu"])
        for name in MEMORY_KEYS:
            finite &= np.isfinite(out[f"memory_{name}_bytes"])
        not_finite = ~finite & (out["reason"] < 0)
        if not_finite.any():
            np.copyto(out["reason"], reasons.code(f"the step time or memory comes out as inf or NaN: {OUT_OF_RANGE}"),
                      where=not_finite)
        invalid = out["reason"] >= 0
        if invalid.any():
            for name in (*_FLOAT_OUT, throughput):
                np.copyto(out[name], np.nan, where=invalid)
            np.copyto(out["fits_in_memory"], False, where=invalid)
            np.copyto(out["bound"], -1, where=invalid)
    out["messages"] = list(reasons.messages)
    return out


def _hw(system, choice, hw_over, cache):
    from perfmodel.prediction.hardware import hw_params
    from perfmodel.specs.stack import load_stack

    key = (choice["dtype"], choice["stack"])
    if key not in cache:
        stack = load_stack(choice["stack"])
        hw = hw_params(system, choice["dtype"], stack.gemm_rate_scale)
        over = dict(hw_over)
        if "peak_flops_per_s" in over:  # the measured curves reach the same fraction of a new peak
            over["gemm_scale"] = hw.gemm_scale * over["peak_flops_per_s"] / hw.peak_flops_per_s
        cache[key] = (stack, replace(hw, **over) if over else hw)
    return cache[key]


def _transformer(model, system, choice, num, derived, hw_over, hw_cache, out, sel):
    """Evaluate the rows of one categorical choice into ``out``; returns where an offloading plan
    overflows the node's host memory (None without offload)."""
    import numpy as np

    from perfmodel.prediction.step import Choices, transformer_terms

    stack, hw = _hw(system, choice, hw_over, hw_cache)
    c = Choices(choice["dtype"], choice["recompute"], choice["sequence_parallel"], choice["schedule"],
                choice["zero"], choice["grad_sync"], choice["overlap"], choice["optimizer"], choice["offload"],
                choice["shard_group"])
    seq = num["seq"] if num["seq"] is not None else float(model.seq_len)
    r = transformer_terms(model, stack, hw, c, tp=num["tp"], pp=num["pp"], dp=derived["dp"],
                          micro_batch=num["micro_batch"], global_batch=derived["global_batch"],
                          virtual_stages=num["virtual_stages"], seq=seq, devices=derived["devices"], cp=num["cp"],
                          ep=num["ep"])
    out["step_time_s"][sel] = r.step_time_s
    for k in BREAKDOWN_KEYS:
        out[f"breakdown_{k}_s"][sel] = r.breakdown[k]
    out["comm_total_s"][sel] = r.comm_total_s
    for k in MEMORY_KEYS:
        out[f"memory_{k}_bytes"][sel] = r.memory[k]
    out["fits_in_memory"][sel] = r.fits_in_memory
    out["mfu"][sel] = r.mfu
    out["tokens_per_s"][sel] = r.tokens_per_s
    out["bound"][sel] = r.bound
    if r.offload is None:
        return None
    return np.broadcast_to(~np.asarray(r.offload.fits_host, dtype=bool), out["reason"][sel].shape)


def _host_message(choice, system) -> str:
    """The sweep's reason for a row whose offloaded bytes overflow the node's host memory."""
    return (f"--offload {choice['offload']}: the devices of a {system.name} node put more in host memory "
            f"than it holds; offload less or use more devices")


def _dense(model, system, choice, num, derived, hw_over, out, sel, reasons, keys):
    """Non-transformer models: ``predict`` once per configuration (small grids only)."""
    import numpy as np

    from perfmodel.prediction import predict
    from perfmodel.prediction.step import BOUNDS

    if hw_over:
        raise SweepError(f"{model.name}: hardware keys can be swept for transformer models only")
    sub_shape = out["reason"][sel].shape
    given = {k: np.broadcast_to(num[k], sub_shape) for k in NUMERIC_KEYS if num[k] is not None}
    reason = out["reason"][sel]
    for idx in np.ndindex(sub_shape):
        plan = Plan(**choice, **{k: int(a[idx]) for k, a in given.items()})
        try:
            r = predict(model, system, plan)
        except PlanError as exc:
            reason[idx] = reasons.code(str(exc))
            continue
        reason[idx] = -1
        o = {"step_time_s": r.step_time_s, "comm_total_s": r.comm_total_s, "mfu": r.mfu,
             "samples_per_s": r.throughput, "fits_in_memory": r.fits_in_memory, "bound": BOUNDS.index(r.bound)}
        o.update({f"breakdown_{k}_s": r.breakdown_s[k] for k in BREAKDOWN_KEYS})
        o.update({f"memory_{k}_bytes": r.memory_bytes_per_device[k] for k in MEMORY_KEYS})
        for name, value in o.items():
            out[name][sel][idx] = value
