"""ZeRO-3 tensor by tensor, as the DeepSpeed of 2021 ran it (stack deepspeed-2021, its [zero3] table;
perfmodel.prediction.zero3_tensorwise), checked against hand calculations from DeepSpeed v0.3.15's
code: one all-gather per tensor of 1e5 elements or more (smaller ones kept), the next module's
prefetched, modules released by a full recompute gathered again, gradients all-reduced in 5e8-element
buckets beside the backward, copies around each collective."""

import pytest

import perfmodel as pm
from perfmodel.formulas import dataparallel as dpf
from perfmodel.prediction.rules import Choices, ShardUnits, sharded_sync_times
from perfmodel.prediction.zero3_tensorwise import TensorwiseZero3, megatron_modules, tensorwise_zero3
from perfmodel.specs.stack import load_stack
from perfmodel.workloads import load_model


def _choices(recompute="full", zero=3):
    return Choices(dtype="fp16", recompute=recompute, sequence_parallel=False, schedule="1f1b", zero=zero,
                   grad_sync="allreduce", overlap=True, optimizer="adamw")


def test_megatron_modules_of_gpt3_llama_and_a_mixture_of_experts():
    h = 12288
    block, outside = megatron_modules(load_model("gpt3-175b"), tp=1)
    # LayerNorm (w, b), query_key_value (w, b), dense (w, b), LayerNorm, h->4h (w, b), 4h->h (w, b)
    assert block == ((h, h), (h * 3 * h, 3 * h), (h * h, h), (h, h), (h * 4 * h, 4 * h), (4 * h * h, h))
    assert outside == (50257 * h, 2048 * h, h, h)  # token and position embeddings, final LayerNorm
    # Llama 2 7B on TP 2: RMSNorm scales, fused qkv / gate-up split over tp, no biases, untied head
    block, outside = megatron_modules(load_model("llama2-7b"), tp=2)
    assert block == ((4096,), (4096 * 3 * 4096 / 2,), (4096 * 4096 / 2,), (4096,), (4096 * 2 * 11008 / 2,),
                     (11008 * 4096 / 2,))
    assert outside == (32000 * 4096 / 2, 4096, 32000 * 4096 / 2)
    moe = pm.load_model("llama2-7b").__class__(name="m", n_layers=2, hidden=64, n_heads=4, vocab=100, seq_len=16,
                                                mlp="swiglu", norm="rmsnorm", bias=False, ffn_hidden=128,
                                                positions="rotary", n_experts=4, top_k=2, expert_ffn_hidden=32)
    block, _ = megatron_modules(moe, tp=1)
    assert block[-9] == (64 * 4,)  # the router, then 4 experts of two projections each
    assert block[-8:] == ((64 * 64,), (32 * 64,)) * 4


def test_175b_layer_traffic_by_hand():
    """GPT-3 175B, fp16, no TP: only the four weight matrices reach 1e5 elements; under full
    recompute query_key_value, dense and h->4h are released between the recompute's forward and
    their backward (twice the elements after each exceed 1e9) and 4h->h is kept (nothing after it)."""
    model, stack = load_model("gpt3-175b"), load_stack("deepspeed-2021")
    h = 12288
    tw = tensorwise_zero3(model, stack, _choices(), 1, 175e9, 2, 2, 1.6e12)
    assert (tw.gather_calls, tw.gather_bytes) == (4, 12 * h * h * 2)
    assert (tw.regather_calls, tw.regather_bytes) == (3, 8 * h * h * 2)
    assert tw.grad_calls == pytest.approx(model.n_params_per_layer / 5e8)
    assert (tw.rest_gather_calls, tw.rest_gather_bytes) == (2, (50257 + 2048) * h * 2)
    # biases and norms of 96 layers plus the final LayerNorm: gathered once a step
    assert tw.persistent_bytes == (96 * (3 * h + h + 4 * h + h + 4 * h) + 2 * h) * 2
    assert tw.gather_copy_s_per_byte == pytest.approx(3 / 1.6e12) and tw.grad_copy_s_per_byte == pytest.approx(6 / 1.6e12)
    assert tw.kept == 0 and tw.grad_allreduce and tw.grad_overlap and tw.prefetch
    # without full recompute nothing is gathered a third time; a 7B layer keeps every module
    assert tensorwise_zero3(model, stack, _choices("selective"), 1, 175e9, 2, 2, 1.6e12).regather_calls == 0
    assert tensorwise_zero3(load_model("llama2-7b"), stack, _choices(), 1, 7e9, 2, 2, 1.6e12).regather_calls == 0
    # a stage within the reuse distance stays gathered
    assert tensorwise_zero3(load_model("gpt2-124m"), stack, _choices(), 1, 124e6, 2, 2, 1.6e12).kept == 1


