"""The measured-kernel tables of a device file: ``[gemm.<dtype>]`` rate points, ``[attention.<dtype>]``
and ``[attention_kernels.<kernel>.<dtype>]`` fused-attention points, and ``[matmul]`` (what the GEMM
shape model needs). :mod:`perfmodel.specs.loader` reads the rest of the file."""

from __future__ import annotations

from perfmodel.frozen import FrozenDict
from perfmodel.specs.reader import Table
from perfmodel.specs.schema import DTYPES, AttentionPoint, GemmPoint, Matmul, MatmulRate

__all__ = ["note", "matmul_table", "gemm_points", "attention_tables"]


def note(sources: dict, key: str, q) -> float | None:
    if q is None:
        return None
    sources[key] = q.source + (f" (derived: {q.derivation})" if q.derivation else "")
    return q.value


def matmul_table(table: Table | None, sources: dict) -> Matmul | None:
    """``[matmul]``: units, tile, and optional ``[matmul.achievable.<dtype>]`` measured rates."""
    if table is None:
        return None
    units = table.integer("units")
    sources["matmul.units"] = table.string("units_source")
    tile = table.int_list("tile")
    if len(tile) != 3:
        raise table.fail("tile", f"expected [tile_m, tile_n, tile_k], got {list(tile)}")
    sources["matmul.tile"] = table.string("tile_source")
    achievable = {}
    ach = table.table("achievable", required=False)
    if ach is not None:
        for dtype in ach.keys():
            if dtype not in DTYPES:
                raise ach.fail(dtype, f"expected a dtype ({', '.join(DTYPES)})")
            entry = ach.table(dtype)
            rate = note(sources, f"matmul.achievable.{dtype}", entry.quantity("rate", "flop_rate"))
            shape = entry.int_list("shape", default=None)
            if shape is not None and len(shape) != 3:
                raise entry.fail("shape", f"expected [m, n, k], got {list(shape)}")
            entry.finish()
            achievable[dtype] = MatmulRate(rate, tuple(shape) if shape is not None else None)
        ach.finish()
    table.finish()
    return Matmul(units, tuple(tile), FrozenDict(achievable))


def gemm_points(table: Table, sources: dict, dtype: str) -> tuple[GemmPoint, ...]:
    sources[f"gemm.{dtype}"] = table.string("source")
    rows = table.raw("points")
    if not isinstance(rows, list) or not rows:
        raise table.fail("points", "expected a non-empty list of [m, n, k, 'TFLOP/s'] rows")
    from perfmodel.errors import UnitError
    from perfmodel.units import parse_quantity

    points = []
    for i, row in enumerate(rows):
        ok = isinstance(row, list) and len(row) == 4 and all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in row[:3]) and isinstance(row[3], str)
        if not ok:
            raise table.fail(f"points[{i}]", f"expected [m, n, k, '759 TFLOP/s'] with positive integers, got {row!r}")
        try:
            rate = parse_quantity(row[3], "flop_rate", allow_zero=False)
        except UnitError as exc:
            raise table.fail(f"points[{i}]", str(exc)) from None
        points.append(GemmPoint(row[0], row[1], row[2], rate))
    table.finish()
    return tuple(points)


def attention_tables(table: Table | None, sources: dict, key: str) -> dict:
    """dtype -> measured attention points of an ``[attention]`` table (or one kernel's table)."""
    out = {}
    if table is None:
        return out
    for dtype in table.keys():
        if dtype not in DTYPES:
            raise table.fail(dtype, f"expected a dtype ({', '.join(DTYPES)})")
        out[dtype] = _attention_points(table.table(dtype), sources, f"{key}.{dtype}")
    table.finish()
    return out


def _attention_points(table: Table, sources: dict, key: str) -> tuple[AttentionPoint, ...]:
    from perfmodel.errors import UnitError
    from perfmodel.units import parse_quantity

    derivation = table.string("derivation", default="")
    sources[key] = table.string("source") + (f" (derived: {derivation})" if derivation else "")
    causal = table.boolean("causal")
    rows = table.raw("points")
    if not isinstance(rows, list) or not rows:
        raise table.fail("points", "expected a non-empty list of [batch, heads, seq, head_dim, 'fwd TFLOP/s', 'fwd+bwd TFLOP/s'] rows")
    points = []
    for i, row in enumerate(rows):
        ok = isinstance(row, list) and len(row) == 6 and all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in row[:4]) and all(
            isinstance(v, str) for v in row[4:])
        if not ok:
            raise table.fail(f"points[{i}]", f"expected [batch, heads, seq, head_dim, 'fwd TFLOP/s', 'fwd+bwd TFLOP/s'], got {row!r}")
        try:
            fwd = parse_quantity(row[4], "flop_rate", allow_zero=False)
            fwd_bwd = parse_quantity(row[5], "flop_rate", allow_zero=False)
        except UnitError as exc:
            raise table.fail(f"points[{i}]", str(exc)) from None
        points.append(AttentionPoint(row[0], row[1], row[2], row[3], causal, fwd, fwd_bwd))
    table.finish()
    return tuple(points)
