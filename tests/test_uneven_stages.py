"""Uneven pipeline stages (issue 11: 126 layers over 16 stages, the embedding or the loss as a stage
of its own): Megatron-Core's --decoder-first-pipeline-num-layers / --decoder-last-pipeline-num-layers
as --first-stage-layers / --last-stage-layers. The stages between split the rest evenly; the
slowest stage sets the pace and the fullest the memory. Checked by hand here."""

from __future__ import annotations

import pytest

import perfmodel as pm
from perfmodel.errors import PlanError
from perfmodel.prediction.rules import Choices
from perfmodel.prediction.stages import layout
from perfmodel.prediction.step import transformer_terms
from perfmodel.specs.stack import load_stack
from perfmodel.workloads.transformer import TransformerModel

# Llama 3.1 405B's shape (Hugging Face config of meta-llama/Llama-3.1-405B): 126 layers, GQA 8
L405 = TransformerModel(name="llama405", n_layers=126, hidden=16384, n_heads=128, n_kv_heads=8, ffn_hidden=53248,
                        vocab=128256, seq_len=8192, positions="rotary", mlp="swiglu", norm="rmsnorm", bias=False,
                        tied_embeddings=False, dropout=False)
PLAN_405 = dict(devices=8192, tp=8, pp=16, micro_batch=1, global_batch=2048, sequence_parallel=True, zero=1)


def test_the_layout_splits_the_rest_evenly():
    assert tuple(layout(126, 16, 7, 7))[:3] == (7, 8, 7)  # 112 layers over 14 stages
    assert tuple(layout(126, 16))[:3] == (8, 8, 8) and layout(126, 16).even  # ceil(126 / 16)
    assert tuple(layout(32, 5, 0, None))[:3] == (0, 8, 8)  # the embedding as a stage of its own


def test_plans_megatron_core_would_refuse_are_refused():
    with pytest.raises(PlanError, match="leave 111, which the other 14 stages cannot split evenly"):
        pm.predict(L405, "dgx-h100", **PLAN_405, first_stage_layers=7, last_stage_layers=8)
    with pytest.raises(PlanError, match="need pp >= 2"):
        pm.predict("llama2-7b", "dgx-h100", devices=8, first_stage_layers=4)
    with pytest.raises(PlanError, match="1f1b or gpipe"):
        pm.predict("llama2-7b", "dgx-h100", devices=8, pp=4, global_batch=32, schedule="interleaved", virtual_stages=2,
                   first_stage_layers=6, last_stage_layers=6)
    with pytest.raises(PlanError, match="first_stage_layers: expected an integer"):
        pm.predict("llama2-7b", "dgx-h100", devices=8, pp=4, first_stage_layers=-1)


def _terms(model, system, **plan):
    from perfmodel.plan import Plan, resolve

    sys_ = pm.load_system(system)
    p = resolve(Plan(**plan), model, sys_)
    stack = load_stack(p.stack)
    from perfmodel.prediction.hardware import hw_params

    hw = hw_params(sys_, p.dtype, stack.gemm_rate_scale)
    return p, transformer_terms(model, stack, hw, Choices.of(p), tp=p.tp, pp=p.pp, dp=p.dp, micro_batch=p.micro_batch,
                                global_batch=p.global_batch, virtual_stages=p.virtual_stages, seq=p.seq,
                                devices=p.devices)


def test_the_slowest_stage_sets_the_pace():
    llama = pm.load_model("llama2-7b")
    plan = dict(devices=8, tp=2, pp=4, global_batch=32)
    p, even = _terms(llama, "dgx-h100", **plan)
    # embedding and loss each on a stage of their own: the two middle stages hold 16 layers each
    _, ends_alone = _terms(llama, "dgx-h100", **plan, first_stage_layers=0, last_stage_layers=0)
    m = p.n_microbatches
    assert ends_alone.n_layers_per_stage == 16
    assert ends_alone.breakdown["compute"] == pytest.approx(m * 16 * float(even.layer_compute_s), rel=1e-12)
    # 6 / 10 / 10 / 6: a middle stage of 10 layers (more than the 8 + LM head of the even split)
    _, six = _terms(llama, "dgx-h100", **plan, first_stage_layers=6, last_stage_layers=6)
    assert six.n_layers_per_stage == 10
    assert six.breakdown["compute"] == pytest.approx(m * 10 * float(even.layer_compute_s), rel=1e-12)


