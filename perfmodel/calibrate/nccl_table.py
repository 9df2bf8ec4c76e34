"""Read the text table that nccl-tests' ``all_reduce_perf`` prints.

The layout is nccl-tests' (NVIDIA/nccl-tests src/common.cu): comment lines start with ``#``
(the run parameters, ``#  Rank  0 Group  0 Pid ... on HOST device 0 [...] NAME`` per rank, the
column titles, and the footer ``# Out of bounds values`` / ``# Avg bus bandwidth``); each data
row is

    size  count  type  redop  [root]  time algbw busbw #wrong  time algbw busbw #wrong

with size in bytes, count in elements, time in microseconds and algbw / busbw in GB/s (1e9 B/s),
out-of-place first and in-place second; ``root`` is printed by nccl-tests 2.13 and later (``-1``
for all-reduce), ``#wrong`` is ``N/A`` when validation is off. Also tolerated: blank lines, the
``0: `` label ``srun --label`` puts before every line, ``[1,0]<stdout>:`` of ``mpirun
--tag-output``, and NCCL's own ``NCCL INFO`` / ``NCCL WARN`` log lines. Anything else that is not
a well-formed row is refused with its file, line number and content, and so is a row whose time
and algbw contradict each other: nccl-tests prints algbw = size / time, so the two must agree within
the rounding they are printed with (half a unit of each one's last digit). busbw = algbw x 2(n-1)/n
is checked once the number of ranks n is known (:func:`perfmodel.calibrate.nccl.fit_allreduce`).
"""

from __future__ import annotations

import decimal
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from perfmodel.calibrate._common import MeasurementError, read_text

__all__ = ["NcclRow", "NcclTable", "parse_nccl", "read_nccl", "NCCL_TYPE_BYTES", "rounding_of"]

# element sizes of nccl-tests' type names (src/common.cu test_typenames)
NCCL_TYPE_BYTES = {"int8": 1, "uint8": 1, "char": 1, "int32": 4, "uint32": 4, "int": 4, "int64": 8,
                   "uint64": 8, "half": 2, "float": 4, "double": 8, "bfloat16": 2, "f8e4m3": 1, "f8e5m2": 1}
FIELDS = "size count type redop [root] time algbw busbw #wrong, then in-place time algbw busbw #wrong"

_LABEL = re.compile(r"^(?:\s*\d+:\s?|\[\d+,\d+\]<std(?:out|err)>:\s?)")
_NCCL_LOG = re.compile(r"\bNCCL (?:INFO|WARN)\b")
_RANK = re.compile(r"^#\s*Rank\s+(\d+)\s+Group\s+\d+\s+Pid\s+\d+\s+on\s+(\S+)\s+device\s+\d+\s+\[[^\]]*\]\s*(.*)$")
_AVG = re.compile(r"^#\s*Avg bus bandwidth\s*:\s*(\S+)")
_COLLECTIVE = re.compile(r"^#\s*Collective test starting:\s*(\S+)")


@dataclass(frozen=True)
class NcclRow:
    """One message size: out-of-place and in-place time (s) and bandwidths (B/s)."""

    line: int
    size_bytes: int
    count: int
    dtype: str
    redop: str
    root: int | None
    time_s: float
    algbw: float
    busbw: float
    wrong: int | None
    in_place_time_s: float
    in_place_algbw: float
    in_place_busbw: float
    in_place_wrong: int | None
    # half a unit of the last printed digit of each printed algbw and busbw (B/s): out-of-place algbw,
    # busbw, in-place algbw, busbw (nccl-tests prints two decimals: 0.005 GB/s)
    bw_rounding: tuple[float, float, float, float] = (5e6, 5e6, 5e6, 5e6)
    text: str = field(default="", compare=False, repr=False)  # the line as printed (for error messages)


