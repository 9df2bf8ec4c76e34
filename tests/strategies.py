"""Hypothesis strategies for the property-based invariants (tests/test_invariants.py).

Two families:

* :func:`formula_worlds` -- one random value for every parameter name of the notation table,
  inside the domain every formula of the catalogue is defined on (the rules are in
  :data:`DOMAIN_RULES` and :func:`formula_args`).
* :func:`configs` -- a valid (model, system, resolved plan) for the predictor: a random
  transformer (or a bundled preset) on a bundled system with a plan that ``plan.resolve``
  accepts, built directly so that hardly anything is rejected.

Everything heavy (systems, stacks, hardware numbers) is loaded once and cached.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from hypothesis import strategies as st

SEEDS = st.integers(0, 2**63 - 1)  # one draw per world / configuration (see Chooser)

# --- formulas: the domain of every parameter ---------------------------------------------------

# Domain rules (what "random positive inputs" means for the catalogue):
#  * times, sizes, rates: log-uniform over many decades, strictly positive;
#  * fractions and efficiencies: (0, 1]; overhead fractions (SKP, DLLP, read requests): (0, 0.5);
#  * counts are integers (passed as floats, as sweeps pass them);
#  * n >= 2 for every collective / topology; a power of two (2 .. 2^20) for every formula whose
#    algorithm is log2-based (recursive doubling / halving, binomial trees, hypercube, Bruck) or
#    whose docstring says so -- above 2^28 sympy's log(x, 2) = log(x)/log(2) lambdifies to a
#    quotient that is not exact (log(2^29)/log(2) = 29.000000000000004), so ceil/floor of it differ;
#  * n_nodes_per_leaf a power of two <= n (so n / p is a power of two when n is);
#  * torus / mesh ring lengths >= 3 (torus.py: "assumes every ring length >= 3");
#  * a two-level system (n_nodes x n_devices_per_node) has >= 2 devices; n_servers <= n;
#    1 <= n_ports <= n - 1; n_kv_heads <= n_heads; critical path <= work;
#  * a convolution's input covers its dilated kernel (output extent >= 1), and its groups divide
#    both channel counts; a store-and-forward message is a whole number of packets.


# A rule is (kind, lo, hi): "log" log-uniform in [lo, hi], "int" an integer in [lo, hi] (as a
# float), "uniform" uniform in [lo, hi]; or ("choice", values). Each value is the low end or the
# high end of its range one time in ten each (edges are where formulas break).
_TIME, _LONG, _BW, _BYTES = ("log", 1e-9, 1e-2), ("log", 1e-6, 1e4), ("log", 1e6, 1e13), ("log", 1.0, 1e12)
_FRAC, _SMALL = ("uniform", 0.01, 1.0), ("uniform", 1e-6, 0.5)


def _i(lo, hi):
    return ("int", lo, hi)


# name -> rule (names of perfmodel.formulas.notation.NOTATION)
DOMAIN_RULES = {
    # network / collectives
    "size": _BYTES, "alpha": _TIME, "beta": _BW, "gamma": ("log", 1e-14, 1e-9),
    "alpha_intra": _TIME, "alpha_inter": _TIME, "beta_intra": _BW, "beta_inter": _BW,
    "hop_latency": _TIME, "n_hops": _i(1, 16), "n_chunks": _i(1, 4096),
    "congestion": _i(1, 64), "n_flows": _i(1, 64), "uplink_bandwidth": _BW, "root_bandwidth": _BW,
    "backplane_bandwidth": _BW, "bisection_bandwidth": _BW, "oversubscription": ("uniform", 0.25, 16.0),
    "n_nodes": _i(1, 512), "n_devices_per_node": _i(1, 16), "n_switches": _i(1, 16),
    "arity": _i(2, 16), "elapsed_time": _LONG, "algbw": _BW, "busbw_factor": ("uniform", 0.01, 2.0),
    # gemm shape model
    "gemm_m": _i(1, 65536), "gemm_n": _i(1, 65536), "gemm_k": _i(1, 65536),
    "tile_m": ("choice", (1.0, 16.0, 64.0, 128.0, 256.0)), "tile_n": ("choice", (1.0, 16.0, 64.0, 128.0, 256.0)),
    "tile_k": ("choice", (1.0, 32.0, 64.0, 128.0, 256.0)), "n_tiles": _i(1, 10**6), "n_units": _i(1, 512),
    "fill_steps": _i(1, 4), "achievable_flops_per_s": ("log", 1e9, 1e16), "mamf_flops_per_s": ("log", 1e9, 1e16),
    "kernel_time": _TIME, "sustained_flops_per_s": ("log", 1e9, 1e16),
    "alignment_elements": ("choice", (1.0, 2.0, 4.0, 8.0, 16.0)),
    "mamf_m": _i(1, 65536), "mamf_n": _i(1, 65536), "mamf_k": _i(1, 65536),
    "a_bytes_per_element": ("choice", (1.0, 2.0, 4.0)), "b_bytes_per_element": ("choice", (1.0, 2.0, 4.0)),
    "c_bytes_per_element": ("choice", (1.0, 2.0, 4.0)), "fixed_time": _TIME,
    "softmax_flops": ("log", 1.0, 1e15), "vector_flops_per_s": ("log", 1e9, 1e15),
    "score_elements": ("log", 1.0, 1e13), "time_per_element": ("log", 1e-15, 1e-9),
    "attention_efficiency": ("uniform", 0.05, 1.0), "key_blocks": ("uniform", 1.0, 1024.0),
    "row_overhead_blocks": ("uniform", 0.0, 8.0), "block_size": ("choice", (64.0, 128.0, 256.0, 512.0)),
    # compute
    "flops": ("log", 1.0, 1e18), "bytes_moved": _BYTES, "peak_flops_per_s": ("log", 1e9, 1e16),
    "efficiency": _FRAC, "memory_bandwidth": ("log", 1e9, 1e14), "n_tokens": _i(1, 10**6),
    "n_in_features": _i(1, 65536), "n_out_features": _i(1, 65536), "batch_size": _i(1, 4096),
    "out_height": _i(1, 512), "out_width": _i(1, 512), "kernel_height": _i(1, 11),
    "kernel_width": _i(1, 11), "hidden_size": _i(1, 65536), "n_heads": _i(1, 256),
    "head_dim": _i(1, 512), "seq_len": _i(1, 131072), "causal_fraction": _FRAC,
    "n_elements": ("log", 1.0, 1e12), "flops_per_element": _i(1, 64), "n_accesses": _i(1, 16),
    "bytes_per_element": ("choice", (1.0, 2.0, 4.0, 8.0)), "mask_bytes_per_element": ("uniform", 0.0, 1.0),
    "vocab_size": _i(2, 262144), "n_params": ("log", 1.0, 1e13), "flops_per_param": _i(1, 32),
    "master_bytes_per_param": _i(1, 8), "grad_bytes_per_param": _i(1, 8),
    "moment_bytes_per_param": _i(1, 8), "n_moments": _i(1, 2), "weight_bytes_per_param": _i(1, 8),
    "top_k": _i(1, 8), "n_experts": _i(1, 256), "capacity_factor": ("uniform", 0.5, 4.0),
    "n_layers": _i(1, 256), "model_flops_per_step": ("log", 1.0, 1e22), "step_time": _LONG,
    "n_devices": _i(1, 65536),
    # memory
    "optimizer_bytes_per_param": _i(1, 16), "dp": _i(1, 4096), "tp": _i(1, 64), "pp": _i(1, 128), "cp": _i(1, 64),
    "n_microbatches": _i(1, 4096), "n_virtual_stages": _i(1, 16), "layer_activation_bytes": _BYTES,
    # activation items (formulas/activations.py)
    "region_split": _i(1, 64), "n_stats": _i(1, 2), "width": _i(1, 65536), "q_width": _i(1, 65536),
    "kv_width": _i(1, 65536), "heads_per_device": _i(1, 256), "dropout": ("choice", (0.0, 1.0)),
    "ffn_per_device": _i(1, 262144), "gated": ("choice", (0.0, 1.0)),
    # links / pcie
    "line_rate_bits_per_s": ("log", 1e9, 2e11), "encoding_efficiency": _FRAC,
    "n_lanes": ("choice", (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)), "n_links": _i(1, 18), "packet_bytes": _i(64, 9000),
    "bidirectional_bandwidth": _BW, "payload_bytes": _i(1, 9000), "overhead_bytes": _i(1, 128),
    "tlp_efficiency": _FRAC, "link_bandwidth": _BW, "flit_efficiency": _FRAC, "skp_fraction": _SMALL,
    "tlp_header_bytes": _i(12, 20), "tlp_framing_bytes": _i(2, 8),
    "max_payload_bytes": ("choice", (128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0)),
    "completion_payload_bytes": ("choice", (64.0, 128.0, 256.0, 512.0)),
    "max_read_request_bytes": ("choice", (128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0)),
    "dllp_fraction": _SMALL, "n_dllp_types": _i(1, 4), "dllp_bytes": _i(6, 8),
    "n_symbols_per_dllp": _i(1, 4096), "read_request_fraction": _SMALL, "write_efficiency": _FRAC,
    "read_efficiency": _FRAC, "n_outstanding_reads": _i(1, 1024), "read_latency_time": ("log", 1e-7, 1e-4),
    # topology
    "dim_x": _i(3, 32), "dim_y": _i(3, 32), "dim_z": _i(3, 32),
    # pipeline / data parallel / scheduling
    "stage_time": _LONG, "sync_time": _LONG, "overlap_window_time": _LONG,
    "last_bucket_time": _LONG, "work_time": _LONG, "n_workers": _i(1, 4096),
    "comm_time": _LONG, "compute_time": _LONG, "p2p_time": _LONG, "n_transfers": _i(2, 256),
    "kv_transfer_time": _LONG, "step_attention_time": _LONG,
    # a collective under a GEMM (collective_units made smaller than n_units in _world)
    "gemm_time": _LONG, "collective_time": _LONG, "hidden_time": _LONG, "n_splits": _i(1, 64), "margin": ("choice", (0.0, 1.0)),
    "_sm_share": ("uniform", 0.0, 0.99),
    # cpu offload
    "host_memory_bandwidth": ("log", 1e9, 1e13), "copy_time": _LONG, "forward_time": _LONG, "backward_time": _LONG,
    "serial_time": _LONG, "makespan_time": _LONG,
    # drawn as positions in their range, resolved per formula by formula_args
    "_n_pow2_exp": _i(1, 20), "_n_any": _i(2, 4096), "_leaf": ("uniform", 0.0, 1.0),
    "_servers": ("uniform", 0.0, 1.0), "_ports": ("uniform", 0.0, 1.0), "_critical": ("uniform", 1e-6, 1.0),
    "_packets": ("uniform", 0.0, 1.0), "_kv": ("uniform", 0.0, 1.0),
    # convolution (made consistent in _world)
    "kernel_extent": _i(1, 11), "dilation": _i(1, 3), "padding": _i(0, 5), "stride": _i(1, 4),
    "_in_extra": _i(0, 512), "n_groups": ("choice", (1.0, 2.0, 4.0, 8.0, 32.0)), "_c_in": _i(1, 64),
    "_c_out": _i(1, 64),
}


def _value(rng, rule):
    kind = rule[0]
    if kind == "choice":
        values = rule[1]
        return values[int(rng.integers(len(values)))]
    lo, hi = rule[1], rule[2]
    edge = rng.random()
    if edge < 0.1:
        return float(lo)
    if edge < 0.2:
        return float(hi)
    if kind == "int":
        return float(rng.integers(lo, hi + 1))
    if kind == "log":
        return float(10.0 ** rng.uniform(math.log10(lo), math.log10(hi)))
    return float(rng.uniform(lo, hi))


def _world(seed: int) -> dict:
    import numpy as np

    rng = np.random.default_rng(seed)
    w = {name: _value(rng, rule) for name, rule in DOMAIN_RULES.items()}
    w["_n_pow2"] = 2.0 ** w["_n_pow2_exp"]
    w["collective_units"] = math.floor(w["_sm_share"] * w["n_units"])  # 0 .. U - 1
    k, d, p = w["kernel_extent"], w["dilation"], w["padding"]
    w["in_extent"] = max(1.0, d * (k - 1) + 1 - 2 * p) + w["_in_extra"]
    w["n_in_channels"] = w["n_groups"] * w["_c_in"]
    w["n_out_channels"] = w["n_groups"] * w["_c_out"]
    return w


def formula_worlds():
    """One value per parameter name (and the raw positions formula_args resolves).

    Hypothesis draws one 64-bit seed per world and numpy expands it into the ~130 values: drawing
    each value through hypothesis made this test ~4x slower, most of the file's budget. The
    price is that hypothesis cannot shrink a failing world; the failure message prints the
    arguments of the failing formula instead.
    """
    return SEEDS.map(_world)


@functools.cache
def needs_power_of_two(func) -> bool:
    """The formula's n must be a power of two: log2-based algorithm or the docstring says so."""
    import inspect

    doc = (func.__doc__ or "").lower()
    src = inspect.getsource(func)
    body = src.split('"""')[-1]
    return "power of two" in doc or "log2(" in body


