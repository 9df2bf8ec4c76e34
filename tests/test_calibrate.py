"""perfmodel calibrate nccl | gemm (issue 6, item 2).

Where the truth comes from: tests/data/nccl/*.txt are real nccl-tests all_reduce_perf outputs, the
rows of perfmodel/data/validation/nccl_allreduce_busbw_measured.csv printed in nccl-tests' layout
(each file's header comment cites its source; the GCP file is byte-identical to the published
output from its parameter line to its footer). The GEMM sweep is perfmodel/data/validation/h100/
gemm.csv, measured on one H100. Tests marked "synthetic" generate a table from the model itself
to check that the fit recovers known parameters; they say so.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from perfmodel.calibrate import (
    calibrate_gemm,
    calibrate_nccl,
    nccl,
    parse_nccl,
    read_nccl,
)
from perfmodel.calibrate._common import dump_toml
from perfmodel.calibrate.nccl import _hw, ranks_from_busbw
from perfmodel.prediction.step import data_parallel_allreduce_time
from perfmodel.specs import registry
from perfmodel.specs.reader import read_toml

REPO = Path(__file__).resolve().parents[1]
NCCL = REPO / "tests" / "data" / "nccl"
P5 = NCCL / "aws-p5-2x8-h100-efa.txt"
P4DE = NCCL / "aws-p4de-2x8-a100-efa.txt"
GCP = NCCL / "gcp-a3mega-2x8-h100-tcpxo.txt"
MEASURED = REPO / "perfmodel" / "data" / "validation" / "nccl_allreduce_busbw_measured.csv"
GEMM = REPO / "perfmodel" / "data" / "validation" / "h100" / "gemm.csv"
MiB = 2**20

# issue 6 "Done when": "calibrating from the AWS p5 (16 x H100) sweep produces a file that `perfmodel hardware
# check` accepts and whose predicted all-reduce bus bandwidth is within 10% of the measured one for messages >= 64 MB"
DONE_WHEN_TOLERANCE = 0.10
DONE_WHEN_MIN_SIZE = 64e6


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "perfmodel", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd)


def measured_rows(system: str) -> list[dict]:
    with open(MEASURED, newline="") as f:
        return [r for r in csv.DictReader(f) if r["system"] == system]


def busbw_errors(system_file: Path, rows) -> dict[int, float]:
    """predicted / measured busbw - 1 per size >= 64 MB, predicting with the calibrated file exactly as predict
    times a 16-GPU data-parallel all-reduce (data_parallel_allreduce_time) and busbw = S / t x 2(n-1)/n."""
    hw = _hw(registry.check_file(system_file))
    out = {}
    for r in rows:
        size = int(r["size_bytes"])
        if size >= DONE_WHEN_MIN_SIZE:
            predicted = size / data_parallel_allreduce_time(hw, size, 16) * 2 * 15 / 16
            out[size] = predicted / (float(r["oop_busbw_GBps"]) * 1e9) - 1
    return out


# --- the parser, on real outputs ---------------------------------------------------------------------


@pytest.mark.parametrize("path, system", [(P5, "2x AWS p5.48xlarge"), (P4DE, "2x AWS p4de.24xlarge"),
                                          (GCP, "2x GCP a3-megagpu-8g (machine type from create_instance.sh)")])
def test_tables_hold_the_measured_rows(path, system):
    table = read_nccl(path)
    rows = measured_rows(system)
    assert len(table.rows) == len(rows) > 25
    for got, want in zip(table.rows, rows):
        assert (got.size_bytes, got.count, got.dtype, got.redop, got.root) == (
            int(want["size_bytes"]), int(want["count_elements"]), "float", "sum", -1)
        for attr, col, scale in (("time_s", "oop_time_us", 1e-6), ("algbw", "oop_algbw_GBps", 1e9),
                                 ("busbw", "oop_busbw_GBps", 1e9), ("in_place_time_s", "ip_time_us", 1e-6),
                                 ("in_place_algbw", "ip_algbw_GBps", 1e9), ("in_place_busbw", "ip_busbw_GBps", 1e9)):
            assert getattr(got, attr) == pytest.approx(float(want[col]) * scale, rel=1e-12)
        assert got.wrong == got.in_place_wrong == 0


def test_rank_lines_and_footer_of_the_gcp_output():
    table = read_nccl(GCP)
    assert table.n_ranks == 16 and table.hosts == ("ztan-mig-235z", "ztan-mig-gq73")
    assert set(table.device_names) == {"NVIDIA H100 80GB HBM3"}
    assert table.avg_busbw == 70.742e9
    # nccl-tests' footer is the mean busbw over out-of-place and in-place rows (rounded rows: +-0.01)
    mean = sum(r.busbw + r.in_place_busbw for r in table.rows) / (2 * len(table.rows))
    assert mean == pytest.approx(table.avg_busbw, abs=0.01e9)


@pytest.mark.parametrize("path", [P5, P4DE, GCP])
def test_rank_count_from_the_busbw_factor(path):
    # nccl-tests doc/PERFORMANCE.md: all-reduce busbw = algbw x 2(n-1)/n; all three runs had 16 ranks
    assert ranks_from_busbw(read_nccl(path).rows) == 16


def test_srun_labels_mpirun_tags_nccl_logs_and_blank_lines_are_tolerated():
    text = P5.read_text()
    labelled = []
    for i, line in enumerate(text.splitlines()):
        labelled.append(("0: " if i % 2 else "[1,0]<stdout>:") + line)
        if i % 7 == 0:
            labelled += ["", "p5-st-1:4242:4300 [0] NCCL INFO Channel 00/32 : 0 1 2 3 4 5 6 7"]
    def unnumbered(rows):
        return [dataclasses.replace(r, line=0) for r in rows]

    assert unnumbered(parse_nccl("\n".join(labelled)).rows) == unnumbered(parse_nccl(text).rows)


def test_the_layout_before_nccl_tests_2_13_without_the_root_column():
    lines = []
    for line in P5.read_text().splitlines():
        fields = line.split()
        if line.startswith("#") or len(fields) != 13:
            lines.append(line.replace("   root", ""))
        else:
            lines.append("  ".join(fields[:4] + fields[5:]))
    old, new = parse_nccl("\n".join(lines)), read_nccl(P5)
    assert [r.root for r in old.rows] == [None] * len(new.rows)
    assert [dataclasses.replace(r, root=-1) for r in old.rows] == list(new.rows)


# --- the model the fit uses is the one predict uses ----------------------------------------------------


@pytest.mark.parametrize("system, n", [("dgx-h100", 16), ("dgx-h100", 8), ("dgx-a100", 32), ("pcie-8gpu", 4),
                                       ("pcie-8gpu", 16), ("gaudi2-hls", 8)])
def test_the_fit_times_with_the_predictors_allreduce(system, n):
    # one model: calibration keeps no placement logic of its own (the former nccl.allreduce_time is gone)
    assert not hasattr(nccl, "allreduce_time")
    hw = _hw(registry.load_system(system))
    sizes = [1e3, 64 * MiB, 2**34]
    for size in sizes:
        assert nccl.run_allreduce_time(hw, n, size) == data_parallel_allreduce_time(hw, size, n)


def _nccl_text(sizes, times_s, n) -> str:
    """nccl-tests rows (src/common.cu number formats) for float all-reduce: synthetic tables."""
    lines = ["# synthetic: generated from perfmodel's own model to test the fit",
             "#       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   "
             "busbw #wrong"]
    for size, t in zip(sizes, times_s):
        us = t * 1e6
        text = f"{us:7.0f}" if us >= 1e4 else f"{us:7.1f}" if us >= 100 else f"{us:7.2f}"
        algbw = size / t / 1e9
        half = f"  {text}  {algbw:6.2f}  {algbw * 2 * (n - 1) / n:6.2f}  {0:5d}"
        lines.append(f"{size:12d}  {size // 4:12d}  {'float':>8s}  {'sum':>6s}  {-1:6d}{half}{half}")
    return "\n".join(lines) + "\n"


FIELDS = {"fabric": ("fabric_latency", "fabric_efficiency"), "network": ("network_latency", "network_efficiency")}


def _synthetic_run(tmp_path, system, n, level, alpha, eta) -> Path:
    """An nccl-tests table of the predictor's own all-reduce times at known (alpha, eta): synthetic."""
    spec = registry.load_system(system) if isinstance(system, str) else registry.check_file(system)
    hw = dataclasses.replace(_hw(spec), **dict(zip(FIELDS[level], (alpha, eta))))
    sizes = [2**k for k in range(16, 33)]
    path = tmp_path / "synthetic.txt"
    path.write_text(_nccl_text(sizes, [data_parallel_allreduce_time(hw, s, n) for s in sizes], n))
    return path


