"""`pm.sweep` / `perfmodel sweep` (issue 5): the vectorised path is the scalar model on arrays.

The truth here is `perfmodel.prediction` (and `plan.resolve` for invalid plans): the sweep must give
the same numbers to 1e-9 relative and the same refusal messages, on any configuration.
"""

import dataclasses
import math
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import perfmodel as pm
from perfmodel.cli import main
from perfmodel.errors import PlanError, UnitError, UnknownNameError
from perfmodel.prediction.result import BREAKDOWN_KEYS, MEMORY_KEYS
from perfmodel.sweeps import (
    PLAN_KEYS,
    SweepError,
    evaluate,
    parse_grid,
    result_columns,
    sweep,
)

REL = 1e-9  # issue 5: vectorised and scalar predictions agree to 1e-9 relative

# (model, system, grid, fixed, how many valid rows to compare): every categorical choice appears
CASES = [
    ("gpt3-175b", "dgx-a100",
     {"devices": [512, 1024], "tp": [2, 4, 8, 16], "pp": [1, 4, 8, 12], "micro_batch": [1, 2],
      "virtual_stages": [1, 2, 4], "recompute": ["none", "selective", "full"], "sequence_parallel": [False, True],
      "schedule": ["gpipe", "1f1b", "interleaved"], "zero": [0, 1, 2, 3],
      "grad_sync": ["allreduce", "parameter-server", "broadcast"], "overlap": [True, False],
      # ZeRO-2/3 only where a stack runs them (PyTorch FSDP, without a pipeline)
      "stack": ["megatron", "pytorch-eager"]},
     {"global_batch": 1536}, 110),
    ("llama2-70b", "pcie-8gpu",
     {"tp": [1, 2, 4, 8], "pp": [1, 2, 4], "dp": [1, 2, 4], "micro_batch": [1, 2], "dtype": ["bf16", "fp16", "fp32"],
      "stack": ["megatron", "pytorch-eager"], "optimizer": ["adamw", "sgd"]},
     {"global_batch": 32}, 50),
    ("llama3-8b", "gaudi2-hls",
     {"tp": [1, 2, 4, 8], "pp": [1, 2, 4], "devices": [8, 16, 64], "recompute": ["none", "full"],
      "schedule": ["1f1b", "interleaved"], "virtual_stages": [1, 2], "zero": [0, 3]},
     {"global_batch": 256}, 30),
    ("gpt2-124m", "h100-sxm5-80gb",
     {"micro_batch": [1, 4, 16], "seq": [128, 512, 1024], "dtype": ["bf16", "tf32", "fp32", "fp8"],
      "stack": ["megatron", "pytorch-eager"], "recompute": ["none", "selective"]},
     {}, 30),
]


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v


def _plan(row, grid, fixed):
    fields = {"micro_batch": 1}  # a sweep's micro-batch when the grid has none (predict would choose one)
    fields.update({k: _plain(row[k]) for k in grid if k in PLAN_KEYS})
    fields.update(fixed)
    return pm.Plan(**fields)


def _close(a, b, scale):
    return abs(a - b) <= REL * max(abs(b), abs(scale))


