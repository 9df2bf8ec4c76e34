"""Property-based invariants of the model (issue 7, item 2), checked with hypothesis.

Each invariant is a statement that must hold for *every* valid input, not a number from a paper:
the step time moves the right way when hardware gets faster or the model bigger, nothing is NaN
or infinite, the three backends of every formula agree, the breakdown adds up, sweeps agree with
scalar predictions, the reported crossover is a crossover, the same input gives the same output,
memory moves the right way with the plan. Inputs are drawn by tests/strategies.py (domain rules
documented there); every test runs ``INVARIANT`` examples (at least 500), derandomized so CI is
deterministic (no example database, a fixed seed per test derived from its source).

Tolerances: ``REL`` for two computations of the same quantity along different code paths
(float vs numpy vs sympy-lambdified, scalar vs vectorized, sum of parts vs total); monotonicity
is checked with the same relative slack, so only a real reversal fails.
"""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, assume, example, given, settings
from hypothesis import strategies as st

from perfmodel.prediction.hardware import GemmShapeModel
from tests import strategies as S

N_EXAMPLES = 500
# no shrinking: examples are drawn from one seed each (tests/strategies.py, Chooser), so a smaller
# seed is not a simpler example; the failure report prints the configuration itself
INVARIANT = settings(max_examples=N_EXAMPLES, deadline=None, derandomize=True, database=None,
                     phases=(Phase.explicit, Phase.generate),
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                            HealthCheck.data_too_large])
REL = 1e-9
ABS = 1e-300

BREAKDOWN = ("compute", "recompute", "optimizer", "tp_comm", "pp_comm", "dp_comm", "cp_comm", "pipeline_bubble", "other")
MEMORY = ("weights", "gradients", "optimizer", "activations", "total")


def close(a, b, rel=REL) -> bool:
    return bool(np.all(np.isclose(a, b, rtol=rel, atol=ABS)))


def non_increasing(y, rel=REL) -> bool:
    y = np.asarray(y, dtype=float)
    return bool(np.all(y[1:] <= y[:-1] * (1 + rel)))


def non_decreasing(y, rel=REL) -> bool:
    y = np.asarray(y, dtype=float)
    return bool(np.all(y[1:] >= y[:-1] * (1 - rel)))


# ================================================================================================
# 1. Formulas: float, numpy and sympy-lambdified results are equal, finite and non-negative
# ================================================================================================


@functools.cache
def _catalogue():
    """(name, function, parameter names, lambdified sympy form) of every formula, built once."""
    from perfmodel.catalog import formulas
    from perfmodel.symbolic import lambdify

    return tuple((f.name, f.func, f.parameters, lambdify(f.func, modules="numpy")) for f in formulas())


def test_every_formula_has_a_domain_rule():
    """The backend invariant below covers the whole catalogue: every parameter has a rule."""
    from perfmodel.formulas.notation import NOTATION

    derived = {"n", "kernel_extent", "dilation", "padding", "stride", "in_extent", "n_groups", "n_in_channels",
               "n_out_channels", "n_nodes_per_leaf", "n_servers", "n_ports", "n_kv_heads", "critical_path_time",
               "collective_units"}
    params = {p for _, _, ps, _ in _catalogue() for p in ps}
    assert params <= set(S.DOMAIN_RULES) | derived, sorted(params - set(S.DOMAIN_RULES) - derived)
    assert params <= set(NOTATION)
    assert len(_catalogue()) >= 200


@INVARIANT
@given(S.formula_worlds(), S.formula_worlds())
def test_formula_backends_agree_for_every_formula(w1, w2):
    """For EVERY formula of the catalogue, on two random points of its domain: the float call,
    one numpy call on both points at once (arrays of shape (2,), so where/maximum see both
    branches together) and the sympy expression compiled by perfmodel.symbolic.lambdify give the
    same number, and it is finite and non-negative (times, sizes, counts, rates, ratios)."""
    import warnings

    cat = _catalogue()
    floats = np.empty((len(cat), 2))
    vector = np.empty((len(cat), 2))
    symbolic = np.empty((len(cat), 2))
    args = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # np.where evaluates both branches
        for i, (name, func, params, lam) in enumerate(cat):
            a1, a2 = S.formula_args(func, params, w1), S.formula_args(func, params, w2)
            args.append((a1, a2))
            floats[i] = float(func(**a1)), float(func(**a2))
            arrays = [np.array([a1[k], a2[k]]) for k in params]
            vector[i] = func(**dict(zip(params, arrays)))
            symbolic[i] = lam(*arrays)
    bad_value = ~(np.isfinite(floats) & (floats >= 0)).all(axis=1)
    bad_numpy = ~np.isclose(vector, floats, rtol=REL, atol=ABS).all(axis=1)
    bad_sympy = ~np.isclose(symbolic, floats, rtol=REL, atol=ABS).all(axis=1)
    failures = [(cat[i][0], why, args[i], floats[i], vector[i], symbolic[i])
                for i in range(len(cat))
                for why, bad in (("not finite / negative", bad_value), ("numpy != float", bad_numpy),
                                 ("sympy-lambdified != float", bad_sympy)) if bad[i]]
    assert not failures, failures[:3]


# ================================================================================================
# 2. Step time moves the right way with the hardware (transformer_terms on arrays)
# ================================================================================================

# HwParams fields that are bandwidths (or multiply one: parallel links, NICs), with a range of
# absolute values to sweep; only fields the system's placement uses are drawn (see _applicable)
BANDWIDTH_FIELDS = {
    "fabric_bandwidth": (1e8, 1e13), "uplink_bandwidth": (1e8, 1e13), "root_bandwidth": (1e8, 1e13),
    "network_bandwidth": (1e7, 1e12), "memory_bandwidth": (1e10, 1e14),
}
COUNT_FIELDS = {"fabric_links": (1, 32), "nics_per_node": (1, 32)}
LATENCY_FIELDS = ("fabric_latency", "uplink_latency", "network_latency")


def _applicable(hw, name: str) -> bool:
    if name.startswith("fabric") or name in ("devices_per_switch",):
        return hw.fabric_kind != "none"
    if name in ("uplink_bandwidth", "root_bandwidth", "uplink_latency"):
        return hw.fabric_kind == "pcie-tree"
    if name.startswith("network") or name == "nics_per_node":
        return hw.has_network
    return True