@dataclass(frozen=True)
class NcclTable:
    """A parsed all_reduce_perf output: rows, and what its comment lines say about the run."""

    file: str
    rows: tuple[NcclRow, ...]
    rank_hosts: tuple[str, ...] = ()      # host of rank 0, 1, ... (from the '#  Rank' lines)
    device_names: tuple[str, ...] = ()
    avg_busbw: float | None = None        # the footer's average bus bandwidth (B/s)

    @property
    def n_ranks(self) -> int | None:
        return len(self.rank_hosts) or None

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.rank_hosts))


def read_nccl(path: Path | str) -> NcclTable:
    """Parse the all_reduce_perf output saved in ``path``."""
    return parse_nccl(read_text(path, "nccl-tests all_reduce_perf output"), str(path))


def parse_nccl(text: str, file: str = "<nccl-tests output>") -> NcclTable:
    """Parse all_reduce_perf output text; a malformed row is an error naming file, line and content."""
    rows: list[NcclRow] = []
    ranks: dict[int, tuple[str, str]] = {}
    avg = None
    n_fields: tuple[int, ...] = (12, 13)  # without / with the root column, until a header says which
    saw_text = False
    for no, raw in enumerate(text.splitlines(), 1):
        line = _LABEL.sub("", raw, count=1).strip()
        if not line:
            continue
        saw_text = True
        if line.startswith("#"):
            words = line[1:].split()
            if "size" in words and "count" in words and "busbw" in words:
                n_fields = (13,) if "root" in words else (12,)
            elif m := _RANK.match(line):
                ranks[int(m.group(1))] = (m.group(2), m.group(3).strip())
            elif m := _AVG.match(line):
                avg = _number(m.group(1), file, no, raw, "Avg bus bandwidth") * 1e9
            elif (m := _COLLECTIVE.match(line)) and not m.group(1).startswith("all_reduce"):
                raise MeasurementError(f"{file}:{no}: this is {m.group(1)} output; calibrate nccl reads "
                                       f"all_reduce_perf tables: {_show(raw)}")
            continue
        if _NCCL_LOG.search(line):
            continue
        rows.append(_row(line.split(), n_fields, file, no, raw))
    if not rows:
        what = "is empty" if not saw_text else "has no data rows, only comments"
        raise MeasurementError(f"{file}: {what}; expected nccl-tests all_reduce_perf output with rows like "
                               f"'   8   2   float   sum   -1   69.12   0.00   0.00   0   72.43   0.00   0.00   0'")
    if ranks and sorted(ranks) != list(range(len(ranks))):
        raise MeasurementError(f"{file}: the '#  Rank' lines list ranks {sorted(ranks)}, expected 0..{len(ranks) - 1}")
    hosts = tuple(ranks[r][0] for r in sorted(ranks))
    names = tuple(ranks[r][1] for r in sorted(ranks))
    return NcclTable(file=file, rows=tuple(rows), rank_hosts=hosts, device_names=names, avg_busbw=avg)


def _show(raw: str) -> str:
    raw = raw.rstrip("\n")
    return repr(raw if len(raw) <= 160 else raw[:157] + "...")


def _number(token: str, file: str, no: int, raw: str, column: str) -> float:
    try:
        value = float(token)
    except ValueError:
        raise MeasurementError(f"{file}:{no}: column '{column}' is not a number ({token!r}): {_show(raw)}") from None
    if not math.isfinite(value):
        raise MeasurementError(f"{file}:{no}: column '{column}' is not finite ({token!r}): {_show(raw)}")
    return value


def _integer(token: str, file: str, no: int, raw: str, column: str, minimum: int = 0) -> int:
    if not re.fullmatch(r"[+-]?\d+", token):
        raise MeasurementError(f"{file}:{no}: column '{column}' is not an integer ({token!r}): {_show(raw)}")
    value = int(token)
    if value < minimum:
        raise MeasurementError(f"{file}:{no}: column '{column}' must be >= {minimum}, got {value}: {_show(raw)}")
    return value


