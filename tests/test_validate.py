"""Validation against published measurements (perfmodel.validation) and the bound issue 3 sets."""

import pytest

import perfmodel as pm
from perfmodel.errors import UnknownNameError
from perfmodel.validation import (
    dataset_cases,
    dataset_names,
    megatron_core_flops,
    narayanan_flops,
    validate,
)

# Tolerances of issue 3 ("Tests hold narayanan2021-table1 mean |error| <= 8% and max <= 15%, with one
# calibration of the A100 system, not one per case"), against Narayanan et al., SC'21, Table 1
# (achieved TFLOP/s per GPU turned into seconds per iteration with the paper's eq. (3)).
NARAYANAN_MEAN_ABS_ERROR = 0.08
NARAYANAN_MAX_ABS_ERROR = 0.15


def test_narayanan2021_table1_mean_error_within_issue_3_bound():
    r = validate("narayanan2021-table1")
    assert r.mean_abs_error <= NARAYANAN_MEAN_ABS_ERROR, _report(r)


def test_narayanan2021_table1_max_error_within_issue_3_bound():
    r = validate("narayanan2021-table1")
    assert r.max_abs_error <= NARAYANAN_MAX_ABS_ERROR, _report(r)


def _report(r):
    rows = ", ".join(f"{c.case}: {c.error:+.1%}" for c in r.cases)
    return f"{r.dataset}: mean {r.mean_abs_error:.1%}, max {r.max_abs_error:.1%} ({rows})"


def test_datasets_and_their_sizes():
    # issue 3: 10 runs (SC'21 Table 1), 16 measured iteration times (Megatron-LM 2020), 9 runs (Megatron-Core)
    # and the H200 runs measured here: GPT-2 124M, ResNet-50, BERT-large (read), 4 others held out
    assert dataset_names("in-sample") == ("narayanan2021-table1", "megatron2020", "megatron-core-h100",
                                          "h200-eager-profiled")
    assert [len(dataset_cases(n)) for n in dataset_names("in-sample")] == [10, 16, 9, 4]
    assert dataset_names("held-out") == ("heldout-2022-2024", "heldout-cpu", "h200-eager", "narayanan2021-table2")
    assert len(dataset_cases("h200-eager")) == 4
    # the CPU set: MLPerf Training v3.0's ResNet-50 on 16 nodes of 2 x Xeon 8480+, 3264 images a step
    # at 8586 images/s (Intel's logged throughput)
    (cpu,) = dataset_cases("heldout-cpu")
    assert cpu.group == "cpu" and cpu.system == "cpu-cluster" and cpu.plan.devices == 32
    assert cpu.measured_s == pytest.approx(3264 / 8586)
    assert dataset_names() == dataset_names("in-sample") + dataset_names("held-out")


def test_json_shape_and_signed_error():
    for r in validate():
        d = r.to_dict()
        assert set(d) >= {"dataset", "cases", "mean_abs_error", "max_abs_error"}
        assert d["kind"] in ("in-sample", "held-out")
        for case in d["cases"]:
            assert set(case) >= {"case", "measured_s", "predicted_s", "error", "calibration", "group"}
            assert case["measured_s"] > 0 and case["predicted_s"] > 0
            assert case["error"] == pytest.approx(case["predicted_s"] / case["measured_s"] - 1)
        scored = [abs(c["error"]) for c in d["cases"] if not c["calibration"]]
        assert d["mean_abs_error"] == pytest.approx(sum(scored) / len(scored))
        assert d["max_abs_error"] == pytest.approx(max(scored))


def test_one_calibration_case_and_it_is_excluded_from_the_statistics():
    # the megatron stack's gemm_rate_scale was fitted to the 1B single-A100 run (1076 ms),
    # perfmodel/stacks/megatron.toml; no other case was used to fit anything
    calibrated = [(r.dataset, c) for r in validate() for c in r.cases if c.calibration]
    assert len(calibrated) == 1
    dataset, case = calibrated[0]
    assert dataset == "megatron2020" and case.measured_s == pytest.approx(1.076)
    assert case.case == "1B DGX-A100 (1 GPU)"
    r = validate("megatron2020")
    assert len(r.scored) == 15