def _check_moves(cfg, field, values, direction):
    """step time over ``values`` of HwParams ``field``: finite, monotone; memory unchanged."""
    r = S.terms(cfg, replace(cfg.hw, **{field: values}))
    step = np.broadcast_to(r.step_time_s, values.shape)
    assert np.all(np.isfinite(step)) and np.all(step > 0), (field, values, step)
    ok = non_increasing(step) if direction < 0 else non_decreasing(step)
    assert ok, (f"step time not {'non-increasing' if direction < 0 else 'non-decreasing'} in {field}",
                cfg.model, cfg.system_name, cfg.plan, values, step)
    # hardware speed never changes what is stored
    total = np.broadcast_to(r.memory["total"], values.shape)
    assert close(total, total[0]), (field, total)


@INVARIANT
@given(cfg=S.configs(), seed=S.SEEDS)
def test_step_time_non_increasing_in_every_bandwidth(cfg, seed):
    """More bandwidth (fabric link, PCIe switch uplink and root complex, network NIC, device
    memory; more parallel fabric links or NICs) never makes a step slower."""
    c = S.Chooser(seed)
    field = c.pick([f for f in [*BANDWIDTH_FIELDS, *COUNT_FIELDS] if _applicable(cfg.hw, f)])
    if field in COUNT_FIELDS:
        values = np.unique(np.round(c.increasing(*COUNT_FIELDS[field])))
        assume(len(values) > 1)
    else:
        values = c.increasing(*BANDWIDTH_FIELDS[field])
    _check_moves(cfg, field, values, -1)


@INVARIANT
@given(cfg=S.configs(), seed=S.SEEDS)
def test_step_time_non_increasing_in_peak_flops(cfg, seed):
    """A faster device (gemm_scale: every measured GEMM and attention rate times a factor, the
    sweep's 'device.peak') never makes a step slower."""
    _check_moves(cfg, "gemm_scale", S.Chooser(seed).increasing(1e-3, 1e3) * cfg.hw.gemm_scale, -1)


@INVARIANT
@given(cfg=S.configs(), seed=S.SEEDS)
def test_step_time_non_decreasing_in_every_latency(cfg, seed):
    """More latency (fabric link, PCIe switch uplink, network) never makes a step faster."""
    fields = [f for f in LATENCY_FIELDS if _applicable(cfg.hw, f)]
    assume(fields)
    c = S.Chooser(seed)
    field = c.pick(fields)
    values = c.increasing(1e-9, 1e-2)
    if c.flip():
        values = np.concatenate([[0.0], values])
    _check_moves(cfg, field, values, +1)


@INVARIANT
@given(cfg=S.configs(), seed=S.SEEDS)
def test_step_time_moves_right_with_system_spec_what_ifs(cfg, seed):
    """The same through the public path: a copy of the *spec* (dataclasses.replace of a link,
    the network or the device) predicted with ``predict``; faster links, more NICs or memory
    bandwidth never slow a step, more latency or oversubscription never speed it up."""
    from perfmodel import predict

    sys_ = cfg.system
    options = ["memory_bandwidth"]
    if sys_.fabric.kind != "none":
        options += ["fabric_bandwidth", "fabric_latency"]
    if sys_.network is not None:
        options += ["network_bandwidth", "network_latency", "nics_per_node", "oversubscription"]
    c = S.Chooser(seed)
    what = c.pick(options)
    factor = c.log_uniform(1.01, 1e3)

    def spec(f):
        if what == "memory_bandwidth":
            dev = sys_.device
            return replace(sys_, device=replace(dev, memory_bandwidth=dev.memory_bandwidth * f,
                                                measured_memory_bandwidth=None if dev.measured_memory_bandwidth
                                                is None else dev.measured_memory_bandwidth * f))
        if what.startswith("fabric"):
            link = sys_.fabric.link
            attr = "bandwidth" if what.endswith("bandwidth") else "latency"
            base = getattr(link, attr) if attr == "bandwidth" else max(link.latency, 1e-7)
            return replace(sys_, fabric=replace(sys_.fabric, link=replace(link, **{attr: base * f})))
        net = sys_.network
        if what == "nics_per_node":
            return replace(sys_, network=replace(net, nics_per_node=net.nics_per_node * round(f)))
        if what == "oversubscription":
            return replace(sys_, network=replace(net, oversubscription=max(net.oversubscription, 1.0) * f))
        attr = "bandwidth" if what.endswith("bandwidth") else "latency"
        base = getattr(net.link, attr) if attr == "bandwidth" else max(net.link.latency, 1e-7)
        return replace(sys_, network=replace(net, link=replace(net.link, **{attr: base * f})))

    lo, hi = predict(cfg.model, spec(1.0), cfg.plan), predict(cfg.model, spec(factor), cfg.plan)
    slower_when_bigger = what in ("fabric_latency", "network_latency", "oversubscription")
    if slower_when_bigger:
        assert hi.step_time_s >= lo.step_time_s * (1 - REL), (what, factor, lo.step_time_s, hi.step_time_s)
    else:
        assert hi.step_time_s <= lo.step_time_s * (1 + REL), (what, factor, lo.step_time_s, hi.step_time_s)


# ================================================================================================
# 3. Step time grows with the model
# ================================================================================================

GROWTHS = ("layers", "hidden", "heads", "ffn_hidden", "vocab", "seq")


