"""Tests of perfmodel.formulas.busbw (nccl-tests algorithm and bus bandwidth).

Truth comes from the nccl-tests busbw factors in the project's copy of the published table
(perfmodel/data/validation/nccl_busbw_formulas.csv), and from the ring (bandwidth-optimal) time
each factor follows from: at alpha = 0, busbw = algbw x factor is exactly the link bandwidth.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import sympy as sp

import perfmodel
from perfmodel.formulas import busbw as bw
from perfmodel.formulas import collectives as coll
from perfmodel.formulas import logtree
from tests.formulas.backends import check_numpy_broadcasting, check_sympy_matches_float

BUSBW_CSV = Path(perfmodel.__file__).parent / "data" / "validation" / "nccl_busbw_formulas.csv"

# --- nccl-tests bus bandwidth ---------------------------------------------------------------------

# collective -> (busbw factor, the ring (bandwidth-optimal) time it follows from)
BUSBW = {
    "AllReduce": (bw.allreduce_busbw_factor, coll.ring_allreduce_time),
    "ReduceScatter": (bw.reduce_scatter_busbw_factor, coll.ring_reduce_scatter_time),
    "AllGather": (bw.allgather_busbw_factor, coll.ring_allgather_time),
    "Broadcast": (bw.broadcast_busbw_factor, coll.pipelined_ring_broadcast_optimal_time),
    "Reduce": (bw.reduce_busbw_factor, coll.pipelined_ring_reduce_optimal_time),
    "AlltoAll": (bw.alltoall_busbw_factor, logtree.pairwise_alltoall_time),
}


def _busbw_rows():
    with BUSBW_CSV.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_busbw_table_is_the_published_copy_with_sources():
    rows = _busbw_rows()
    assert rows and all(r["source"].startswith("NVIDIA/nccl-tests") for r in rows)
    covered = {r["collective"] for r in rows if "(" not in r["collective"]}
    assert covered == set(BUSBW)  # a new row in the table needs its ring formula here


@pytest.mark.parametrize("collective", sorted(BUSBW))
def test_busbw_factor_follows_from_ring_formula(collective):
    n, size, beta = sp.symbols("n size beta", positive=True)
    row = next(r for r in _busbw_rows() if r["collective"] == collective)
    factor_fn, time_fn = BUSBW[collective]
    published = sp.sympify(row["busbw_correction_factor_on_algbw"], locals={"n": n})
    assert sp.simplify(factor_fn(n) - published) == 0
    # bandwidth limit (alpha = 0): busbw = algbw * factor is exactly the link bandwidth
    t = time_fn(n, size, 0, beta)
    busbw = bw.nccl_busbw(bw.nccl_algbw(size, t), factor_fn(n))
    assert sp.simplify(busbw - beta) == 0


def test_ideal_allreduce_time_row():
    row = next(r for r in _busbw_rows() if r["collective"] == "AllReduce (ideal time)")
    n, size, beta = sp.symbols("n size beta", positive=True)
    rhs = row["busbw_correction_factor_on_algbw"].split("=", 1)[1]
    ideal = sp.sympify(rhs, locals={"S": size, "B": beta, "n": n})
    assert sp.simplify(coll.ring_allreduce_time(n, size, 0, beta) - ideal) == 0


def test_sendrecv_busbw_factor():
    # nccl-tests src/sendrecv.cu: factor 1, algbw = bytes / time
    n, size, beta = sp.symbols("n size beta", positive=True)
    busbw = bw.nccl_busbw(bw.nccl_algbw(size, coll.point_to_point_time(size, 0, beta)),
                            bw.sendrecv_busbw_factor(n))
    assert sp.simplify(busbw - beta) == 0


# --- three backends -----------------------------------------------------------------------------

VALUES = {
    "n": [4.0, 8.0, 64.0],
    "size": [1e6, 1e9],
    "elapsed_time": [1e-3, 0.1],
    "algbw": [1e9, 2e9],
    "busbw_factor": [1.0, 1.75],
}

FUNCTIONS = [getattr(bw, name) for name in bw.__all__]


@pytest.mark.parametrize("func", FUNCTIONS, ids=lambda f: f.__name__)
def test_numpy_broadcasting_matches_loop(func):
    check_numpy_broadcasting(func, VALUES, rest="last")


@pytest.mark.parametrize("func", FUNCTIONS, ids=lambda f: f.__name__)
def test_sympy_matches_float(func):
    check_sympy_matches_float(func, VALUES)
