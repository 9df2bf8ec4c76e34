"""Crossover = predict (issue 12): at the operating point, every scheme's equation gives the same
compute and communication terms as the step model that ``predict`` runs, for every bundled stack.

The equations are built from the step model's own terms and rules (perfmodel.prediction.rules),
so these equalities are exact up to float rounding; a gap means the two have drifted (as the TP
equation once ignored the megatron-core stack's TP overlap).
"""

from __future__ import annotations

import pytest

from perfmodel.crossover.equations import equation, point
from perfmodel.plan import Plan
from perfmodel.specs.registry import load_system
from perfmodel.specs.stack import stack_names
from perfmodel.workloads import load_model

REL = 1e-9  # float rounding only: both sides run the same functions

STACKS = stack_names()
PLANS = {
    # (model, system, plan): TP inside a node, PP across nodes, DP across nodes
    "transformer": ("megatron-1.7b", "dgx-h100",
                    dict(tp=4, pp=2, dp=4, micro_batch=2, global_batch=64, recompute="selective",
                         schedule="interleaved", virtual_stages=2, sequence_parallel=True)),
    "full-recompute": ("megatron-3.6b", "dgx-a100",
                       dict(tp=8, pp=2, dp=2, micro_batch=1, global_batch=32, recompute="full")),
    "zero3": ("gpt2-355m", "dgx-a100", dict(tp=2, pp=1, dp=16, micro_batch=4, global_batch=256, zero=3)),
    # the distributed optimizer: gradients reduce-scattered, 16-bit parameters all-gathered
    "zero1": ("megatron-1.7b", "dgx-h100", dict(tp=2, pp=1, dp=16, micro_batch=2, global_batch=256, zero=1)),
    # untied embeddings over pipeline stages (no all-reduce between the ends), GQA, SwiGLU
    "untied": ("llama2-7b", "dgx-h100", dict(tp=2, pp=4, dp=2, micro_batch=1, global_batch=16, seq=4096)),
    # FP8 linear layers: megatron-core's overlapped all-gathers move the 1-byte copies
    "fp8": ("llama2-7b", "dgx-h100", dict(tp=4, pp=2, dp=1, micro_batch=1, global_batch=8, seq=4096, dtype="fp8",
                                          sequence_parallel=True)),
}


def _case(name, stack):
    from perfmodel.errors import PlanError

    from perfmodel.specs.stack import load_stack

    model, system, fields = PLANS[name]
    dtypes = load_stack(stack).capabilities.dtypes  # a stack without bf16 (deepspeed-2021) runs fp16
    if fields.get("dtype", "bf16") not in dtypes:
        fields = dict(fields, dtype=dtypes[-1])
    try:
        return point(load_model(model), load_system(system), Plan(stack=stack, **fields))
    except PlanError as exc:  # a plan the stack cannot run (its capabilities): nothing to compare
        pytest.skip(str(exc))


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("name", sorted(PLANS))
@pytest.mark.parametrize("solve_for", ["devices", "bandwidth"])
def test_tp_equation_equals_the_step(name, stack, solve_for):
    pt = _case(name, stack)
    comm, comp = equation(pt, "tp", solve_for).evaluate(_x0(pt, "tp", solve_for))
    assert comm == pytest.approx(float(pt.terms.tp_exposed_per_layer_s), rel=REL)
    assert comp == pytest.approx(float(pt.terms.layer_compute_s), rel=REL)


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("name", sorted(PLANS))
@pytest.mark.parametrize("solve_for", ["devices", "bandwidth", "micro-batch"])
def test_pp_equation_equals_the_step(name, stack, solve_for):
    pt = _case(name, stack)
    if pt.plan.pp == 1:
        pytest.skip("one stage: no pipeline")
    comm, comp = equation(pt, "pp", solve_for).evaluate(_x0(pt, "pp", solve_for))
    bd = pt.terms.breakdown
    assert comm == pytest.approx(float(bd["pp_comm"] + bd["pipeline_bubble"]), rel=REL)
    assert comp == pytest.approx(float(bd["compute"] + bd["recompute"]), rel=REL)


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("name", sorted(PLANS))
@pytest.mark.parametrize("solve_for", ["devices", "bandwidth", "micro-batch"])
def test_dp_equation_equals_the_step(name, stack, solve_for):
    pt = _case(name, stack)
    comm, comp = equation(pt, "dp", solve_for).evaluate(_x0(pt, "dp", solve_for))
    st = pt.terms
    assert comm == pytest.approx(float(st.dp_sync_s), rel=REL)
    assert comp == pytest.approx(float(st.n_microbatches * st.backward_per_microbatch_s), rel=REL)