@pytest.fixture(scope="module")
def frames():
    return {case[0]: sweep(case[0], case[1], case[2], **case[3]) for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_vectorised_equals_scalar_predict_on_a_random_sample(frames, case):
    name, system, grid, fixed, n = case
    df = frames[name]
    assert len(df) == math.prod(len(v) for v in grid.values())
    valid = np.flatnonzero(df["reason"].isna().to_numpy())
    assert len(valid) >= n, len(valid)
    rng = np.random.default_rng(5)
    model, sys_ = pm.load_model(name), pm.load_system(system)
    for i in rng.choice(valid, size=n, replace=False):
        row = df.iloc[i]
        r = pm.predict(model, sys_, _plan(row, grid, fixed))
        step = r.step_time_s
        assert _close(row["step_time_s"], step, step), (dict(row), step)
        for k in BREAKDOWN_KEYS:
            assert _close(row[f"breakdown_{k}_s"], r.breakdown_s[k], step), k
        for k in MEMORY_KEYS:
            assert _close(row[f"memory_{k}_bytes"], r.memory_bytes_per_device[k], 0), k
        assert _close(row["comm_total_s"], r.comm_total_s, 0)
        assert _close(row["mfu"], r.mfu, 0) and _close(row["tokens_per_s"], r.throughput, 0)
        assert bool(row["fits_in_memory"]) == r.fits_in_memory and row["bound"] == r.bound
        assert (row.get("dp", r.plan.dp), row["n_microbatches"]) == (r.plan.dp, r.plan.n_microbatches)


def test_the_sample_spans_every_categorical_choice(frames):
    df = frames["gpt3-175b"]
    ok = df[df["reason"].isna()]
    for key, values in CASES[0][2].items():
        if key in ("recompute", "sequence_parallel", "schedule", "zero", "grad_sync", "overlap"):
            assert set(ok[key].unique()) == set(values), key


# --- invalid configurations: the message plan.resolve gives ---------------------------------------

RULES = {  # a fragment of each plan.resolve message -> a grid on which it occurs
    "is not divisible by tp x pp": ("gpt3-175b", "dgx-a100", {"tp": [8], "pp": [3, 8]}, {"devices": 64}),
    "but devices is": ("gpt3-175b", "dgx-a100", {"tp": [8], "dp": [2, 4]}, {"devices": 32}),
    "and no network": ("gpt2-124m", "h100-sxm5-80gb", {"devices": [1, 2]}, {}),
    "is not a whole number of": ("gpt3-175b", "dgx-a100", {"devices": [12, 16], "tp": [2]}, {}),
    "global batch": ("gpt3-175b", "dgx-a100", {"micro_batch": [1, 5]}, {"devices": 64, "tp": 8, "global_batch": 64}),
    "need --schedule interleaved": ("gpt3-175b", "dgx-a100", {"virtual_stages": [1, 2]}, {"pp": 8, "devices": 8}),
    "needs pp >= 2": ("gpt3-175b", "dgx-a100", {"pp": [1, 2]}, {"schedule": "interleaved", "global_batch": 8}),
    "to be a multiple of pp": ("gpt3-175b", "dgx-a100", {"pp": [4, 8]}, {"schedule": "interleaved",
                                                                         "global_batch": 12}),
    "sequence parallelism needs tp > 1": ("gpt3-175b", "dgx-a100", {"tp": [1, 2]}, {"sequence_parallel": True}),
    "attention heads": ("gpt2-124m", "dgx-a100", {"tp": [5, 4]}, {}),
    # tp a divisor or a multiple of the key/value heads (Megatron-Core): 12 heads, 3 kv heads, tp 4 refused
    "key/value heads": (pm.load_model("gpt2-124m", kv_heads=3), "dgx-a100", {"tp": [4, 3]}, {}),
    "exceeds the 96 layers": ("gpt3-175b", "dgx-a100", {"pp": [128, 8]}, {}),
    "layers, not divisible by pp x virtual stages": ("gpt2-124m", "dgx-a100", {"virtual_stages": [5, 2]},
                                                     {"pp": 2, "schedule": "interleaved", "global_batch": 2}),
    "learned positions": ("gpt2-124m", "dgx-a100", {"seq": [1024, 2048]}, {}),
    "shards over data-parallel ranks": ("gpt2-124m", "dgx-a100", {"zero": [0, 1], "grad_sync": ["allreduce",
                                                                                                  "broadcast"]}, {}),
}


@pytest.mark.parametrize("fragment", list(RULES))
def test_invalid_rows_carry_resolves_message(fragment):
    name, system, grid, fixed = RULES[fragment]
    df = sweep(name, system, grid, **fixed)
    assert df["reason"].isna().any(), "each grid also has a valid configuration"
    hits = 0
    for _, row in df.iterrows():
        plan = _plan(row, grid, fixed)
        try:
            pm.predict(name, system, plan)
        except PlanError as exc:
            assert row["reason"] == str(exc)
            assert math.isnan(row["step_time_s"]) and not row["fits_in_memory"] and pd.isna(row["bound"])
            hits += fragment in str(exc)
        else:
            assert pd.isna(row["reason"]) and row["step_time_s"] > 0
    assert hits >= 1


def test_a_random_sample_of_invalid_rows_matches_resolve(frames):
    df = frames["gpt3-175b"]
    bad = np.flatnonzero(df["reason"].notna().to_numpy())
    model, system = pm.load_model("gpt3-175b"), pm.load_system("dgx-a100")
    for i in np.random.default_rng(1).choice(bad, size=100, replace=False):
        row = df.iloc[i]
        with pytest.raises(PlanError) as exc:
            _refuse(_plan(row, CASES[0][2], CASES[0][3]), model, system)
        assert row["reason"] == str(exc.value)


def _refuse(plan, model, system):
    """What predict refuses a plan with: plan.resolve's rules, then what the stack cannot run."""
    from perfmodel.specs.stack import check_capabilities, load_stack

    plan = pm.plan.resolve(plan, model, system)
    check_capabilities(load_stack(plan.stack), plan)


def test_system_capacity_rule():
    system = pm.load_system("dgx-a100")
    small = dataclasses.replace(system, network=dataclasses.replace(system.network, max_nodes=2))
    df = sweep("gpt2-124m", small, {"devices": [16, 24]})
    assert pd.isna(df["reason"][0])
    assert df["reason"][1] == "dgx-a100 has at most 16 devices; the plan needs 24"


# --- hardware keys ---------------------------------------------------------------------------------

BASE = {"devices": 1024, "tp": 8, "pp": 8, "global_batch": 1536, "recompute": "selective"}


def _steps(key, values, **fixed):
    df = sweep("gpt3-175b", "dgx-a100", {key: values}, **{**BASE, **fixed})
    assert df["reason"].isna().all()
    return df["step_time_s"].to_numpy()


def test_hardware_keys_move_step_time_the_right_way():
    assert np.all(np.diff(_steps("network.link.bandwidth", ["50 Gb/s", "100 Gb/s", "200 Gb/s", "400 Gb/s"])) < 0)
    assert np.all(np.diff(_steps("network.link.latency", ["1 us", "10 us", "100 us"])) > 0)
    assert np.all(np.diff(_steps("fabric.link.bandwidth", ["10 GB/s", "25 GB/s", "50 GB/s"])) < 0)
    assert np.all(np.diff(_steps("device.peak", ["156 TFLOP/s", "312 TFLOP/s", "624 TFLOP/s"])) < 0)
    assert np.all(np.diff(_steps("device.memory.bandwidth", ["1 TB/s", "2 TB/s", "4 TB/s"])) < 0)
    assert np.all(np.diff(_steps("network.oversubscription", [1, 2, 4])) > 0)
    fits = sweep("gpt3-175b", "dgx-a100", {"device.memory.capacity": ["40 GB", "80 GB", "160 GB"]},
                 **{**BASE, "recompute": "none"})["fits_in_memory"].tolist()
    assert fits == [False, False, True]


def test_a_swept_peak_scales_the_measured_gemm_curve():
    # doubling the peak halves every GEMM: compute drops by about half (launch floors aside)
    df = sweep("gpt3-175b", "dgx-a100", {"device.peak": ["312 TFLOP/s", "624 TFLOP/s"]}, **BASE)
    ref = pm.predict("gpt3-175b", "dgx-a100", **BASE)
    assert _close(df["step_time_s"][0], ref.step_time_s, 0)  # the datasheet peak changes nothing
    ratio = df["breakdown_compute_s"][1] / df["breakdown_compute_s"][0]
    assert 0.5 <= ratio < 0.6
    assert df["mfu"][1] < df["mfu"][0]  # MFU is relative to the swept peak


def test_hardware_sweep_equals_scalar_terms_with_that_hardware():
    from perfmodel.prediction.hardware import SWEEPABLE, hw_params
    from perfmodel.prediction.step import Choices, transformer_terms
    from perfmodel.specs.stack import load_stack

    model, system = pm.load_model("gpt3-175b"), pm.load_system("dgx-a100")
    values = {"network.link.bandwidth": [12.5e9, 50e9], "network.nics_per_node": [4, 8],
              "fabric.link.latency": ["2 us", "9 us"]}
    df = sweep(model, system, values, **BASE)
    plan = pm.plan.resolve(pm.Plan(**BASE), model, system)
    stack = load_stack(plan.stack)
    base = hw_params(system, plan.dtype, stack.gemm_rate_scale)
    for _, row in df.iterrows():
        hw = dataclasses.replace(base, **{SWEEPABLE[k]: float(row[k]) for k in values})
        r = transformer_terms(model, stack, hw, Choices.of(plan), tp=8, pp=8, dp=16, micro_batch=1,
                              global_batch=1536, virtual_stages=1, seq=2048, devices=1024)
        assert _close(row["step_time_s"], r.step_time_s, 0)
    assert df["fabric.link.latency"].tolist()[:2] == [2e-6, 9e-6]  # SI values in the column


def test_hardware_keys_that_do_not_apply_are_refused():
    with pytest.raises(PlanError, match="no network"):
        sweep("gpt2-124m", "h100-sxm5-80gb", {"network.link.bandwidth": ["100 Gb/s"]})
    with pytest.raises(PlanError, match="PCIe-tree"):
        sweep("gpt2-124m", "dgx-a100", {"fabric.root_bandwidth": ["64 GB/s"]})


# --- grid parsing ------------------------------------------------------------------------------


def test_parse_grid_and_values():
    assert parse_grid("tp=1,2;pp=4") == {"tp": ["1", "2"], "pp": ["4"]}
    df = sweep("gpt2-124m", "dgx-a100", "tp=1,2;sequence_parallel=false,true;network.link.bandwidth=100 Gb/s")
    assert df["sequence_parallel"].dtype == bool and df["tp"].dtype == np.int64
    assert df["network.link.bandwidth"].tolist() == [12.5e9] * 4
    # categorical keys come first; rows are the product in column order (the last varies fastest)
    assert list(df.columns[:3]) == ["sequence_parallel", "tp", "network.link.bandwidth"]
    assert df[["sequence_parallel", "tp"]].values.tolist() == [[False, 1], [False, 2], [True, 1], [True, 2]]
    assert list(df.columns[3:]) == ["devices", "dp", "global_batch", "n_microbatches", *result_columns()]


@pytest.mark.parametrize("grid,error,fragment", [
    ("", PlanError, "empty grid"),
    ("tp=", PlanError, "has no values"),
    ("tp=a", PlanError, "expected an integer"),
    ("tp=1;;pp=2", PlanError, "empty entry"),
    ("tp=1,,2", PlanError, "empty value"),
    ("tp=0", PlanError, "[1, 10000000]"),
    ("tp=1;tp=2", PlanError, "twice"),
    ("foo=1", UnknownNameError, "unknown sweep key 'foo'"),
    ("micro_bach=1", UnknownNameError, "did you mean 'micro_batch'"),
    ("network.link.bandwith=1", UnknownNameError, "did you mean 'network.link.bandwidth'"),
    ("network.link.bandwidth=200", UnitError, "no unit"),
    ("recompute=selectiv", PlanError, "did you mean 'selective'"),
    ("zero=4", PlanError, "0, 1, 2 or 3"),
    ("stack=megatorn", UnknownNameError, "did you mean 'megatron'"),
])
def test_malformed_grids_are_refused(grid, error, fragment):
    with pytest.raises(error) as exc:
        sweep("gpt2-124m", "dgx-a100", grid)
    assert fragment in str(exc.value) and "\n" not in str(exc.value)


def test_a_key_both_swept_and_fixed_is_refused():
    with pytest.raises(PlanError, match="both"):
        sweep("gpt2-124m", "dgx-a100", {"tp": [1, 2]}, tp=4)


def test_non_transformers_fall_back_to_predict_for_small_grids():
    df = sweep("resnet50", "dgx-a100", {"micro_batch": [32, 64], "zero": [0, 1]}, devices=8)
    r = pm.predict("resnet50", "dgx-a100", devices=8, micro_batch=64, zero=1)
    assert df["step_time_s"].iloc[-1] == r.step_time_s and "samples_per_s" in df.columns
    with pytest.raises(PlanError, match="not a transformer"):
        pm.plan.resolve(pm.Plan(tp=2), pm.load_model("resnet50"), pm.load_system("dgx-a100"))
    assert sweep("resnet50", "dgx-a100", {"tp": [1, 2]})["reason"].notna().tolist() == [False, True]
    with pytest.raises(SweepError, match="limited to"):
        evaluate("resnet50", "dgx-a100", {"micro_batch": list(range(1, 101)), "global_batch": list(range(1, 101))})


# --- dask engine ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    import logging

    logging.getLogger("distributed").setLevel(logging.ERROR)
    cluster = distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=":0")
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_dask_engine_gives_the_identical_frame(dask_client):
    name, system, grid, fixed, _ = CASES[0]
    local = sweep(name, system, grid, **fixed)
    for partitions in (3, 50):
        remote = sweep(name, system, grid, engine="dask", scheduler=dask_client, partitions=partitions, **fixed)
        pd.testing.assert_frame_equal(local, remote, check_exact=True)


