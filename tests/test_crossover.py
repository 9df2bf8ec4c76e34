"""The communication-bound crossover: numeric root and sympy closed form from the same formulas,
their agreement, the link to the full prediction, the CLI contract and the plot.

Issue 4 "Done when": `perfmodel crossover --model gpt2-1.5b --system dgx-h100 --scheme dp
--solve-for devices --symbolic --format json` returns the value with t_compute_s equal to t_comm_s
(relative 1e-3) and a LaTeX closed form; numeric and symbolic agree to 1e-6 relative.
"""

import json
import math
import os
import subprocess
import sys

import pytest

import perfmodel as pm
from perfmodel.crossover.find import (
    NoCrossoverError,
    find_crossover,
    scaled_system,
    sensitivity,
)
from perfmodel.plan import Plan
from perfmodel.prediction import predict

DONE_WHEN = ["crossover", "--model", "gpt2-1.5b", "--system", "dgx-h100", "--scheme", "dp", "--solve-for",
             "devices", "--symbolic", "--format", "json"]
EQUAL = 1e-3  # t_comm vs t_compute at the crossover (issue 4)
AGREE = 1e-6  # numeric vs symbolic root (issue 4)


def run(*args):
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "perfmodel", *args], capture_output=True, text=True, env=env)


def cli(capsys, monkeypatch, *args):
    """The CLI in this process (faster than a subprocess): (exit code, stdout, stderr)."""
    from perfmodel.cli import main

    monkeypatch.setenv("COLUMNS", "200")
    try:
        code = main(list(args))
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def dp_h100():
    return find_crossover("gpt2-1.5b", "dgx-h100", "dp", "devices")


def test_done_when_command():
    r = run(*DONE_WHEN)
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    for key in ("solve_for", "value", "t_compute_s", "t_comm_s", "closed_form_latex"):
        assert key in obj
    assert obj["solve_for"] == "devices"
    assert math.isclose(obj["t_compute_s"], obj["t_comm_s"], rel_tol=EQUAL)
    assert obj["closed_form_latex"].startswith("N^{*} = ")
    assert math.isclose(obj["numeric_value"], obj["symbolic_value"], rel_tol=AGREE)
    assert math.isclose(obj["value"], obj["numeric_value"], rel_tol=0)


def test_python_api_is_public(dp_h100):
    assert "find_crossover" in pm.__all__ and pm.find_crossover is find_crossover
    c = pm.find_crossover(pm.load_model("gpt2-1.5b"), pm.load_system("dgx-h100"), "dp", "devices", Plan())
    assert c == dp_h100  # names or loaded objects, the same result


def test_dp_closed_form_solves_the_hand_typed_equation(dp_h100):
    """W / N = the two-level all-reduce (Jia et al. 2018) with its levels pipelined chunk by chunk
    as NCCL runs it (Jeaugey 2019; ring costs of Patarasuk & Yuan 2009): the latencies add, the
    slower level's bandwidth term sets the rate. Typed here with the parameters it reports."""
    p = {k: v["value"] for k, v in dp_h100.parameters.items()}
    n, d, k = dp_h100.value, p["d"], p["n_b"]
    s = p["S"] / k  # one bucket: Megatron-Core's max(40M, 1M x dp) parameters of fp32 gradients
    assert k == math.ceil(p["S"] / (max(40e6, 1e6 * n) * 4))
    nodes = n / d
    comm = k * (2 * (d - 1) * p["alpha_i"] + 2 * (nodes - 1) * p["alpha_e"]
                + max(2 * (d - 1) / d * s / p["beta_i"], 2 * (nodes - 1) / nodes * (s / d) / p["beta_e"]))
    assert math.isclose(comm, p["W"] / n, rel_tol=1e-9)
    assert math.isclose(comm, dp_h100.t_comm_s, rel_tol=1e-9)
    assert dp_h100.closed_form is not None and not dp_h100.at_discontinuity


def test_dense_dp_equation_is_the_predictors_gradient_sync():
    c = find_crossover("resnet50", "cpu-cluster", "dp", "devices")
    for n in (2, 16, 64):
        r = predict("resnet50", "cpu-cluster", devices=n, dp=n, global_batch=256, micro_batch=1)
        assert math.isclose(c.curve([n])[0][0], r.details["dp_sync_s"], rel_tol=1e-9)


def test_tp_bandwidth_closed_form_equals_the_rearranged_equation():
    """k b / t = n_ar (2 (t-1) alpha + 2 (t-1)/t b u / (eta B))  =>
    B* = 2 n_ar (t-1) b u / (eta (k b - 2 n_ar t (t-1) alpha))."""
    c = find_crossover("megatron-1.7b", "dgx-a100", "tp", "bandwidth", tp=8)
    p = {k: v["value"] for k, v in c.parameters.items()}
    t, b, u, k, n_ar, alpha, eta = (p[x] for x in ("t", "b", "u", "k", "n_ar", "alpha", "eta"))
    typed = 2 * n_ar * (t - 1) * b * u / (eta * (k * b - 2 * n_ar * t * (t - 1) * alpha))
    assert math.isclose(c.value, typed, rel_tol=1e-9)
    assert math.isclose(c.symbolic_value, typed, rel_tol=AGREE)
    assert c.direction == "communication-bound below"


