r"""Sweeps: every configuration of a grid of plan and hardware values, evaluated on numpy arrays.

    >>> import perfmodel as pm
    >>> df = pm.sweep("gpt2-124m", "dgx-a100", "tp=1,2,4;micro_batch=1,2", devices=8, global_batch=64)
    >>> len(df), list(df.columns[:4])
    (6, ['tp', 'micro_batch', 'devices', 'dp'])

**Grid.** A mapping ``key -> list of values`` (or the CLI string ``"tp=1,2,4,8;pp=1,2;recompute=
none,selective"``: ``;`` between keys, ``,`` between values, nothing evaluated). Keys are the plan
fields (:data:`PLAN_KEYS`) and the hardware numbers of :data:`perfmodel.predict.hardware.SWEEPABLE`
by their dotted names (``network.link.bandwidth``, ``device.peak``, ...). Hardware values are SI
numbers or strings with units (``"200 Gb/s"``, ``"2 us"``, ``"80 GiB"``), read by
:func:`perfmodel.units.parse_quantity` with the field's dimension. A swept ``device.peak`` is the
peak of the row's dtype; it also scales the measured GEMM and attention curves by
``new peak / datasheet peak`` (``HwParams.gemm_scale``), i.e. the device is assumed to reach the
same fraction of a higher peak. Keyword arguments of :func:`sweep` fix a key for every row
(they are not columns).

**Result.** One row per configuration. Columns: every grid key — the categorical ones first, then
the numeric and hardware ones, each group in grid order — with the rows in the order of the
cartesian product of the keys in that column order (the last varies fastest: each combination of
the categorical keys is one contiguous run of rows, written at memory speed); the derived plan
numbers ``devices``, ``dp``, ``global_batch`` (when not grid keys) and ``n_microbatches``
(nullable integers, missing where they are not whole numbers); ``step_time_s``; ``breakdown_<part>_s`` for each part of
:data:`~perfmodel.predict.result.BREAKDOWN_KEYS` (the names of ``perfmodel predict --format
csv``); ``comm_total_s``; ``memory_<part>_bytes`` for each part of ``MEMORY_KEYS``;
``fits_in_memory``; ``mfu``; ``tokens_per_s``; ``bound`` and ``reason`` (categoricals). A
configuration :func:`perfmodel.plan.resolve` would refuse has ``reason`` = the message of the
:class:`~perfmodel.errors.PlanError` it would raise, NaN numbers, ``fits_in_memory`` False and a
missing ``bound``; valid rows have a missing ``reason``.

**How it is fast.** The categorical fields (dtype, recompute, sequence parallel, schedule, ZeRO,
gradient sync, overlap, optimizer, stack) select formulas, so there is one call of
:func:`perfmodel.predict.step.transformer_terms` per combination of them (the function
``predict`` calls with floats). The numeric keys enter that call as numpy arrays shaped to
broadcast against each other (key ``i`` along axis ``i``), so every intermediate quantity is
computed only over the keys it depends on — a layer's time over (tp, micro-batch, seq), the
data-parallel sync over (tp, pp, dp, bandwidth) — and the unique combinations that matter are
evaluated once each, without ``np.unique``. The validity rules of ``plan.resolve`` run the same
way. No Python code runs per configuration.

**Engines.** ``engine="local"`` evaluates blocks of the grid in this process;
``engine="dask"`` sends the same blocks to a ``dask.distributed`` cluster (``scheduler``: an
address, a ``Client``, or None for a LocalCluster) and gathers them into the identical frame.
Non-transformer models (CNNs, MLPs) have no vectorised path: up to :data:`DENSE_LIMIT`
configurations are predicted one by one; larger grids raise :class:`SweepError`.
"""

from __future__ import annotations

import itertools
import math
import numbers
import os
from dataclasses import dataclass, fields, replace
from typing import Mapping

from perfmodel.errors import PerfModelError, PlanError, UnitError, UnknownNameError, did_you_mean
from perfmodel.plan import DTYPES, GRAD_SYNC, MAX_DEVICES, OPTIMIZERS, RECOMPUTE, SCHEDULES, Plan
from perfmodel.predict.hardware import SWEEPABLE
from perfmodel.predict.result import BREAKDOWN_KEYS, MEMORY_KEYS

__all__ = ["sweep", "evaluate", "parse_grid", "Evaluation", "SweepError", "PLAN_KEYS", "GRID_KEYS",
           "DENSE_LIMIT", "result_columns"]

PLAN_KEYS = tuple(f.name for f in fields(Plan))
GRID_KEYS = PLAN_KEYS + tuple(SWEEPABLE)
NUMERIC_KEYS = ("devices", "tp", "pp", "dp", "micro_batch", "global_batch", "virtual_stages", "seq")
CHOICE_KEYS = {"dtype": DTYPES, "recompute": RECOMPUTE, "schedule": SCHEDULES, "grad_sync": GRAD_SYNC,
               "optimizer": OPTIMIZERS}