def _grown(cfg, what: str, c):
    """(model, plan) one size larger along ``what``, in the same plan and alignment class.

    Tensor cores run GEMMs whose dimensions are multiples of 8 faster (hardware.is_aligned): a
    model that becomes aligned may legitimately get faster, so growth keeps every dimension's
    residue mod 8 -- head_dim grows by multiples of 8, the vocabulary by multiples of 8 t."""
    m, p = cfg.model, cfg.plan
    j = c.rint(1, 8)
    if what == "layers":
        return replace(m, n_layers=m.n_layers + j * p.pp * p.virtual_stages), p
    if what in ("hidden", "heads"):
        heads = m.n_heads * (j + 1) if what == "heads" else m.n_heads
        kv = m.n_kv_heads * (j + 1) if what == "heads" else m.n_kv_heads
        head_dim = m.head_dim + (8 * j if what == "hidden" else 0)
        hidden = heads * head_dim
        # more heads can move hidden to another residue mod 8 (e.g. 3 heads of 4 -> 6 heads): skip those
        if hidden % 8 != m.hidden % 8:
            return None
        return replace(m, hidden=hidden, n_heads=heads, n_kv_heads=kv,
                       ffn_hidden=-(-m.ffn_hidden * hidden // m.hidden)), p
    if what == "ffn_hidden":
        return replace(m, ffn_hidden=m.ffn_hidden + 8 * j), p
    if what == "vocab":
        return replace(m, vocab=m.vocab + 8 * p.tp * j), p
    seq = p.seq + c.rint(1, 4096)
    return replace(m, seq_len=max(m.seq_len, seq), max_positions=max(m.max_positions, seq)), p.replace(seq=seq)


def _known_failures():
    """Regression examples, pinned with @example: each once exposed a defect that is now fixed
    (GEMM time falling with FLOPs; MFU above 1 with causal flash attention; sweeps crashing
    without a numeric grid key; sweeps and crossover ignoring in-switch reduction when a link's
    bandwidth changes)."""
    from perfmodel.workloads.transformer import TransformerModel

    small = TransformerModel(name="random-transformer", n_layers=74, hidden=160, n_heads=2, n_kv_heads=1,
                             vocab=65536, seq_len=777, ffn_hidden=426, mlp="swiglu")
    attention_heavy = TransformerModel(name="random-transformer", n_layers=3, hidden=512, n_heads=32,
                                       n_kv_heads=16, vocab=1000, seq_len=3000, positions="rotary",
                                       tied_embeddings=False)
    return {
        # ffn_hidden 426 -> 466 (Chooser(16) picks that growth): step 0.3118 s -> 0.3086 s
        "model_size": S.explicit(small, "h100-sxm5-80gb", devices=1, micro_batch=5, global_batch=25, seq=631,
                                 dtype="fp16", grad_sync="parameter-server", optimizer="sgd"),
        # Chooser(6): the fp16 curve around 2.1 GFLOP, time falling by 3.3 %
        "kernel_time": S.explicit("gpt2-124m", "h100-sxm5-80gb", dtype="fp16"),
        # mfu = 1.044
        "mfu": S.explicit(attention_heavy, "v100-sxm2-32gb", devices=1, micro_batch=4, global_batch=44, seq=3000,
                          dtype="fp32", recompute="selective", schedule="gpipe", zero=1, stack="pytorch-eager"),
        # Chooser(27) draws the grid {'schedule': ['gpipe', 'interleaved']}: 6 micro-batches, pp 8
        "sweep": S.explicit("llama2-7b", "pcie-8gpu", devices=224, tp=1, pp=8, micro_batch=2, global_batch=336,
                            seq=2870, dtype="fp16", schedule="gpipe", zero=2, stack="pytorch-eager", optimizer="sgd"),
        "sweep_sharp": S.explicit(TransformerModel(name="random-transformer", n_layers=46, hidden=2048, n_heads=8,
                                                   vocab=100003, seq_len=2048, ffn_hidden=5461, mlp="swiglu",
                                                   norm="rmsnorm", bias=False),
                                  "dgx-h100", devices=240, tp=8, pp=2, micro_batch=5, global_batch=375, seq=1460,
                                  dtype="fp8", recompute="full", schedule="gpipe", zero=2, overlap=False,
                                  stack="pytorch-eager"),
        "sweep_sharp_seed": 1,  # Chooser(1): {'fabric.link.bandwidth': [400e9, 12.5e9]}
    }


KNOWN = _known_failures()


@INVARIANT
@given(cfg=S.configs(), seed=S.SEEDS)
@example(cfg=KNOWN["model_size"], seed=16)
def test_step_time_non_decreasing_in_model_size(cfg, seed):
    """A bigger model (more layers, wider hidden, more heads, wider MLP, larger vocabulary,
    longer sequences) on the same plan and system never trains faster."""
    from perfmodel import predict

    c = S.Chooser(seed)
    what = c.pick(GROWTHS)
    grown = _grown(cfg, what, c)
    assume(grown is not None)
    model, plan = grown
    small = predict(cfg.model, cfg.system, cfg.plan)
    big = predict(model, cfg.system, plan)
    assert big.step_time_s >= small.step_time_s * (1 - REL), (
        what, cfg.model, model, cfg.system_name, cfg.plan, small.step_time_s, big.step_time_s,
        dict(small.breakdown_s), dict(big.breakdown_s))


# ================================================================================================
# 4. Every output of a valid prediction is finite; the breakdown adds up
# ================================================================================================


def _numbers(r):
    yield "step_time_s", r.step_time_s
    yield "comm_total_s", r.comm_total_s
    yield "mfu", r.mfu
    yield "throughput", r.throughput
    for k, v in r.breakdown_s.items():
        yield f"breakdown.{k}", v
    for k, v in r.memory_bytes_per_device.items():
        yield f"memory.{k}", v
    for k, v in r.details.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            yield f"details.{k}", v


any_config = st.one_of(S.configs(), S.configs(), S.configs(), S.dense_configs())


@INVARIANT
@given(cfg=any_config)
def test_every_output_is_finite_for_valid_inputs(cfg):
    """No NaN or inf anywhere in a prediction of a valid plan (transformers and CNN / MLP
    presets): step time, breakdown, communication, memory, MFU, throughput, details; times and
    bytes are non-negative, the step time and throughput positive, the bound one of three."""
    from perfmodel import predict

    r = predict(cfg.model, cfg.system, cfg.plan)
    bad = {k: v for k, v in _numbers(r) if not (math.isfinite(v) and v >= 0)}
    # the one infinity by design: a device alone has no tensor-parallel link (hardware.intra_node_level
    # returns beta = inf for fabric 'none'); the JSON output renders it as null
    if cfg.system.fabric.kind == "none" and bad.get("details.tp_bandwidth_per_device") == math.inf:
        del bad["details.tp_bandwidth_per_device"]
    assert not bad, (cfg, bad)
    assert r.step_time_s > 0 and r.throughput > 0, cfg
    assert r.bound in ("compute", "communication", "memory"), r.bound
    assert set(r.breakdown_s) == set(BREAKDOWN) and set(r.memory_bytes_per_device) == set(MEMORY)


@INVARIANT
@given(cfg=any_config)
def test_breakdown_sums_to_step_time_and_memory_parts_to_total(cfg):
    """The breakdown's parts add up to step_time_s, the memory parts to the memory total, and
    the exposed communication (tp + pp + dp parts) never exceeds all communication."""
    from perfmodel import predict

    r = predict(cfg.model, cfg.system, cfg.plan)
    assert math.isclose(math.fsum(r.breakdown_s.values()), r.step_time_s, rel_tol=REL), (cfg, dict(r.breakdown_s))
    mem = r.memory_bytes_per_device
    parts = math.fsum(mem[k] for k in MEMORY if k != "total")
    assert math.isclose(parts, mem["total"], rel_tol=REL), (cfg, dict(mem))
    exposed = r.breakdown_s["tp_comm"] + r.breakdown_s["pp_comm"] + r.breakdown_s["dp_comm"]
    assert exposed <= r.comm_total_s * (1 + REL) + 1e-300, (cfg, exposed, r.comm_total_s, dict(r.breakdown_s))


@INVARIANT
@given(cfg=any_config)
def test_throughput_times_step_time_is_the_global_batch(cfg):
    """tokens/s x step time = global batch x sequence length (samples/s x step time = global
    batch for CNNs and MLPs)."""
    from perfmodel import predict

    r = predict(cfg.model, cfg.system, cfg.plan)
    if r.throughput_unit == "tokens_per_s":
        expected = cfg.plan.global_batch * cfg.plan.seq
    else:
        expected = cfg.plan.global_batch
    assert math.isclose(r.throughput * r.step_time_s, expected, rel_tol=REL), (cfg, r.throughput, r.step_time_s)


@INVARIANT
@given(cfg=any_config)
@example(cfg=KNOWN["mfu"])
def test_mfu_is_a_fraction(cfg):
    """0 < mfu <= 1: the model FLOPs of a step can never be done faster than at peak on every
    device (docs/interface.md: 'mfu  model FLOPs utilisation (0..1)')."""
    from perfmodel import predict

    r = predict(cfg.model, cfg.system, cfg.plan)
    assert 0 < r.mfu <= 1, (cfg, r.mfu, dict(r.breakdown_s), r.details["gemm_curve"])


# ================================================================================================
# 5. Identical inputs give identical outputs
# ================================================================================================


@INVARIANT
@given(cfg=any_config, other=any_config, seed=S.SEEDS)
def test_identical_inputs_give_identical_outputs(cfg, other, seed):
    """Predicting the same (model, system, plan) twice -- with another prediction in between,
    and from copies of the specs (new objects, equal fields) -- gives equal results, bit for bit
    (no hidden state, no cache keyed on object identity, no randomness).

    Copies are shallow (copy.copy, dataclasses.replace): specs and results hold MappingProxyType
    fields, which neither copy.deepcopy nor pickle can handle (TypeError: cannot pickle
    'mappingproxy' object) -- reported to the lead, not an invariant of this list."""
    from perfmodel import predict

    first = predict(cfg.model, cfg.system, cfg.plan)
    predict(other.model, other.system, other.plan)
    again = predict(cfg.model, cfg.system, cfg.plan)
    sys_ = cfg.system
    if S.Chooser(seed).flip():
        sys_ = replace(sys_, device=replace(sys_.device), fabric=replace(sys_.fabric))
    copied = predict(copy.copy(cfg.model), copy.copy(sys_), replace(cfg.plan))
    for r in (again, copied):
        assert r == first, cfg
        assert r.to_dict() == first.to_dict(), cfg


# ================================================================================================
# 6. Memory moves the right way with the plan
# ================================================================================================


def _memory(cfg, plan):
    from perfmodel import predict

    return predict(cfg.model, cfg.system, plan).memory_bytes_per_device


@INVARIANT
@given(cfg=S.configs(), seed=S.SEEDS)
def test_memory_grows_with_micro_batch(cfg, seed):
    """A larger micro-batch (same dp and number of micro-batches) stores strictly more
    activations and the same weights, gradients and optimizer state. Under a kernel inventory
    the memory is the peak's (prediction.step._inventory_memory): at the end of the backward
    (gradients allocated, activations freed) or at the end of the forward (activations and
    autocast's weight copies held, gradients only where earlier micro-batches or ranks made
    them). When the larger micro-batch moves the peak from the first to the second, its weights
    read at least as much and its gradients at most as much; the optimizer state never changes."""
    b = cfg.plan.micro_batch
    b2 = b + S.Chooser(seed).rint(1, 8)
    m = cfg.plan.n_microbatches
    small = _memory(cfg, cfg.plan)
    big = _memory(cfg, cfg.plan.replace(micro_batch=b2, global_batch=b2 * cfg.plan.dp * m))
    assert big["activations"] > small["activations"] and big["total"] > small["total"], (cfg, b2, small, big)
    assert math.isclose(big["optimizer"], small["optimizer"], rel_tol=REL), (cfg, b2)
    moved = small["activations"] == 0 < big["activations"]
    for k, sign in (("weights", 1), ("gradients", -1)):
        same = math.isclose(big[k], small[k], rel_tol=REL)
        assert same or (moved and sign * (big[k] - small[k]) > 0), (k, cfg, b2, small, big)


def _larger_plan(cfg, c):
    """(what, plan): tp or pp multiplied, dp, micro-batch and micro-batches fixed; None if no
    larger valid plan exists (a single device, no divisor left)."""
    from perfmodel.errors import PlanError


    p, m = cfg.plan, cfg.model
    tps = [t for t in S.divisors(math.gcd(m.n_heads, m.n_kv_heads), cap=64) if t > p.tp and t % p.tp == 0]
    pps = [q for q in S.divisors(m.n_layers // p.virtual_stages, cap=64) if q > p.pp and q % p.pp == 0]
    candidates = [("tp", t) for t in tps] + [("pp", q) for q in pps]
    while candidates:
        what, value = candidates.pop(c.rint(0, len(candidates) - 1))
        try:
            return what, S.runnable(p.replace(**{what: value}, devices=None), m, cfg.system)
        except PlanError:
            continue
    return None


@INVARIANT
@given(cfg=S.configs(), seed=S.SEEDS)
def test_memory_shrinks_with_tp_and_pp(cfg, seed):
    """More tensor- or pipeline-parallel ranks (dp, micro-batch and number of micro-batches
    held, so only the model is split finer) never increase the memory per device.

    One published exception, checked separately below: with the *interleaved* schedule the
    first stage keeps activations for p micro-batches times (1 + (p - 1)/(p v)) (Korthikanti et
    al. 2022, Section 4.2.3; Narayanan et al. SC'21, Section 2.2.2), which grows with p; where
    the replicated embedding dominates the weights, the total grows too (build_config(49):
    pp 3 -> 15, v = 2, vocab 256000 x hidden 80: 554.8 MB -> 573.6 MB). For that schedule the
    invariant is the model states (weights, gradients, optimizer) only."""
    larger = _larger_plan(cfg, S.Chooser(seed))
    assume(larger is not None)
    what, plan = larger
    before, after = _memory(cfg, cfg.plan), _memory(cfg, plan)
    if what == "pp" and plan.schedule == "interleaved":
        for k in ("weights", "gradients", "optimizer"):
            assert after[k] <= before[k] * (1 + REL), (k, cfg, plan, dict(before), dict(after))
        # activations grow at most by the ratio of the published factors (L/p x min(p, m) never grows)
        p1, p2, v = cfg.plan.pp, plan.pp, plan.virtual_stages
        bound = (1 + (p2 - 1) / (p2 * v)) / (1 + (p1 - 1) / (p1 * v))
        assert after["activations"] <= before["activations"] * bound * (1 + REL), (cfg, plan, bound, dict(before),
                                                                                    dict(after))
        return
    assert after["total"] <= before["total"] * (1 + REL), (what, cfg, plan, dict(before), dict(after))


# ================================================================================================
# 7. More devices with a fixed global batch never add compute per device
# ================================================================================================


@INVARIANT
@given(cfg=any_config, seed=S.SEEDS)
def test_more_devices_with_fixed_global_batch_never_add_compute_per_device(cfg, seed):
    """Multiplying dp by k with the global batch fixed divides each device's compute (and
    recompute) time by exactly k: strong scaling spreads the same work."""
    from perfmodel import predict
    from perfmodel.errors import PlanError


    p = cfg.plan
    k = S.Chooser(seed).rint(2, 8)
    # the base plan gets k times the micro-batches, so that dp x k still divides the batch
    base = p.replace(global_batch=p.global_batch * k)
    wide = p.replace(global_batch=p.global_batch * k, dp=p.dp * k, devices=p.devices * k)
    try:
        wide = S.runnable(wide, cfg.model, cfg.system)
    except PlanError:
        assume(False)
    r1, r2 = predict(cfg.model, cfg.system, base), predict(cfg.model, cfg.system, wide)
    for part in ("compute", "recompute"):
        a, b = r1.breakdown_s[part], r2.breakdown_s[part]
        assert b <= a * (1 + REL), (part, cfg, k, a, b)
        assert math.isclose(b * k, a, rel_tol=REL, abs_tol=1e-300), (part, cfg, k, a, b)


@INVARIANT
@given(cfg=S.configs(), seed=S.SEEDS)
@example(cfg=KNOWN["kernel_time"], seed=6)
def test_kernel_time_non_decreasing_in_flops(cfg, seed):
    """The root of the model-size invariant: on every device and dtype, a GEMM (aligned or
    not) or fused attention kernel with more FLOPs never takes less time (every kernel time of
    prediction.layers is curve.time(F) = F / rate(F) before the launch-overhead floor)."""
    hw = cfg.hw
    curves = [("gemm", hw.gemm), ("gemm_misaligned", hw.gemm_misaligned)]
    if hw.attention is not None:
        curves += [("attention_fwd", hw.attention[0]), ("attention_bwd", hw.attention[1])]
    c = S.Chooser(seed)
    name, curve = c.pick(curves)
    if isinstance(curve, GemmShapeModel):
        # the shape model: grow one of m, n, k (the others held) -- the FLOPs grow with it, and
        # the time never falls: tile and wave quantization (ceil) make flat steps and jumps up,
        # never down, and the memory roofline grows with every dimension
        dims = [c.rint(1, 16384) for _ in range(3)]
        axis = c.rint(0, 2)
        grid = np.unique(np.round(dims[axis] * np.geomspace(1, c.log_uniform(1.01, 100), 64)))
        args = [np.full_like(grid, float(d)) for d in dims]
        args[axis] = grid
        for aligned in (True, False):
            t = curve.time(*args, aligned, hw.memory_bandwidth, hw.gemm_scale)
            assert non_decreasing(t), (hw.device, cfg.plan.dtype, name, axis, dims, aligned)
        return
    lo, hi = math.exp(curve.log_flops[0]) / 10, math.exp(curve.log_flops[-1]) * 10
    start = c.log_uniform(lo, hi)
    flops = start * np.geomspace(1, c.log_uniform(1.01, 100), 64)
    t = curve.time(flops)
    assert non_decreasing(t), (hw.device, cfg.plan.dtype, name, curve.source, flops[np.argmin(np.diff(t))],
                               float(np.min(np.diff(t) / t[:-1])))


# ================================================================================================
# 8. Sweep rows equal scalar predictions
# ================================================================================================

# spec edits that make predict() see what a swept hardware key puts into HwParams (only keys
# whose spec value *is* the HwParams value: a PCIe link's spec bandwidth is a raw rate, the
# swept one a data rate, so PCIe link bandwidths are left out)
def _net(s, **changes):
    return replace(s, network=replace(s.network, **changes))


def _fab(s, **changes):
    return replace(s, fabric=replace(s.fabric, **changes))


HW_KEYS = {
    "network.link.bandwidth": lambda s, x: _net(s, link=replace(s.network.link, bandwidth=x)),
    "network.link.latency": lambda s, x: _net(s, link=replace(s.network.link, latency=x)),
    "network.nics_per_node": lambda s, x: _net(s, nics_per_node=int(x)),
    "network.oversubscription": lambda s, x: _net(s, oversubscription=x),
    "network.efficiency": lambda s, x: _net(s, efficiency=x),
    "fabric.link.bandwidth": lambda s, x: _fab(s, link=replace(s.fabric.link, bandwidth=x)),
    "fabric.link.latency": lambda s, x: _fab(s, link=replace(s.fabric.link, latency=x)),
    "fabric.efficiency": lambda s, x: _fab(s, efficiency=x),
    "device.memory.bandwidth": lambda s, x: replace(s, device=replace(s.device, memory_bandwidth=x,
                                                                      measured_memory_bandwidth=None)),
    "device.memory.capacity": lambda s, x: replace(s, device=replace(s.device, memory_bytes=x)),
}


def _hw_key_ok(sys_, key: str) -> bool:
    if key.startswith("network."):
        return sys_.network is not None and sys_.network.link.family != "pcie"
    if key.startswith("fabric."):
        return sys_.fabric.kind != "none" and sys_.fabric.link.family != "pcie"
    return True


NUMERIC_PLAN_KEYS = ("tp", "pp", "micro_batch", "seq", "global_batch")


def _sweep_grid(cfg, c, hardware: bool):
    """A grid of 1-2 keys with 2-3 values each: plan fields (some combinations invalid), or
    hardware keys (and, sometimes, one numeric plan field)."""
    m, p, sys_ = cfg.model, cfg.plan, cfg.system
    both = sorted(set(S.dtypes_of(cfg.system_name, "megatron")) & set(S.dtypes_of(cfg.system_name, "pytorch-eager")))
    plan_options = {
        "tp": [1, 2, 3, 4, 8, p.tp], "pp": [1, 2, 3, 4, p.pp], "micro_batch": [1, 2, 3, 4, 8, p.micro_batch],
        "seq": [16, 128, getattr(m, "seq_len", 1), p.seq],
        "global_batch": [p.global_batch, 2 * p.global_batch, p.global_batch + 1],
        "recompute": ["none", "selective", "full"], "zero": [0, 1, 2, 3],
        "sequence_parallel": [True, False], "overlap": [True, False], "dtype": both,
        "schedule": ["gpipe", "1f1b", "interleaved"], "virtual_stages": [1, 2],
        "grad_sync": ["allreduce", "parameter-server", "broadcast"], "stack": list(S.STACKS),
        "optimizer": ["adamw", "sgd"],
    }
    if S.preset_is_dense(m):
        plan_options = {k: plan_options[k] for k in ("micro_batch", "overlap", "grad_sync", "stack", "optimizer", "tp")}
    sys_base = {"network.link.bandwidth": sys_.network and sys_.network.link.bandwidth,
                "network.link.latency": sys_.network and max(sys_.network.link.latency, 1e-6),
                "network.nics_per_node": 2.0, "network.oversubscription": 1.0, "network.efficiency": 0.5,
                "fabric.link.bandwidth": sys_.fabric.link and sys_.fabric.link.bandwidth,
                "fabric.link.latency": sys_.fabric.link and max(sys_.fabric.link.latency, 1e-7),
                "fabric.efficiency": 0.5, "device.memory.bandwidth": sys_.device.memory_bandwidth,
                "device.memory.capacity": 1e9}
    # values a spec file could hold (perfmodel/specs/bounds.py): a grid refuses the others (issue 13 B5,
    # tests/test_hostile_inputs.py), as a spec file does
    from perfmodel.specs.bounds import violation

    hw_options = {key: [sys_base[key] * f for f in (0.5, 1.0, 3.0, 16.0) if violation(key, sys_base[key] * f) is None]
                  for key in HW_KEYS if _hw_key_ok(sys_, key)}

    def values_of(options, key):
        values = list(dict.fromkeys(options[key]))
        picked = []
        while len(picked) < min(len(values), c.rint(2, 3)):
            v = c.pick(values)
            if v not in picked:
                picked.append(v)
        return picked

    grid = {}
    if not hardware:
        for _ in range(c.rint(1, 2)):
            key = c.pick(plan_options)
            grid[key] = values_of(plan_options, key)
        return grid
    for _ in range(c.rint(1, 2)):
        key = c.pick(hw_options)
        grid[key] = values_of(hw_options, key)
    if c.flip():
        key = c.pick(NUMERIC_PLAN_KEYS)
        grid[key] = values_of(plan_options, key)
    return grid


def _cell(value):
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return int(value) if float(value).is_integer() and abs(value) < 2**53 else float(value)
    return str(value)


def _check_sweep_rows(cfg, grid):
    """Every row of ``perfmodel.sweep`` (perfmodel/sweeps) equals ``predict`` on that row's plan and (for hardware
    keys) on the spec edited to that value; a row marked invalid is one ``plan.resolve``
    refuses, with the same message."""
    from perfmodel import predict, sweep
    from perfmodel.errors import PlanError
    from perfmodel.plan import Plan

    base = {k: v for k, v in vars(cfg.plan).items() if k not in grid and k not in ("dp",)}
    df = sweep(cfg.model, cfg.system, grid, **base)
    assert len(df) == math.prod(len(v) for v in grid.values())
    for i in range(len(df)):
        row = df.iloc[i]
        values = {k: _cell(row[k]) for k in grid}
        plan_fields = {k: v for k, v in values.items() if k in vars(cfg.plan)}
        sys_ = cfg.system
        for k, v in values.items():
            if k in HW_KEYS:
                sys_ = HW_KEYS[k](sys_, float(v))
        plan = Plan(**{**base, **plan_fields})
        try:
            plan = S.runnable(plan, cfg.model, sys_)
        except PlanError as exc:
            assert isinstance(row["reason"], str) and row["reason"] == str(exc), (grid, values, row["reason"], exc)
            assert math.isnan(row["step_time_s"]), (grid, values)
            continue
        assert not isinstance(row["reason"], str), (grid, values, row["reason"])
        r = predict(cfg.model, sys_, plan)
        expected = {"step_time_s": r.step_time_s, "comm_total_s": r.comm_total_s, "mfu": r.mfu,
                    r.throughput_unit: r.throughput, "dp": plan.dp, "devices": plan.devices,
                    "n_microbatches": plan.n_microbatches, "global_batch": plan.global_batch}
        expected.update({f"breakdown_{k}_s": v for k, v in r.breakdown_s.items()})
        expected.update({f"memory_{k}_bytes": v for k, v in r.memory_bytes_per_device.items()})
        got = {k: float(row[k]) for k in expected if k in df.columns}
        assert set(got) >= set(expected) - {"dp", "devices", "global_batch"} - set(grid), sorted(df.columns)
        bad = {k: (got[k], expected[k]) for k in got
               if not math.isclose(got[k], expected[k], rel_tol=REL, abs_tol=1e-300)}
        assert not bad, (cfg, grid, values, bad)
        assert bool(row["fits_in_memory"]) == r.fits_in_memory and str(row["bound"]) == r.bound, (grid, values)


@INVARIANT
@given(cfg=st.one_of(*[S.configs()] * 7, S.dense_configs()), seed=S.SEEDS)
@example(cfg=KNOWN["sweep"], seed=27)
def test_sweep_rows_equal_scalar_predictions_plan_grids(cfg, seed):
    """Sweeps over plan fields (numeric and categorical, valid and invalid combinations; CNN /
    MLP presets too): every row equals predict on its plan, or is refused as resolve refuses it."""
    _check_sweep_rows(cfg, _sweep_grid(cfg, S.Chooser(seed), hardware=False))


@INVARIANT
@given(cfg=S.configs(), seed=S.SEEDS)
@example(cfg=KNOWN["sweep_sharp"], seed=KNOWN["sweep_sharp_seed"])
def test_sweep_rows_equal_scalar_predictions_hardware_grids(cfg, seed):
    """Sweeps over hardware keys (link bandwidths and latencies, NICs, oversubscription,
    efficiencies, device memory; sometimes with a numeric plan field): every row equals predict
    on the spec edited to that row's values (dataclasses.replace)."""
    _check_sweep_rows(cfg, _sweep_grid(cfg, S.Chooser(seed), hardware=True))


# ================================================================================================
# 9. At the reported crossover, compute equals communication
# ================================================================================================

# Operating points spread over the schemes, unknowns, systems and models. A crossover costs
# 0.1-0.4 s (a 481-point scan, bisection, the sympy closed form, the integer check), too much for
# 500 of them in CI: each is solved once (cached) and the 500 examples check it from random
# sides. dp / micro-batch and tp / micro-batch are absent: their communication and compute both
# scale with b, so a crossover exists only in latency-dominated corners (none of the bundled
# systems has one in b = 1..1e7).
_XO_MODELS = ("gpt2-124m", "gpt2-355m", "megatron-1.7b", "llama2-7b", "bert-large", "resnet50")
_XO_SYSTEMS = ("dgx-a100", "dgx-h100", "pcie-8gpu", "gaudi2-hls", "cpu-cluster", "tpu-v4-pod", "dgx-2")
_XO_DTYPE = {"dgx-2": "fp16", "cpu-cluster": "fp32"}


def _xo_scenarios():
    out = []
    for i, (scheme, solve_for) in enumerate([("dp", "devices"), ("dp", "bandwidth"), ("tp", "devices"),
                                             ("tp", "bandwidth"), ("pp", "bandwidth"), ("pp", "micro-batch")]):
        for j in range(5):
            model = _XO_MODELS[(i + 2 * j) % len(_XO_MODELS)]
            system = _XO_SYSTEMS[(i + j) % len(_XO_SYSTEMS)]
            if model == "resnet50" and scheme != "dp":
                model = "gpt2-124m"
            kw = {"dp": {"devices": 16, "tp": 2 if j % 2 else 1}, "tp": {"tp": 2, "devices": 8 if j % 2 else 2},
                  "pp": {"pp": 2 if j % 2 else 4, "devices": 8}}[scheme]
            if model == "resnet50":
                kw = {"devices": 16}
            out.append((model, system, scheme, solve_for, {**kw, "dtype": _XO_DTYPE.get(system, "bf16")}))
    # pipelines with few micro-batches: the bubble overtakes the compute as stages are added
    for model, system, pp, devices, gb in (("gpt2-124m", "dgx-a100", 2, 8, 16),
                                           ("megatron-1.7b", "dgx-h100", 2, 16, 16),
                                           ("bert-large", "pcie-8gpu", 2, 8, 8)):
        out.append((model, system, "pp", "devices",
                    {"pp": pp, "devices": devices, "global_batch": gb, "dtype": _XO_DTYPE.get(system, "bf16")}))
    out.append(("gpt2-355m", "gaudi2-hls", "pp", "devices",
                {"pp": 4, "devices": 8, "global_batch": 8, "schedule": "interleaved", "virtual_stages": 2}))
    # tensor parallelism leaving a 16-GPU NVSwitch node: the crossover is the jump at t = 16
    out.append(("llama2-7b", "dgx-2", "tp", "devices", {"tp": 2, "devices": 8, "dtype": "fp16"}))
    # all-reduces inside an NVSwitch node with in-switch reduction (dgx-h100: NVLink SHARP)
    out.append(("llama2-7b", "dgx-h100", "tp", "bandwidth", {"tp": 8, "devices": 8, "dtype": "bf16"}))
    out.append(("llama2-7b", "dgx-h100", "dp", "bandwidth", {"tp": 1, "devices": 8, "dtype": "bf16"}))
    out.append(("llama2-7b", "dgx-a100", "tp", "bandwidth", {"tp": 8, "devices": 8, "dtype": "bf16"}))
    return out


@functools.cache
def _solve_scenarios():
    """(solved crossovers, scenarios without a crossover in range)."""
    module = pytest.importorskip("perfmodel.crossover.find")
    solved, unsolved = [], []
    for model, system, scheme, solve_for, kw in _xo_scenarios():
        kw = {"stack": "megatron", **kw}  # the scenarios were written when megatron was every device's default
        try:
            solved.append(module.find_crossover(model, system, scheme, solve_for, **kw))
        except module.NoCrossoverError as exc:
            unsolved.append((model, system, scheme, solve_for, kw, str(exc)))
    return tuple(solved), tuple(unsolved)


def _crossovers():
    return _solve_scenarios()[0]


def _hw_with_link_bandwidth(hw, level: str, bandwidth: float):
    """What-if of the crossover's bandwidth unknown: the level's link bandwidth set (a PCIe tree's
    switch uplinks and root complex scale with it, as crossover_equations documents)."""
    if level == "network":
        return replace(hw, network_bandwidth=bandwidth)
    changes = {"fabric_bandwidth": bandwidth}
    if hw.fabric_kind == "pcie-tree":
        f = bandwidth / hw.fabric_bandwidth
        changes.update(uplink_bandwidth=hw.uplink_bandwidth * f, root_bandwidth=hw.root_bandwidth * f)
    return replace(hw, **changes)


def _hw_at_link_bandwidth(xo, x):
    """HwParams of the operating point's *spec* with the scheme's link at bandwidth x
    (dataclasses.replace of the link, then hw_params), so the what-if is derived from the spec as
    predict derives it. A PCIe link's spec bandwidth is its raw rate and x a data rate: there the
    crossover's documented rule (_hw_with_link_bandwidth) is used instead."""
    from perfmodel.prediction.hardware import hw_params

    pt, level = xo.point, xo.equation.level
    sys_ = pt.system
    link = sys_.network.link if level == "network" else sys_.fabric.link
    if link.family == "pcie":
        return _hw_with_link_bandwidth(pt.hw, level, x)
    edit = _net if level == "network" else _fab
    edited = edit(sys_, link=replace(link, bandwidth=x))
    return hw_params(edited, pt.plan.dtype, pt.stack.gemm_rate_scale)


def _predictor_at(xo, x):
    """(communication, compute or None) of the scheme's scope from the *predictor*
    (transformer_terms) at unknown = x: an independent check of the crossover equation."""
    from perfmodel.prediction.step import Choices, transformer_terms

    pt = xo.point
    p, hw, model = pt.plan, pt.hw, pt.model
    n = {"tp": p.tp, "pp": p.pp, "dp": p.dp, "micro_batch": p.micro_batch, "global_batch": p.global_batch,
         "virtual_stages": p.virtual_stages, "seq": p.seq, "devices": p.devices}
    if xo.solve_for == "bandwidth":
        hw = _hw_at_link_bandwidth(xo, x)
    elif xo.solve_for == "devices":
        if xo.scheme == "dp":
            n.update(dp=x / (p.tp * p.pp), devices=x)
        elif xo.scheme == "tp":
            n.update(tp=x, devices=x * p.dp * p.pp)
        else:
            n.update(pp=x, devices=p.tp * p.dp * x)
    elif xo.scheme == "pp":  # the pipeline's micro-batches: global batch / dp fixed
        n.update(micro_batch=x)
    else:
        n.update(micro_batch=x, global_batch=p.n_microbatches * x * p.dp)
    r = transformer_terms(model, pt.stack, hw, Choices.of(p), **n)
    bd, m = r.breakdown, r.n_microbatches
    if xo.scheme == "dp":
        return float(r.dp_sync_s), None
    if xo.scheme == "tp":
        return float(bd["tp_comm"] / (m * model.n_layers / n["pp"])), None
    if xo.solve_for == "micro-batch":  # the equation scales per-sequence compute linearly in b
        return None, None
    return float(bd["pp_comm"] + bd["pipeline_bubble"]), float(bd["compute"] + bd["recompute"])


@INVARIANT
@given(data=st.data())
def test_at_the_reported_crossover_compute_equals_communication(data):
    """At ``find_crossover``'s value, t_comm = t_compute (to 1e-6; at a discontinuity, the value
    is on the communication-bound side: t_comm >= t_compute); re-evaluating the equation there
    gives the reported pair; the predictor's own communication (dp sync, TP all-reduces per
    layer, pipeline p2p + bubble) and, for pp, compute at that value equal the equation's; and a
    step either side of it lands on the side the reported direction says."""
    solved = _crossovers()
    assert len(solved) >= 20, [(x.model, x.system, x.scheme, x.solve_for) for x in solved]
    xo = data.draw(st.sampled_from(solved), label="crossover")
    what = (xo.model, xo.system, xo.scheme, xo.solve_for, xo.value, xo.notes)
    comm, comp = xo.t_comm_s, xo.t_compute_s
    assert math.isfinite(comm) and math.isfinite(comp) and comm > 0 and comp > 0, what
    eq = xo.equation
    assert eq.lo <= xo.value <= eq.hi, what
    x = xo.value
    if xo.at_discontinuity:
        assert comm >= comp * (1 - 1e-9), (what, comm, comp)
        x = xo.value * (1 + 1e-12) if eq.direction > 0 else xo.value
    else:
        assert math.isclose(comm, comp, rel_tol=1e-6), (what, comm, comp)
    assert eq.evaluate(x) == (comm, comp), (what, eq.evaluate(x), comm, comp)
    p_comm, p_comp = _predictor_at(xo, x) if xo.point.transformer else (None, None)
    if p_comm is not None:
        assert math.isclose(p_comm, comm, rel_tol=1e-9), (what, "predictor communication", p_comm, comm)
    if p_comp is not None:
        assert math.isclose(p_comp, comp, rel_tol=1e-9), (what, "predictor compute", p_comp, comp)
    # a relative step delta either side: communication-bound on the reported side, not before it
    delta = data.draw(st.floats(1e-4, 1e-2), label="delta")
    beyond, before = x * (1 + delta) ** eq.direction, xo.value * (1 + delta) ** -eq.direction
    if eq.lo <= beyond <= eq.hi:
        c, k = eq.evaluate(beyond)
        assert c >= k * (1 - 1e-9), (what, "beyond", beyond, c, k)
    if eq.lo <= before <= eq.hi:
        c, k = eq.evaluate(before)
        assert c <= k * (1 + 1e-9), (what, "before", before, c, k)


def test_a_slow_enough_link_makes_every_scheme_communication_bound():
    """Every bandwidth scenario has a crossover: at 1 kB/s per link any scheme that communicates
    is communication-bound (its messages are MBs), so 'no crossover' in bandwidth is always wrong."""
    unsolved = [u for u in _solve_scenarios()[1] if u[3] == "bandwidth"]
    assert not unsolved, unsolved