@pytest.mark.parametrize("model, system, scheme, solve_for, fields", [
    # the megatron stack pinned (the H100's default, megatron-core, computes fast enough that at 512
    # devices the all-reduce's latency alone exceeds the backward: no bandwidth crossover exists);
    # for the bandwidth solve also local DDP (one call): with torch DDP's 25 MiB buckets the 238
    # ring latencies over 64 nodes alone (0.15 s) exceed the backward at 512 devices
    ("gpt2-1.5b", "dgx-h100", "dp", "devices", {"stack": "megatron"}),
    ("gpt2-1.5b", "dgx-h100", "dp", "bandwidth", {"devices": 512, "stack": "megatron", "overlap": False}),
    ("gpt2-1.5b", "dgx-h100", "dp", "devices", {"grad_sync": "parameter-server", "devices": 16, "stack": "megatron"}),
    ("resnet50", "cpu-cluster", "dp", "devices", {}),
    ("megatron-1.7b", "dgx-a100", "tp", "bandwidth", {"tp": 8}),
    # 8 micro-batches: with 16 the bubble (the LM head's stage filling once, not p - 1 times) stays
    # below the compute up to one layer a stage (p = 24)
    ("megatron-1.7b", "dgx-a100", "pp", "devices", {"global_batch": 8}),
    ("megatron-1.7b", "dgx-a100", "pp", "micro-batch", {"pp": 4, "global_batch": 64}),
    ("megatron-1.7b", "dgx-a100", "pp", "bandwidth", {"pp": 8, "dp": 8, "devices": 64, "global_batch": 64}),
])
def test_numeric_and_symbolic_agree_and_terms_are_equal(model, system, scheme, solve_for, fields):
    c = find_crossover(model, system, scheme, solve_for, **fields)
    assert c.closed_form_latex is not None and c.closed_form is not None, c.notes
    assert math.isclose(c.numeric_value, c.symbolic_value, rel_tol=AGREE)
    assert math.isclose(c.t_comm_s, c.t_compute_s, rel_tol=EQUAL)
    # either side of the root the bound flips the way `direction` says
    comm, comp = c.curve([c.value * 1.05, c.value / 1.05])
    above, below = comm[0] > comp[0], comm[1] > comp[1]
    assert (above, below) == ((True, False) if c.direction.endswith("above") else (False, True))


def test_dp_equation_is_the_predictors_gradient_sync(dp_h100):
    """The crossover's t_comm is the predictor's whole gradient all-reduce, and its t_compute the
    predictor's backward per device, at valid device counts (the same formulas, the same levels)."""
    for n in (8, 64, 256):
        r = predict("gpt2-1.5b", "dgx-h100", devices=n, global_batch=512, micro_batch=1)
        comm, comp = dp_h100.curve([n])
        assert math.isclose(comm[0], r.details["dp_sync_s"], rel_tol=1e-9)
    w = dp_h100.parameters["W"]["value"]  # backward device-seconds of a step, from the predictor
    r1 = predict("gpt2-1.5b", "dgx-h100", devices=1, global_batch=512, micro_batch=1)
    assert 0.5 < w / r1.breakdown_s["compute"] < 0.75  # backward is about 2/3 of forward + backward


def test_tp_equation_is_the_predictors_tp_communication():
    c = find_crossover("megatron-1.7b", "dgx-a100", "tp", "bandwidth", tp=4, global_batch=8)
    r = predict("megatron-1.7b", "dgx-a100", tp=4, global_batch=8, micro_batch=1)
    per_layer_microbatch = r.breakdown_s["tp_comm"] / (8 * 24)  # 8 micro-batches, 24 layers
    comm, _ = c.curve([c.operating_point["x"]])
    assert math.isclose(comm[0], per_layer_microbatch, rel_tol=1e-9)


def test_leaving_the_nvswitch_node_is_a_jump():
    c = find_crossover("megatron-1.7b", "dgx-a100", "tp", "devices")
    assert c.at_discontinuity and c.value == 8 and c.closed_form_latex is None
    assert c.t_comm_s > c.t_compute_s
    assert any("jumps" in n for n in c.notes)
    assert c.to_dict()["closed_form_latex"] is None


