"""Model shapes (issue 11): a head width other than hidden / heads, more TP ranks than key/value
heads, the parallel attention + MLP block. Every number is a hand calculation written out."""

import json

import pytest

from perfmodel import load_model
from perfmodel.errors import ModelError, PlanError
from perfmodel.formulas import gemm as gf
from perfmodel.plan import Plan, resolve
from perfmodel.prediction import predict
from perfmodel.prediction.layers import flash_attention_times, layer_times
from perfmodel.prediction.shapes import tp_allreduces_per_layer
from perfmodel.prediction.step import device_rates, params_per_device
from perfmodel.prediction.hardware import hw_params
from perfmodel.specs.registry import load_system
from perfmodel.specs.stack import load_stack
from perfmodel.workloads.transformer import TransformerModel

GEMMA_LIKE = dict(name="gemma-like", n_layers=2, hidden=3072, n_heads=16, head_dim=256, n_kv_heads=16,
                  ffn_hidden=24576, vocab=256000, seq_len=8192, positions="rotary", mlp="swiglu", norm="rmsnorm",
                  bias=False)


def _rates(system="dgx-h100", stack="megatron-core"):
    st = load_stack(stack)
    return st, device_rates(hw_params(load_system(system), "bf16", st.gemm_rate_scale), "bf16", st)


def test_head_dim_sets_the_attention_width_params_and_flops():
    m = TransformerModel(**GEMMA_LIKE)
    assert (m.head_dim, m.q_dim, m.kv_dim) == (256, 4096, 4096)  # 16 x 256, not 3072
    assert m.linear_shapes()[:4] == (("attn_q", 3072, 4096), ("attn_k", 3072, 4096), ("attn_v", 3072, 4096),
                                     ("attn_o", 4096, 3072))
    # q, k, v 3072 x 4096 + o 4096 x 3072 = 4 x 12,582,912 = 50,331,648; MLP 3 x 3072 x 24576 =
    # 226,492,416; two RMSNorms 2 x 3072: 276,830,208 a layer
    assert m.n_params_per_layer == 276_830_208
    # FLOPs of one step (b 1, s 8192, tp 1): per token the linear layers 2 x 276,824,064 (weights
    # without the norms) = 553,648,128; causal attention 4 x 0.5 x s^2 x a x d = 2 x 8192^2 x 4096 =
    # 549,755,813,888 a layer; LM head 2 x 8192 x 3072 x 256000 (256000 = 2000 x 128: no padding)
    tokens = 8192
    layer = tokens * 553_648_128 + 549_755_813_888
    head = 2 * tokens * 3072 * 256000
    expected = 3 * (2 * layer + head)
    r = predict(m, "dgx-h100", Plan(devices=1, global_batch=1, micro_batch=1, seq=8192))
    assert r.details["model_flops_per_step"] == pytest.approx(expected, rel=1e-12)