def test_narayanan_measured_seconds_from_eq_3():
    # SC'21 Table 1, 1.7B row: 137 TFLOP/s per GPU on 32 GPUs, batch 512, s 2048, 24 layers, h 2304, V 51200
    F = 96 * 512 * 2048 * 24 * 2304**2 * (1 + 2048 / (6 * 2304) + 51200 / (16 * 24 * 2304))
    assert narayanan_flops(512, 2048, 24, 2304, 51200) == pytest.approx(F)
    first = dataset_cases("narayanan2021-table1")[0]
    assert first.measured_s == pytest.approx(F / (137e12 * 32))
    assert first.measured_s == pytest.approx(3.528, abs=1e-3)


def test_megatron_core_flops_is_the_r0_8_0_formula():
    # Megatron-LM r0.8.0 megatron/training/training.py num_floating_point_operations, typed from the code:
    # 12 B s L h^2 ((1 + g/a + s/h) * q/h + f/h * experts * gated + V / (2 L h))
    B, s, L, h, V, a, g, f = 8, 4096, 32, 4096, 128256, 32, 8, 14336
    code = 12 * B * s * L * h * h * ((1 + g / a + s / h) * 1 + f / h * 1 * 1.5 + V / (2 * L * h))
    assert megatron_core_flops(B, s, L, h, V, a, query_groups=g, ffn_hidden=f, swiglu=True) == pytest.approx(code)
    # GPT (MHA, 4h GELU MLP): 72 B s L h^2 (1 + s/(6h) + V/(12 L h)), the 3/4 of eq. (3) without recompute
    assert megatron_core_flops(B, s, L, h, V, a) == pytest.approx(
        72 * B * s * L * h**2 * (1 + s / (6 * h) + V / (12 * L * h)))


def test_narayanan_plans_follow_the_run_script():
    cases = {c.case.split()[0]: c for c in dataset_cases("narayanan2021-table1")}
    # --num-layers-per-virtual-pipeline-stage k: interleaved with layers / pp / k chunks per device
    assert {k: (c.plan.schedule, c.plan.virtual_stages) for k, c in cases.items() if c.plan.virtual_stages > 1} == {
        "76B": ("interleaved", 3), "145B": ("interleaved", 2), "310B": ("interleaved", 2), "530B": ("interleaved", 3)}
    assert cases["1T"].plan.schedule == "1f1b" and cases["1T"].plan.pp == 64
    # torch DDP overlaps the gradient all-reduce with backward; Megatron's local DDP does not
    assert [c.plan.overlap for c in cases.values()] == [True] * 4 + [False] * 6
    assert all(c.plan.recompute == "full" and c.plan.dtype == "fp16" and c.system == "dgx-a100" for c in cases.values())
    assert cases["18B"].plan.micro_batch == 8 and cases["18B"].plan.devices == 256
    assert cases["1.7B"].model.name == "megatron-1.7b"


def test_megatron2020_plans():
    cases = dataset_cases("megatron2020")
    single = [c for c in cases if c.plan.devices == 1]
    assert {c.system for c in single} == {"v100-sxm2-32gb", "a100-sxm4-80gb"}  # the device alone
    dp = [c for c in cases if c.plan.dp == 128]
    assert len(dp) == 4 and all(c.plan.micro_batch == 16 and c.plan.global_batch == 2048 for c in dp)
    assert all(c.plan.overlap is False and c.plan.recompute == "full" for c in cases)
    assert all(c.model.seq_len == 1024 and c.model.vocab == 51200 for c in cases)
    v100 = [c for c in cases if c.system == "dgx-2"]
    assert len(v100) == 6 and all(c.plan.global_batch == 8 for c in v100)


