"""Calibration: turn a datasheet model into a model of *your* cluster from your own measurements.

* :func:`calibrate_nccl` reads nccl-tests ``all_reduce_perf`` output, fits the latency and the
  collective efficiency of the system level the run spans, and writes a calibrated system file
  (:mod:`perfmodel.calibrate.nccl` says exactly what is fitted and how).
* :func:`calibrate_gemm` reads a GEMM sweep CSV and writes a device file with those measured GEMM
  points, reporting the fit error of the device's GEMM curve (:mod:`perfmodel.calibrate.gemm`).

CLI: ``perfmodel calibrate nccl FILE --system NAME --out OUT.toml`` and
``perfmodel calibrate gemm FILE.csv --device NAME --out OUT.toml``.
"""

from perfmodel.calibrate._common import MeasurementError
from perfmodel.calibrate.gemm import calibrate_gemm, read_gemm_sweep
from perfmodel.calibrate.nccl import fit_allreduce
from perfmodel.calibrate.nccl_write import calibrate_nccl
from perfmodel.calibrate.nccl_table import parse_nccl, read_nccl

__all__ = ["calibrate_nccl", "fit_allreduce", "parse_nccl", "read_nccl", "calibrate_gemm", "read_gemm_sweep",
           "MeasurementError"]