def test_pcie_sharing_leaves_a_numeric_root_only():
    c = find_crossover("megatron-1.7b", "pcie-8gpu", "tp", "devices")
    assert 2 < c.value < 4 and c.closed_form is None
    # the layer's compute at a fractional t comes from the GEMM shape model, whose tile and split-K
    # quantization make it a step function of t: the root may sit on a step (then communication is
    # at least compute there), else t_comm = t_compute
    if c.at_discontinuity:
        assert c.t_comm_s >= c.t_compute_s * (1 - 1e-9)
    else:
        assert math.isclose(c.t_comm_s, c.t_compute_s, rel_tol=EQUAL)
    # the integer answer is the smallest valid degree above the root at which the whole step
    # (LM head included) is communication-bound; the valid degree below it is not
    n = c.integer_value
    assert n > c.value
    assert predict("megatron-1.7b", "pcie-8gpu", tp=n, devices=n, global_batch=8, micro_batch=1).bound == "communication"
    below = max(t for t in (1, 2, 3, 4, 6, 8) if t < n)
    assert predict("megatron-1.7b", "pcie-8gpu", tp=below, devices=below, global_batch=8, micro_batch=1).bound != "communication"


def test_integer_value_is_where_the_full_prediction_turns_communication_bound():
    c = find_crossover("resnet50", "cpu-cluster", "dp", "devices")
    n = c.integer_value
    assert n is not None and n > c.value
    assert predict("resnet50", "cpu-cluster", devices=n, dp=n, global_batch=256, micro_batch=1).bound == "communication"
    assert predict("resnet50", "cpu-cluster", devices=n // 2, dp=n // 2, global_batch=256, micro_batch=1).bound != "communication"


def test_sensitivity_signs_and_finite_difference():
    system = pm.load_system("dgx-a100")
    model = pm.load_model("megatron-1.7b")
    plan = Plan(tp=8, global_batch=8)
    s = sensitivity(model, system, plan, "fabric")
    assert s["bandwidth"] < 0 < s["latency"]
    base = predict(model, system, plan).step_time_s
    faster = predict(model, scaled_system(system, "fabric", bandwidth=1.01), plan).step_time_s
    assert math.isclose((faster - base) / base / 0.01, s["bandwidth"], rel_tol=2e-2)


def test_no_root_is_a_one_line_error(capsys, monkeypatch):
    with pytest.raises(NoCrossoverError, match="compute-bound throughout"):
        find_crossover("gpt2-1.5b", "dgx-h100", "dp", "micro-batch", devices=64)
    code, out, err = cli(capsys, monkeypatch, "crossover", "--model", "gpt2-1.5b", "--system", "dgx-h100",
                         "--scheme", "dp", "--solve-for", "micro-batch", "--devices", "64")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "no crossover" in err


@pytest.mark.parametrize("args", [["--scheme", "xp"], ["--scheme", "tp", "--model", "resnet50"],
                                  ["--plot", "out.pdf"], ["--solve-for", "batch"]])
def test_bad_inputs_exit_2(capsys, monkeypatch, args):
    base = {"--model": "gpt2-1.5b", "--system": "dgx-h100", "--scheme": "dp", "--solve-for": "devices"}
    base.update(zip(args[::2], args[1::2]))
    code, out, err = cli(capsys, monkeypatch, "crossover", *[x for kv in base.items() for x in kv])
    assert code == 2, out
    assert err.startswith("error:") and err.count("\n") == 1


def test_table_and_csv(capsys, monkeypatch):
    code, out, _ = cli(capsys, monkeypatch, "crossover", "--model", "gpt2-1.5b", "--system", "dgx-h100",
                       "--scheme", "dp", "--solve-for", "devices", "--symbolic")
    assert code == 0
    assert "closed form (LaTeX)" in out and "N^{*}" in out and "parameters" in out
    code, out, _ = cli(capsys, monkeypatch, "crossover", "--model", "gpt2-1.5b", "--system", "dgx-h100",
                       "--scheme", "dp", "--solve-for", "devices", "--format", "csv")
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) == 2 and lines[0].startswith("model,system,scheme,solve_for,value")


def test_plot(tmp_path, capsys, monkeypatch):
    png = tmp_path / "crossover.png"
    code, out, err = cli(capsys, monkeypatch, "crossover", "--model", "megatron-1.7b", "--system", "dgx-a100",
                         "--scheme", "tp", "--solve-for", "devices", "--plot", str(png), "--format", "json")
    assert code == 0, err
    assert json.loads(out)["value"] == 8
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_the_operating_point_says_whether_it_fits():
    # the crossover is an equation of times; the operating point is a prediction, and a plan that does
    # not fit in memory is reported as such rather than as a plain step time
    c = pm.find_crossover("megatron-1t", "dgx-a100", scheme="dp", solve_for="devices")
    op = c.operating_point
    assert op["fits_in_memory"] is False and op["memory_bytes_per_device"] > 80e9
    assert c.to_dict()["operating_point"]["fits_in_memory"] is False
    assert pm.find_crossover("gpt2-1.5b", "dgx-a100", scheme="dp", solve_for="devices").operating_point["fits_in_memory"]
