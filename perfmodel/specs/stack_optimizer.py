"""Readers of a stack file's optimizer and recomputation keys (:mod:`perfmodel.specs.stack` documents
them): ``[optimizer] bytes_per_param`` and ``master_bytes``, ``selective_recompute``."""

from __future__ import annotations

from perfmodel.specs.reader import Table

__all__ = ["SELECTIVE", "optimizer_bytes", "master_bytes", "selective"]

SELECTIVE = ("attention", "dots")  # what selective recomputation keeps


def optimizer_bytes(opt: Table) -> float:
    """``[optimizer] bytes_per_param``: a positive number of bytes, with its source."""
    bpp = opt.table("bytes_per_param")
    value = bpp.raw("value")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise bpp.fail("value", f"expected a number of bytes per parameter, got {value!r}") from None
    if not 0 < value < 1e4:
        raise bpp.fail("value", f"expected a positive number of bytes per parameter, got {value}")
    bpp.string("source")
    bpp.finish()
    return value


def master_bytes(opt: Table) -> float:
    """``[optimizer] master_bytes`` (default 4: an fp32 master copy), with its source where set."""
    if not opt.has("master_bytes"):
        return 4.0
    value = opt.number("master_bytes", minimum=0.0, maximum=8.0)
    opt.string("master_source")
    return value


def selective(top: Table) -> str:
    """``selective_recompute`` (default ``"attention"``), with its source where the file sets it."""
    if not top.has("selective_recompute"):
        return "attention"
    top.string("selective_recompute_source")
    return top.string("selective_recompute", choices=SELECTIVE)