def test_tensorwise_sync_by_hand():
    """4 ranks, 2 layers; alpha 10 us, beta 10 GB/s. A layer: 4 gathers of 1 MB in all, 3 of them
    (0.6 MB) again, 2 MB of gradients in 0.5 bucket all-reduces; outside: 2 gathers of 0.2 MB and
    0.4 MB of gradients in 0.1 buckets; 0.05 MB persistent. Copies 3 and 6 passes at 1 TB/s."""
    a, b, n = 10e-6, 10e9, 4
    tw = TensorwiseZero3(gather_bytes=1e6, gather_calls=4, regather_bytes=0.6e6, regather_calls=3, grad_calls=0.5,
                         rest_gather_bytes=0.2e6, rest_gather_calls=2, rest_grad_calls=0.1, persistent_bytes=0.05e6,
                         gather_copy_s_per_byte=3e-12, grad_copy_s_per_byte=6e-12, grad_allreduce=True,
                         grad_overlap=True, prefetch=True, kept=0)
    u = ShardUnits(2, 1e6, 2e6, 1e-3, 2e-3, 0.2e6, 0.4e6, tensorwise=tw)

    def gather(size, calls):  # a ring all-gather per call: (n-1) alpha each, (n-1)/n S / beta in all
        return calls * (n - 1) * a + (n - 1) / n * size / b + 3e-12 * size

    def allreduce(size, buckets):
        return buckets * 2 * (n - 1) * a + 2 * (n - 1) / n * size / b + 6e-12 * size

    ag, reg, red = gather(1e6, 4), gather(0.6e6, 3), allreduce(2e6, 0.5)
    rest = 2 * gather(0.2e6, 2) + allreduce(0.4e6, 0.1)
    once = gather(0.05e6, 1)
    sync, exposed = sharded_sync_times(_choices(), (a, b), n, 3, u)
    assert sync == pytest.approx(3 * (2 * (2 * ag + reg + red) + rest) + once)
    hidden = dpf.prefetched_exposed_time(ag, 1e-3, 2) + dpf.prefetched_exposed_time(ag + reg + red, 2e-3, 2)
    assert exposed == pytest.approx(3 * (hidden + rest) + once)
    # nothing prefetched and the reduction on the compute stream: everything waits
    slow = u._replace(tensorwise=tw._replace(prefetch=False, grad_overlap=False))
    sync2, exposed2 = sharded_sync_times(_choices(), (a, b), n, 3, slow)
    assert sync2 == pytest.approx(sync) and exposed2 == pytest.approx(sync)
    # one reduce-scatter per tensor instead (contiguous_gradients): 12 calls of 2 MB / 12 a layer,
    # 4 calls of 0.4 MB / 4 outside
    per_tensor = u._replace(tensorwise=tw._replace(grad_allreduce=False, grad_calls=12, rest_grad_calls=4))

    def scatter(size, calls):
        return calls * ((n - 1) * a + (n - 1) / n * size / calls / b) + 6e-12 * size

    sync3, _ = sharded_sync_times(_choices(), (a, b), n, 3, per_tensor)
    rest3 = 2 * gather(0.2e6, 2) + scatter(0.4e6, 4)
    assert sync3 == pytest.approx(3 * (2 * (2 * ag + reg + scatter(2e6, 12)) + rest3) + once)


