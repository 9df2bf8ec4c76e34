"""`perfmodel predict`, `perfmodel models`, `perfmodel validate`: the CLI contract of docs/interface.md."""

import json
import os
import subprocess
import sys

import pytest

from perfmodel.units import format_quantity

# docs/interface.md "CLI contract": the keys `predict --format json` must print
CONTRACT_KEYS = {"step_time_s", "breakdown_s", "comm_total_s", "bound", "memory_bytes_per_device",
                 "fits_in_memory", "mfu"}
BREAKDOWN_KEYS = {"compute", "recompute", "optimizer", "tp_comm", "pp_comm", "dp_comm", "cp_comm", "pipeline_bubble", "other"}
MEMORY_KEYS = {"weights", "gradients", "optimizer", "activations", "total"}

# issue 3, "Done when": this command prints every contract key and its breakdown sums to step_time_s
DONE_WHEN = ["predict", "--model", "gpt3-175b", "--system", "dgx-a100", "--devices", "1024", "--tp", "8",
             "--pp", "8", "--global-batch", "1536", "--micro-batch", "1", "--recompute", "selective",
             "--sequence-parallel", "--schedule", "interleaved", "--virtual-stages", "2"]
# 175B parameters with Adam on 8 GPUs: about 400 GB per device, far over 80 GB
NO_FIT = ["predict", "--model", "gpt3-175b", "--system", "dgx-a100", "--devices", "8", "--tp", "8"]
SMALL = ["predict", "--model", "gpt2-124m", "--system", "dgx-a100"]


def run(*args):
    # a wide terminal, so that rich does not wrap the rows the tests read
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "perfmodel", *args], capture_output=True, text=True, env=env)


def ok_json(*args):
    r = run(*args, "--format", "json")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    return json.loads(r.stdout)


def check_contract(obj):
    assert CONTRACT_KEYS <= set(obj), CONTRACT_KEYS - set(obj)
    assert ("tokens_per_s" in obj) != ("samples_per_s" in obj)
    assert set(obj["breakdown_s"]) == BREAKDOWN_KEYS
    assert set(obj["memory_bytes_per_device"]) == MEMORY_KEYS
    assert all(v >= 0 for v in obj["breakdown_s"].values())
    total = sum(obj["breakdown_s"].values())
    assert total == pytest.approx(obj["step_time_s"], rel=1e-9)
    assert obj["bound"] in ("compute", "communication", "memory")
    assert isinstance(obj["fits_in_memory"], bool)
    assert 0 < obj["mfu"] <= 1
    assert obj["comm_total_s"] >= obj["breakdown_s"]["tp_comm"] + obj["breakdown_s"]["dp_comm"] - 1e-12


def test_done_when_command_prints_every_contract_key_and_sums():
    obj = ok_json(*DONE_WHEN)
    check_contract(obj)
    assert obj["tokens_per_s"] > 0
    plan = obj["plan"]
    assert (plan["devices"], plan["tp"], plan["pp"], plan["dp"]) == (1024, 8, 8, 16)
    assert plan["schedule"] == "interleaved" and plan["virtual_stages"] == 2 and plan["sequence_parallel"] is True
    assert plan["recompute"] == "selective" and plan["global_batch"] == 1536 and plan["micro_batch"] == 1
    assert obj["breakdown_s"]["tp_comm"] > 0 and obj["breakdown_s"]["pipeline_bubble"] > 0


def test_table_is_the_default_and_shows_the_breakdown():
    r = run(*DONE_WHEN)
    assert r.returncode == 0, r.stderr
    for text in ("step time", "where the step goes", "pipeline_bubble", "memory per device", "fits in memory"):
        assert text in r.stdout


def test_csv_is_one_flat_row():
    r = run(*DONE_WHEN, "--format", "csv")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 2
    import csv

    row = next(csv.DictReader(lines))
    parts = [float(row[f"breakdown_{k}_s"]) for k in BREAKDOWN_KEYS]
    assert sum(parts) == pytest.approx(float(row["step_time_s"]), rel=1e-9)
    assert row["model"] == "gpt3-175b" and row["plan_tp"] == "8" and row["fits_in_memory"] in ("True", "False")
    assert {"comm_total_s", "bound", "mfu", "tokens_per_s", "memory_total_bytes"} <= set(row)


