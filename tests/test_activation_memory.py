"""Activation memory item by item (issue 11) against Korthikanti et al. 2022 (arXiv:2205.05198),
Section 4 and Table 2, and hand counts for GQA, gated MLPs, FlashAttention and parallel blocks."""

import pytest

from perfmodel.formulas import memory as mem
from perfmodel.plan import Plan
from perfmodel.prediction import predict
from perfmodel.prediction.activations import layer_activation_items
from perfmodel.specs.stack import load_stack
from perfmodel.workloads.transformer import TransformerModel

# GPT-3 175B's layer (Korthikanti et al. Table 3: h 12288, a 96, s 2048), MHA, GeLU MLP of 4h, LayerNorm
GPT = TransformerModel(name="gpt175", n_layers=96, hidden=12288, n_heads=96, vocab=51200, seq_len=2048)
S, B, H, A = 2048, 1, 12288, 96
MEGATRON = load_stack("megatron")  # materialised attention with softmax dropout; two hidden dropouts
CORE = load_stack("megatron-core")  # flash attention


def items(model=GPT, stack=MEGATRON, *, b=B, s=S, t=8, sp=True, recompute="none"):
    return layer_activation_items(model, stack, b=b, s=s, t=t, sp=sp, recompute=recompute, bytes_per_element=2)


def korthikanti_part(it):
    """The items the paper counts (it neglects the norms' fp32 statistics)."""
    return sum(v for k, v in it.items() if k != "norm_stats")


def test_items_without_parallelism_are_34sbh_plus_5as2b():
    it = items(t=1, sp=False)
    sbh = S * B * H
    # Section 4.1: two LayerNorm inputs 4sbh; QKV input 2sbh + MLP input 2sbh; Q, K, V 6sbh;
    # projection input 2sbh; two dropout masks 2sbh; GeLU input and output 16sbh; scores 5as^2b
    assert it["norm_inputs"] == 4 * sbh
    assert it["linear_inputs"] == 4 * sbh
    assert it["qkv"] == 6 * sbh
    assert it["attention_output"] == 2 * sbh
    assert it["dropout_masks"] == 2 * sbh
    assert it["mlp_hidden"] == 16 * sbh
    assert it["attention_scores"] == 5 * A * S * S * B
    assert korthikanti_part(it) == pytest.approx(mem.activation_bytes_per_layer(S, B, H, A))
    # LayerNorm mean + rstd in fp32, 8 B a token per norm
    assert it["norm_stats"] == 2 * 8 * S * B


@pytest.mark.parametrize("sp,recompute,formula", [
    (False, "none", lambda: mem.activation_bytes_per_layer_tp(S, B, H, A, 8)),  # sbh(10 + 24/t + 5as/(ht))
    (True, "none", lambda: mem.activation_bytes_per_layer_tp_sp(S, B, H, A, 8)),  # sbh/t (34 + 5as/h)
    (False, "selective", lambda: mem.activation_bytes_per_layer_tp_selective(S, B, H, 8)),  # sbh(10 + 24/t)
    (True, "selective", lambda: mem.activation_bytes_per_layer_tp_sp_selective(S, B, H, 8)),  # 34 sbh / t
    (True, "full", lambda: mem.activation_bytes_per_layer_full_recompute_sp(S, B, H, 8)),  # 2 sbh / t
    (False, "full", lambda: mem.activation_bytes_per_layer_full_recompute(S, B, H)),  # 2 sbh
])
def test_items_match_table_2_rows(sp, recompute, formula):
    assert korthikanti_part(items(sp=sp, recompute=recompute)) == pytest.approx(formula())


def test_flash_attention_keeps_row_statistics_not_scores():
    it = items(stack=CORE)
    # FlashAttention: no s x s matrices; the fp32 log-sum-exp of each row and head: 4 x s b x a / t
    assert it["attention_scores"] == 4 * S * B * A / 8
    rest = korthikanti_part(it) - it["attention_scores"]
    assert rest == pytest.approx(34 * S * B * H / 8)  # what selective recomputation keeps (Table 2)