@pytest.mark.parametrize("stack", STACKS)
def test_dp_equation_equals_the_dense_step(stack):
    from perfmodel.prediction import predict

    from perfmodel.specs.stack import load_stack

    system = load_system("dgx-a100")
    dtypes = load_stack(stack).capabilities.dtypes  # bf16 where the stack runs it (deepspeed-2021: fp16)
    plan = Plan(devices=32, micro_batch=64, global_batch=2048, stack=stack, dtype="bf16" if "bf16" in dtypes else dtypes[-1])
    pt = point(load_model("resnet50"), system, plan)
    comm, comp = equation(pt, "dp", "devices").evaluate(pt.plan.devices)
    r = predict("resnet50", system, plan)
    assert comm == pytest.approx(r.details["dp_sync_s"], rel=REL)
    assert comp == pytest.approx(r.details["n_microbatches"] * r.details["backward_per_microbatch_s"], rel=REL)


def test_tp_overlap_of_megatron_core_reaches_the_crossover():
    """The defect issue 12 names: with megatron-core's TP overlap the exposed TP time is smaller
    than the collectives' time, and the TP equation now says so."""
    pt = _case("transformer", "megatron-core")
    comm, _ = equation(pt, "tp", "devices").evaluate(pt.plan.tp)
    plain = _case("transformer", "megatron")
    assert pt.stack.tp_comm_overlap and not plain.stack.tp_comm_overlap
    assert comm < _all_tp_comm(pt)
    assert comm == pytest.approx(float(pt.terms.tp_exposed_per_layer_s), rel=REL)
    assert equation(plain, "tp", "devices").evaluate(plain.plan.tp)[0] == pytest.approx(_all_tp_comm(plain), rel=REL)


def test_more_tp_ranks_than_kv_heads_in_the_equation_as_in_the_step():
    """llama2-70b's 8 key/value heads on 16 TP ranks: the QKV all-gather and its reduce-scatter count
    in the TP equation as in the step, with and without the stack's overlap slots."""
    for stack in ("megatron", "megatron-core"):
        pt = point(load_model("llama2-70b"), load_system("dgx-h100"),
                   Plan(stack=stack, tp=16, pp=1, dp=1, micro_batch=1, global_batch=1, seq=4096, sequence_parallel=True))
        comm, _ = equation(pt, "tp", "devices").evaluate(pt.plan.tp)
        assert comm == pytest.approx(float(pt.terms.tp_exposed_per_layer_s), rel=REL)


def test_tp_overlap_needs_sequence_parallelism():
    """Transformer Engine's userbuffers overlap runs only with sequence parallelism (Megatron-Core
    turns --tp-comm-overlap off without it): without it every collective waits, in the equation
    as in the step."""
    model, system, fields = PLANS["transformer"]
    pt = point(load_model(model), load_system(system), Plan(stack="megatron-core", **{**fields, "sequence_parallel": False}))
    comm, _ = equation(pt, "tp", "devices").evaluate(pt.plan.tp)
    assert comm == pytest.approx(_all_tp_comm(pt), rel=REL)
    assert float(pt.terms.tp_exposed_per_layer_s) == pytest.approx(_all_tp_comm(pt), rel=REL)


def _all_tp_comm(pt):
    from perfmodel.formulas.collectives import ring_allreduce_time
    from perfmodel.prediction.placement import placement_levels

    plan = pt.plan
    alpha, beta = placement_levels(pt.hw, plan.tp, plan.dp, plan.pp, plan.devices).tp
    return pt.layer["n_ar"] * ring_allreduce_time(plan.tp, plan.micro_batch * pt.layer["u"], alpha, beta)


def _x0(pt, scheme, solve_for):
    return equation(pt, scheme, solve_for).x0