def test_model_that_does_not_fit_says_so_and_by_how_much():
    obj = ok_json(*NO_FIT)
    check_contract(obj)
    assert obj["fits_in_memory"] is False
    over = obj["memory_bytes_per_device"]["total"] - obj["memory_capacity_bytes"]
    assert over > 0
    table = run(*NO_FIT)
    assert table.returncode == 0, table.stderr
    assert "NO" in table.stdout and "over by" in table.stdout
    assert f"over by {format_quantity(over, 'bytes')}" in table.stdout


def test_small_model_fits():
    obj = ok_json(*SMALL)
    check_contract(obj)
    assert obj["fits_in_memory"] is True


def test_cnn_reports_samples_per_s():
    # non-transformer prediction (perfmodel/prediction/dense.py) is still being written by issue 3's lead
    pytest.importorskip("perfmodel.prediction.dense", reason="perfmodel.prediction.dense (CNN/MLP step time) not written yet")
    obj = ok_json("predict", "--model", "resnet50", "--system", "h100-sxm5-80gb", "--micro-batch", "64",
                  "--stack", "pytorch-eager")
    check_contract(obj)
    assert obj["samples_per_s"] > 0 and "tokens_per_s" not in obj


def test_plan_flags_reach_the_plan():
    plan = ok_json(*SMALL, "--devices", "16", "--tp", "2", "--pp", "2", "--micro-batch", "2", "--global-batch", "64",
                   "--dtype", "fp16", "--recompute", "full", "--zero", "1", "--no-overlap", "--stack",
                   "pytorch-eager", "--optimizer", "sgd", "--schedule", "gpipe")["plan"]
    assert plan == {**plan, "devices": 16, "tp": 2, "pp": 2, "dp": 4, "micro_batch": 2, "global_batch": 64,
                    "dtype": "fp16", "recompute": "full", "zero": 1, "overlap": False, "stack": "pytorch-eager",
                    "optimizer": "sgd", "schedule": "gpipe"}
    assert ok_json(*SMALL)["plan"]["overlap"] is True
    assert ok_json(*SMALL, "--devices", "8", "--grad-sync", "parameter-server")["plan"]["grad_sync"] == "parameter-server"


def test_model_overrides_change_the_model():
    base = ok_json(*SMALL)
    deeper = ok_json(*SMALL, "--layers", "24")
    assert deeper["model"] == "gpt2-124m[layers=24]"
    assert deeper["step_time_s"] > base["step_time_s"]
    wider = ok_json(*SMALL, "--hidden", "1024", "--heads", "16", "--kv-heads", "4", "--ffn-hidden", "4096",
                    "--vocab", "32000", "--seq", "2048")
    assert wider["plan"]["seq"] == 2048
    for key in ("hidden=1024", "heads=16", "kv_heads=4", "ffn_hidden=4096", "vocab=32000", "seq=2048"):
        assert key in wider["model"]


# Bad input: exit 2, nothing on stdout, one line on stderr naming the problem (never a traceback)
BAD = [
    (["--devices", "12", "--tp", "8"], "not divisible by tp x pp"),
    (["--devices", "16", "--tp", "2", "--pp", "2", "--dp", "2"], "but devices is 16"),
    (["--tp", "5"], "does not divide the 12 attention heads"),
    (["--tp", "4", "--kv-heads", "3"], "neither a divisor nor a multiple of the 3 key/value heads"),
    (["--pp", "13"], "pp = 13 exceeds the 12 layers"),
    (["--pp", "2", "--schedule", "interleaved", "--virtual-stages", "4", "--global-batch", "2"], "not divisible by pp x virtual stages"),
    (["--virtual-stages", "2"], "need --schedule interleaved"),
    (["--sequence-parallel"], "sequence parallelism needs tp > 1"),
    (["--devices", "8", "--global-batch", "12"], "global batch 12 is not divisible"),
    (["--pp", "2", "--schedule", "interleaved", "--global-batch", "3"], "multiple of pp"),
    (["--zero", "2", "--grad-sync", "broadcast"], "needs --grad-sync allreduce"),
    (["--tp", "0"], "'--tp'"),
    (["--devices", "-8"], "'--devices'"),
    (["--micro-batch", "0"], "'--micro-batch'"),
    (["--global-batch", "-1"], "'--global-batch'"),
    (["--layers", "0"], "'--layers'"),
    (["--zero", "4"], "'--zero'"),
    (["--heads", "7"], "--heads: expected a divisor of --hidden=768"),
    (["--dtype", "fp64"], "'--dtype'"),
    (["--recompute", "some"], "'--recompute'"),
    (["--schedule", "pipedream"], "'--schedule'"),
    (["--grad-sync", "gossip"], "'--grad-sync'"),
    (["--optimizer", "lion"], "'--optimizer'"),
    (["--stack", "megatrn"], "did you mean 'megatron'"),
    (["--micro-batch", "two"], "'--micro-batch'"),
    (["--devices", "12", "--tp", "2"], "not a whole number of 8-device nodes"),
    (["--frobnicate"], "No such option"),
]


