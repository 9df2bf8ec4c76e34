r"""The grid of a sweep: its keys, the parsing and checking of their values, and its blocks.

Keys are the plan fields (:data:`PLAN_KEYS`) and the hardware numbers of
:data:`perfmodel.prediction.hardware.SWEEPABLE` (:data:`GRID_KEYS`). A parsed grid is a
:class:`GridSpec` (keys in row order, values in their internal form: int, bool, str or SI float);
:func:`split_grid` cuts it into the sub-grids an engine evaluates one at a time.
"""

from __future__ import annotations

import itertools
import math
import numbers
from dataclasses import dataclass, fields
from typing import Mapping

from perfmodel.errors import PlanError, UnitError, UnknownNameError, did_you_mean
from perfmodel.plan import (
    DTYPES,
    GRAD_SYNC,
    COUNT_BOUNDS,
    OFFLOAD,
    OPTIMIZERS,
    RECOMPUTE,
    SCHEDULES,
    Plan,
)
from perfmodel.prediction.hardware import SWEEPABLE
from perfmodel.specs.bounds import implausible, violation

__all__ = ["PLAN_KEYS", "GRID_KEYS", "NUMERIC_KEYS", "CHOICE_KEYS", "BOOL_KEYS", "CATEGORICAL_KEYS", "DERIVED",
           "BLOCK_ROWS", "UNSWEPT", "GridSpec", "parse_grid", "make_spec", "split_grid"]

PLAN_KEYS = tuple(f.name for f in fields(Plan))
GRID_KEYS = PLAN_KEYS + tuple(SWEEPABLE)
NUMERIC_KEYS = ("devices", "tp", "pp", "dp", "micro_batch", "global_batch", "virtual_stages", "seq", "cp", "ep")
CHOICE_KEYS = {"dtype": DTYPES, "recompute": RECOMPUTE, "schedule": SCHEDULES, "grad_sync": GRAD_SYNC,
               "optimizer": OPTIMIZERS, "offload": OFFLOAD}
BOOL_KEYS = ("sequence_parallel", "overlap")
CATEGORICAL_KEYS = ("dtype", "recompute", "sequence_parallel", "schedule", "zero", "grad_sync", "overlap",
                    "optimizer", "stack", "offload", "shard_group")
DERIVED = ("devices", "dp", "global_batch", "n_microbatches")
# plan fields a sweep does not vary or take (every row has even pipeline stages)
UNSWEPT = ("first_stage_layers", "last_stage_layers")
_INT_MAX = {k: COUNT_BOUNDS[k] for k in NUMERIC_KEYS}  # the bounds Plan has (a grid value is a plan's)
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")
# HwParams fields that only a PCIe-tree fabric uses
_PCIE_ONLY = ("devices_per_switch", "uplink_bandwidth", "uplink_latency", "root_bandwidth")

BLOCK_ROWS = 2**20  # numeric rows per transformer_terms call (bounds the temporaries' memory)


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
    if key == "shard_group":  # hybrid sharding's group; 'none' (or 'all'): the whole data-parallel group
        return None if str(raw).strip().lower() in ("none", "all") else _int(key, raw, 1, COUNT_BOUNDS["devices"])
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
        from perfmodel.specs.stack import load_stack

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
    broken = violation(key, value) or implausible(dim, value, str(raw))  # the bounds a spec file's value has
    if broken:
        raise PlanError(f"grid key '{key}': {broken} (the bound of a spec file's value)")
    return value


def _check_key(key: str) -> None:
    if not isinstance(key, str):
        raise PlanError(f"grid key {key!r} ({type(key).__name__}): expected a string naming a plan field or a "
                        f"hardware number, e.g. 'tp' or 'network.efficiency'")
    if key in UNSWEPT:
        raise PlanError(f"'{key}' (uneven pipeline stages) is not a sweep key: give it to predict")
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
class GridSpec:
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


def make_spec(grid, fixed: Mapping, system=None) -> GridSpec:
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
        if key in UNSWEPT and raw is None:
            continue
        _check_key(key)
        if key in grid:
            raise PlanError(f"'{key}' is both a grid key and a fixed value; give it once")
        if raw is None:
            if key in ("devices", "dp", "global_batch", "seq", "shard_group"):
                continue  # derived, as in Plan
            raise PlanError(f"'{key}' cannot be None")
        parsed_fixed.append((key, _value(key, raw)))
    # categorical keys first: each of their combinations is then one contiguous run of rows
    order = sorted(range(len(keys)), key=lambda i: keys[i] not in CATEGORICAL_KEYS)
    spec = GridSpec(tuple(keys[i] for i in order), tuple(values[i] for i in order), tuple(parsed_fixed))
    if system is not None:
        _check_hardware_keys(spec, system)
    return spec


def _check_hardware_keys(spec: GridSpec, system) -> None:
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


def split_grid(spec: GridSpec, max_rows: int = BLOCK_ROWS, min_blocks: int = 1):
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
