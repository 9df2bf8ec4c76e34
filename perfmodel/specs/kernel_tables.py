"""The measured-kernel tables of a device file: ``[gemm.<dtype>]`` rate points, ``[attention.<dtype>]``
and ``[attention_kernels.<kernel>.<dtype>]`` fused-attention points, ``[matmul]`` (what the GEMM
shape model needs) and ``[sustained]`` (rates under the power cap). :mod:`perfmodel.specs.loader` reads the rest of the file."""

from __future__ import annotations

from perfmodel.frozen import FrozenDict
from perfmodel.specs.reader import Table
from perfmodel.specs.schema import DTYPES, AttentionPoint, GemmPoint, Matmul, MatmulRate, Sustained

__all__ = ["note", "dtype_rates", "per_dtype", "matmul_table", "gemm_points", "attention_tables", "sustained_table"]


def note(sources: dict, key: str, q) -> float | None:
    if q is None:
        return None
    sources[key] = q.source + (f" (derived: {q.derivation})" if q.derivation else "")
    return q.value


def dtype_rates(table: Table, sources: dict, key: str) -> dict[str, float]:
    """``{dtype: FLOP/s}`` of a table whose keys are dtypes and whose values are rate quantities
    (``[peak.dense]``, ``[sustained.matmul]``); a key that is not a dtype is an error."""
    out = {}
    for dtype in table.keys():
        if dtype not in DTYPES:
            raise table.fail(dtype, f"expected a dtype ({', '.join(DTYPES)})")
        out[dtype] = note(sources, f"{key}.{dtype}", table.quantity(dtype, "flop_rate"))
    table.finish()
    return out


def per_dtype(table: Table | None, read) -> dict:
    """``{dtype: read(sub-table, dtype)}`` over the dtype keys of an optional table (``[gemm]``,
    ``[attention]``, ``[matmul.achievable]``); a key that is not a dtype is an error."""
    out = {}
    if table is None:
        return out
    for dtype in table.keys():
        if dtype not in DTYPES:
            raise table.fail(dtype, f"expected a dtype ({', '.join(DTYPES)})")
        out[dtype] = read(table.table(dtype), dtype)
    table.finish()
    return out


def _rows(table: Table, n_counts: int, n_rates: int, expected: str, peak=None) -> list:
    """The ``points`` rows of a measured table: ``n_counts`` positive integers, then ``n_rates`` rates
    parsed as FLOP/s, none above ``peak`` (the dtype's dense datasheet peak, when the file gives one:
    no dense kernel exceeds it, so such a rate is a wrong unit, dtype or device); a shape may come
    more than once (its operands' layouts: a GEMM and its transposed twin); ``expected`` shows the
    row's form in the error."""
    from perfmodel.errors import UnitError
    from perfmodel.units import parse_quantity

    rows = table.raw("points")
    if not isinstance(rows, list) or not rows:
        raise table.fail("points", f"expected a non-empty list of {expected} rows")
    out = []
    for i, row in enumerate(rows):
        ok = isinstance(row, list) and len(row) == n_counts + n_rates and all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in row[:n_counts]) and all(
            isinstance(v, str) for v in row[n_counts:])
        if not ok:
            raise table.fail(f"points[{i}]", f"expected {expected} with positive integers, got {row!r}")
        try:
            rates = [parse_quantity(v, "flop_rate", allow_zero=False) for v in row[n_counts:]]
        except UnitError as exc:
            raise table.fail(f"points[{i}]", str(exc)) from None
        if peak is not None and max(rates) > peak:
            raise table.fail(f"points[{i}]", f"{max(rates) / 1e12:g} TFLOP/s is above the dense peak "
                                             f"({peak / 1e12:g} TFLOP/s): a wrong unit, dtype or device?")
        out.append((*row[:n_counts], *rates))
    table.finish()
    return out


def matmul_table(table: Table | None, sources: dict, peaks=None) -> Matmul | None:
    """``[matmul]``: units, tile, and optional ``[matmul.achievable.<dtype>]`` measured rates, each
    at most the dtype's dense peak (``peaks``)."""
    if table is None:
        return None
    units = table.integer("units")
    sources["matmul.units"] = table.string("units_source")
    tile = table.int_list("tile")
    if len(tile) != 3:
        raise table.fail("tile", f"expected [tile_m, tile_n, tile_k], got {list(tile)}")
    sources["matmul.tile"] = table.string("tile_source")

    def rate(entry: Table, dtype: str) -> MatmulRate:
        value = note(sources, f"matmul.achievable.{dtype}", entry.quantity("rate", "flop_rate"))
        if peaks and dtype in peaks and value > peaks[dtype]:
            raise entry.fail("rate", f"{value / 1e12:g} TFLOP/s is above the dense {dtype} peak "
                                     f"({peaks[dtype] / 1e12:g} TFLOP/s): a measured rate cannot exceed it")
        shape = entry.int_list("shape", default=None)
        if shape is not None and len(shape) != 3:
            raise entry.fail("shape", f"expected [m, n, k], got {list(shape)}")
        entry.finish()
        return MatmulRate(value, tuple(shape) if shape is not None else None)

    achievable = per_dtype(table.table("achievable", required=False), rate)
    table.finish()
    return Matmul(units, tuple(tile), FrozenDict(achievable))


def gemm_points(table: Table, sources: dict, dtype: str, peak=None) -> tuple[GemmPoint, ...]:
    sources[f"gemm.{dtype}"] = table.string("source")
    return tuple(GemmPoint(*row) for row in _rows(table, 3, 1, "[m, n, k, '759 TFLOP/s']", peak))


def attention_tables(table: Table | None, sources: dict, key: str, peaks=None) -> dict:
    """dtype -> measured attention points of an ``[attention]`` table (or one kernel's table); no
    rate above the dtype's dense peak (``peaks``)."""
    return per_dtype(table, lambda sub, dtype: _attention_points(sub, sources, f"{key}.{dtype}",
                                                                 (peaks or {}).get(dtype)))


def _attention_points(table: Table, sources: dict, key: str, peak=None) -> tuple[AttentionPoint, ...]:
    derivation = table.string("derivation", default="")
    sources[key] = table.string("source") + (f" (derived: {derivation})" if derivation else "")
    causal = table.boolean("causal")
    rows = _rows(table, 4, 2, "[batch, heads, seq, head_dim, 'fwd TFLOP/s', 'fwd+bwd TFLOP/s']", peak)
    return tuple(AttentionPoint(b, h, s, d, causal, fwd, fwd_bwd) for b, h, s, d, fwd, fwd_bwd in rows)


def sustained_table(table: Table | None, sources: dict, peaks) -> Sustained | None:
    """``[sustained]``: ``attention`` (a fraction) and ``[sustained.matmul]`` per-dtype FLOP/s,
    each at most the dtype's dense peak (``peaks``)."""
    if table is None:
        return None
    fraction = None
    q = table.quantity("attention", "ratio", required=False)
    if q is not None:
        if not 0.0 < q.value <= 1.0:
            raise table.fail("attention", f"expected a fraction in (0, 1], got {q.text!r}")
        fraction = note(sources, "sustained.attention", q)

    matmul = {}
    mm = table.table("matmul", required=False)
    if mm is not None:
        matmul = dtype_rates(mm, sources, "sustained.matmul")
        for dtype, value in matmul.items():
            if dtype in peaks and value > peaks[dtype]:
                raise mm.fail(dtype, f"{value / 1e12:g} TFLOP/s is above the dense {dtype} peak: a sustained rate "
                                     f"cannot exceed it")
    table.finish()
    return Sustained(FrozenDict(matmul), fraction)