@pytest.mark.parametrize("extra,fragment", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_plan_is_one_line_and_exit_2(extra, fragment):
    check_bad([*SMALL, *extra], fragment)


@pytest.mark.parametrize("args,fragment", [
    (["predict", "--model", "gpt2-12m", "--system", "dgx-a100"], "did you mean 'gpt2-124m'"),
    (["predict", "--model", "gpt2-124m", "--system", "dgx-a10"], "did you mean 'dgx-a100'"),
    (["predict", "--model", "/nonexistent/config.json", "--system", "dgx-a100"], "no such file"),
    (["predict", "--model", "resnet50", "--system", "dgx-a100", "--tp", "2"], "not a transformer"),
    (["predict", "--model", "resnet50", "--system", "dgx-a100", "--layers", "4"], "transformer models only"),
    (["predict", "--model", "gpt2-124m", "--system", "h100-sxm5-80gb", "--devices", "2"], "no network"),
    (["predict", "--model", "gpt2-124m"], "Missing option '--system'"),
    (["predict", "--model", "gpt2-124m", "--system", "dgx-a100", "--format", "xml"], "--format"),
    (["models", "show", "gpt2-12m"], "did you mean 'gpt2-124m'"),
    (["models", "list", "--format", "yaml"], "--format"),
    (["validate", "--dataset", "narayanan2021-table-1"], "did you mean 'narayanan2021-table1'"),
    (["validate", "--dataset", "megatron202"], "did you mean 'megatron2020'"),
])
def test_bad_names_are_one_line_and_exit_2(args, fragment):
    check_bad(args, fragment)


def check_bad(args, fragment):
    r = run(*args)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert fragment in r.stderr


@pytest.mark.parametrize("args", [["predict"], ["models"], ["validate"]])
def test_help(args):
    r = run(*args, "--help")
    assert r.returncode == 0 and "Usage" in r.stdout


def test_predict_help_documents_every_plan_flag():
    text = run("predict", "--help").stdout
    for flag in ("--devices", "--tp", "--pp", "--dp", "--micro-batch", "--global-batch", "--seq", "--dtype",
                 "--recompute", "--sequence-parallel", "--schedule", "--virtual-stages", "--zero", "--grad-sync",
                 "--overlap", "--no-overlap", "--stack", "--optimizer", "--layers", "--hidden", "--heads",
                 "--kv-heads", "--ffn-hidden", "--vocab", "--format"):
        assert flag in text, flag
    assert "flat row" in text  # what --format csv gives


def test_models_list_and_show():
    names = {row["name"] for row in ok_json("models", "list")}
    assert {"gpt2-124m", "gpt3-175b", "llama2-7b", "megatron-1t", "resnet50", "bert-large"} <= names
    shown = ok_json("models", "show", "llama2-7b")
    assert shown["name"] == "llama2-7b" and shown["params_total"] == 6_738_415_616
    r = run("models", "show", "resnet50", "--format", "csv")
    assert r.returncode == 0 and r.stdout.splitlines()[0] == "field,value"
    assert "params_total,25557032" in r.stdout.splitlines()


def test_validate_json_shape_for_one_dataset():
    obj = ok_json("validate", "--dataset", "narayanan2021-table1")
    # issue 3: {"dataset", "cases": [{"case", "measured_s", "predicted_s", "error"}], "mean_abs_error", "max_abs_error"}
    # (plus, since issue 10: kind, fitted, mean_signed_error, groups, skipped)
    assert set(obj) >= {"dataset", "cases", "mean_abs_error", "max_abs_error"}
    assert obj["kind"] == "in-sample"
    assert obj["dataset"] == "narayanan2021-table1" and len(obj["cases"]) == 10
    for case in obj["cases"]:
        assert {"case", "measured_s", "predicted_s", "error"} <= set(case)
        assert case["error"] == pytest.approx(case["predicted_s"] / case["measured_s"] - 1, rel=1e-12, abs=1e-15)
    errors = [abs(c["error"]) for c in obj["cases"] if not c.get("calibration")]
    assert obj["mean_abs_error"] == pytest.approx(sum(errors) / len(errors))
    assert obj["max_abs_error"] == pytest.approx(max(errors))


def test_validate_json_without_dataset_is_a_list_of_every_dataset():
    objs = ok_json("validate")
    assert [o["dataset"] for o in objs] == ["narayanan2021-table1", "megatron2020", "megatron-core-h100",
                                            "h200-eager-profiled", "heldout-2022-2024", "heldout-cpu", "h200-eager",
                                            "narayanan2021-table2"]
    assert [len(o["cases"]) for o in objs[:4]] == [10, 16, 9, 4]
    assert [o["kind"] for o in objs] == ["in-sample"] * 4 + ["held-out"] * 4
    assert all(set(o) >= {"dataset", "cases", "mean_abs_error", "max_abs_error"} for o in objs)


def pm_validate(name):
    from perfmodel.validation import validate

    return validate(name)


def test_validate_table_and_csv():
    r = run("validate", "--dataset", "megatron2020")
    assert r.returncode == 0, r.stderr
    assert "mean |error|" in r.stdout and "max |error|" in r.stdout and "calibration" in r.stdout
    r = run("validate", "--format", "csv")
    lines = r.stdout.splitlines()
    assert lines[0] == "dataset,kind,case,group,measured_s,predicted_s,error,calibration"
    held_out = sum(len(pm_validate(n).cases) for n in ("heldout-2022-2024", "heldout-cpu", "h200-eager",
                                                                  "narayanan2021-table2"))
    assert len(lines) == 1 + 10 + 16 + 9 + 4 + held_out
    r = run("validate")  # the table ends with the pooled held-out and in-sample runs
    assert "all held-out datasets (4): 73 runs" in r.stdout and "all in-sample datasets (4)" in r.stdout


def test_layers_detail_lists_the_kernels_of_one_layer():
    args = ("predict", "--model", "gpt2-124m", "--system", "h100-sxm5-80gb", "--micro-batch", "8", "--seq", "1024",
            "--stack", "pytorch-eager", "--layers-detail")
    obj = ok_json(*args)
    check_contract(obj)
    kernels = obj["layer_kernels"]
    assert sum(k["direction"] == "fwd" for k in kernels) == 31 + 1  # the kernels + the forward total
    assert {"kernel", "direction", "op", "time_us", "bytes", "gflops"} <= set(kernels[0])
    table = run(*args)
    assert table.returncode == 0, table.stderr
    assert "gelu.tanh" in table.stdout and "attn.sdpa.flash_bwd" in table.stdout


@pytest.mark.parametrize("model", ["resnet50", "mlp-mnist"])
def test_layers_detail_of_a_dense_model_lists_every_layer(model):
    """A ConvNet or an MLP has no repeated layer: every leaf layer and the loss, forward and backward,
    adding up to the step's per-micro-batch forward and backward (they were a traceback before)."""
    args = ("predict", "--model", model, "--system", "dgx-a100", "--micro-batch", "32", "--global-batch", "32",
            "--layers-detail")
    obj = ok_json(*args)
    kernels = obj["layer_kernels"]
    details = obj["details"]
    for direction, key in (("fwd", "forward_per_microbatch_s"), ("bwd", "backward_per_microbatch_s")):
        rows = [k for k in kernels if k["direction"] == direction and not k["kernel"].startswith("total")]
        assert sum(k["time_us"] for k in rows) == pytest.approx(details[key] * 1e6, rel=1e-3)
        assert rows[-1]["kernel"] == "loss" and rows[-1]["bytes"] > 0
    first = [k for k in kernels if k["op"] in ("conv2d", "linear")][:2]
    # the first GEMM layer's input needs no gradient: its backward is the wgrad alone
    assert first[1]["gflops"] == first[0]["gflops"] > 0
    table = run(*args)
    assert table.returncode == 0, table.stderr
    assert "kernels of every layer" in table.stdout and "internal error" not in table.stdout