def test_unknown_engine_is_refused():
    with pytest.raises(PlanError, match="did you mean 'dask'"):
        sweep("gpt2-124m", "dgx-a100", "tp=1", engine="dsk")


# --- CLI -----------------------------------------------------------------------------------------


def cli(capsys, *args):
    try:
        code = main(list(args))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("grid", ["tp=", "tp=a", "foo=1", "tp=1;;", "", ";", "tp", "=1", "tp=1,2;pp=x"])
def test_cli_malformed_grid_exits_2_with_one_line_and_writes_nothing(capsys, tmp_path, grid):
    out = tmp_path / "s.csv"
    code, stdout, err = cli(capsys, "sweep", "--model", "gpt2-124m", "--system", "dgx-a100", "--grid", grid,
                            "--out", str(out))
    assert code == 2 and stdout == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name,fragment", [("s.txt", ".csv or .parquet"), ("missing/s.csv", "does not exist")])
def test_cli_bad_out_exits_2(capsys, tmp_path, name, fragment):
    code, stdout, err = cli(capsys, "sweep", "--model", "gpt2-124m", "--system", "dgx-a100", "--grid", "tp=1",
                            "--out", str(tmp_path / name))
    assert code == 2 and fragment in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_cli_failure_after_parsing_writes_nothing(capsys, tmp_path):
    out = tmp_path / "s.csv"
    code, _, err = cli(capsys, "sweep", "--model", "gpt2-124m", "--system", "dgx-a10", "--grid", "tp=1,2",
                       "--out", str(out))
    assert code == 2 and "did you mean 'dgx-a100'" in err
    assert list(tmp_path.iterdir()) == []