def formula_args(func, params, w: dict) -> dict:
    """The arguments of ``func`` in world ``w``, with the cross-parameter domain rules applied."""
    out = {name: w.get(name) for name in params}
    if "n" in params:
        out["n"] = w["_n_pow2"] if needs_power_of_two(func) else w["_n_any"]
    n = out.get("n")
    if n is None and "n_nodes_per_leaf" in params:
        out["n_nodes_per_leaf"] = float(2 ** math.floor(w["_leaf"] * 10))
    if n is not None:
        if "n_nodes_per_leaf" in params:
            out["n_nodes_per_leaf"] = float(2 ** math.floor(w["_leaf"] * math.log2(n)))
        if "n_servers" in params:
            out["n_servers"] = float(1 + math.floor(w["_servers"] * (n - 1)))
        if "n_ports" in params:
            out["n_ports"] = float(1 + math.floor(w["_ports"] * (n - 2)))
    if "n_nodes" in params and "n_devices_per_node" in params and out["n_nodes"] * out["n_devices_per_node"] < 2:
        out["n_nodes"] = 2.0  # a two-level system has two devices at least (average hops between distinct ones)
    if "n_kv_heads" in params:
        heads = out["n_heads"] if "n_heads" in params else w["n_heads"]
        out["n_kv_heads"] = float(1 + math.floor(w["_kv"] * (heads - 1)))
    if "critical_path_time" in params:
        out["critical_path_time"] = w["work_time"] * max(w["_critical"], 1e-6)
    if "packet_bytes" in params and "size" in params:
        out["size"] = w["packet_bytes"] * (1 + math.floor(w["_packets"] * 1e6))
    missing = [k for k, v in out.items() if v is None]
    if missing:
        raise KeyError(f"{func.__name__}: no domain rule for {missing} (add it to tests/strategies.py)")
    return out


