"""issue 13 A1, A2: every predict output shows the resolved plan; the default micro-batch is the fastest
power of two that fits and the default stack follows the device generation, both said; a plan that does
not fit says why; `perfmodel stacks list|show`."""

import csv
import io
import json

import pytest

import perfmodel as pm


def cli(capsys, monkeypatch, *args):
    from perfmodel.cli import main

    monkeypatch.setenv("COLUMNS", "200")
    try:
        code = main(list(args))
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code or 0, out.out, out.err


RESNET = ("predict", "--model", "resnet50", "--system", "dgx-a100", "--devices", "64", "--global-batch", "2048")


def test_the_micro_batch_is_chosen_and_said():
    r = pm.predict("resnet50", "dgx-a100", devices=64, global_batch=2048)
    assert r.plan.micro_batch == 32 and r.plan.n_microbatches == 1  # not 32 accumulation steps of 1
    assert "micro_batch" in r.chosen and "chosen" in r.chosen["micro_batch"]
    one = pm.predict("resnet50", "dgx-a100", devices=64, global_batch=2048, micro_batch=1)
    assert r.step_time_s < one.step_time_s and "micro_batch" not in one.chosen


def test_the_chosen_micro_batch_is_the_fastest_that_fits():
    r = pm.predict("gpt2-1.5b", "dgx-a100", devices=8, global_batch=512)
    assert r.fits_in_memory
    for b in (1, 2, 4, 8, 16, 32, 64):
        other = pm.predict("gpt2-1.5b", "dgx-a100", devices=8, global_batch=512, micro_batch=b)
        assert not other.fits_in_memory or other.step_time_s >= r.step_time_s * (1 - 1e-12), b


@pytest.mark.parametrize("system, stack", [("dgx-a100", "megatron"), ("dgx-h100", "megatron-core"),
                                           ("h200-sxm-141gb", "megatron-core"), ("b200-sxm", "megatron-core"),
                                           ("v100-sxm2-32gb", "megatron"), ("cpu-cluster", "pytorch-eager"),
                                           ("tpu-v4", "jax-xla"), ("tpu-v5e", "jax-xla"), ("tpu-v5p", "jax-xla"),
                                           ("gaudi2", "pytorch-eager"),
                                           ("mi300x", "pytorch-eager")])
def test_the_default_stack_follows_the_device_generation(system, stack):
    dtype = "fp16" if system.startswith("v100") else "bf16"  # a V100 has no bf16
    r = pm.predict("gpt2-124m", system, dtype=dtype)
    assert r.plan.stack == stack and r.chosen["stack"].startswith(stack)
    assert pm.predict("gpt2-124m", system, stack="megatron", dtype=dtype).plan.stack == "megatron"


def test_every_predict_format_shows_the_plan(capsys, monkeypatch):
    code, out, _ = cli(capsys, monkeypatch, *RESNET)
    assert code == 0
    # a CNN runs pytorch-eager on every device (Megatron trains transformers only)
    assert "micro-batch 32 x 1 accumulation step" in out and "stack pytorch-eager" in out and "ZeRO 0" in out
    assert "note: micro-batch 32: chosen" in out
    code, out, _ = cli(capsys, monkeypatch, *RESNET, "--format", "json")
    obj = json.loads(out)
    assert obj["plan"]["micro_batch"] == 32 and obj["plan"]["n_microbatches"] == 1
    assert obj["plan"]["stack"] == "pytorch-eager" and "micro_batch" in obj["chosen"] and obj["plan_summary"]
    assert "transformers only" in obj["chosen"]["stack"]
    code, out, _ = cli(capsys, monkeypatch, *RESNET, "--format", "csv")
    row = next(csv.DictReader(io.StringIO(out)))
    assert row["plan_micro_batch"] == "32" and row["plan_n_microbatches"] == "1" and row["plan_stack"] == "pytorch-eager"
    assert "chosen" in row["notes"]