BOOL_KEYS = ("sequence_parallel", "overlap")
CATEGORICAL_KEYS = ("dtype", "recompute", "sequence_parallel", "schedule", "zero", "grad_sync", "overlap",
                    "optimizer", "stack")
DERIVED = ("devices", "dp", "global_batch", "n_microbatches")
_INT_MAX = {k: (10**9 if k == "global_batch" else MAX_DEVICES) for k in NUMERIC_KEYS}
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")
# HwParams fields that only a PCIe-tree fabric uses
_PCIE_ONLY = ("devices_per_switch", "uplink_bandwidth", "uplink_latency", "root_bandwidth")

DENSE_LIMIT = 5000  # configurations of a non-transformer model, predicted one at a time
BLOCK_ROWS = 2**20  # numeric rows per transformer_terms call (bounds the temporaries' memory)


class SweepError(PerfModelError, RuntimeError):
    """A sweep that cannot run as asked (engine not installed, grid too large for its model)."""


def result_columns(throughput: str = "tokens_per_s") -> tuple[str, ...]:
    """The result columns of a sweep frame, after the grid keys and the derived plan numbers."""
    return ("step_time_s", *(f"breakdown_{k}_s" for k in BREAKDOWN_KEYS), "comm_total_s",
            *(f"memory_{k}_bytes" for k in MEMORY_KEYS), "fits_in_memory", "mfu", throughput, "bound", "reason")


# --- grid parsing ------------------------------------------------------------------------------


def parse_grid(text: str) -> dict[str, list[str]]:
    """Split ``"tp=1,2,4;pp=1,2"`` into ``{"tp": ["1", "2", "4"], "pp": ["1", "2"]}`` (strings).

    >>> parse_grid("tp=1,2; recompute=none,full")
    {'tp': ['1', '2'], 'recompute': ['none', 'full']}
    """
    if not isinstance(text, str) or not text.strip():
        raise PlanError("empty grid: write it like 'tp=1,2,4;pp=1,2' (';' between keys, ',' between values)")
    out: dict[str, list[str]] = {}
    for part in text.split(";"):
        if not part.strip():
            raise PlanError(f"grid {text!r}: empty entry between ';' (write 'key=v1,v2;key=v1,...')")
        key, eq, values = part.partition("=")
        key = key.strip()
        if not eq or not key:
            raise PlanError(f"grid entry {part.strip()!r}: expected 'key=v1,v2,...'")
        items = [v.strip() for v in values.split(",")]
        if not values.strip():
            raise PlanError(f"grid key '{key}' has no values (write '{key}=v1,v2,...')")
        if any(not v for v in items):
            raise PlanError(f"grid key '{key}': empty value in {values.strip()!r}")
        if key in out:
            raise PlanError(f"grid key '{key}' is given twice")
        out[key] = items
    return out


def _hw_dimension(key: str) -> str:
    last = key.rsplit(".", 1)[-1]
    if last.endswith("bandwidth"):
        return "bandwidth"
    return {"latency": "time", "peak": "flop_rate", "capacity": "bytes", "efficiency": "ratio"}.get(last, "number")


def _int(key, raw, lo, hi, what=None):
    value = None
    if isinstance(raw, bool):
        pass
    elif isinstance(raw, numbers.Integral):  # int and numpy integers
        value = int(raw)
    elif isinstance(raw, float) and raw.is_integer():
        value = int(raw)
    elif isinstance(raw, str):
        text = raw.strip()
        try:
            value = int(text)
        except ValueError:
            try:
                f = float(text)
                value = int(f) if math.isfinite(f) and f.is_integer() else None
            except ValueError:
                value = None
    if value is None:
        raise PlanError(f"grid key '{key}': expected an integer, got {raw!r}")
    if not lo <= value <= hi:
        raise PlanError(f"grid key '{key}': expected {what or f'an integer in [{lo}, {hi}]'}, got {value}")
    return value