def test_the_405b_plan_with_seven_layer_ends_by_hand():
    # Llama 3 405B's layout (Llama 3 paper, Section 3.3.2: one layer fewer on the first and last stage)
    even = pm.predict(L405, "dgx-h100", **PLAN_405)
    uneven = pm.predict(L405, "dgx-h100", **PLAN_405, first_stage_layers=7, last_stage_layers=7)
    d = uneven.details
    per_layer = sum(v for k, v in d.items() if k.startswith("memory_layer_") and k.endswith("_bytes"))
    # the fullest stage is the second: 8 layers x 15 micro-batches in flight (1F1B: p - 1), more
    # than the first stage's 7 x 16 and the last's 7 x 1 (+ logits)
    assert uneven.memory_bytes_per_device["activations"] == pytest.approx(8 * 15 * per_layer, rel=1e-12)
    assert d["memory_layers_held"] == 8 * 15  # the details describe that stage too
    assert even.memory_bytes_per_device["activations"] == pytest.approx(8 * 16 * per_layer, rel=1e-12)
    # parameters: the largest stage's, a middle stage of 8 layers (the first: 7 layers + embedding)
    per = L405.n_params_per_layer / 8
    assert d["params_per_device"] == pytest.approx(max(8 * per, 7 * per + L405.vocab * L405.hidden / 8), rel=1e-12)
    assert uneven.step_time_s < even.step_time_s  # the ends no longer carry 8 layers and the head
    assert uneven.memory_bytes_per_device["total"] < even.memory_bytes_per_device["total"]