def test_gqa_keeps_narrower_k_and_v():
    # Llama-2-70B-like: a 64, a_kv 8, d 128, h 8192; TP 8: 8 query heads and 1 kv head a rank
    m = TransformerModel(name="g", n_layers=80, hidden=8192, n_heads=64, n_kv_heads=8, ffn_hidden=28672,
                         vocab=32000, seq_len=4096, positions="rotary", mlp="swiglu", norm="rmsnorm", bias=False)
    it = items(m, CORE, s=4096, t=8)
    T = 4096
    # Q 8 x 128 = 1024 wide, K and V 1 x 128 each: T x (1024 + 256) x 2 B
    assert it["qkv"] == T * (1024 + 256) * 2
    # gated MLP f / t = 3584: gate and up outputs and the down projection's input, 3 x T x 3584 x 2 B
    assert it["mlp_hidden"] == 3 * T * 3584 * 2
    # RMSNorm keeps one fp32 statistic a token: 2 norms x 4 B x T / t (sequence parallel)
    assert it["norm_stats"] == 2 * 4 * T / 8
    # the log-sum-exp on the 8 query heads of a rank
    assert it["attention_scores"] == 4 * T * 8


def test_parallel_block_keeps_one_norm_input_and_shared_output():
    base = dict(name="p", n_layers=2, hidden=4096, n_heads=32, vocab=50304, seq_len=2048)
    seq = items(TransformerModel(**base), CORE, s=2048, t=1, sp=False)
    shared = items(TransformerModel(**base, parallel_block=True, shared_norm=True), CORE, s=2048, t=1, sp=False)
    neox = items(TransformerModel(**base, parallel_block=True), CORE, s=2048, t=1, sp=False)
    Th2 = 2048 * 4096 * 2  # one 16-bit [T, h] tensor
    assert (seq["norm_inputs"], seq["linear_inputs"]) == (2 * Th2, 2 * Th2)
    assert (shared["norm_inputs"], shared["linear_inputs"]) == (Th2, Th2)  # x and ln(x), once each
    assert (neox["norm_inputs"], neox["linear_inputs"]) == (Th2, 2 * Th2)  # two norms of one input
    assert shared["norm_stats"] == seq["norm_stats"] / 2


def test_llama2_7b_tp2_sp_per_layer_items_in_predict():
    r = predict("llama2-7b", "dgx-h100", Plan(tp=2, devices=2, sequence_parallel=True, global_batch=1))
    d = r.details
    T, h, t = 4096, 4096, 2
    # norm inputs: 2 x T h / t x 2 B = 33,554,432
    assert d["memory_layer_norm_inputs_bytes"] == 2 * T * h / t * 2 == 33_554_432
    # RMSNorm rstd: 2 norms x 4 B x T / t = 16,384
    assert d["memory_layer_norm_stats_bytes"] == 16_384
    # norm outputs (QKV and MLP inputs), sequence-split: 2 x T h / t x 2 B = 33,554,432
    assert d["memory_layer_linear_inputs_bytes"] == 33_554_432
    # Q, K, V on 16 heads of 128: T x 3 x 2048 x 2 B = 50,331,648
    assert d["memory_layer_qkv_bytes"] == 50_331_648
    # flash log-sum-exp: 4 B x T x 16 heads = 262,144
    assert d["memory_layer_attention_scores_bytes"] == 262_144
    # projection input: T x 2048 x 2 B = 16,777,216
    assert d["memory_layer_attention_output_bytes"] == 16_777_216
    # Llama 2 trains without dropout (attention_dropout 0.0, no hidden dropout): no masks, although
    # megatron-core's kernel list has two bias-dropout-adds (PyTorch's dropout at p = 0 saves none)
    assert d["memory_layer_dropout_masks_bytes"] == 0
    # SwiGLU at f / t = 5504: 3 x T x 5504 x 2 B = 135,266,304
    assert d["memory_layer_mlp_hidden_bytes"] == 135_266_304
    per_layer = 33_554_432 * 2 + 16_384 + 50_331_648 + 262_144 + 16_777_216 + 135_266_304  # 269,762,560
    # 32 layers, one micro-batch in flight, + the head: final-norm and LM-head inputs and fp32 logits,
    # 4 s b h / t (1 + V / h) = 4 x 4096 x 4096 / 2 x (1 + 32000 / 4096) = 295,698,432
    assert d["memory_layers_held"] == 32
    assert r.memory_bytes_per_device["activations"] == pytest.approx(32 * per_layer + 295_698_432)