@pytest.mark.parametrize("system, n, level, alpha, eta", [("dgx-a100", 8, "fabric", 3e-6, 0.7),
                                                          ("dgx-h100", 16, "network", 20e-6, 0.55),
                                                          ("dgx-a100", 32, "network", 8e-6, 0.3),
                                                          ("pcie-8gpu", 8, "fabric", 4e-6, 0.8)])
def test_fit_recovers_known_parameters_synthetic(tmp_path, system, n, level, alpha, eta):
    path = _synthetic_run(tmp_path, system, n, level, alpha, eta)
    result = calibrate_nccl(path, system, tmp_path / "cal.toml", min_size=0)
    assert result.fit.level == level and result.fit.n_gpus == n
    assert result.fit.latency_s == pytest.approx(alpha, rel=0.02)
    assert result.fit.efficiency == pytest.approx(eta, rel=0.002)
    assert result.fit.efficiency_identifiable and result.fit.efficiency_range is None
    assert result.mean_abs_error < 1e-3 and result.fit.warnings == ()
    written = read_toml(tmp_path / "cal.toml")
    assert written[level]["efficiency"]["value"] == f"{result.fit.efficiency * 100:.4g} %"
    # deterministic: the same table gives the same numbers
    again = calibrate_nccl(path, system, tmp_path / "again.toml", min_size=0)
    assert (again.fit.latency_s, again.fit.efficiency) == (result.fit.latency_s, result.fit.efficiency)


