"""Mixture of experts and expert parallelism (issue 11): hand calculations.

Mixtral 8x7B from its Hugging Face config (mistralai/Mixtral-8x7B-v0.1, tests/data/hf): 32 layers,
hidden 4096, 32 heads of 128, 8 kv heads, 8 SwiGLU experts of 14336, top-2, vocab 32000, untied.
Placement and all-to-all as Megatron-Core r0.8 runs them (perfmodel/prediction/moe.py).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

import perfmodel as pm
from perfmodel.crossover.point import point
from perfmodel.errors import ModelError, PlanError
from perfmodel.formulas.collectives import ring_allreduce_time
from perfmodel.formulas.logtree import hierarchical_alltoall_time, pairwise_alltoall_time
from perfmodel.prediction.hardware import hw_params
from perfmodel.prediction.rules import grad_bytes_per_param
from perfmodel.specs.registry import bundled_dir
from perfmodel.specs.stack import load_stack

DATA = Path(__file__).parent / "data" / "hf"
MC = dict(stack="megatron-core", zero=1)

# Mixtral 8x7B parameters, by hand
H, L, V, E, F = 4096, 32, 32000, 8, 14336
ATTN = 4096 * 4096 + 2 * 4096 * 1024 + 4096 * 4096  # q, k, v (8 kv heads x 128), o = 41,943,040
EXPERT = 3 * 4096 * 14336  # gate, up, down = 176,160,768
ROUTER = 4096 * 8  # 32,768
NORMS = 2 * 4096
DENSE = L * (ATTN + ROUTER + NORMS) + V * H + V * H + H  # blocks without experts, embedding, LM head, final norm
EXPERTS = L * E * EXPERT  # 45,097,156,608


def test_mixtral_parameters_total_and_active():
    m = pm.load_model(str(DATA / "mixtral-8x7b-v0.1.json"))
    assert m.n_params == DENSE + EXPERTS == 46_702_792_704  # ~46.7B (Jiang et al. 2024: 46.7B)
    assert m.n_active_params == DENSE + L * 2 * EXPERT == 12_879_925_248  # top-2: ~12.9B active
    assert m.params_breakdown()["experts"] == EXPERTS
    # the bundled preset is the same shape
    preset = pm.load_model("mixtral-8x7b")
    assert (preset.n_params, preset.n_active_params, preset.top_k, preset.n_experts) == (m.n_params, m.n_active_params, 2, 8)


def test_models_show_lists_the_experts():
    rows = dict(pm.load_model("mixtral-8x7b").summary())
    assert rows["experts"] == 8 and rows["top_k"] == 2 and rows["params_experts"] == EXPERTS
    assert rows["params_active"] == 12_879_925_248 and rows["capacity_factor"] == "dropless"


def test_model_flops_count_the_top_two_experts_and_the_router():
    """Two SwiGLU experts of 14336 hold the parameters of one SwiGLU MLP of 28672, so Mixtral's model
    FLOPs are a dense twin's (ffn 28672) plus the router's: 6 x h x E FLOP per token and layer
    (forward 2 h E, backward 4 h E)."""
    m = pm.load_model("mixtral-8x7b")
    twin = dataclasses.replace(m, name="twin", n_experts=1, top_k=1, ffn_hidden=2 * F, expert_ffn_hidden=None,
                               shared_ffn_hidden=None)
    plan = pm.Plan(devices=8, ep=8, micro_batch=1, global_batch=8, **MC)
    moe = pm.predict(m, "dgx-h100", plan).details["model_flops_per_step"]
    dense = pm.predict(twin, "dgx-h100", plan.replace(ep=1)).details["model_flops_per_step"]
    tokens = 8 * 4096
    assert moe - dense == pytest.approx(tokens * 6 * H * E * L, rel=1e-9)  # 6 x 4096 x 8 x 32 = 6.29 MFLOP/token
    # per token: 6 x (active linear parameters) + attention, far below 6 x all parameters
    assert moe / tokens < 6 * m.n_active_params + 6 * L * 4096 * H * 2 and moe / tokens < 0.3 * 6 * m.n_params


def test_alltoall_inside_a_dgx_h100_node():
    """ep = 8, tp = 1: the group fits a node (NVSwitch: alpha 1 us, beta 18 x 25 GB/s x 82.2 %
    = 369.9 GB/s). Send buffer per rank: b s k h w = 1 x 4096 x 2 x 4096 x 2 B = 67,108,864 B;
    one all-to-all: 7 x 1 us + 7/8 x 67,108,864 / 369.9e9 = 165.76 us; 2 forward + 2 backward per
    layer, 32 layers, one micro-batch."""
    r = pm.predict("mixtral-8x7b", "dgx-h100", pm.Plan(devices=8, ep=8, micro_batch=1, global_batch=8, **MC))
    size = 1 * 4096 * 2 * 4096 * 2
    one = 7 * 1e-6 + 7 / 8 * size / (18 * 25e9 * 0.822)
    assert one == pytest.approx(165.76e-6, rel=1e-4)
    assert r.breakdown_s["other"] == pytest.approx(32 * 4 * one, rel=1e-9)
    assert r.details["ep_comm_s"] == r.breakdown_s["other"]
    assert pairwise_alltoall_time(8, size, 1e-6, 18 * 25e9 * 0.822) == pytest.approx(one, rel=1e-12)
    # ep = 1: no all-to-all
    assert pm.predict("mixtral-8x7b", "dgx-h100", pm.Plan(devices=8, micro_batch=1, global_batch=8, **MC)
                      ).breakdown_s["other"] == 0


def _slow_network(tmp_path) -> str:
    """dgx-h100 with one NIC per node: 8 devices share 48 GB/s, 6 GB/s each."""
    text = (bundled_dir() / "system" / "dgx-h100.toml").read_text()
    text = text.replace('name = "dgx-h100"', 'name = "dgx-h100-one-nic"').replace("nics_per_node = 8", "nics_per_node = 1")
    path = tmp_path / "dgx-h100-one-nic.toml"
    path.write_text(text)
    return str(path)


def test_alltoall_across_nodes_on_a_slow_network(tmp_path):
    """tp = 2, ep = 8: the group's ranks sit 2 apart over tp x ep = 16 devices, 4 on each of two
    nodes. With sequence parallelism a tp rank dispatches its s / 2 = 2048 tokens: S = 2048 x 2 x
    4096 x 2 B = 33,554,432 B, an S / 8 block to each of 7 peers: 3 on its node (NVSwitch: alpha
    1 us, 369.9 GB/s), 4 on the other (the network: alpha 5 us; one 400 Gb/s NIC at 96 % = 48 GB/s
    shared by 8 devices: 6 GB/s), both at once: 3 x 1 us + 4 x 5 us + max(3/8 S / 369.9e9,
    1/2 S / 6e9) = 2.819 ms; x 4 per layer x 32 layers."""
    plan = pm.Plan(devices=16, tp=2, ep=8, sequence_parallel=True, micro_batch=1, global_batch=8, **MC)
    slow = pm.predict("mixtral-8x7b", _slow_network(tmp_path), plan)
    size = 2048 * 2 * 4096 * 2
    nvswitch = 18 * 25e9 * 0.822

    def one(nic):
        return 3 * 1e-6 + 4 * 5e-6 + max(3 / 8 * size / nvswitch, 1 / 2 * size / nic)

    assert one(50e9 * 0.96 / 8) == pytest.approx(2.819e-3, rel=1e-3)
    assert slow.breakdown_s["other"] == pytest.approx(32 * 4 * one(50e9 * 0.96 / 8), rel=1e-9)
    assert hierarchical_alltoall_time(2, 4, size, 1e-6, nvswitch, 5e-6, 6e9) == pytest.approx(one(6e9), rel=1e-12)
    fast = pm.predict("mixtral-8x7b", "dgx-h100", plan)  # 8 NICs: 48 GB/s each
    assert fast.breakdown_s["other"] == pytest.approx(32 * 4 * one(48e9), rel=1e-9)
    # ep = 4 x tp 2 = 8 devices: back inside the node
    inside = pm.predict("mixtral-8x7b", _slow_network(tmp_path), plan.replace(ep=4))
    assert inside.breakdown_s["other"] < fast.breakdown_s["other"] / 5


def test_memory_per_device_ep8_vs_ep1():
    """ZeRO-1 (distributed optimizer), dp = 8, tp = pp = 1. Dense part 1,605,636,096 parameters on
    every device; experts 45,097,156,608 / ep. Weights bf16 (2 B); gradients the stack's reduce
    bytes; optimizer 12 B per parameter, dense states over dp = 8, expert states over dp / ep."""
    stack = load_stack("megatron-core")
    g = grad_bytes_per_param(stack, "bf16")
    dense = DENSE
    assert dense == 1_605_636_096
    for ep in (1, 8):
        r = pm.predict("mixtral-8x7b", "dgx-h100", pm.Plan(devices=8, ep=ep, micro_batch=1, global_batch=8, **MC))
        mem = r.memory_bytes_per_device
        local = EXPERTS / ep
        assert mem["weights"] == pytest.approx(2 * (dense + local), rel=1e-12)
        assert mem["gradients"] == pytest.approx(g * (dense + local), rel=1e-12)
        assert mem["optimizer"] == pytest.approx(12 * (dense / 8 + local / (8 / ep)), rel=1e-12)
    # ep = 8: 2 x (1.606e9 + 5.637e9) = 14.49 GB of weights instead of 93.41 GB
    assert 2 * (dense + EXPERTS / 8) == 14_485_561_344


def test_refusals_are_one_line():
    with pytest.raises(PlanError, match=r"^expert parallelism ep = 8 does not divide dp = 4"):
        pm.predict("mixtral-8x7b", "dgx-h100", pm.Plan(devices=8, tp=2, ep=8, **MC))
    with pytest.raises(PlanError, match=r"^ep = 16 does not divide the 8 experts of mixtral-8x7b$"):
        pm.predict("mixtral-8x7b", "dgx-h100", pm.Plan(devices=16, ep=16, **MC))
    with pytest.raises(PlanError, match=r"^stack 'megatron' does not run expert parallelism \(ep > 1\)"):
        pm.predict("mixtral-8x7b", "dgx-h100", pm.Plan(devices=8, ep=8, stack="megatron"))
    with pytest.raises(PlanError, match=r"^ep = 2 needs a mixture-of-experts model; llama2-7b is dense$"):
        pm.predict("llama2-7b", "dgx-h100", pm.Plan(devices=8, ep=2))
    with pytest.raises(PlanError, match="mixture of experts; the crossover equations"):
        point(pm.load_model("mixtral-8x7b"), pm.load_system("dgx-h100"), pm.Plan(devices=8, **MC))
    # ep = 1 runs a MoE model on a stack without expert parallelism: all experts local
    assert pm.predict("mixtral-8x7b", "dgx-h100", pm.Plan(devices=8, stack="fsdp", zero=3)).step_time_s > 0


def test_sweep_ep_grid_matches_predict():
    df = pm.sweep("mixtral-8x7b", "dgx-h100", "ep=1,2,3,8,16", devices=16, global_batch=32, **MC)
    by_ep = {int(r.ep): r for r in df.itertuples()}
    for ep in (1, 2, 8):
        p = pm.predict("mixtral-8x7b", "dgx-h100", pm.Plan(devices=16, ep=ep, micro_batch=1, global_batch=32, **MC))
        assert by_ep[ep].step_time_s == pytest.approx(p.step_time_s, rel=1e-9)
        assert by_ep[ep].breakdown_other_s == pytest.approx(p.breakdown_s["other"], rel=1e-9)
        assert by_ep[ep].memory_total_bytes == pytest.approx(p.memory_bytes_per_device["total"], rel=1e-9)
        assert by_ep[ep].reason != by_ep[ep].reason  # NaN: valid
    # the rows plan.resolve refuses carry its message
    assert by_ep[3].reason.startswith("expert parallelism ep = 3 does not divide dp = 16")
    assert by_ep[16].reason == "ep = 16 does not divide the 8 experts of mixtral-8x7b"
    assert by_ep[3].step_time_s != by_ep[3].step_time_s and by_ep[16].step_time_s != by_ep[16].step_time_s
    # a stack without expert parallelism: ep > 1 rows invalid with predict's reason
    other = pm.sweep("mixtral-8x7b", "dgx-h100", "ep=1,2", devices=16, global_batch=32, stack="megatron")
    assert other["reason"].iloc[1].startswith("stack 'megatron' does not run expert parallelism")
    assert other["step_time_s"].iloc[0] > 0


def _write(tmp_path, data) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_qwen2_moe_config(tmp_path):
    """Qwen/Qwen1.5-MoE-A2.7B: 24 layers, hidden 2048, 16 heads, 60 experts of 1408, top-4, one
    shared expert of 5632, vocab 151936, untied. Per layer: attention 4 x 2048^2 = 16,777,216;
    router 2048 x 60 = 122,880; experts 60 x 3 x 2048 x 1408 = 519,045,120; shared 3 x 2048 x 5632
    = 34,603,008; norms 4096. Total 24 x 570,552,320 + 2 x 151936 x 2048 + 2048 = 14,315,587,584
    (the model card: 14.3B)."""
    data = {"model_type": "qwen2_moe", "hidden_size": 2048, "num_hidden_layers": 24, "num_attention_heads": 16,
            "num_key_value_heads": 16, "intermediate_size": 5632, "moe_intermediate_size": 1408,
            "shared_expert_intermediate_size": 5632, "num_experts": 60, "num_experts_per_tok": 4,
            "decoder_sparse_step": 1, "vocab_size": 151936, "max_position_embeddings": 8192,
            "tie_word_embeddings": False}
    m = pm.load_model(_write(tmp_path, data))
    per_layer = 4 * 2048**2 + 2048 * 60 + 60 * 3 * 2048 * 1408 + 3 * 2048 * 5632 + 2 * 2048
    assert per_layer == 570_552_320
    assert m.n_params == 24 * per_layer + 2 * 151936 * 2048 + 2048 == 14_315_587_584
    assert m.n_active_params == m.n_params - 24 * 56 * 3 * 2048 * 1408  # 4 of 60 experts run
    assert m.n_moe_layers == 24 and m.n_shared_experts == 1


@pytest.mark.parametrize("change, message", [
    ({"num_experts_per_tok": 9}, "num_experts_per_tok: expected at most num_local_experts=8, got 9"),
    ({"num_local_experts": "eight"}, "num_local_experts"),
    ({"num_experts_per_tok": None}, "num_experts_per_tok"),
])
def test_malformed_mixtral_keys_are_one_line(tmp_path, change, message):
    data = json.loads((DATA / "mixtral-8x7b-v0.1.json").read_text())
    data.update(change)
    with pytest.raises(ModelError) as info:
        pm.load_model(_write(tmp_path, data))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_toml_moe_keys(tmp_path):
    text = (Path(pm.__file__).parent / "workloads" / "presets" / "mixtral-8x7b.toml").read_text()
    path = tmp_path / "m.toml"
    path.write_text(text.replace("top_k = 2", "top_k = 2\ncapacity_factor = 1.25\nfirst_dense_layers = 1"))
    m = pm.load_model(str(path))
    assert m.capacity_factor == 1.25 and m.n_moe_layers == 31
    path.write_text(text.replace("top_k = 2", "top_k = 2\ncapacity_factor = \"big\""))
    with pytest.raises(ModelError, match="capacity_factor: expected a number"):
        pm.load_model(str(path))
    path.write_text(text.replace("top_k = 2", "top_k = 2\nexpert = 3"))
    with pytest.raises(ModelError, match="expert"):
        pm.load_model(str(path))


def test_expert_activations_by_hand():
    """The dense MLP keeps its inner-width tensors (gate and up outputs and their product: 3 x 14336
    x 2 B = 86,016 B per token at tp 1; perfmodel.formulas.activations.mlp_hidden_bytes); Mixtral
    keeps, for each of 2 routed copies per token, the permuted input (4096 x 2 = 8,192 B) and those
    tensors at the expert's width: 2 x (8,192 + 86,016) = 188,416 B, 102,400 B more per token:
    4096 tokens x 102,400 = 419,430,400 B a layer, x 32 layers, one micro-batch in flight."""
    m = pm.load_model("mixtral-8x7b")
    dense = dataclasses.replace(m, name="dense", n_experts=1, top_k=1, expert_ffn_hidden=None, shared_ffn_hidden=None)
    plan = pm.Plan(devices=8, micro_batch=1, global_batch=8, **MC)
    extra = (pm.predict(m, "dgx-h100", plan).memory_bytes_per_device["activations"]
             - pm.predict(dense, "dgx-h100", plan).memory_bytes_per_device["activations"])
    assert extra == pytest.approx(32 * 4096 * 102_400, rel=1e-12) == pytest.approx(13_421_772_800)
    # full recompute: the layer inputs are kept, plus one layer recomputed in full -- for Mixtral with
    # its routed copies and expert tensors: 4096 x 102,400 B more than the dense twin
    full = plan.replace(recompute="full")
    assert (pm.predict(m, "dgx-h100", full).memory_bytes_per_device["activations"]
            - pm.predict(dense, "dgx-h100", full).memory_bytes_per_device["activations"]) == pytest.approx(
        4096 * 102_400, rel=1e-12)


def test_optimize_searches_ep_only_where_the_stack_runs_it():
    best = pm.optimize("mixtral-8x7b", "dgx-h100", devices=64, global_batch=512, stack="megatron-core", top=3)
    assert any(p.ep > 1 for p in best.plans)
    for p in best.plans:  # every returned plan predicts as the search ranked it
        assert pm.predict("mixtral-8x7b", "dgx-h100", p).step_time_s == pytest.approx(
            best.rows[best.plans.index(p)]["step_time_s"], rel=1e-9)
    assert all(p.ep == 1 for p in pm.optimize("mixtral-8x7b", "dgx-h100", devices=64, global_batch=512,
                                               stack="megatron", top=3).plans)


def test_ffn_override_resizes_the_experts():
    """--ffn-hidden 7168 on Mixtral (experts as wide as ffn_hidden): 8 experts x 3 x 4096 x 7168 a layer."""
    m = pm.load_model("mixtral-8x7b", ffn_hidden=7168)
    assert m.expert_ffn_hidden == 7168
    assert m.n_params == DENSE + 32 * 8 * 3 * 4096 * 7168 == 24_154_214_400


def test_stack_file_ep_capability(tmp_path):
    from perfmodel.errors import SpecError

    text = (Path(pm.__file__).parent / "specs" / "stacks" / "megatron-core.toml").read_text()
    assert load_stack("megatron-core").capabilities.ep and not load_stack("fsdp").capabilities.ep
    path = tmp_path / "mc-no-ep.toml"
    path.write_text(text.replace('name = "megatron-core"', 'name = "mc-no-ep"').replace("ep = true", "ep = false"))
    with pytest.raises(PlanError, match="^stack 'mc-no-ep' does not run expert parallelism"):
        pm.predict("mixtral-8x7b", "dgx-h100", pm.Plan(devices=8, ep=2, stack=str(path), zero=1))
    path.write_text(text.replace("ep = true", 'ep = "yes"'))
    with pytest.raises(SpecError) as info:
        load_stack(str(path))
    assert "ep" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("lines,key", [
    ("experts = 4\ntop_k = 2\nshared_ffn_hidden = 512\n", "shared_ffn_hidden"),
    ("expert_ffn_hidden = 512\n", "expert_ffn_hidden"),
])
def test_a_model_file_giving_a_width_for_experts_it_does_not_have_is_refused(tmp_path, lines, key):
    """A width nothing would use is an input mistake, not something to ignore quietly: one line."""
    path = tmp_path / "m.toml"
    path.write_text('type = "transformer"\nlayers = 4\nhidden = 256\nheads = 4\nvocab = 1000\nseq = 128\n' + lines)
    with pytest.raises(ModelError, match=f"{key}: the width of"):
        pm.load_model(str(path))


def test_fp8_casts_of_the_experts_by_hand():
    """Under FP8, Transformer Engine's GroupedLinear casts each expert's input chunk (the permuted
    tokens, not fused with the LayerNorm) and its activation output, and each output gradient in the
    backward; the dense MLP's casts come out. Mixtral 8x7B (h 4096, experts 14336 wide, SwiGLU, top-2,
    dense ffn 14336), t = 1, T tokens, every expert local (2T routed copies), elements cast:
    forward 2T x 4096 + 2T x 14336 - T x 14336 = 22528 T; backward 2T (2 x 14336 + 4096) - T (2 x
    14336 + 4096) = 32768 T."""
    from perfmodel.prediction.moe import _fp8_cast_delta

    model = pm.load_model("mixtral-8x7b")
    assert (model.hidden, model.expert_ffn_hidden, model.ffn_hidden, model.top_k) == (4096, 14336, 14336, 2)
    tokens = 8192.0
    fwd, bwd = _fp8_cast_delta(model, lambda n: n, tokens=tokens, routed=2 * tokens, shared_w=0, t=1)
    assert (fwd, bwd) == (22528 * tokens, 32768 * tokens)
    plan = dict(devices=8, tp=1, ep=8, micro_batch=1, global_batch=8, seq=4096, stack="megatron-core")
    bf16 = pm.predict(model, "dgx-h100", pm.Plan(dtype="bf16", **plan))
    fp8 = pm.predict(model, "dgx-h100", pm.Plan(dtype="fp8", **plan))
    assert fp8.breakdown_s["compute"] < bf16.breakdown_s["compute"]  # the casts cost less than FP8 saves


def test_a_mixture_of_experts_with_tensor_parallelism_needs_sequence_parallelism():
    # Megatron-Core r0.8's MoELayer refuses to train with tp > 1 and no sequence parallelism (and its
    # ModelParallelConfig refuses ep > 1 with tp > 1 without it): predict, sweep and optimize alike
    plan = pm.Plan(devices=16, tp=2, ep=8, micro_batch=1, global_batch=8, **MC)
    message = r"a mixture of experts \(mixtral-8x7b\) with tensor parallelism \(tp = 2\) needs --sequence-parallel"
    with pytest.raises(PlanError, match=message):
        pm.predict("mixtral-8x7b", "dgx-h100", plan)
    with pytest.raises(PlanError, match=message):
        pm.predict("mixtral-8x7b", "dgx-h100", plan.replace(ep=1))
    assert pm.predict("mixtral-8x7b", "dgx-h100", plan.replace(sequence_parallel=True)).step_time_s > 0
    assert pm.predict("mixtral-8x7b", "dgx-h100", plan.replace(tp=1, devices=8)).step_time_s > 0
    df = pm.sweep("mixtral-8x7b", "dgx-h100", devices=16, micro_batch=1, global_batch=8, stack="megatron-core",
                  grid={"tp": [1, 2], "ep": [1, 8], "sequence_parallel": [False, True]})
    for _, row in df.iterrows():
        refused = row["tp"] > 1 and not row["sequence_parallel"]
        assert (isinstance(row["reason"], str) and "needs --sequence-parallel" in row["reason"]) == refused, row


def test_the_routed_copies_multiply_the_mlp_side_tensor_parallel_collectives():
    """With tp > 1 Megatron-Core's all-to-all dispatcher all-gathers the top_k routed copies of the
    b s tokens over the hidden dimension and reduce-scatters them back, and turns the sequence
    shard into a hidden shard and back (two all-to-alls of 1/tp of a pair): Mixtral (top 2, no
    shared experts) at tp = 4 has 1 + (2 + 1/4) all-gather + reduce-scatter pairs a layer each
    way, where the dense layer has 2."""
    from perfmodel.prediction.layers import layer_times
    from perfmodel.prediction.moe import tp_collectives_extra, tp_mlp_pairs
    from perfmodel.prediction.placement import placement_levels
    from perfmodel.prediction.rates import device_rates

    model = pm.load_model("mixtral-8x7b")
    assert tp_mlp_pairs(model, 4) == pytest.approx(2.25) and tp_collectives_extra(model, 4) == pytest.approx(1.25)
    stack = load_stack("megatron")  # no TP overlap: every collective waits
    hw = hw_params(pm.load_system("dgx-h100"), "bf16", stack.gemm_rate_scale)
    rates = device_rates(hw, "bf16", stack)
    alpha, beta = placement_levels(hw, 4, 2, 1, 8).tp
    lt = layer_times(model, stack, rates, alpha, beta, b=1, s=4096, t=4, sp=True, recompute="none")
    one = ring_allreduce_time(4, 4096 * 4096 * 2, alpha, beta)
    assert lt.tp_comm_forward == pytest.approx(3.25 * one, rel=1e-12)
    assert lt.tp_comm_backward == pytest.approx(3.25 * one, rel=1e-12)


def test_expert_parallel_ranks_sit_tp_x_cp_apart():
    # Megatron-Core r0.8 orders ranks tp-cp-ep-dp-pp: with tp 2 x cp 2 an ep group's ranks are 4 apart,
    # as with tp 4 and no cp; each rank dispatches b s / (tp cp) tokens either way, so the all-to-alls
    # cost the same (with ranks only tp apart the first would keep 4 of 8 peers on the node)
    base = dict(micro_batch=1, global_batch=16, sequence_parallel=True, stack="megatron-core", dtype="bf16",
                recompute="selective", seq=4096)
    a = pm.predict("mixtral-8x7b", "dgx-h100", pm.Plan(devices=64, tp=2, cp=2, ep=8, **base))
    b = pm.predict("mixtral-8x7b", "dgx-h100", pm.Plan(devices=64, tp=4, cp=1, ep=8, **base))
    assert a.details["ep_comm_s"] == pytest.approx(b.details["ep_comm_s"], rel=1e-12)
    # ep divides dp (not dp x cp): dp 2 x cp 2 cannot hold ep 4
    with pytest.raises(PlanError, match=r"ep = 4 does not divide dp = 2"):
        pm.predict("mixtral-8x7b", "dgx-h100", pm.Plan(devices=16, tp=4, cp=2, ep=4, **base))


def test_sweep_takes_ep_as_a_plan_flag(capsys, monkeypatch):
    """`--ep` fixes expert parallelism for every row of a sweep, as the plan flags do (docs/interface.md;
    it was only a grid key: found by a newcomer audit)."""
    from perfmodel.cli import main

    monkeypatch.setenv("COLUMNS", "200")
    args = ["sweep", "--model", "mixtral-8x7b", "--system", "dgx-h100", "--devices", "16", "--global-batch", "32",
            "--micro-batch", "1", "--stack", "megatron-core", "--grid", "zero=0,1", "--ep", "8", "--format", "json"]
    main(args)
    rows = json.loads(capsys.readouterr().out)["rows"]
    plan = pm.Plan(devices=16, ep=8, micro_batch=1, global_batch=32, stack="megatron-core", zero=1)
    p8, p1 = pm.predict("mixtral-8x7b", "dgx-h100", plan), pm.predict("mixtral-8x7b", "dgx-h100", plan.replace(ep=1))
    assert p8.step_time_s != pytest.approx(p1.step_time_s, rel=1e-3)  # the flag matters
    assert [r["step_time_s"] for r in rows if r["zero"] == 1] == [pytest.approx(p8.step_time_s, rel=1e-9)]