def _row(fields: list[str], n_fields: tuple[int, ...], file: str, no: int, raw: str) -> NcclRow:
    if len(fields) not in n_fields:
        want = " or ".join(str(n) for n in n_fields)
        raise MeasurementError(f"{file}:{no}: expected {want} fields ({FIELDS}), got {len(fields)}: {_show(raw)}")
    has_root = len(fields) == 13
    size = _integer(fields[0], file, no, raw, "size")
    count = _integer(fields[1], file, no, raw, "count")
    dtype, redop = fields[2], fields[3]
    if redop == "none":
        raise MeasurementError(f"{file}:{no}: redop 'none' is not an all-reduce (all_gather, broadcast, ... "
                               f"print 'none'); calibrate nccl reads all_reduce_perf: {_show(raw)}")
    if dtype in NCCL_TYPE_BYTES and size != count * NCCL_TYPE_BYTES[dtype]:
        raise MeasurementError(f"{file}:{no}: size {size} B is not count {count} x {NCCL_TYPE_BYTES[dtype]} B "
                               f"({dtype}): {_show(raw)}")
    root = _integer(fields[4], file, no, raw, "root", minimum=-1) if has_root else None
    values, rounding = [], []
    for half, offset in (("out-of-place", 5 if has_root else 4), ("in-place", 9 if has_root else 8)):
        time_us = _number(fields[offset], file, no, raw, f"{half} time")
        if time_us <= 0:
            raise MeasurementError(f"{file}:{no}: {half} time must be positive, got {fields[offset]} us: {_show(raw)}")
        algbw = _number(fields[offset + 1], file, no, raw, f"{half} algbw")
        busbw = _number(fields[offset + 2], file, no, raw, f"{half} busbw")
        if algbw < 0 or busbw < 0:
            raise MeasurementError(f"{file}:{no}: {half} bandwidths must not be negative: {_show(raw)}")
        _check_algbw(size, fields[offset], fields[offset + 1], half, file, no, raw)
        token = fields[offset + 3]
        wrong = None if token == "N/A" else _integer(token, file, no, raw, f"{half} #wrong")
        values += [time_us * 1e-6, algbw * 1e9, busbw * 1e9, wrong]
        rounding += [rounding_of(fields[offset + 1]) * 1e9, rounding_of(fields[offset + 2]) * 1e9]
    return NcclRow(no, size, count, dtype, redop, root, *values, bw_rounding=tuple(rounding), text=raw)


def rounding_of(token: str) -> float:
    """Half a unit of the last digit ``token`` was printed with: '601.5' -> 0.05, '17286' -> 0.5, '1e3' -> 500."""
    exponent = decimal.Decimal(token).as_tuple().exponent
    return 0.5 * 10.0 ** exponent if isinstance(exponent, int) else math.inf


# relative slack on top of the printed rounding (binary floating point of the check itself)
_SLACK = 1e-9


def _check_algbw(size: int, time_token: str, algbw_token: str, half: str, file: str, no: int, raw: str) -> None:
    """nccl-tests prints algbw = size / time (GB/s = 1e9 B/s, time in us), each rounded as printed
    (time with 2, 1 or 0 decimals as it grows, algbw with 2): the two must agree within that rounding."""
    t, dt = float(time_token), rounding_of(time_token)
    a, da = float(algbw_token), rounding_of(algbw_token)
    low = size / (t + dt) / 1e3  # GB/s, at the longest time the printed one can stand for
    high = size / (t - dt) / 1e3 if t > dt else math.inf
    if a + da < low * (1 - _SLACK) or a - da > high * (1 + _SLACK):
        raise MeasurementError(
            f"{file}:{no}: {half} time {time_token} us and algbw {algbw_token} GB/s contradict each other for size "
            f"{size} B: size / time = {size / t / 1e3:.6g} GB/s (nccl-tests prints algbw = size / time; a run with "
            f"-C 1 prints CPU time instead): {_show(raw)}")