def _texts(column):
    return [v if isinstance(v, str) else "" for v in column.astype(object)]


def test_cli_writes_csv_and_parquet(capsys, tmp_path):
    args = ["sweep", "--model", "gpt3-175b", "--system", "dgx-a100", "--devices", "64", "--global-batch", "64",
            "--grid", "tp=1,2,4,8,16;pp=1,2,4,8;recompute=none,selective"]
    code, stdout, _ = cli(capsys, *args, "--out", str(tmp_path / "s.csv"), "--format", "json")
    assert code == 0
    csv = pd.read_csv(tmp_path / "s.csv")
    assert len(csv) == 40 and "step_time_s" in csv.columns
    assert __import__("json").loads(stdout)["evaluated"] == 40
    expected = sweep("gpt3-175b", "dgx-a100", args[-1], devices=64, global_batch=64)
    np.testing.assert_allclose(csv["step_time_s"], expected["step_time_s"], rtol=1e-12)
    assert _texts(csv["reason"]) == _texts(expected["reason"])
    assert expected["reason"].notna().any() and expected["reason"].isna().any()
    if __import__("importlib").util.find_spec("pyarrow"):
        code, _, _ = cli(capsys, *args, "--out", str(tmp_path / "s.parquet"))
        assert code == 0
        back = pd.read_parquet(tmp_path / "s.parquet")
        pd.testing.assert_frame_equal(back, expected, check_exact=True)
    code, stdout, _ = cli(capsys, *args, "--format", "csv")
    assert code == 0 and stdout.splitlines()[0].startswith("recompute,tp,pp,devices,dp")
    assert len(stdout.splitlines()) == 41