def test_head_dim_from_toml_and_overrides_keep_it(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text('type = "transformer"\nlayers = 2\nhidden = 3072\nheads = 16\nhead_dim = 256\nvocab = 1000\n'
                    'seq = 512\nparallel_block = true\nshared_norm = true\n')
    m = load_model(str(path))
    assert (m.head_dim, m.q_dim, m.parallel_block, m.n_block_norms) == (256, 4096, True, 1)
    # a derived head width follows --hidden; a set one stays
    assert load_model("llama2-7b", hidden=2048).head_dim == 2048 // 32
    assert load_model(str(path), layers=4).head_dim == 256


def test_heads_not_dividing_hidden_without_head_dim_is_refused():
    with pytest.raises(ModelError, match="heads: expected a divisor of hidden=3072"):
        TransformerModel(**{**GEMMA_LIKE, "head_dim": None, "n_heads": 7, "n_kv_heads": 7})
    with pytest.raises(ModelError, match="shared_norm: expected false unless parallel_block"):
        TransformerModel(**{**GEMMA_LIKE, "shared_norm": True})


GQA4 = dict(name="gqa4", n_layers=4, hidden=4096, n_heads=32, n_kv_heads=4, ffn_hidden=11008, vocab=32000,
            seq_len=4096, positions="rotary", mlp="swiglu", norm="rmsnorm", bias=False)


def test_tp_above_the_kv_heads_runs_with_one_kv_head_per_rank():
    m = TransformerModel(**GQA4)
    plan = resolve(Plan(tp=8, devices=8, global_batch=1), m, load_system("dgx-h100"))  # not refused
    assert plan.tp == 8
    # Megatron-Core keeps the fused QKV weight evenly split: (32 + 2 x 4) x 128 / 8 = 640 columns a
    # rank, so the parameters a device holds are the layer's / 8, no replicated K, V weights
    first, _last = params_per_device(m, 8, 1)
    emb = 32000 * 4096 / 8  # vocabulary-parallel embedding, tied to the LM head (pp = 1: one copy)
    assert first == pytest.approx(4 * m.n_params_per_layer / 8 + emb + 4096)  # + the final RMSNorm
    # attention: 32 / 8 = 4 query heads and max(4 / 8, 1) = 1 key/value head a rank
    st, rates = _rates()
    att = flash_attention_times(m, rates, b=1, s=4096, t=8)
    assert att["fwd"][1] == pytest.approx(gf.flash_attention_forward_bytes(1, 4096, 4, 1, 128, 2))


def test_tp_above_the_kv_heads_all_gathers_the_qkv_activations():
    m = TransformerModel(**GQA4)
    st, rates = _rates()
    beta = 100e9
    lt = layer_times(m, st, rates, 0.0, beta, b=1, s=4096, t=8, sp=False, recompute="none")
    # two all-reduces of T h e = 4096 x 4096 x 2 = 33,554,432 B: 2 x 2 x 7/8 x S / beta each; the QKV
    # all-gather of T (a + 2 a_kv) d e = 4096 x 40 x 128 x 2 = 41,943,040 B: 7/8 x S / beta
    ar = 2 * 7 / 8 * 33_554_432 / beta
    gather = 7 / 8 * 41_943_040 / beta
    assert lt.tp_comm_forward == pytest.approx(2 * ar + gather)
    assert lt.tp_comm_backward == pytest.approx(2 * ar + gather)  # the reduce-scatter: same ring volume
    at4 = layer_times(m, st, rates, 0.0, beta, b=1, s=4096, t=4, sp=False, recompute="none")
    assert at4.tp_comm_forward == pytest.approx(2 * 2 * 3 / 4 * 33_554_432 / beta)  # t <= a_kv: no gather


def test_tp_neither_divisor_nor_multiple_of_kv_heads_is_refused():
    m = TransformerModel(**{**GQA4, "n_heads": 24, "n_kv_heads": 3, "hidden": 3072})
    with pytest.raises(PlanError, match="tensor parallelism 8 is neither a divisor nor a multiple of the 3 key/value"):
        resolve(Plan(tp=8, devices=8, global_batch=1), m, load_system("dgx-h100"))


SEQ_GPT = dict(name="seq", n_layers=8, hidden=4096, n_heads=32, vocab=50304, seq_len=2048)


def test_parallel_block_one_tp_allreduce_fewer_per_layer():
    seq, par = TransformerModel(**SEQ_GPT), TransformerModel(**SEQ_GPT, parallel_block=True, shared_norm=True)
    neox = TransformerModel(**SEQ_GPT, parallel_block=True)
    assert tp_allreduces_per_layer(seq) == (2, 2)
    assert tp_allreduces_per_layer(par) == (1, 1)
    assert tp_allreduces_per_layer(neox) == (1, 2)  # two norms: each output's gradient all-reduced
    st, rates = _rates(stack="megatron")
    beta = 150e9
    one = 2 * 7 / 8 * (2048 * 4096 * 2) / beta  # ring all-reduce of T h e over 8 ranks, no latency
    a = layer_times(seq, st, rates, 0.0, beta, b=1, s=2048, t=8, sp=False, recompute="none")
    b = layer_times(par, st, rates, 0.0, beta, b=1, s=2048, t=8, sp=False, recompute="none")
    assert (a.tp_comm_forward, a.tp_comm_backward) == pytest.approx((2 * one, 2 * one))
    assert (b.tp_comm_forward, b.tp_comm_backward) == pytest.approx((one, one))
    assert b.model_flops == pytest.approx(a.model_flops)  # FLOPs unchanged
    # one norm a block fewer: 2h (LayerNorm weight + bias) a layer
    assert seq.n_params_per_layer - par.n_params_per_layer == 2 * 4096


def test_parallel_block_halves_the_exposed_tp_comm_of_a_step():
    plan = Plan(devices=8, tp=8, global_batch=4, micro_batch=1, stack="megatron")  # no TP overlap
    a = predict(TransformerModel(**SEQ_GPT), "dgx-a100", plan)
    b = predict(TransformerModel(**SEQ_GPT, parallel_block=True, shared_norm=True), "dgx-a100", plan)
    # exposed TP comm = m x layers x (forward + backward all-reduces) x one all-reduce: 4 -> 2
    assert b.breakdown_s["tp_comm"] == pytest.approx(a.breakdown_s["tp_comm"] / 2, rel=1e-12)
    assert a.breakdown_s["tp_comm"] > 0


def test_crossover_counts_follow_the_block():
    from perfmodel.crossover.point import _tp_counts

    par = TransformerModel(**SEQ_GPT, parallel_block=True, shared_norm=True)
    assert _tp_counts(par, "none") == {"n_f": 1, "n_ar": 2}
    assert _tp_counts(par, "full") == {"n_f": 1, "n_ar": 3}
    assert _tp_counts(TransformerModel(**SEQ_GPT), "full") == {"n_f": 2, "n_ar": 6}


HF = {
    # EleutherAI/pythia-1b-deduped-like (gpt_neox): use_parallel_residual defaults to true
    "gpt_neox": ({"model_type": "gpt_neox", "hidden_size": 2048, "num_attention_heads": 8, "num_hidden_layers": 16,
                  "intermediate_size": 8192, "vocab_size": 50304, "max_position_embeddings": 2048}, (True, False)),
    "gpt_neox_seq": ({"model_type": "gpt_neox", "hidden_size": 2048, "num_attention_heads": 8,
                      "num_hidden_layers": 16, "intermediate_size": 8192, "vocab_size": 50304,
                      "max_position_embeddings": 2048, "use_parallel_residual": False}, (False, False)),
    # tiiuae/falcon-7b: parallel_attn, one input_layernorm
    "falcon7b": ({"model_type": "falcon", "hidden_size": 4544, "num_attention_heads": 71, "num_hidden_layers": 32,
                  "vocab_size": 65024, "multi_query": True, "parallel_attn": True, "bias": False}, (True, True)),
    # tiiuae/falcon-40b: new decoder architecture, ln_attn and ln_mlp
    "falcon40b": ({"model_type": "falcon", "hidden_size": 8192, "num_attention_heads": 128, "num_hidden_layers": 60,
                   "vocab_size": 65024, "new_decoder_architecture": True, "num_kv_heads": 8, "parallel_attn": True,
                   "bias": False}, (True, False)),
    # EleutherAI/gpt-j-6b: one ln_1 for both branches
    "gptj": ({"model_type": "gptj", "n_embd": 4096, "n_head": 16, "n_layer": 28, "n_positions": 2048,
              "rotary_dim": 64, "vocab_size": 50400}, (True, True)),
}


@pytest.mark.parametrize("name", sorted(HF))
def test_hf_configs_set_the_parallel_block(tmp_path, name):
    data, (parallel, shared) = HF[name]
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(data))
    m = load_model(str(path))
    assert (m.parallel_block, m.shared_norm) == (parallel, shared)
    assert m.n_block_norms == (1 if shared else 2)


