"""Kernel inventories of a software stack: every kernel one transformer layer runs, forward and
backward, read from the stack file's ``[inventory.<family>]`` tables.

Grammar (``perfmodel/specs/stacks/pytorch-eager.toml`` is the worked example)::

    [inventory]
    source = "..."                          # where the kernel list comes from
    [inventory.gpt2]                        # a family: "gpt2" (LayerNorm, GELU MLP), "llama"
    forward = [ KERNEL, ... ]               # (RMSNorm, SwiGLU MLP, rotary) or "bert" (an
    backward = [ KERNEL, ... ]              # encoder, post-LayerNorm), in the order they run

    KERNEL = { name = "c_attn.addmm", op = OP, n = COUNT, read = DTYPES, write = DTYPES,
               gemm = [COUNT, COUNT, COUNT], saves = [[COUNT, DTYPES], ...], autocast = BOOL,
               linear = BOOL }

* ``op``: ``gemm`` (``gemm`` gives C[M, N] = A[M, K] B[K, N] as [M, N, K]; ``linear = true``:
  a linear layer, which runs in the linear dtype under FP8), ``attention`` (the fused SDPA
  kernel; the forward in ``forward``, its backward in ``backward``), ``copy`` (a cast or copy
  at the device's copy bandwidth), or a row of the stack's ``[memory_efficiency]`` /
  ``formulas.compute.POINTWISE_OPS`` whose measured efficiency the kernel runs at.
* ``n``: elements the kernel touches, a product of numbers and names: ``T`` tokens of the
  micro-batch (b x s), ``h`` hidden, ``q`` query width (heads x head dim / t), ``kv`` key or value
  width (kv heads x head dim / t), ``qkv`` = q + 2 kv, ``f`` MLP width / t, ``heads`` = heads / t,
  ``V`` vocabulary / t. ``"0.5*T*q"`` is half of a query tensor.
* ``read``/``write``: one letter per tensor operand read / written per element: ``f`` fp32 (4 B),
  ``h`` the half dtype autocast computes in (2 B; 4 B when the plan's dtype is fp32/tf32: no
  autocast), ``b`` bool (1 B, a dropout mask), ``i`` int64 (8 B). Bytes = n x (read + write).
* ``saves``: tensors autograd keeps for the backward that this kernel creates (or that its op
  saves), each [COUNT, DTYPES]: their bytes are the layer's activation memory.
* ``autocast = true``: the kernel exists only under autocast (a cast); absent in fp32 runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

from perfmodel.specs.reader import Table

__all__ = ["Kernel", "Inventory", "COUNT_NAMES", "DTYPE_LETTERS", "FAMILIES", "read_inventory"]

COUNT_NAMES = ("T", "h", "q", "kv", "qkv", "f", "heads", "V")
DTYPE_LETTERS = {"f": 4, "h": 2, "b": 1, "i": 8}  # "h" is 4 without autocast
FAMILIES = ("gpt2", "llama", "bert")
_SPECIAL_OPS = ("gemm", "attention", "copy")
_KEYS = ("name", "op", "n", "read", "write", "saves", "autocast", "gemm", "linear")

Count = tuple  # (factor, (name, ...))


@dataclass(frozen=True)
class Kernel:
    """One kernel of a layer, as the stack file states it (see the module docstring)."""

    name: str
    op: str
    n: Count
    read: str
    write: str
    saves: tuple[tuple[Count, str], ...]
    autocast: bool
    gemm: tuple[Count, Count, Count] | None
    linear: bool

    @property
    def fixed_bytes(self) -> int:
        """Bytes per element of the operands that are not the half dtype."""
        return sum(DTYPE_LETTERS[c] for c in self.read + self.write if c != "h")

    @property
    def n_half(self) -> int:
        """Operands per element in the half dtype."""
        return (self.read + self.write).count("h")


@dataclass(frozen=True)
class Inventory:
    forward: tuple[Kernel, ...]
    backward: tuple[Kernel, ...]


def _count(table: Table, key: str, text) -> Count:
    if not isinstance(text, str) or not text.strip():
        raise table.fail(key, f"expected a count like 'T*h', got {text!r}")
    factor, names = 1.0, []
    for term in text.replace(" ", "").split("*"):
        if re.fullmatch(r"\d+(\.\d+)?", term):
            factor *= float(term)
        elif term in COUNT_NAMES:
            names.append(term)
        else:
            raise table.fail(key, f"unknown term {term!r} in {text!r} (names: {', '.join(COUNT_NAMES)}, or a number)")
    return factor, tuple(names)


def _dtypes(table: Table, key: str, text) -> str:
    if not isinstance(text, str) or any(c not in DTYPE_LETTERS for c in text):
        raise table.fail(key, f"expected dtype letters ({', '.join(DTYPE_LETTERS)}), got {text!r}")
    return text


def _kernel(table: Table, key: str, raw, ops: tuple[str, ...]) -> Kernel:
    if not isinstance(raw, dict) or any(k not in _KEYS for k in raw):
        raise table.fail(key, f"expected a kernel table with keys from {', '.join(_KEYS)}, got {raw!r}")
    where = f"{key} {raw.get('name', '?')!r}"
    op = raw.get("op")
    if op not in ops:
        raise table.fail(where, f"op: expected one of {', '.join(ops)}, got {op!r}")
    if not isinstance(raw.get("name"), str):
        raise table.fail(where, "name: expected a string")
    if op not in ("gemm", "attention") and "n" not in raw:
        raise table.fail(where, "n: missing (required for a memory-bound kernel)")
    gemm = raw.get("gemm")
    if op == "gemm":
        if not (isinstance(gemm, list) and len(gemm) == 3):
            raise table.fail(where, f"gemm: expected [M, N, K] counts, got {gemm!r}")
        gemm = tuple(_count(table, where, g) for g in gemm)
    saves = raw.get("saves", [])
    if not isinstance(saves, list) or not all(isinstance(s, list) and len(s) == 2 for s in saves):
        raise table.fail(where, f"saves: expected a list of [count, dtypes] pairs, got {saves!r}")
    flags = {k: raw.get(k, False) for k in ("autocast", "linear")}
    if not all(isinstance(v, bool) for v in flags.values()):
        raise table.fail(where, f"autocast / linear: expected true or false, got {flags}")
    return Kernel(name=raw["name"], op=op,
                  n=_count(table, where, raw["n"]) if "n" in raw else (0.0, ()),
                  read=_dtypes(table, where, raw.get("read", "")), write=_dtypes(table, where, raw.get("write", "")),
                  saves=tuple((_count(table, where, c), _dtypes(table, where, d)) for c, d in saves),
                  autocast=flags["autocast"], gemm=gemm, linear=flags["linear"])


def read_inventory(table: Table | None) -> Mapping[str, Inventory]:
    """The ``[inventory]`` table of a stack file (absent: an empty mapping)."""
    if table is None:
        return {}
    from perfmodel.formulas.compute import POINTWISE_OPS

    ops = _SPECIAL_OPS + tuple(POINTWISE_OPS)
    table.string("source")
    out = {}
    for family in table.keys():
        if family == "source":
            continue
        if family not in FAMILIES:
            raise table.fail(family, f"expected a model family ({', '.join(FAMILIES)})")
        sub = table.table(family)
        lists = {}
        for direction in ("forward", "backward"):
            raw = sub.raw(direction)
            if not isinstance(raw, list) or not raw:
                raise sub.fail(direction, "expected a non-empty list of kernels")
            lists[direction] = tuple(_kernel(sub, direction, k, ops) for k in raw)
        sub.finish()
        out[family] = Inventory(lists["forward"], lists["backward"])
    table.finish()
    return out