# --- predictor configurations ------------------------------------------------------------------

SYSTEMS = ("dgx-a100", "dgx-h100", "dgx-2", "pcie-8gpu", "cpu-cluster", "gaudi2-hls", "tpu-v4-pod",
           "h100-sxm5-80gb", "mi300x", "tpu-v5p", "xeon-8480p", "v100-sxm2-32gb")
STACKS = ("megatron", "pytorch-eager")
PRESETS = ("gpt2-124m", "gpt2-355m", "bert-large", "llama2-7b", "llama3-8b", "llama2-70b", "megatron-1.7b",
           "gpt3-175b")
DENSE_PRESETS = ("resnet50", "resnet18", "mlp-mnist", "lenet5")


@functools.cache
def system(name: str):
    from perfmodel.specs.registry import load_system

    return load_system(name)


@functools.cache
def preset(name: str):
    from perfmodel.workloads import load_model

    return load_model(name)


@functools.cache
def stack(name: str):
    from perfmodel.specs.stack import load_stack

    return load_stack(name)


@functools.cache
def hw(system_name: str, dtype: str, stack_name: str):
    from perfmodel.prediction.hardware import hw_params

    return hw_params(system(system_name), dtype, stack(stack_name).gemm_rate_scale)


@functools.cache
def dtypes_of(system_name: str, stack_name: str) -> tuple[str, ...]:
    """The compute dtypes this system has the numbers for (peak, curves) and the stack trains in."""
    from perfmodel.errors import MissingSpecError
    from perfmodel.plan import DTYPES
    from perfmodel.specs.stack import load_stack

    ok = []
    for d in DTYPES:
        if d not in load_stack(stack_name).capabilities.dtypes:
            continue
        try:
            hw(system_name, d, stack_name)
        except MissingSpecError:  # a dtype the device has no peak for
            pass
        else:
            ok.append(d)
    return tuple(ok)