def test_squared_relu_runs_unfused_as_nemo_writes_it():
    """NeMo's squared_relu, torch.pow(F.relu(x), 2), runs unfused under Megatron-Core (the Nemotron
    yamls set bias_activation_fusion false): forward relu then pow, 4 accesses an element; backward
    pow_backward (a copy, a scale, a multiply: 7) then threshold_backward (3): 10. A GELU MLP of the
    same shape moves 2 and 3. The matrices are the same two; the Nemotron held-out rows use it."""
    from dataclasses import replace

    import perfmodel as pm
    from perfmodel.formulas.compute import POINTWISE_OPS
    from perfmodel.prediction.hardware import hw_params
    from perfmodel.prediction.layers import layer_times
    from perfmodel.prediction.rates import device_rates
    from perfmodel.specs.stack import load_stack
    from perfmodel.validation.heldout import _cases

    row = POINTWISE_OPS["relu2"]
    assert (row["fwd_accesses"], row["bwd_accesses"]) == (4, 10)
    gelu = pm.load_model("gpt2-124m")
    relu2 = replace(gelu, mlp="relu2")
    assert relu2.linear_shapes() == gelu.linear_shapes() and relu2.n_params == gelu.n_params
    stack = load_stack("megatron-core")
    rates = device_rates(hw_params(pm.load_system("dgx-h100"), "bf16", stack.gemm_rate_scale), "bf16", stack)
    lt = {m.mlp: layer_times(m, stack, rates, 0.0, float("inf"), b=4, s=1024, t=1, sp=False, recompute="none")
          for m in (gelu, relu2)}
    n = 4 * 1024 * gelu.ffn_hidden  # elements of the activation's input
    fwd = rates.memory(n * 4 * 2) - rates.memory(n * 2 * 2 / stack.kernel_efficiency(("gelu",), "fwd", "gpu"))
    assert lt["relu2"].forward - lt["gelu"].forward == pytest.approx(fwd, rel=1e-9)
    assert lt["relu2"].backward > lt["gelu"].backward
    nemotron = [c for c in _cases() if c.case.startswith("nemotron4")]
    assert nemotron and all(c.model.mlp == "relu2" for c in nemotron)