# dgx-h100, 2 x 8 GPUs: the network term S / (8 x 50 GB/s x eta) is below the intra-node one S / 274.5 GB/s
# (in-switch reduction, 61 % of 18 x 25 GB/s; hardware/system/dgx-h100.toml) once eta > 274.5 / 400
H100_NETWORK_THRESHOLD = 18 * 25e9 * 0.61 / (8 * 50e9)


def test_network_efficiency_not_identifiable_when_the_node_is_the_bottleneck_synthetic(tmp_path):
    path = _synthetic_run(tmp_path, "dgx-h100", 16, "network", 20e-6, 0.9)  # 0.9 > 0.686: the node sets the rate
    result = calibrate_nccl(path, "dgx-h100", tmp_path / "cal.toml", min_size=0)
    fit = result.fit
    assert not fit.efficiency_identifiable
    assert fit.efficiency_range == pytest.approx((H100_NETWORK_THRESHOLD, 1.0), rel=1e-6)
    assert fit.efficiency == registry.load_system("dgx-h100").network.efficiency == 0.96  # kept, not "fitted"
    assert fit.latency_s == pytest.approx(20e-6, rel=0.02) and result.mean_abs_error < 1e-3  # latency still fitted
    (warning,) = fit.warnings
    assert "network efficiency is not identifiable" in warning and "intra-node level" in warning
    assert "[68.62 %, 100 %]" in warning and "kept dgx-h100's 96 %" in warning
    # the written file keeps the bundled efficiency and its source; only the latency is calibrated
    written = read_toml(tmp_path / "cal.toml")
    assert written["network"]["efficiency"] == read_toml(registry.bundled_names()["dgx-h100"][1])["network"][
        "efficiency"]
    assert "synthetic.txt" in read_toml(tmp_path / "cal-ib-ndr.toml")["latency"]["source"]
    r = run("calibrate", "nccl", path, "--system", "dgx-h100", "--out", tmp_path / "cli.toml", "--min-size", "0",
            "--format", "json")
    report = json.loads(r.stdout)
    assert report["efficiency_identifiable"] is False
    assert report["efficiency_range"] == pytest.approx([H100_NETWORK_THRESHOLD, 1.0], rel=1e-6)
    assert any("not identifiable" in w for w in report["warnings"])
    r = run("calibrate", "nccl", path, "--system", "dgx-h100", "--out", tmp_path / "cli2.toml", "--min-size", "0")
    assert r.returncode == 0 and "warning: the network efficiency is not identifiable" in r.stdout


def test_not_identifiable_efficiency_outside_the_interval_moves_to_its_nearest_end_synthetic(tmp_path):
    data = read_toml(registry.bundled_names()["dgx-h100"][1])
    data["name"] = "h100-slow-net"
    data["network"]["efficiency"] = {"value": "50 %", "source": "test"}
    (tmp_path / "h100-slow-net.toml").write_text(dump_toml(data))
    system = str(tmp_path / "h100-slow-net.toml")
    path = _synthetic_run(tmp_path, system, 16, "network", 20e-6, 0.9)
    result = calibrate_nccl(path, system, tmp_path / "cal.toml", min_size=0)
    assert not result.fit.efficiency_identifiable
    assert result.fit.efficiency == pytest.approx(H100_NETWORK_THRESHOLD, rel=1e-6)  # 50 % would predict too slow
    assert result.mean_abs_error < 1e-3 and "wrote 68.62 %" in result.fit.warnings[0]
    eff = read_toml(tmp_path / "cal.toml")["network"]["efficiency"]
    assert eff["value"] == "68.625 %" and "not identifiable" in eff["source"] and "50 %" in eff["note"]
    assert registry.check_file(tmp_path / "cal.toml").network.efficiency == pytest.approx(H100_NETWORK_THRESHOLD)


def test_fabric_efficiency_not_identifiable_under_in_switch_reduction_synthetic(tmp_path):
    """8 H100 on one node: the in-switch all-reduce (274.5 GB/s a GPU, i.e. a ring at 480 GB/s) beats the ring at
    any efficiency <= 100 % (450 GB/s), so the fabric's ring efficiency never enters the time."""
    path = _synthetic_run(tmp_path, "dgx-h100", 8, "fabric", 2e-6, 0.7)
    result = calibrate_nccl(path, "dgx-h100", tmp_path / "cal.toml", min_size=0)
    fit = result.fit
    assert fit.level == "fabric" and not fit.efficiency_identifiable
    assert fit.efficiency_range == pytest.approx((nccl.MIN_EFFICIENCY, 1.0))
    assert fit.efficiency == registry.load_system("dgx-h100").fabric.efficiency  # kept
    assert fit.latency_s == pytest.approx(2e-6, rel=0.02)
    assert "in-switch reduction" in fit.warnings[0]