def preset_is_dense(model) -> bool:
    """A CNN / MLP (no attention heads): only data parallelism is modelled for it."""
    return not hasattr(model, "n_heads")


def divisors(n: int, cap: int | None = None) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0 and (cap is None or d <= cap)]


class Chooser:
    """The random choices of one configuration, from a numpy Generator seeded by hypothesis.

    Hypothesis draws one 64-bit seed per configuration: drawing the ~30 choices of a
    configuration through hypothesis itself costs ~5 ms per example (more than the model), which
    would put the invariants far over their time budget. Derandomized hypothesis still makes the
    run deterministic; a failure prints the whole configuration (it cannot shrink it).
    """

    def __init__(self, seed: int):
        import numpy as np

        self.rng = np.random.default_rng(seed)

    def pick(self, options):
        options = list(options)
        return options[int(self.rng.integers(len(options)))]

    def rint(self, lo: int, hi: int) -> int:
        return int(self.rng.integers(lo, hi + 1))

    def flip(self) -> bool:
        return bool(self.rng.integers(2))

    def uniform(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))

    def log_uniform(self, lo: float, hi: float) -> float:
        return float(10.0 ** self.rng.uniform(math.log10(lo), math.log10(hi)))

    def increasing(self, lo: float, hi: float, n_max: int = 8):
        """2..n_max distinct sorted values, log-uniform in [lo, hi], sometimes with its ends."""
        import numpy as np

        xs = {self.log_uniform(lo, hi) for _ in range(self.rint(2, n_max))}
        if self.rint(0, 4) == 0:
            xs |= {float(lo), float(hi)}
        return np.array(sorted(xs))