def test_megatron_core_plans():
    cases = dataset_cases("megatron-core-h100")
    assert all(c.system == "dgx-h100" and c.plan.dtype == "bf16" and c.plan.micro_batch == 1 for c in cases)
    assert all(c.plan.sequence_parallel == (c.plan.tp > 1) for c in cases)
    # the README's model sizes are the parameter counts of these shapes (untied output layer); the
    # labels are rounded (1.7B is 1.75e9 parameters), so 4 % tells the shape from a wrong one (a tied
    # output layer makes 1.7B 1.49e9)
    for c in cases:
        label = float(c.case.split()[0].rstrip("B"))
        assert c.model.n_params / 1e9 == pytest.approx(label, rel=0.04), c.case


def test_dgx2_system():
    system = pm.load_system("dgx-2")
    assert system.devices_per_node == 16 and system.device.name == "v100-sxm2-32gb"
    assert system.fabric.kind == "nvswitch" and system.fabric.link.name == "nvlink2"
    assert system.fabric.links_per_device == 6
    assert system.network.link.name == "ib-edr" and system.network.nics_per_node == 8


def test_unknown_dataset():
    with pytest.raises(UnknownNameError, match="did you mean 'megatron2020'"):
        validate("megatron-2020")


def test_every_dataset_says_whether_it_is_in_sample_and_what_was_fitted():
    for r in validate():
        assert r.kind in ("in-sample", "held-out"), r.dataset
        assert r.fitted, f"{r.dataset}: say what was fitted on it ('nothing' for held-out)"
        if r.kind == "held-out":
            assert r.fitted == "nothing"
            assert not any(c.calibration for c in r.cases)


def test_held_out_runs_are_all_reported():
    """Every row of the held-out file is a predicted case or a skipped one with a reason: none is
    dropped silently (the file has 59 published runs: 51, plus 8 Llama 3.1 runs with context parallelism)."""
    from perfmodel.validation.heldout import HELDOUT_FILE
    from perfmodel.validation.results import read_rows

    r = validate("heldout-2022-2024")
    rows = read_rows(HELDOUT_FILE)
    assert len(r.cases) + len(r.skipped) == len(rows) == 59
    assert all(s.reason for s in r.skipped)
    assert all(row["source"] for row in rows)
    # the groups issue 10 asks about are present
    assert {"a100", "h100-bf16", "h100-fp8", "xpu"} <= set(r.groups())


def test_held_out_runs_state_the_model_and_kernels_their_sources_ran():
    """LLM Foundry's 2023 tables ran its Triton attention (stack llm-foundry-2023), its 2024 table
    flash-attn 2 (fsdp); MaxText's synthetic models of Dec 2023 are parallel ReLU blocks with tied
    logits, so '32b' has 32.5e9 parameters (its name), Mixtral keeps its own sequential SwiGLU."""
    from perfmodel.validation.heldout import _cases

    cases = {c.case: c for c in _cases() if hasattr(c, "plan")}
    assert cases["mpt7b_h100_8gpu_seq32k"].plan.stack == "llm-foundry-2023"
    assert cases["mpt7b_a100_80g_8gpu_noac"].plan.stack == "llm-foundry-2023"
    assert cases["mpt70b_h100_512gpu_fsdp"].plan.stack == "fsdp"
    m32 = cases["maxtext_32b_v5p_1x128"].model
    assert (m32.parallel_block, m32.mlp, m32.tied_embeddings) == (True, "gelu", True)
    assert m32.n_params == pytest.approx(32.5e9, rel=0.01)
    mixtral = cases["maxtext_mixtral8x7b_v5p_256chips"].model
    assert (mixtral.parallel_block, mixtral.mlp, mixtral.tied_embeddings) == (False, "swiglu", False)
    # MaxText shards the residual stream over the tensor axis (activation_embed -> tensor): sequence
    # parallelism wherever the row has tensor parallelism, so a full-remat layer keeps 1/tp of its input
    assert cases["maxtext_512b_v5p_1x1024"].plan.sequence_parallel
    assert cases["maxtext_512b_v5p_1x1024"].plan.tp == 16
    assert not cases["maxtext_llama2_7b_a3_1vm"].plan.sequence_parallel  # tp 1
    r512 = pm.predict(cases["maxtext_512b_v5p_1x1024"].model, cases["maxtext_512b_v5p_1x1024"].system,
                   cases["maxtext_512b_v5p_1x1024"].plan)
    assert r512.details["memory_layer_checkpoint_bytes"] == pytest.approx(32 * 2048 * 20480 * 2 / 16)