# --- issue 6 "Done when": the AWS p5 (16 x H100) sweep -------------------------------------------------


@pytest.fixture(scope="module")
def p5_calibrated(tmp_path_factory):
    out = tmp_path_factory.mktemp("p5") / "p5-efa.toml"
    r = run("calibrate", "nccl", P5, "--system", "dgx-h100", "--out", out, "--min-size", "64MiB", "--format", "json")
    assert r.returncode == 0, r.stderr
    return out, json.loads(r.stdout)


def test_p5_calibrated_file_passes_hardware_check(p5_calibrated):
    out, report = p5_calibrated
    r = run("hardware", "check", out)
    assert r.returncode == 0 and r.stdout.startswith(f"ok {out}: system 'p5-efa'"), r.stderr
    data = read_toml(out)
    assert data["device"] == "h100-sxm5-80gb" and data["fabric"]["link"] == "nvlink4"  # bundled names kept
    assert data["network"]["link"] == "p5-efa-ib-ndr.toml" and P5.name in data["network"]["efficiency"]["source"]
    link = read_toml(out.parent / "p5-efa-ib-ndr.toml")
    assert link["bandwidth"] == read_toml(registry.bundled_names()["ib-ndr"][1])["bandwidth"]  # datasheet kept
    assert P5.name in link["latency"]["source"]
    assert report["level"] == "network" and report["n_gpus"] == 16 and report["n_nodes"] == 2
    assert report["written"] == [str(out), str(out.parent / "p5-efa-ib-ndr.toml")]


def test_p5_busbw_within_10_percent_from_64MB(p5_calibrated):
    """issue 6 Done when: the calibrated p5 file's predicted busbw is within 10 % of the measured for >= 64 MB."""
    out, report = p5_calibrated
    errors = busbw_errors(out, measured_rows("2x AWS p5.48xlarge"))
    assert len(errors) == 9
    assert max(abs(e) for e in errors.values()) <= DONE_WHEN_TOLERANCE, errors  # the 10 % (see the top)
    assert report["efficiency_identifiable"] is True and report["warnings"] == []
    # the report's points are the written file's predictions
    assert {p["size_bytes"]: p["error"] for p in report["points"] if p["size_bytes"] >= DONE_WHEN_MIN_SIZE} == (
        pytest.approx(errors, abs=2e-4))  # abs: the report uses the unrounded times, the test the printed busbw


def test_p5_ceiling_of_the_pipelined_model(p5_calibrated):
    """What bounds the predicted busbw of the p5 run, and that the measured one lies below it.

    At zero latency and 100 % network efficiency the pipelined two-level all-reduce of dgx-h100 (2 nodes x 8)
    runs at the slower level's rate: the network would move S / (8 x 50 GB/s), the node S / 274.5 GB/s (the
    in-switch all-reduce, 61 % of 18 x 25 GB/s, beats the ring's 1.75 S / (82.2 % x 450 GB/s)), so the
    ceiling is busbw 1.875 x 274.5 = 514.7 GB/s, above the measured 487.09 GB/s at 16 GiB. (The serial
    two-level ring this replaced topped out at 293.5 GB/s, which no calibration could reach.)
    """
    out, report = p5_calibrated
    size, measured = 16 * 2**30, 487.09e9  # 16 GiB out-of-place busbw of the p5 run
    hw = dataclasses.replace(_hw(registry.load_system("dgx-h100")), fabric_latency=0.0, network_latency=0.0,
                             network_efficiency=1.0)
    ceiling = size / data_parallel_allreduce_time(hw, size, 16) * 2 * 15 / 16
    assert ceiling == pytest.approx(1.875 * 18 * 25e9 * 0.61, rel=1e-12)
    assert measured < ceiling
    # ... and it rests on the in-switch reduction: with the ring alone, even at 100 % fabric efficiency the
    # ceiling 1.875 x 450 / 1.75 = 482.1 GB/s is below the measured 487.09 GB/s
    ring_only = dataclasses.replace(hw, fabric_reduction_efficiency=0.0, fabric_efficiency=1.0)
    ring_ceiling = size / data_parallel_allreduce_time(ring_only, size, 16) * 2 * 15 / 16
    assert ring_ceiling == pytest.approx(1.875 * 450e9 / 1.75, rel=1e-12) and ring_ceiling < measured
    # the calibrated file is network-bound (so its efficiency is identifiable): 8 x 50 GB/s x eta < 274.5 GB/s
    eta = report["fitted"]["efficiency"]
    assert 8 * 50e9 * eta < 18 * 25e9 * 0.61 and eta < H100_NETWORK_THRESHOLD
    calibrated = _hw(registry.check_file(out))
    assert size / data_parallel_allreduce_time(calibrated, size, 16) < 8 * 50e9 * eta