def test_zero3_holds_two_gathered_layers():
    r = predict("llama2-7b", "dgx-h100", Plan(devices=8, zero=3, stack="fsdp", global_batch=8))
    # 2 layers x 202,383,360 parameters (4 x 4096^2 + 3 x 4096 x 11008 + 2 x 4096) x 2 B
    assert r.details["memory_gathered_weights_bytes"] == 2 * 202_383_360 * 2


def test_layers_held_by_the_first_stage():
    # llama2-7b, 32 layers on pp 4: 8 a stage; 1F1B keeps pp = 4 micro-batches: 32 layer-micro-batches;
    # interleaved with v = 2: 4 x (1 + (4 - 1) / (4 x 2)) = 5.5 micro-batches: 44 (Korthikanti Section 4.2.3)
    plan = Plan(tp=2, pp=4, devices=8, sequence_parallel=True, global_batch=16)
    one_f_one_b = predict("llama2-7b", "dgx-h100", plan)
    interleaved = predict("llama2-7b", "dgx-h100", plan.replace(schedule="interleaved", virtual_stages=2))
    assert one_f_one_b.details["memory_layers_held"] == 32
    assert interleaved.details["memory_layers_held"] == pytest.approx(44)
    per_layer = sum(v for k, v in one_f_one_b.details.items() if k.startswith("memory_layer_"))
    # the first stage holds no logits (pp > 1): activations = per layer x layers held
    assert one_f_one_b.memory_bytes_per_device["activations"] == pytest.approx(32 * per_layer)


JAX = load_stack("jax-xla")  # selective_recompute = "dots": MaxText's remat_policy=minimal


def test_the_dots_policy_keeps_the_input_and_the_weight_matmul_outputs_the_backward_needs():
    """JAX's checkpoint_dots_with_no_batch_dims on a Llama 2 7B layer (b 4, s 4096, no TP), by hand:
    input 2 sbh, q k v 6 sbh, gate and up 2 x 2 sbf, the attention projection's output 2 sbh (the
    second norm's input is recomputed from it); norms, SiLU and the attention core run again."""
    llama = TransformerModel(name="l7", n_layers=32, hidden=4096, n_heads=32, ffn_hidden=11008, vocab=32000,
                             seq_len=4096, positions="rotary", mlp="swiglu", norm="rmsnorm", bias=False,
                             tied_embeddings=False, dropout=False)
    it = items(llama, JAX, b=4, s=4096, t=1, sp=False, recompute="selective")
    sbh, sbf = 4 * 4096 * 4096, 4 * 4096 * 11008
    assert it["checkpoint"] == 2 * sbh and it["qkv"] == 6 * sbh and it["projection_output"] == 2 * sbh
    assert it["mlp_hidden"] == 2 * 2 * sbf
    assert sum(it.values()) == 10 * sbh + 4 * sbf  # nothing else: 1.39 GB a layer
    assert sum(it.values()) < sum(items(llama, CORE, b=4, s=4096, t=1, sp=False, recompute="selective").values())
    # a parallel block (one shared norm, both branches summed into the next layer's input) keeps no
    # projection output; with the residual stream sharded over TP the input is kept at 1/t
    par = TransformerModel(name="p", n_layers=2, hidden=1024, n_heads=8, ffn_hidden=4096, vocab=1000, seq_len=512,
                           positions="rotary", mlp="gelu", norm="rmsnorm", bias=False, parallel_block=True,
                           shared_norm=True, dropout=False)
    p = items(par, JAX, b=2, s=512, t=4, sp=True, recompute="selective")
    assert p["projection_output"] == 0 and p["checkpoint"] == 2 * 512 * 1024 * 2 / 4
    assert p["mlp_hidden"] == 2 * 512 * 4096 / 4 * 2  # the one up projection, no gate