def test_table2_rows_by_hand():
    """SC'21 Table 2 (held-out): the 530B PTD row at 2240 GPUs is 159 TFLOP/s a GPU at batch 2240;
    its plan is Table 1's 530B script (TP 8 x PP 35, interleaved, 3 layers a stage in 3 chunks);
    the ZeRO-3 rows run the DeepSpeed of 2021's stage 3 (deepspeed-2021) with no model parallelism."""
    from perfmodel.validation import validate

    cases = {c.case: c for c in dataset_cases("narayanan2021-table2")}
    ptd = cases["megatron-530b PTD tp8 pp35 (2240 GPUs)"]
    flops = 96 * 2240 * 2048 * 105 * 20480**2 * (1 + 2048 / (6 * 20480) + 51200 / (16 * 105 * 20480))
    assert ptd.measured_s == pytest.approx(flops / (159e12 * 2240))
    assert (ptd.plan.tp, ptd.plan.pp, ptd.plan.schedule, ptd.plan.virtual_stages) == (8, 35, "interleaved", 3)
    zero3 = cases["gpt3-175b ZeRO-3 (1536 GPUs)"]
    assert (zero3.plan.zero, zero3.plan.stack, zero3.plan.tp, zero3.plan.pp) == (3, "deepspeed-2021", 1, 1)
    # PTD rows: within 5 % (held-out; nothing was tuned on them). The ZeRO-3 rows are reported,
    # not bounded: DeepSpeed v0.3's ZeRO-3 with its configuration defaults, modelled tensor by tensor
    # from its code, still predicts every one of them too fast: the table's runs were slower than
    # that code explains (README, "How right it is")
    for r in validate("narayanan2021-table2").cases:
        if "PTD" in r.case:
            assert abs(r.error) < 0.05, r.case
        else:
            assert r.error < 0, r.case


def test_mpt_rows_are_the_models_llm_foundry_built():
    """LLM Foundry's benchmark yamls leave MPTConfig's defaults: biases, learned positions, no ALiBi;
    the README's NumParams match that structure to the parameter: 32 (12 h^2 + 13 h) +
    (50368 + 2048) h + 2 h = 6,658,859,008 at h = 4096, and the seq-32k run's position table adds
    (32768 - 2048) h."""
    from perfmodel.validation.heldout import HELDOUT_FILE, _cases
    from perfmodel.validation.results import read_rows

    h = 4096
    cases = {c.case: c for c in _cases() if hasattr(c, "plan")}
    assert cases["mpt7b_h100_8gpu_seq2k"].model.n_params == 32 * (12 * h * h + 13 * h) + (50368 + 2048) * h + 2 * h
    assert cases["mpt7b_h100_8gpu_seq32k"].model.n_params - cases["mpt7b_h100_8gpu_seq2k"].model.n_params == \
        (32768 - 2048) * h
    published = {r["case"]: float(r["params_billion"]) * 1e9 for r in read_rows(HELDOUT_FILE)}
    for name, case in cases.items():
        if name.startswith("mpt"):
            assert case.model.n_params == pytest.approx(published[name], abs=1e3), name