def test_p4de_busbw_within_10_percent_from_64MB(tmp_path):
    """The same criterion on a run the model can represent: 2 x 8 A100 (AWS p4de, EFA) against dgx-a100."""
    out = tmp_path / "p4de.toml"
    result = calibrate_nccl(P4DE, "dgx-a100", out, min_size=64 * MiB)
    assert result.fit.warnings == () and 0 < result.fit.efficiency < 1 and result.fit.efficiency_identifiable
    errors = busbw_errors(out, measured_rows("2x AWS p4de.24xlarge"))
    assert len(errors) == 6
    assert max(abs(e) for e in errors.values()) <= DONE_WHEN_TOLERANCE, errors
    # the report's points are the written file's predictions
    assert {p.size_bytes: p.error for p in result.points if p.size_bytes >= DONE_WHEN_MIN_SIZE} == pytest.approx(
        errors, abs=2e-4)  # abs: the report uses the unrounded times, the test the printed busbw


def test_efficiency_at_its_bound_is_a_warning(tmp_path):
    """A run faster than the system can be (the p4de run against pcie-8gpu, the wrong system on purpose)."""
    result = calibrate_nccl(P4DE, "pcie-8gpu", tmp_path / "x.toml")
    assert result.fit.efficiency == 1.0 and result.fit.efficiency_identifiable
    assert any("bound of 100 %" in w and "faster than this model can be" in w for w in result.fit.warnings)


def test_node_bound_run_on_real_data_is_flagged(tmp_path):
    """The p5 (H100) run against dgx-a100 (the wrong system on purpose): A100 nodes cannot feed the network
    as fast as the run did, the intra-node level sets the rate and the network efficiency is not identifiable."""
    result = calibrate_nccl(P5, "dgx-a100", tmp_path / "x.toml", min_size=64 * MiB)
    assert not result.fit.efficiency_identifiable and result.fit.efficiency == 0.96
    lo, hi = result.fit.efficiency_range
    assert lo == pytest.approx(12 * 25e9 * 0.773 / 1.75 / (8 * 25e9), rel=1e-6) and hi == 1.0
    assert any("not identifiable" in w for w in result.fit.warnings)


def test_written_system_differs_from_the_bundled_one_only_in_the_calibrated_values(tmp_path):
    out = tmp_path / "p4de.toml"
    result = calibrate_nccl(P4DE, "dgx-a100", out)
    bundled, written = registry.load_system("dgx-a100"), registry.check_file(out)
    net = bundled.network
    expect = dataclasses.replace(
        bundled, name="p4de", description=written.description,
        network=dataclasses.replace(net, efficiency=written.network.efficiency, link=dataclasses.replace(
            net.link, name="p4de-ib-hdr", description=written.network.link.description,
            latency=written.network.link.latency)))
    assert written == expect
    assert written.network.efficiency == pytest.approx(result.fit.efficiency, rel=1e-3)
    assert written.network.link.latency == pytest.approx(result.fit.latency_s, rel=1e-3)


def test_toml_writer_round_trips_every_bundled_spec():
    for name, (_, path) in registry.bundled_names().items():
        data = read_toml(path)
        assert tomllib.loads(dump_toml(data)) == data, name


# --- GEMM -------------------------------------------------------------------------------------------