def test_the_cli_takes_the_flags(capsys, monkeypatch):
    from perfmodel.cli import main

    monkeypatch.setenv("COLUMNS", "200")
    args = ["predict", "--model", "llama2-7b", "--system", "dgx-h100", "--devices", "8", "--pp", "4",
            "--global-batch", "32", "--first-stage-layers", "6", "--last-stage-layers", "6", "--format", "json"]
    assert main(args) in (0, None)
    import json

    out = json.loads(capsys.readouterr().out)
    assert out["plan"]["first_stage_layers"] == 6 and out["plan"]["last_stage_layers"] == 6
    with pytest.raises(SystemExit) as exc:
        main(args[:-4] + ["--first-stage-layers", "7", "--last-stage-layers", "6"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and len(err.strip().splitlines()) == 1 and "cannot split evenly" in err


def test_unequal_stages_idle_for_the_other_stages_times():
    # pp 2 with the embedding alone on the first stage: the pipeline fills and drains through the
    # embedding once, so the bubble is the embedding's forward + backward and one stage's transfers,
    # not a whole 32-layer stage (m micro-batches through stages T_i: (m - 1) max T_i + sum T_i)
    from perfmodel.prediction.layers import embedding_times
    from perfmodel.prediction.step import device_rates

    llama = pm.load_model("llama2-7b")
    p, st = _terms(llama, "dgx-h100", devices=8, tp=4, pp=2, global_batch=16, first_stage_layers=0)
    stack = load_stack(p.stack)
    from perfmodel.prediction.hardware import hw_params

    rates = device_rates(hw_params(pm.load_system("dgx-h100"), p.dtype, stack.gemm_rate_scale), p.dtype, stack)
    emb_f, emb_b = embedding_times(llama, rates, b=1, s=4096)
    assert st.breakdown["pipeline_bubble"] == pytest.approx(emb_f + emb_b + float(st.pp_comm_per_microbatch_s), rel=1e-9)
    # even stages: one stage's layers and transfers, and the faster end (the embedding) once: the
    # slower end (the LM head) is in the pacing stage's time, not in the fill and drain
    _, even = _terms(llama, "dgx-h100", devices=8, tp=4, pp=2, global_batch=16)
    head, both = float(even.ends_split_per_microbatch_s), float(even.ends_single_per_microbatch_s)
    assert even.breakdown["pipeline_bubble"] == pytest.approx(
        float(even.stage_time_per_microbatch_s) - head + (both - head), rel=1e-12)
    assert both - head == pytest.approx(emb_f + emb_b, rel=1e-9)


@pytest.mark.parametrize("stack", ["megatron", "deepspeed", "fsdp", "jax-xla", "pytorch-eager"])
def test_only_a_stack_that_runs_uneven_stages_takes_them(stack):
    """Megatron-Core has the flags; the others split the layers evenly (or have no such option):
    one line naming the stack and the feature."""
    model = pm.load_model("llama2-70b")
    plan = dict(devices=64, tp=8, pp=4, first_stage_layers=17, global_batch=64)
    assert pm.predict(model, "dgx-h100", pm.Plan(stack="megatron-core", **plan)).step_time_s > 0
    with pytest.raises(PlanError, match=f"stack '{stack}' does not run uneven pipeline stages"):
        pm.predict(model, "dgx-h100", pm.Plan(stack=stack, zero=0, **plan))


def test_first_and_last_stage_layers_of_the_even_split_change_nothing():
    """Naming the even split's own first and last stage layer counts is the even layout: one
    bubble formula for both (1F1B fills and drains once through each stage, the embedding's and the
    LM head's stages included; found by a newcomer audit, where the two paths differed by 2 %)."""
    plan = pm.Plan(devices=32, pp=4, stack="megatron-core", global_batch=64)
    even = pm.predict("llama2-7b", "dgx-h100", plan)
    named = pm.predict("llama2-7b", "dgx-h100", plan.replace(first_stage_layers=8, last_stage_layers=8))
    assert named.step_time_s == pytest.approx(even.step_time_s, rel=1e-9)
    assert named.breakdown_s["pipeline_bubble"] == pytest.approx(even.breakdown_s["pipeline_bubble"], rel=1e-9)


def test_two_stages_both_given_must_hold_every_layer():
    with pytest.raises(PlanError, match="with pp = 2 the first / last stage's 10 / 10 layers are all the stages: "
                                        "together they must hold llama2-7b's 32 layers, not 20"):
        pm.predict("llama2-7b", "dgx-h100", pm.Plan(devices=8, pp=2, first_stage_layers=10, last_stage_layers=10,
                                                    stack="megatron-core"))


def test_stages_without_a_layer_are_said():
    """A layout that leaves stages with no transformer layer runs (Megatron-Core 0.9's
    first_pipeline_num_layers takes it) and says so; a given count of 0 says which versions run it
    (found by a newcomer audit)."""
    r = pm.predict("llama2-7b", "dgx-h100", pm.Plan(devices=32, pp=4, first_stage_layers=32, stack="megatron-core"))
    assert "the 2 middle stages hold no transformer layer: they only pass activations on" in r.notes
    assert "the last stage holds no transformer layer: the LM head and loss alone" in r.notes
    r0 = pm.predict("llama2-7b", "dgx-h100", pm.Plan(devices=40, pp=5, first_stage_layers=0, stack="megatron-core"))
    assert any("runs on Megatron-Core 0.9-0.10; from 0.11 a given count must be at least 1" in n for n in r0.notes)
    even = pm.predict("llama2-7b", "dgx-h100", pm.Plan(devices=32, pp=4, stack="megatron-core"))
    assert not any("stage" in n for n in even.notes)