def test_the_dots_policy_recomputes_the_forward_but_its_weight_matmuls():
    """Under jax-xla, --recompute selective costs the layer's forward less its linear GEMMs; under
    Megatron-Core only the attention core runs again."""
    plan = dict(devices=8, micro_batch=4, global_batch=32, seq=4096, recompute="selective")
    jax = predict("llama2-7b", "dgx-h100", Plan(stack="jax-xla", **plan))
    core = predict("llama2-7b", "dgx-h100", Plan(stack="megatron-core", **plan))
    assert 0 < core.breakdown_s["recompute"] < jax.breakdown_s["recompute"] < jax.breakdown_s["compute"] / 3


def test_a_stack_names_its_selective_policy_with_a_source(tmp_path):
    """``selective_recompute`` is one of the known policies and carries its source; a variant of
    megatron-core may take JAX's dots policy (and then keeps less)."""
    from perfmodel.errors import SpecError

    def variant(name, body):
        path = tmp_path / f"{name}.toml"
        path.write_text(f'name = "{name}"\nbase = "megatron-core"\n' + body)
        return str(path)

    assert CORE.selective_recompute == "attention" and JAX.selective_recompute == "dots"
    dots = load_stack(variant("dots", 'selective_recompute = "dots"\nselective_recompute_source = "s"\n'))
    kept = lambda stack: sum(items(stack=stack, recompute="selective").values())  # noqa: E731
    assert dots.selective_recompute == "dots" and kept(dots) < kept(CORE)
    with pytest.raises(SpecError, match="selective_recompute.*attention, dots"):
        load_stack(variant("bad", 'selective_recompute = "minimal"\nselective_recompute_source = "s"\n'))
    with pytest.raises(SpecError, match="selective_recompute_source"):
        load_stack(variant("nosource", 'selective_recompute = "dots"\n'))


def test_the_dots_policy_on_a_mixture_of_experts_keeps_the_experts_up_projections():
    """Mixtral 8x7B under jax-xla's dots policy, by hand for b 1, s 4096, no TP: each of the top-2
    routed copies keeps its expert's gate and up outputs (2 x 14336 wide), the router its logits (8),
    in place of the dense MLP's up outputs; the permuted tokens are not kept (the dispatch runs again)."""
    from perfmodel.prediction import moe
    from perfmodel.workloads import load_model

    mixtral = load_model("mixtral-8x7b")
    T = 4096
    extra = moe.activation_extra_bytes_per_layer(mixtral, b=1, s=T, t=1, recompute=JAX.recompute_policy("selective"),
                                                 bytes_per_element=2)
    assert extra == pytest.approx(2 * T * 2 * 14336 * 2 + T * 8 * 2 - T * 2 * 14336 * 2)
    kept = sum(items(mixtral, JAX, b=1, s=T, t=1, sp=False, recompute="selective").values()) + extra
    assert 0 < kept < sum(items(mixtral, CORE, b=1, s=T, t=1, sp=False, recompute="selective").values()) + \
        moe.activation_extra_bytes_per_layer(mixtral, b=1, s=T, t=1, recompute="selective", bytes_per_element=2)


def test_the_dots_policy_peak_holds_the_recomputed_tensors_of_one_layer():
    """At the backward of a layer under the dots policy the tensors it reran exist beside what every
    layer kept: activations = layers x kept + (all of one layer's - its kept) + the output layer's
    (Llama 2 7B: 32 layers, h 4096, vocab 32000)."""
    plan = Plan(devices=8, micro_batch=4, global_batch=32, seq=4096, recompute="selective", zero=3, stack="jax-xla")
    r = predict("llama2-7b", "dgx-h100", plan)
    d = r.details
    kept = sum(v for k, v in d.items() if k.startswith("memory_layer_") and k.endswith("_bytes"))
    every = sum(items(load_model_llama(), JAX, b=4, s=4096, t=1, sp=False, recompute="none").values())
    # the final norm's and the LM head's 16-bit inputs and the fp32 logits (Korthikanti et al. 4.3)
    logits = 4 * 4096 * (2 * 4096 + 2 * 4096 + 4 * 32000)
    assert r.memory_bytes_per_device["activations"] == pytest.approx(32 * kept + every - kept + logits, rel=1e-9)


def load_model_llama():
    from perfmodel.workloads import load_model

    return load_model("llama2-7b")