def test_a_plan_that_does_not_fit_says_why(capsys, monkeypatch):
    """README's llama2-7b on 16 devices: 173 GB of 80 GB; the note names the largest part (the
    optimizer states: 12 B x 6.74B parameters) and what to try."""
    r = pm.predict("llama2-7b", "dgx-a100", devices=16)
    assert not r.fits_in_memory
    hint = next(n for n in r.notes if n.startswith("does not fit"))
    assert "optimizer states take 80.9 GB" in hint and "--zero" in hint and "--tp" in hint
    # activations as the largest part: 4 sequences of 4096 tokens a micro-batch, materialised scores
    r = pm.predict("llama2-7b", "dgx-a100", devices=16, zero=1, micro_batch=4)
    hint = next(n for n in r.notes if n.startswith("does not fit"))
    assert "activations take" in hint and "--recompute" in hint
    code, out, _ = cli(capsys, monkeypatch, "predict", "--model", "llama2-7b", "--system", "dgx-a100", "--devices", "16")
    assert code == 0 and "does not fit" in out


def test_stacks_list_and_show(capsys, monkeypatch):
    code, out, _ = cli(capsys, monkeypatch, "stacks", "list", "--format", "json")
    rows = json.loads(out)
    assert {r["name"] for r in rows} == {"deepspeed", "deepspeed-2021", "fsdp", "jax-xla", "megatron", "megatron-core", "pytorch-eager",
                                         "pytorch-compile", "llm-foundry-2023", "nemo-2024"}
    assert all(r["description"] and r["default_for"] for r in rows)
    code, out, _ = cli(capsys, monkeypatch, "stacks", "show", "megatron-core", "--format", "json")
    assert code == 0 and json.loads(out)["name"] == "megatron-core"
    code, _, err = cli(capsys, monkeypatch, "stacks", "show", "megatron-cor")
    assert code == 2 and "did you mean" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("name", ["deepspeed", "fsdp", "jax-xla", "megatron", "megatron-core", "pytorch-eager",
                                  "pytorch-compile", "llm-foundry-2023"])
def test_every_stack_shows_as_json(capsys, monkeypatch, name):
    """Every field of every bundled stack, kernel inventories and TP-overlap slots included, as JSON."""
    code, out, _ = cli(capsys, monkeypatch, "stacks", "show", name, "--format", "json")
    shown = json.loads(out)
    assert code == 0 and shown["name"] == name
    if name == "megatron-core":
        assert shown["tp_overlap"]["slots"]["proj_fprop"] == {"method": "pipeline", "sms": 24, "splits": 4, "margin": True}
    if name == "pytorch-eager":
        assert "gpt2" in shown["inventory"] and shown["inventory"]["gpt2"]["forward"]


def test_only_a_tpu_is_taken_for_one():
    """The TPU rule reads the word: a Gaudi copy whose description names a file 'bench_output.csv'
    (as `perfmodel calibrate gemm` writes) keeps pytorch-eager; a CNN on a TPU runs pytorch-eager,
    also where a plan is resolved without predict's choice (crossover)."""
    import dataclasses as dc

    from perfmodel.plan import Plan, resolve
    from perfmodel.specs.default_stack import default_stack
    from perfmodel.workloads import load_model

    gaudi = pm.load_system("gaudi2-hls").device
    copy = dc.replace(gaudi, description=gaudi.description + " -- GEMM curves calibrated from bench_output.csv")
    assert default_stack(copy)[0] == "pytorch-eager" and "an xpu" in default_stack(copy)[1]
    tpu = pm.load_system("tpu-v4-pod")
    assert default_stack(tpu.device)[0] == "jax-xla"
    assert resolve(Plan(devices=8), load_model("resnet50"), tpu).stack == "pytorch-eager"
    assert resolve(Plan(devices=8), load_model("gpt2-124m"), tpu).stack == "jax-xla"


def test_a_refusal_by_the_default_stack_says_it_was_the_default():
    """A stack the user did not name that cannot run the plan is said to be the default, with how to
    choose another (found by a newcomer audit: 'stack megatron does not run expert parallelism'
    when no stack was given)."""
    import perfmodel as pm
    from perfmodel.errors import PlanError

    with pytest.raises(PlanError, match="'megatron' is the default stack here: choose one that runs it with --stack"):
        pm.predict("mixtral-8x7b", "dgx-a100", pm.Plan(devices=64, ep=8))
    with pytest.raises(PlanError) as named:  # named by the user: the plain refusal
        pm.predict("mixtral-8x7b", "dgx-a100", pm.Plan(devices=64, ep=8, stack="megatron"))
    assert "default" not in str(named.value)