def _value(key: str, raw):
    """One grid value of ``key`` in its internal form (int, bool, str or SI float)."""
    if key in NUMERIC_KEYS:
        return _int(key, raw, 1, _INT_MAX[key])
    if key == "zero":
        return _int(key, raw, 0, 3, "0, 1, 2 or 3")
    if key in BOOL_KEYS:
        if isinstance(raw, bool) or (isinstance(raw, int) and raw in (0, 1)):
            return bool(raw)
        text = str(raw).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise PlanError(f"grid key '{key}': expected true or false, got {raw!r}")
    if key in CHOICE_KEYS:
        choices = CHOICE_KEYS[key]
        text = str(raw).strip()
        if text not in choices:
            raise PlanError(f"grid key '{key}': expected one of {', '.join(choices)}, got {raw!r}"
                            f"{did_you_mean(text, choices)}")
        return text
    if key == "stack":
        from perfmodel.stack import load_stack

        text = str(raw).strip()
        load_stack(text)  # an unknown name or a bad file fails here, with its own message
        return text
    # a hardware number
    dim = _hw_dimension(key)
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        value = float(raw)
    elif isinstance(raw, str) and dim != "number":
        from perfmodel.units import parse_quantity

        try:
            value = parse_quantity(raw, dim)
        except UnitError as exc:
            raise UnitError(f"grid key '{key}': {exc}") from None
    else:
        try:
            value = float(str(raw).strip())
        except ValueError:
            raise PlanError(f"grid key '{key}': expected a number, got {raw!r}") from None
    zero_ok = dim == "time"
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        raise PlanError(f"grid key '{key}': expected a {'non-negative' if zero_ok else 'positive'} finite "
                        f"value, got {raw!r}")
    return value


def _check_key(key: str) -> None:
    if key not in GRID_KEYS:
        raise UnknownNameError(f"unknown sweep key '{key}'{did_you_mean(key, GRID_KEYS)} (plan fields: "
                               f"{', '.join(PLAN_KEYS)}; hardware: {', '.join(SWEEPABLE)})")


def _values(key: str, raw) -> tuple:
    if isinstance(raw, str):
        raw = [v.strip() for v in raw.split(",")]
        if any(not v for v in raw):
            raise PlanError(f"grid key '{key}': empty value in {','.join(raw)!r}")
    elif not hasattr(raw, "__iter__"):
        raw = [raw]
    values = tuple(_value(key, v) for v in raw)
    if not values:
        raise PlanError(f"grid key '{key}' has no values")
    seen = set()
    for v in values:
        if v in seen:
            raise PlanError(f"grid key '{key}' lists {v!r} twice")
        seen.add(v)
    return values


@dataclass(frozen=True)
class _Spec:
    """A parsed grid: keys in order, their values, and the fixed (non-swept) fields."""

    keys: tuple[str, ...]
    values: tuple[tuple, ...]
    fixed: tuple[tuple[str, object], ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.values)

    @property
    def n_rows(self) -> int:
        return math.prod(self.shape)


def make_spec(grid, fixed: Mapping, system=None) -> _Spec:
    """Parse and check a grid (mapping or CLI string) and the fixed fields."""
    if isinstance(grid, str):
        grid = parse_grid(grid)
    if not isinstance(grid, Mapping) or not grid:
        raise PlanError("empty grid: give at least one key with values, e.g. {'tp': [1, 2, 4]}")
    keys, values = [], []
    for key, raw in grid.items():
        _check_key(key)
        keys.append(key)
        values.append(_values(key, raw))
    parsed_fixed = []
    for key, raw in fixed.items():
        _check_key(key)
        if key in grid:
            raise PlanError(f"'{key}' is both a grid key and a fixed value; give it once")
        if raw is None:
            if key in ("devices", "dp", "global_batch", "seq"):
                continue  # derived, as in Plan
            raise PlanError(f"'{key}' cannot be None")
        parsed_fixed.append((key, _value(key, raw)))
    # categorical keys first: each of their combinations is then one contiguous run of rows
    order = sorted(range(len(keys)), key=lambda i: keys[i] not in CATEGORICAL_KEYS)
    spec = _Spec(tuple(keys[i] for i in order), tuple(values[i] for i in order), tuple(parsed_fixed))
    if system is not None:
        _check_hardware_keys(spec, system)
    return spec


def _check_hardware_keys(spec: _Spec, system) -> None:
    for key in [*spec.keys, *dict(spec.fixed)]:
        field = SWEEPABLE.get(key)
        if field is None:
            continue
        if key.startswith("network.") and system.network is None:
            raise PlanError(f"'{key}': {system.name} has no network")
        if key.startswith("fabric.") and system.fabric.kind == "none":
            raise PlanError(f"'{key}': {system.name} has no intra-node fabric")
        if field in _PCIE_ONLY and system.fabric.kind != "pcie-tree":
            raise PlanError(f"'{key}' applies to a PCIe-tree fabric; {system.name}'s fabric is "
                            f"{system.fabric.kind}")


# --- blocks --------------------------------------------------------------------------------------