def test_gemm_calibration_of_the_h100_sweep(tmp_path):
    out = tmp_path / "h100-measured.toml"
    result = calibrate_gemm(GEMM, "h100-sxm5-80gb", out)
    device = registry.check_file(out)
    with open(GEMM, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(result.points) == len(rows) == 96
    for dtype in ("bf16", "fp16", "tf32", "fp32"):
        want = [r for r in rows if r["dtype"] == dtype]
        assert [(p.m, p.n, p.k) for p in device.gemm[dtype]] == [(int(r["m"]), int(r["n"]), int(r["k"])) for r in want]
        assert [p.flops_per_s for p in device.gemm[dtype]] == pytest.approx(
            [float(r["tflops_median"]) * 1e12 for r in want], rel=1e-12)
    assert device.attention == registry.load_device("h100-sxm5-80gb").attention  # kept
    # the curve passes through every point whose FLOPs no other shape of its dtype shares and
    # that no smaller GEMM out-lasts (the curve's time never falls with FLOPs); it is slower
    # than a point a smaller GEMM out-lasts
    # (points at the sweep's timing floor are left out of the curve: gemm_curve)
    used = [p for p in result.points if p.in_curve]
    assert 0 < len(used) < len(result.points)
    for p in used:
        flops = p.m * p.n * p.k
        same = [q for q in used if q.dtype == p.dtype and q.m * q.n * q.k == flops]
        smaller_slower = any(q.dtype == p.dtype and q.m * q.n * q.k < flops
                             and q.m * q.n * q.k / q.measured > flops / p.measured for q in used)
        if len(same) == 1 and not smaller_slower:
            assert p.error_after == pytest.approx(0.0, abs=1e-12)
        elif len(same) == 1:
            assert p.error_after < 0  # predicted slower than measured: the envelope
    summary = {row["dtype"]: row for row in result.summary()}
    for dtype in ("bf16", "fp16", "tf32", "fp32"):
        assert summary[dtype]["mean_abs_error_after"] <= summary[dtype]["mean_abs_error_before"] + 1e-12
    assert summary["all"]["mean_abs_error_after"] < 0.03  # equal-FLOPs shapes differ (e.g. tf32 296 vs 359)


def test_gemm_fit_error_of_a_datasheet_only_device(tmp_path):
    """h100 sweep against a100-sxm4-80gb's bf16 curve: a real before/after contrast (wrong device on purpose)."""
    bf16 = tmp_path / "bf16.csv"
    with open(GEMM, newline="") as f:
        lines = [ln for ln in f.read().splitlines() if ln.startswith(("dtype", "bf16"))]
    # A100 dense bf16 peak is 312 TFLOP/s: keep the rows an A100 could have run
    keep = [lines[0]] + [ln for ln in lines[1:] if float(ln.split(",")[6]) < 300]
    bf16.write_text("\n".join(keep) + "\n")
    result = calibrate_gemm(bf16, "a100-sxm4-80gb", tmp_path / "a100-x.toml")
    s = {row["dtype"]: row for row in result.summary()}["bf16"]
    assert s["mean_abs_error_after"] < 0.05 and s["mean_abs_error_before"] > 0.5


# --- CLI --------------------------------------------------------------------------------------------


def test_cli_nccl_table_and_csv(tmp_path):
    r = run("calibrate", "nccl", P4DE, "--system", "dgx-a100", "--out", tmp_path / "a.toml")
    assert r.returncode == 0, r.stderr
    assert "fitted efficiency" in r.stdout and "fitted latency" in r.stdout and "16 GiB" not in r.stdout
    r = run("calibrate", "nccl", P4DE, "--system", "dgx-a100", "--out", tmp_path / "b.toml", "--format", "csv")
    lines = r.stdout.splitlines()
    assert r.returncode == 0 and lines[0] == ("size_bytes,measured_time_s,predicted_time_s,measured_busbw_Bps,"
                                              "predicted_busbw_Bps,error,in_fit")
    assert len(lines) == 1 + 29


def test_cli_nccl_json(tmp_path):
    r = run("calibrate", "nccl", GCP, "--system", "dgx-h100", "--out", tmp_path / "g.toml", "--format", "json",
            "--min-size", "1MiB", "--max-size", "4GiB")
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    assert {"fitted", "kept", "points", "warnings", "mean_abs_error", "level", "written"} <= set(obj)
    assert obj["fit_min_size_bytes"] == MiB and obj["fit_max_size_bytes"] == 4 * 2**30
    assert obj["n_fit_points"] == sum(MiB <= p["size_bytes"] <= 4 * 2**30 for p in obj["points"]) == 13


def test_cli_gemm_json_and_table(tmp_path):
    r = run("calibrate", "gemm", GEMM, "--device", "h100-sxm5-80gb", "--out", tmp_path / "h.toml", "--format", "json")
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    assert len(obj["points"]) == 96 and obj["summary"][-1]["dtype"] == "all"
    r = run("calibrate", "gemm", GEMM, "--device", "h100-sxm5-80gb", "--out", tmp_path / "i.toml")
    assert r.returncode == 0 and "mean |error|" in r.stdout


# --- malformed inputs: one line on stderr, exit 2, nothing written -------------------------------------

P5_LINES = P5.read_text().splitlines()
ROW_64MIB = next(i for i, ln in enumerate(P5_LINES) if ln.split()[:1] == ["67108864"])


def _p5_with(row: str | None = None, drop_rows: bool = False) -> str:
    lines = list(P5_LINES)
    if drop_rows:
        lines = [ln for ln in lines if ln.startswith("#")]
    if row is not None:
        lines[ROW_64MIB] = row
    return "\n".join(lines) + "\n"


GOOD_64 = P5_LINES[ROW_64MIB]
BAD_NCCL = {
    "truncated row": (_p5_with(GOOD_64[:60]), ["nccl.txt:", "expected 13 fields", "got 6"]),
    "non-numeric field": (_p5_with(GOOD_64.replace("601.5", "6o1.5")), ["column 'out-of-place time' is not a number"]),
    "too many fields": (_p5_with(GOOD_64 + "      0"), ["expected 13 fields", "got 14"]),
    "negative time": (_p5_with(GOOD_64.replace("  601.5", " -601.5")), ["time must be positive", "-601.5"]),
    "size not count x 4 B": (_p5_with(GOOD_64.replace("16777216", "16777217", 1)), ["is not count"]),
    "not an all-reduce": (_p5_with(GOOD_64.replace("   sum", "  none")), ["redop 'none' is not an all-reduce"]),
    "empty file": ("", ["is empty"]),
    "only comments": (_p5_with(drop_rows=True), ["no data rows, only comments"]),
    "blank lines only": ("\n\n  \n", ["is empty"]),
}


def _assert_clean_failure(r, tmp_path, needles, inputs=()):
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ") and r.stdout == "", r.stderr
    for needle in needles:
        assert needle in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(inputs)  # nothing written


@pytest.mark.parametrize("case", list(BAD_NCCL))
def test_malformed_nccl_output(tmp_path, case):
    text, needles = BAD_NCCL[case]
    (tmp_path / "nccl.txt").write_text(text)
    r = run("calibrate", "nccl", tmp_path / "nccl.txt", "--system", "dgx-h100", "--out", tmp_path / "x.toml")
    _assert_clean_failure(r, tmp_path, needles, ["nccl.txt"])
    if case in ("truncated row", "non-numeric field", "negative time"):
        assert f"nccl.txt:{ROW_64MIB + 1}:" in r.stderr and "67108864" in r.stderr  # line number and content


BAD_ARGS = {
    "missing file": (["calibrate", "nccl", "{tmp}/nope.txt", "--system", "dgx-h100", "--out", "{tmp}/x.toml"],
                     ["nope.txt: no such file"]),
    "unknown system": (["calibrate", "nccl", P5, "--system", "dgx-h10", "--out", "{tmp}/x.toml"],
                       ["unknown system 'dgx-h10'", "did you mean"]),
    "a device is not a system": (["calibrate", "nccl", P5, "--system", "h100-sxm5-80gb", "--out", "{tmp}/x.toml"],
                                 ["is a gpu spec, expected a system"]),
    "--gpus contradicts busbw": (["calibrate", "nccl", P5, "--system", "dgx-h100", "--out", "{tmp}/x.toml",
                                  "--gpus", "8"], ["imply 16"]),
    "--gpus contradicts rank lines": (["calibrate", "nccl", GCP, "--system", "dgx-h100", "--out", "{tmp}/x.toml",
                                       "--gpus", "32"], ["lists 16 ranks"]),
    "more GPUs than a one-node system": (["calibrate", "nccl", P5, "--system", "{tmp}/one-node.toml", "--out",
                                          "{tmp}/x.toml"], ["no [network]"]),
    "out is not toml": (["calibrate", "nccl", P5, "--system", "dgx-h100", "--out", "{tmp}/x.json"],
                        ["expected a path ending in .toml"]),
    "out folder missing": (["calibrate", "nccl", P5, "--system", "dgx-h100", "--out", "{tmp}/no/x.toml"],
                           ["does not exist"]),
    "bad --min-size": (["calibrate", "nccl", P5, "--system", "dgx-h100", "--out", "{tmp}/x.toml", "--min-size",
                        "64 MiB/s"], ["--min-size", "a size"]),
    "no sizes in range": (["calibrate", "nccl", P5, "--system", "dgx-h100", "--out", "{tmp}/x.toml", "--min-size",
                           "32GiB"], ["at least 2 different sizes"]),
    "unknown device": (["calibrate", "gemm", GEMM, "--device", "h100-sxm5-80g", "--out", "{tmp}/x.toml"],
                       ["unknown device 'h100-sxm5-80g'", "did you mean 'h100-sxm5-80gb'"]),
    "gemm missing file": (["calibrate", "gemm", "{tmp}/gemm.csv", "--device", "h100-sxm5-80gb", "--out",
                           "{tmp}/x.toml"], ["gemm.csv: no such file"]),
}


@pytest.mark.parametrize("case", list(BAD_ARGS))
def test_bad_arguments(tmp_path, case):
    args, needles = BAD_ARGS[case]
    inputs = []
    if case == "more GPUs than a one-node system":
        data = read_toml(registry.bundled_names()["dgx-h100"][1])
        del data["network"]
        data["name"] = "one-node"
        (tmp_path / "one-node.toml").write_text(dump_toml(data))
        inputs = ["one-node.toml"]
    r = run(*(str(a).replace("{tmp}", str(tmp_path)) for a in args))
    _assert_clean_failure(r, tmp_path, needles, inputs)


GEMM_HEADER = "dtype,m,n,k,ms_median,ms_min,tflops_median"
BAD_GEMM = {
    "missing columns": ("dtype,m,n,ms_median\nbf16,8192,8192,1.449\n", ["gemm.csv:1:", "missing column(s) k, tflops_median"]),
    "non-numeric rate": (f"{GEMM_HEADER}\nbf16,8192,8192,8192,1.44902,1.44554,fast\n",
                         ["gemm.csv:2:", "'tflops_median' is not a number"]),
    "wrong field count": (f"{GEMM_HEADER}\nbf16,8192,8192,8192,1.44902,758.79\n", ["gemm.csv:2:", "expected 7 fields"]),
    "non-integer m": (f"{GEMM_HEADER}\nbf16,8192.5,8192,8192,1.44902,1.44554,758.79\n", ["'m' must be a positive integer"]),
    "unknown dtype": (f"{GEMM_HEADER}\nbf17,8192,8192,8192,1.44902,1.44554,758.79\n", ["dtype 'bf17'"]),
    "negative rate": (f"{GEMM_HEADER}\nbf16,8192,8192,8192,1.44902,1.44554,-758.79\n", ["must be a positive number"]),
    "time disagrees with rate": (f"{GEMM_HEADER}\nbf16,8192,8192,8192,1449.02,1445.54,758.79\n",
                                 ["disagrees with 2 m n k / ms_median"]),
    "above the dense peak": (f"{GEMM_HEADER}\nbf16,8192,8192,8192,0.5,0.5,2199.0\n", ["above the dense peak 989"]),
    "empty": ("", ["gemm.csv: is empty"]),
    "header only": (f"{GEMM_HEADER}\n", ["no data rows"]),
}


@pytest.mark.parametrize("case", list(BAD_GEMM))
def test_malformed_gemm_csv(tmp_path, case):
    text, needles = BAD_GEMM[case]
    (tmp_path / "gemm.csv").write_text(text)
    r = run("calibrate", "gemm", tmp_path / "gemm.csv", "--device", "h100-sxm5-80gb", "--out", tmp_path / "x.toml")
    _assert_clean_failure(r, tmp_path, needles, ["gemm.csv"])


def test_library_errors_are_perfmodel_errors(tmp_path):
    from perfmodel.calibrate import MeasurementError
    from perfmodel.errors import PerfModelError

    assert issubclass(MeasurementError, PerfModelError) and issubclass(MeasurementError, ValueError)
    with pytest.raises(MeasurementError, match=r"<nccl-tests output>:2: .*got 3"):
        parse_nccl("# header\n1 2 3\n")
    assert math.isfinite(read_nccl(P5).rows[-1].time_s)


# --- contradictory rows are refused (time vs algbw, busbw vs algbw) ------------------------------------

@pytest.mark.parametrize("old, new, fragment", [
    ("   601.5  111.57", "   1e308  111.57", "out-of-place time 1e308 us and algbw 111.57 GB/s contradict"),
    ("   601.5  111.57", "   601.7  111.57", "out-of-place time 601.7 us and algbw 111.57 GB/s contradict"),
    ("   604.2  111.07", "   604.2  112.07", "in-place time 604.2 us and algbw 112.07 GB/s contradict"),
])
def test_a_time_that_contradicts_its_algbw_is_refused(old, new, fragment):
    text = P5.read_text()
    assert old in text
    with pytest.raises(nccl.MeasurementError) as exc:
        parse_nccl(text.replace(old, new, 1), "n.txt")
    message = str(exc.value)
    assert message.startswith("n.txt:38: ") and fragment in message and "67108864" in message


def test_the_printed_rounding_is_tolerated():
    """Every real file parses; a time at the edge of its printed rounding (601.5 -> 601.55 us) still agrees."""
    for path in (P5, P4DE, GCP):
        assert read_nccl(path).rows
    # 67108864 B / 601.55 us = 111.5599 GB/s, printed 111.56: one unit of the time's last digit away still fits
    text = P5.read_text().replace("   601.5  111.57", "   601.5  111.56", 1)
    assert parse_nccl(text).rows[23].algbw == 111.56e9


def test_a_busbw_that_contradicts_algbw_is_refused(tmp_path):
    text = P5.read_text().replace("  111.57  209.19", "  111.57  219.19", 1)
    path = tmp_path / "n.txt"
    path.write_text(text)
    with pytest.raises(nccl.MeasurementError) as exc:
        calibrate_nccl(path, "dgx-h100", tmp_path / "cal.toml", n_gpus=16)
    assert "n.txt:38: out-of-place busbw 219.19 GB/s contradicts algbw 111.57 GB/s" in str(exc.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["n.txt"]


def test_a_gemm_csv_line_the_csv_reader_refuses_is_named(tmp_path):
    from perfmodel.calibrate.gemm import read_gemm_sweep

    path = tmp_path / "g.csv"
    path.write_text("dtype,m,n,k,tflops_median\nbf16,8192,8192,8192,758.79\n" + "x" * 200_000 + ",1,1,1,1\n")
    with pytest.raises(nccl.MeasurementError, match=r"g.csv:3: not a readable CSV line \(field larger"):
        read_gemm_sweep(path)