def test_cli_table_and_dask_engine_in_a_fresh_process():
    r = subprocess.run([sys.executable, "-m", "perfmodel", "sweep", "--model", "gpt2-124m", "--system", "dgx-a100",
                        "--grid", "tp=1,2,5;micro_batch=1,2", "--engine", "dask", "--format", "json"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    obj = __import__("json").loads(r.stdout)
    assert (obj["evaluated"], obj["valid"]) == (6, 4)
    assert obj["rows"][4]["reason"] == "tensor parallelism 5 does not divide the 12 attention heads of gpt2-124m"


def test_a_value_that_would_make_a_result_not_finite_is_refused_before_any_row_runs():
    # a memory bandwidth of 1e-300 B/s once made a row's step time inf (marked invalid with the
    # cause); a value outside a dimension's plausible range is now refused as a spec file refuses it
    with pytest.raises(PlanError, match=r"grid key 'device.memory.bandwidth': '1e-300' is not a plausible value"):
        pm.sweep("gpt2-124m", "dgx-a100", devices=8, grid={"device.memory.bandwidth": [1e-300, 2e12]})
    df = pm.sweep("gpt2-124m", "dgx-a100", devices=8, grid={"device.memory.bandwidth": [1e6, 2e12]})
    assert df["reason"].isna().all() and np.isfinite(df["step_time_s"]).all()


def test_a_dtype_the_device_has_no_rate_for_marks_its_rows_invalid():
    """A grid over dtypes on a device without one of them (the V100 has no bf16, a TPU v5p no fp32)
    keeps the other rows and gives these rows predict's one-line reason instead of failing the
    sweep; their derived plan columns stay, their outputs are NaN."""
    import math

    import perfmodel as pm

    rows = pm.sweep("llama2-7b", "tpu-v5p-pod", {"dtype": ["bf16", "fp32"], "tp": [1, 2]}, devices=64,
                    global_batch=64, stack="jax-xla")
    bad = rows[rows["dtype"] == "fp32"]
    good = rows[rows["dtype"] == "bf16"]
    assert len(bad) == 2 and len(good) == 2
    assert all("no dense peak FLOP/s for dtype 'fp32'" in r for r in bad["reason"])
    assert all(math.isnan(t) for t in bad["step_time_s"]) and list(bad["devices"]) == [64, 64]
    assert all(t > 0 for t in good["step_time_s"])


@pytest.mark.parametrize("key, value, said", [
    ("network.link.bandwidth", "1e-30 Gb/s", "a bandwidth in [100000, 1e+17] B/s"),
    ("network.link.latency", "1e9 s", "a time in [0, 10] s"),
    ("device.peak", "1e-20 FLOP/s", "a FLOP rate in [1e+06, 1e+19] FLOP/s"),
])
def test_an_implausible_hardware_value_in_a_grid_is_refused(key, value, said):
    """The range a spec file's value must fall in holds in a grid too (a newcomer audit's 1e-30 Gb/s
    link predicted a step of 1e13 s)."""
    with pytest.raises(PlanError, match=f"grid key '{key}'.*{re.escape(said)}"):
        pm.sweep("gpt2-1.5b", "dgx-h100", f"{key}={value}", devices=8, global_batch=8)