def _blocks(spec: _Spec, max_rows: int = BLOCK_ROWS, min_blocks: int = 1):
    """Split the grid into sub-grids (one index range per axis); their union is the grid.

    Numeric axes are halved until one transformer_terms call covers at most ``max_rows``; then,
    for parallel engines, categorical axes (cheapest to split: they are a Python loop anyway)
    and then numeric ones until there are ``min_blocks``.
    """
    sizes = spec.shape
    cat = [k in CATEGORICAL_KEYS for k in spec.keys]
    chunk = list(sizes)
    numeric = [i for i in range(len(sizes)) if not cat[i]]
    while math.prod(chunk[i] for i in numeric) > max_rows:
        i = max((i for i in numeric if chunk[i] > 1), key=chunk.__getitem__)
        chunk[i] = -(-chunk[i] // 2)

    def n_blocks():
        return math.prod(-(-n // c) for n, c in zip(sizes, chunk))

    while n_blocks() < min_blocks:
        cands = [i for i in range(len(sizes)) if cat[i] and chunk[i] > 1] or \
                [i for i in numeric if chunk[i] > 1]
        if not cands:
            break
        i = max(cands, key=chunk.__getitem__)
        chunk[i] = -(-chunk[i] // 2)
    ranges = [[(s, min(s + c, n)) for s in range(0, n, c)] for n, c in zip(sizes, chunk)]
    return list(itertools.product(*ranges))


# --- validity: plan.resolve's rules on arrays -----------------------------------------------------


class _Reasons:
    """Messages of failed checks, numbered in order of first appearance within one block."""

    def __init__(self):
        self.messages: dict[str, int] = {}

    def flag(self, mask, fmt, *params):
        """Codes (-1 where ``mask`` is False) of the messages ``fmt(*params)`` where it is True."""
        import numpy as np

        mask = np.asarray(mask)
        if not mask.any():
            return None
        if not params:
            return np.full(mask.shape, -1, dtype=np.int32) + np.where(mask, self._code(fmt()) + 1, 0)
        arrays = np.broadcast_arrays(mask, *[np.asarray(p) for p in params])
        where = np.nonzero(arrays[0])
        codes = np.full(arrays[0].shape, -1, dtype=np.int32)
        vals = np.stack([a[where] for a in arrays[1:]], axis=1)
        uniq, inverse = np.unique(vals, axis=0, return_inverse=True)
        lut = np.array([self._code(fmt(*(int(x) for x in row))) for row in uniq], dtype=np.int32)
        codes[where] = lut[inverse.reshape(-1)]
        return codes

    def _code(self, message: str) -> int:
        return self.messages.setdefault(message, len(self.messages))


def _first(a, b):
    """Elementwise the first failure: a's code where a failed, else b's."""
    import numpy as np

    if a is None:
        return b
    if b is None:
        return a
    return np.where(a >= 0, a, b)


def _derive(num: dict, model, system, reasons: _Reasons):
    """Devices, dp, global batch, micro-batches (NaN where not whole) and the failures of
    plan.resolve's checks that numbers alone decide, before and after the categorical ones."""
    import numpy as np

    tp, pp, mb, v = num["tp"], num["pp"], num["micro_batch"], num["virtual_stages"]
    devices, dp, gb = num["devices"], num["dp"], num["global_batch"]
    pre = None
    if dp is None and devices is None:
        dp = np.float64(1.0)
    elif dp is None:
        bad = np.mod(devices, tp * pp) != 0
        pre = reasons.flag(bad, lambda d, t, p: f"devices {d} is not divisible by tp x pp = {t} x {p} = {t * p}",
                           devices, tp, pp)
        dp = np.where(bad, np.nan, devices / (tp * pp))
    elif devices is not None:
        pre = reasons.flag(tp * pp * dp != devices,
                           lambda t, p, d, n: f"tp x pp x dp = {t} x {p} x {d} = {t * p * d}, but devices is {n}",
                           tp, pp, dp, devices)
    if devices is None:
        devices = tp * pp * dp
    ok_dp = np.isfinite(dp)
    # perfmodel.plan._check_system
    per_node = system.devices_per_node
    if system.network is None:
        s = "s" if per_node > 1 else ""
        pre = _first(pre, reasons.flag(devices > per_node, lambda n: f"{system.name} has {per_node} device{s} and "
                                       f"no network; the plan needs {n}", devices))
    max_nodes = system.network.max_nodes if system.network is not None else 1
    if max_nodes is not None:
        cap = per_node * max_nodes
        pre = _first(pre, reasons.flag(devices > cap, lambda n: f"{system.name} has at most {cap} devices; the plan "
                                       f"needs {n}", devices))
    pre = _first(pre, reasons.flag((devices > per_node) & (np.mod(devices, per_node) != 0) & (tp > 1),
                                   lambda n: f"devices {n} is not a whole number of {per_node}-device nodes of "
                                   f"{system.name}", devices))
    mbdp = mb * dp
    if gb is None:
        gb = mbdp
        m = np.where(ok_dp, 1.0, np.nan) + 0 * mb
    else:
        bad = (np.mod(gb, mbdp) != 0) & ok_dp
        pre = _first(pre, reasons.flag(bad, lambda g, b, d: f"global batch {g} is not divisible by micro-batch x dp "
                                       f"= {b} x {d} = {b * d}", gb, mb, np.where(ok_dp, dp, 0)))
        m = np.where(bad, np.nan, gb / mbdp)
    # perfmodel.plan._check_model
    post = None
    heads = getattr(model, "n_heads", None)
    if heads is not None:
        post = reasons.flag(np.mod(heads, tp) != 0, lambda t: f"tensor parallelism {t} does not divide the "
                            f"{heads} attention heads of {model.name}", tp)
        kv = model.n_kv_heads or heads
        post = _first(post, reasons.flag(np.mod(kv, tp) != 0, lambda t: f"tensor parallelism {t} does not divide "
                                         f"the {kv} key/value heads of {model.name}", tp))
        layers = model.n_layers

        def layers_msg(p, w):
            what = f"pp x virtual stages = {p} x {w} = {p * w}" if w > 1 else f"pp = {p}"
            return f"{model.name} has {layers} layers, not divisible by {what}"

        post = _first(post, reasons.flag(np.mod(layers, pp * v) != 0, layers_msg, pp, v))
        seq = num["seq"] if num["seq"] is not None else np.float64(getattr(model, "seq_len", 1))
        max_pos = getattr(model, "max_positions", None)
        if model.positions == "learned" and max_pos:
            post = _first(post, reasons.flag(seq > max_pos, lambda q: f"seq {q} exceeds {model.name}'s {max_pos} "
                                             f"learned positions", seq))
    else:
        post = reasons.flag((tp > 1) | (pp > 1), lambda: f"{model.name} is not a transformer: only data "
                            f"parallelism is modelled for it (tp = pp = 1)")
    return {"devices": devices, "dp": dp, "global_batch": gb, "n_microbatches": m}, pre, post


def _choice_checks(choice: dict, num: dict, derived: dict, reasons: _Reasons, cache: dict):
    """plan.resolve's checks that depend on the categorical fields, in its order."""
    import numpy as np

    out = None
    schedule = choice["schedule"]
    if schedule != "interleaved":
        key = ("v", schedule)
        if key not in cache:
            cache[key] = reasons.flag(num["virtual_stages"] > 1, lambda w: f"virtual stages {w} need --schedule "
                                      f"interleaved (got {schedule})", num["virtual_stages"])
        out = cache[key]
    else:
        if "interleaved" not in cache:
            pp, m = num["pp"], derived["n_microbatches"]
            a = reasons.flag(pp < 2, lambda: "the interleaved schedule needs pp >= 2")
            ok = np.isfinite(m)
            mi = np.where(ok, m, 0)
            b = reasons.flag(ok & (np.mod(mi, pp) != 0), lambda k, p: f"the interleaved schedule needs the number "
                             f"of micro-batches ({k}) to be a multiple of pp ({p}) (Megatron-LM's constraint)", mi, pp)
            cache["interleaved"] = _first(a, b)
        out = cache["interleaved"]
    if choice["sequence_parallel"]:
        if "sp" not in cache:
            cache["sp"] = reasons.flag(num["tp"] < 2, lambda: "sequence parallelism needs tp > 1")
        out = _first(out, cache["sp"])
    return out


def _zero_check(choice, reasons):
    if choice["zero"] and choice["grad_sync"] != "allreduce":
        return reasons.flag(True, lambda: f"ZeRO stage {choice['zero']} shards over data-parallel ranks and needs "
                            f"--grad-sync allreduce")
    return None


# --- evaluation of one block ------------------------------------------------------------------


_FLOAT_OUT = ("step_time_s", *(f"breakdown_{k}_s" for k in BREAKDOWN_KEYS), "comm_total_s",
              *(f"memory_{k}_bytes" for k in MEMORY_KEYS), "mfu")


def _plan_default(key):
    return next(f.default for f in fields(Plan) if f.name == key)


def evaluate_block(model, system, spec: _Spec, block, progress=None) -> dict:
    """Every output of the sub-grid ``block`` (one (start, stop) per axis) as arrays of its shape,
    plus ``messages`` (reason code -> text)."""
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

    reasons = _Reasons()
    out = {name: np.empty(shape) for name in _FLOAT_OUT}
    throughput = "tokens_per_s" if isinstance(model, TransformerModel) else "samples_per_s"
    out[throughput] = np.empty(shape)
    out["fits_in_memory"] = np.empty(shape, dtype=bool)
    out["bound"] = np.empty(shape, dtype=np.int8)
    out["reason"] = np.empty(shape, dtype=np.int32)
    with np.errstate(all="ignore"):
        derived, pre, post = _derive(num, model, system, reasons)
        for name in DERIVED:
            if name not in keys:
                out[name] = np.empty(shape)
                out[name][...] = derived[name]
        cache: dict = {}
        hw_cache: dict = {}
        for combo in itertools.product(*(range(shape[i]) for i in cat_axes)):
            choice = {k: fixed.get(k, _plan_default(k)) for k in CATEGORICAL_KEYS}
            sel = [slice(None)] * K
            for i, j in zip(cat_axes, combo):
                choice[keys[i]] = vals[i][j]
                sel[i] = slice(j, j + 1)
            sel = tuple(sel)
            reason = _first(_first(_first(pre, _choice_checks(choice, num, derived, reasons, cache)), post),
                            _zero_check(choice, reasons))
            sub = out["reason"][sel]
            sub[...] = -1 if reason is None else reason
            if isinstance(model, TransformerModel):
                _transformer(model, system, choice, num, derived, hw_over, hw_cache, out, sel)
            else:
                _dense(model, system, choice, num, derived, hw_over, out, sel, reasons, keys)
            if progress is not None:
                progress(out["reason"][sel].size)
        invalid = out["reason"] >= 0
        if invalid.any():
            for name in (*_FLOAT_OUT, throughput):
                np.copyto(out[name], np.nan, where=invalid)
            np.copyto(out["fits_in_memory"], False, where=invalid)
            np.copyto(out["bound"], -1, where=invalid)
    out["messages"] = list(reasons.messages)
    return out


def _hw(system, choice, hw_over, cache):
    from perfmodel.predict.hardware import hw_params
    from perfmodel.stack import load_stack

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
    from perfmodel.predict.step import Choices, transformer_terms

    stack, hw = _hw(system, choice, hw_over, hw_cache)
    c = Choices(choice["dtype"], choice["recompute"], choice["sequence_parallel"], choice["schedule"],
                choice["zero"], choice["grad_sync"], choice["overlap"], choice["optimizer"])
    seq = num["seq"] if num["seq"] is not None else float(model.seq_len)
    r = transformer_terms(model, stack, hw, c, tp=num["tp"], pp=num["pp"], dp=derived["dp"],
                          micro_batch=num["micro_batch"], global_batch=derived["global_batch"],
                          virtual_stages=num["virtual_stages"], seq=seq, devices=derived["devices"])
    out["step_time_s"][sel] = r["step_time_s"]
    for k in BREAKDOWN_KEYS:
        out[f"breakdown_{k}_s"][sel] = r["breakdown"][k]
    out["comm_total_s"][sel] = r["comm_total_s"]
    for k in MEMORY_KEYS:
        out[f"memory_{k}_bytes"][sel] = r["memory"][k]
    out["fits_in_memory"][sel] = r["fits_in_memory"]
    out["mfu"][sel] = r["mfu"]
    out["tokens_per_s"][sel] = r["tokens_per_s"]
    out["bound"][sel] = r["bound"]


def _dense(model, system, choice, num, derived, hw_over, out, sel, reasons, keys):
    """Non-transformer models: ``predict`` once per configuration (small grids only)."""
    import numpy as np

    from perfmodel.predict import predict
    from perfmodel.predict.step import BOUNDS

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
            reason[idx] = reasons._code(str(exc))
            continue
        reason[idx] = -1
        o = {"step_time_s": r.step_time_s, "comm_total_s": r.comm_total_s, "mfu": r.mfu,
             "samples_per_s": r.throughput, "fits_in_memory": r.fits_in_memory, "bound": BOUNDS.index(r.bound)}
        o.update({f"breakdown_{k}_s": r.breakdown_s[k] for k in BREAKDOWN_KEYS})
        o.update({f"memory_{k}_bytes": r.memory_bytes_per_device[k] for k in MEMORY_KEYS})
        for name, value in o.items():
            out[name][sel][idx] = value


# --- engines and assembly ----------------------------------------------------------------------


@dataclass
class Evaluation:
    """Flat result arrays of a sweep (row-major over the grid) before they become a DataFrame."""

    spec: _Spec
    arrays: dict
    messages: list[str]

    @property
    def n_rows(self) -> int:
        return self.spec.n_rows

    def valid(self):
        return self.arrays["reason"] < 0

    def key_column(self, key: str, rows=None):
        """Values of grid key ``key`` per row (all rows, or the row indices ``rows``)."""
        import numpy as np

        i = self.spec.keys.index(key)
        shape = self.spec.shape
        if rows is None:
            s = [1] * len(shape)
            s[i] = shape[i]
            idx = np.broadcast_to(np.arange(shape[i]).reshape(s), shape).ravel()
        else:
            idx = np.unravel_index(rows, shape)[i]
        return np.asarray(self.spec.values[i], dtype=object if _is_text(key) else None)[idx]

    def row(self, i: int) -> dict:
        """One row as plain Python values (grid keys, derived numbers, results)."""
        import numpy as np

        out = {k: _py(self.key_column(k, np.array([i]))[0]) for k in self.spec.keys}
        for name, arr in self.arrays.items():
            v = arr[i]
            if name == "reason":
                out[name] = self.messages[v] if v >= 0 else None
            elif name == "bound":
                from perfmodel.predict.step import BOUNDS

                out[name] = BOUNDS[v] if v >= 0 else None
            elif name in DERIVED:
                out[name] = int(v) if np.isfinite(v) and float(v).is_integer() else None
            else:
                out[name] = _py(v)
        return out

    def to_frame(self):
        """The sweep as a pandas DataFrame (see the module docstring for its columns)."""
        import numpy as np
        import pandas as pd

        from perfmodel.predict.step import BOUNDS

        cols = {}
        shape = self.spec.shape
        for i, key in enumerate(self.spec.keys):
            s = [1] * len(shape)
            s[i] = shape[i]
            n = shape[i]
            vals = self.spec.values[i]
            if _is_text(key):
                codes = np.broadcast_to(np.arange(n, dtype=np.int8 if n < 128 else np.int32).reshape(s),
                                        shape).ravel()
                cols[key] = pd.Categorical.from_codes(codes, categories=list(vals))
            else:
                dtype = bool if key in BOOL_KEYS else (np.int64 if key in NUMERIC_KEYS or key == "zero" else float)
                cols[key] = np.broadcast_to(np.asarray(vals, dtype=dtype).reshape(s), shape).ravel()
        a = self.arrays
        for name in DERIVED:
            if name in a:
                v = a[name]
                bad = ~np.isfinite(v) | (v != np.floor(v))
                cols[name] = pd.arrays.IntegerArray(np.where(bad, 0, v).astype(np.int64), bad)
        throughput = "tokens_per_s" if "tokens_per_s" in a else "samples_per_s"
        for name in result_columns(throughput):
            if name == "bound":
                cols[name] = pd.Categorical.from_codes(a["bound"].astype(np.int8), categories=list(BOUNDS))
            elif name == "reason":
                cols[name] = pd.Categorical.from_codes(a["reason"], categories=self.messages)
            else:
                cols[name] = a[name]
        return pd.DataFrame(cols, copy=False)


def _is_text(key: str) -> bool:
    return key in CHOICE_KEYS or key == "stack"


def _py(v):
    import numpy as np

    return v.item() if isinstance(v, np.generic) else v


class _Assembler:
    """Block results into grid-shaped arrays as they arrive (a block's own arrays are then freed);
    reasons numbered by their sorted text, so the result does not depend on the partition."""

    def __init__(self, spec: _Spec):
        self.spec, self.arrays, self.index = spec, None, {}

    def add(self, block, res: dict) -> None:
        import numpy as np

        whole = block == tuple((0, n) for n in self.spec.shape)
        if self.arrays is None:
            self.arrays = {k: (v if whole else np.empty(self.spec.shape, dtype=v.dtype))
                           for k, v in res.items() if k != "messages"}
        lut = np.array([self.index.setdefault(m, len(self.index)) for m in res["messages"]] or [0], dtype=np.int32)
        sel = tuple(slice(a, b) for a, b in block)
        for k, target in self.arrays.items():
            if k == "reason":
                r = res[k]
                target[sel] = np.where(r >= 0, lut[np.maximum(r, 0)], -1)
            elif not whole:
                target[sel] = res[k]

    def finish(self) -> Evaluation:
        import numpy as np

        arrays, messages = self.arrays, list(self.index)
        if messages:
            order = sorted(range(len(messages)), key=messages.__getitem__)
            rank = np.empty(len(messages), dtype=np.int32)
            rank[order] = np.arange(len(messages), dtype=np.int32)
            reason = arrays["reason"]
            arrays["reason"] = np.where(reason >= 0, rank[np.maximum(reason, 0)], -1).astype(np.int32)
            messages = [messages[i] for i in order]
        return Evaluation(self.spec, {k: v.reshape(-1) for k, v in arrays.items()}, messages)


def _load(model, system):
    from perfmodel.specs.registry import load_system
    from perfmodel.workloads import load_model

    if not hasattr(model, "n_params"):
        model = load_model(model)
    if isinstance(system, str):
        system = load_system(system)
    return model, system


def evaluate(model, system, grid, *, engine: str = "local", scheduler=None, progress: bool = False,
             partitions: int | None = None, **fixed) -> Evaluation:
    """:func:`sweep` without building the DataFrame (flat numpy arrays; pandas is not imported)."""
    from perfmodel.workloads.transformer import TransformerModel

    if engine not in ("local", "dask"):
        raise PlanError(f"engine: expected one of local, dask, got {engine!r}"
                        f"{did_you_mean(str(engine), ('local', 'dask'))}")
    model, system = _load(model, system)
    spec = make_spec(grid, fixed, system)
    if not isinstance(model, TransformerModel) and spec.n_rows > DENSE_LIMIT:
        raise SweepError(f"{model.name} is not a transformer: its sweeps call predict once per configuration and "
                         f"are limited to {DENSE_LIMIT} configurations; this grid has {spec.n_rows:,}")
    if engine == "dask":
        return _run_dask(model, system, spec, scheduler, progress, partitions)
    out = _Assembler(spec)
    with _Progress(progress, spec.n_rows) as advance:
        for block in _blocks(spec):
            out.add(block, evaluate_block(model, system, spec, block, advance))
    return out.finish()


def sweep(model, system, grid, *, engine: str = "local", scheduler=None, progress: bool = False,
          partitions: int | None = None, **fixed):
    """Evaluate every configuration of ``grid`` for ``model`` on ``system``: a pandas DataFrame.

    ``grid``: ``{"tp": [1, 2, 4, 8], "network.link.bandwidth": ["100 Gb/s", "200 Gb/s"]}`` or the CLI
    string ``"tp=1,2,4,8;pp=1,2"``; keys are plan fields and the dotted hardware names of
    ``SWEEPABLE`` (a swept ``device.peak`` scales ``gemm_scale`` by new peak / datasheet peak).
    ``**fixed``: plan fields (or hardware keys) held for every row, e.g. ``devices=1024``.
    ``engine``: ``"local"`` or ``"dask"`` (``scheduler``: address, ``distributed.Client`` or None for a
    LocalCluster; ``partitions``: how many blocks to send, default twice the cluster's threads).
    ``progress``: a rich progress bar on stderr. Unknown keys raise UnknownNameError, malformed
    values PlanError / UnitError; configurations plan.resolve refuses get a ``reason``. See the module
    docstring for the columns.
    """
    return evaluate(model, system, grid, engine=engine, scheduler=scheduler, progress=progress,
                    partitions=partitions, **fixed).to_frame()


class _Progress:
    """A rich progress bar on stderr (a no-op when disabled); yields an ``advance(n)`` callable."""

    def __init__(self, enabled: bool, total: int):
        self.enabled, self.total, self.bar = enabled, total, None

    def __enter__(self):
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                            console=Console(stderr=True), transient=True)
        self.bar.start()
        task = self.bar.add_task("sweep", total=self.total)
        return lambda n: self.bar.advance(task, n)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()
        return False


def _run_dask(model, system, spec, scheduler, progress, partitions) -> Evaluation:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise SweepError("engine 'dask' needs dask.distributed: pip install 'dask[distributed]'") from None
    import logging

    owned = []
    quiet = logging.getLogger("distributed")
    level = quiet.level
    try:
        if scheduler is None:
            # threads, not processes: numpy releases the GIL in the large array operations, and
            # nothing is pickled. A random dashboard port; the cluster's INFO logs stay quiet.
            quiet.setLevel(logging.ERROR)
            cluster = LocalCluster(processes=False, n_workers=1, threads_per_worker=os.cpu_count() or 1,
                                   dashboard_address=":0")
            owned.append(cluster)
            client = Client(cluster)
            owned.append(client)
        elif isinstance(scheduler, str):
            try:
                client = Client(scheduler, timeout="10s")
            except (OSError, TimeoutError) as exc:
                raise SweepError(f"cannot reach the dask scheduler at {scheduler!r}: {exc}") from None
            owned.append(client)
        else:
            client = scheduler
        threads = sum(client.nthreads().values()) or 1
        blocks = _blocks(spec, min_blocks=partitions or 2 * threads)
        model_f, system_f = client.scatter([model, system], broadcast=True)
        futures = [client.submit(evaluate_block, model_f, system_f, spec, b, pure=False) for b in blocks]
        block_of = {f.key: block for f, block in zip(futures, blocks)}
        out = _Assembler(spec)
        with _Progress(progress, spec.n_rows) as advance:
            for f in as_completed(futures):
                block = block_of[f.key]
                out.add(block, f.result())
                f.release()
                if advance is not None:
                    advance(math.prod(b - a for a, b in block))
        del futures
    finally:
        for obj in reversed(owned):
            obj.close()
        quiet.setLevel(level)
    return out.finish()