def test_deepspeed_2021_changes_zero3_only():
    kw = dict(devices=64, micro_batch=1, global_batch=64, dtype="fp16")
    for zero in (0, 1, 2):
        new = pm.predict("llama2-7b", "dgx-a100", stack="deepspeed-2021", zero=zero, **kw)
        old = pm.predict("llama2-7b", "dgx-a100", stack="deepspeed", zero=zero, **kw)
        assert new.step_time_s == pytest.approx(old.step_time_s) and new.details["dp_sync_s"] == pytest.approx(
            old.details["dp_sync_s"])
    new = pm.predict("gpt3-175b", "dgx-a100", stack="deepspeed-2021", zero=3, devices=768, micro_batch=2,
                     global_batch=1536, dtype="fp16", recompute="full")
    old = pm.predict("gpt3-175b", "dgx-a100", stack="deepspeed", zero=3, devices=768, micro_batch=2,
                     global_batch=1536, dtype="fp16", recompute="full")
    assert new.breakdown_s["compute"] == pytest.approx(old.breakdown_s["compute"])
    assert new.details["dp_sync_s"] > old.details["dp_sync_s"]  # all-reduce (twice the bytes), copies


@pytest.mark.parametrize("kw, words", [
    (dict(dtype="bf16"), ("deepspeed-2021", "bf16")),
    (dict(dtype="fp16", zero=3, shard_group=8), ("deepspeed-2021",)),
])
def test_deepspeed_2021_refuses_what_2021_could_not_run(kw, words):
    from perfmodel.errors import PlanError

    with pytest.raises(PlanError) as err:
        pm.predict("llama2-7b", "dgx-a100", stack="deepspeed-2021", devices=64, **kw)
    assert all(w in str(err.value) for w in words)


@pytest.mark.parametrize("table, message", [
    ('gather = "param"', r"\[zero3\] gather: expected one of layer, tensor"),
    ('prefetch = "no"', r"\[zero3\] prefetch: expected true or false"),
    ("copy_passes = [3]", r"\[zero3\] copy_passes: expected \[gather, gradient\]"),
    ("copy_passes = [3, -1]", r"\[zero3\] copy_passes"),
    ("reuse_distance = -5", r"\[zero3\] reuse_distance"),
    ("reuse_distance = nan", r"\[zero3\] reuse_distance: expected a finite number"),
    ('grad_reduce = "allreduce"', r"\[zero3\] grad_reduce: expected one of reduce-scatter, all-reduce"),
    ("grad_bucket = 0", r"\[zero3\] grad_bucket"),
    ('gahter = "tensor"', r"\[zero3\] gahter: unknown key"),
])
def test_a_bad_zero3_table_is_one_line_naming_the_key(tmp_path, table, message):
    from perfmodel.errors import SpecError

    path = tmp_path / "ds.toml"
    path.write_text(f'name = "ds"\nbase = "deepspeed"\n\n[zero3]\n{table}\nsource = "a test"\n')
    with pytest.raises(SpecError, match=message):
        load_stack(str(path))


def test_a_zero3_table_of_a_user_stack_file_runs(tmp_path):
    path = tmp_path / "ds.toml"
    path.write_text('name = "ds"\nbase = "deepspeed"\n\n[zero3]\ngather = "tensor"\nprefetch = false\n'
                    'grad_overlap = false\nsource = "a test"\n')
    kw = dict(devices=64, zero=3, micro_batch=1, global_batch=64, dtype="bf16")
    mine = pm.predict("llama2-7b", "dgx-a100", stack=str(path), **kw)
    base = pm.predict("llama2-7b", "dgx-a100", stack="deepspeed", **kw)
    assert mine.breakdown_s["dp_comm"] > base.breakdown_s["dp_comm"]


def test_an_encoders_tensors_outside_its_blocks():
    # BERT-large: token, position and token-type embeddings, the embedding LayerNorm (w, b), the pooler (w, b)
    _, outside = megatron_modules(load_model("bert-large"), tp=1)
    assert outside == (30522 * 1024, 512 * 1024, 2 * 1024, 1024, 1024, 1024 * 1024, 1024)