HEADS = (1, 2, 3, 4, 6, 8, 12, 16, 20, 25, 32, 40, 64)
HEAD_DIMS = (16, 32, 48, 64, 80, 96, 128, 256, 4, 12, 36, 100, 120, 200)
SEQS = (128, 512, 1024, 2048, 4096, 16, 100, 777, 3000, 8192)
VOCABS = (30522, 32000, 50257, 128256, 64, 1000, 65536, 100003, 256000)


def build_transformer(c: Chooser, max_layers: int = 96, presets: bool = True):
    """A random valid TransformerModel (one time in five a bundled preset)."""
    from perfmodel.workloads.transformer import TransformerModel

    if presets and c.rint(0, 4) == 0:
        return preset(c.pick(PRESETS))
    heads = c.pick(HEADS)
    head_dim = c.pick(HEAD_DIMS)
    kv = c.pick(divisors(heads))
    hidden = heads * head_dim
    kind = c.pick(("decoder", "decoder", "encoder"))
    ffn = c.pick((4 * hidden, max(1, hidden // 2), 8 * hidden, hidden + 1, (8 * hidden) // 3))
    return TransformerModel(
        name="random-transformer", n_layers=c.rint(1, max_layers), hidden=hidden, n_heads=heads,
        n_kv_heads=kv, vocab=c.pick(VOCABS), seq_len=c.pick(SEQS), kind=kind, ffn_hidden=ffn,
        positions=c.pick(("learned", "rotary")), mlp=c.pick(("gelu", "swiglu")),
        norm=c.pick(("layernorm", "rmsnorm")), bias=c.flip(), tied_embeddings=c.flip(),
        type_vocab=2 if kind == "encoder" else 0, pooler=kind == "encoder" and c.flip())


@dataclass(frozen=True)
class Config:
    """A valid prediction input and what transformer_terms needs to rerun it."""

    model: object
    system_name: str
    plan: object  # resolved

    @property
    def system(self):
        return system(self.system_name)

    @property
    def stack(self):
        return stack(self.plan.stack)

    @property
    def hw(self):
        return hw(self.system_name, self.plan.dtype, self.plan.stack)

    @property
    def choices(self):
        from perfmodel.prediction.step import Choices

        return Choices.of(self.plan)


def _devices_ok(sys_, devices: int, tp: int) -> bool:
    per_node = sys_.devices_per_node
    if sys_.network is None:
        return devices <= per_node
    max_nodes = sys_.network.max_nodes
    if max_nodes is not None and devices > per_node * max_nodes:
        return False
    return not (devices > per_node and devices % per_node and tp > 1)


def build_plan(c: Chooser, model, system_name: str, *, interleaved: bool = True, max_dp: int = 64):
    """A Plan (unresolved) meant to be valid for ``model`` on ``system_name``; None if none is."""
    from perfmodel.plan import Plan

    sys_ = system(system_name)
    stack_name = c.pick(STACKS)
    dtype = c.pick(dtypes_of(system_name, stack_name))
    tp = c.pick(divisors(math.gcd(model.n_heads, model.n_kv_heads), cap=32))
    pp = c.pick(divisors(model.n_layers, cap=16))
    schedule = c.pick(["1f1b", "gpipe"] + (["interleaved"] if interleaved and pp > 1 else []))
    v = c.pick(divisors(model.n_layers // pp, cap=4)) if schedule == "interleaved" else 1
    dps = [d for d in range(1, max_dp + 1) if _devices_ok(sys_, tp * pp * d, tp)]
    if not dps:
        return None
    dp = c.pick(dps)
    b = c.rint(1, 8)
    m = c.rint(1, 16) * (pp if schedule == "interleaved" else 1)
    seq = None if c.flip() else c.rint(16, model.seq_len)
    grad_sync = c.pick(("allreduce", "allreduce", "parameter-server", "broadcast"))
    return Plan(devices=tp * pp * dp, tp=tp, pp=pp, dp=dp, micro_batch=b, global_batch=b * dp * m, seq=seq,
                dtype=dtype, recompute=c.pick(("none", "selective", "full")),
                sequence_parallel=tp > 1 and c.flip(), schedule=schedule, virtual_stages=v,
                zero=c.rint(0, 3) if grad_sync == "allreduce" else 0, grad_sync=grad_sync,
                overlap=c.flip(), stack=stack_name, optimizer=c.pick(("adamw", "sgd")))


def runnable(plan, model, system):
    """``plan`` resolved and checked against what its stack runs (what predict refuses), or a PlanError."""
    from perfmodel.plan import resolve
    from perfmodel.specs.stack import check_capabilities, load_stack

    plan = resolve(plan, model, system)
    check_capabilities(load_stack(plan.stack), plan)
    return plan


def _resolve(plan, model, system_name: str):
    from perfmodel.errors import PlanError
    from perfmodel.plan import resolve

    from perfmodel.specs.stack import check_capabilities, load_stack

    if plan is None:
        return None
    try:
        plan = resolve(plan, model, system(system_name))
        check_capabilities(load_stack(plan.stack), plan)  # what the stack runs (issue 11): else redraw
        return plan
    except PlanError:
        return None


def build_config(seed: int, systems=SYSTEMS, interleaved: bool = True, presets: bool = True) -> Config:
    """A valid transformer configuration; plans are built valid, a refused one is redrawn."""
    c = Chooser(seed)
    for _ in range(100):
        model = build_transformer(c, presets=presets)
        name = c.pick(systems)
        plan = _resolve(build_plan(c, model, name, interleaved=interleaved), model, name)
        if plan is not None:
            return Config(model, name, plan)
    raise AssertionError(f"seed {seed}: no valid plan in 100 draws (fix tests/strategies.py)")


def build_dense_config(seed: int) -> Config:
    """A valid configuration of a non-transformer model (CNN / MLP: data parallelism only)."""
    from perfmodel.plan import Plan

    c = Chooser(seed)
    model = preset(c.pick(DENSE_PRESETS))
    name = c.pick(SYSTEMS)
    stack_name = c.pick(STACKS)
    dp = c.pick([d for d in range(1, 65) if _devices_ok(system(name), d, 1)])
    b = c.rint(1, 256)
    plan = Plan(devices=dp, dp=dp, micro_batch=b, global_batch=b * dp * c.rint(1, 8),
                dtype=c.pick(dtypes_of(name, stack_name)), stack=stack_name,
                grad_sync=c.pick(("allreduce", "parameter-server", "broadcast")),
                overlap=c.flip(), optimizer=c.pick(("adamw", "sgd")))
    plan = _resolve(plan, model, name)
    assert plan is not None, (seed, model.name, name)
    return Config(model, name, plan)


def explicit(model, system_name: str, **plan_fields) -> Config:
    """A Config from a model (name or object) and plan fields: for @example of known failures."""
    from perfmodel.plan import Plan, resolve

    model = preset(model) if isinstance(model, str) else model
    return Config(model, system_name, resolve(Plan(**plan_fields), model, system(system_name)))


def configs(**kwargs):
    """Strategy: a valid transformer Config (see build_config)."""
    return SEEDS.map(lambda seed: build_config(seed, **kwargs))


def dense_configs():
    """Strategy: a valid Config of a CNN / MLP preset."""
    return SEEDS.map(build_dense_config)


def terms(cfg: Config, hw_=None, **plan_numbers) -> dict:
    """transformer_terms for ``cfg`` (hardware and numeric plan fields overridable, arrays allowed)."""
    from perfmodel.prediction.step import transformer_terms

    p = cfg.plan
    numbers = {"tp": p.tp, "pp": p.pp, "dp": p.dp, "micro_batch": p.micro_batch, "global_batch": p.global_batch,
               "virtual_stages": p.virtual_stages, "seq": p.seq, "devices": p.devices}
    numbers.update(plan_numbers)
    return transformer_terms(cfg.model, cfg.stack, hw_ if hw_ is not None else cfg.hw, cfg.choices, **numbers)
