"""ZeRO-3 tensor by tensor, as the DeepSpeed of 2021 ran it (stack deepspeed-2021, its [zero3] table;
perfmodel.prediction.zero3_tensorwise), checked against hand calculations from DeepSpeed v0.3.15's
code: one all-gather per tensor of 1e5 elements or more (smaller ones kept), the next module's
prefetched, modules released by a full recompute gathered again, gradients all-reduced in 5e8-element
buckets beside the backward, copies around each collective."""

import pytest

import perfmodel as pm
from perfmodel.formulas import dataparallel as dpf
from perfmodel.prediction.rules import Choices, ShardUnits, sharded_sync_times
from perfmodel.prediction.zero3_buckets import backward_windows, bucket_counts, flushes_waited_time, window_flushes
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
    block, _ = megatron_modules(moe, tp=1, moe_block=True)
    assert block[-9] == (64 * 4,)  # the router, then 4 experts of two projections each
    assert block[-8:] == ((64 * 64,), (32 * 64,)) * 4
    assert megatron_modules(moe, tp=1)[0][-2:] == ((64 * 256,), (128 * 64,))  # its dense blocks' MLP


def _reusing(stack):
    """The stack with DeepSpeed's reuse distance working as meant (stage3_max_reuse_distance 1e9) and
    its prefetch on: what v0.3.15's off-by-one trace lookup switched off (DeepSpeed issue #1069)."""
    from dataclasses import replace

    return replace(stack, zero3=replace(stack.zero3, reuse_distance_params=1e9, prefetch=True, synchronize=False))


def test_175b_layer_traffic_by_hand():
    """GPT-3 175B, fp16, no TP, 96 layers: only the four weight matrices reach 1e5 elements; with the
    reuse distance working (1e9), under full recompute query_key_value, dense and h->4h are released
    between the recompute's forward and their backward (twice the elements after each exceed 1e9),
    4h->h is kept; every layer but the last (3 x 0 layers after it) gathers again before its backward."""
    model, stack = load_model("gpt3-175b"), _reusing(load_stack("deepspeed-2021"))
    h, layer = 12288, load_model("gpt3-175b").n_params_per_layer
    tw = tensorwise_zero3(model, stack, _choices(), 1, 96, 2, 2, 1.6e12)
    assert (tw.gather_calls, tw.gather_bytes) == (4, 12 * h * h * 2)
    assert (tw.small_calls, tw.small_bytes) == (8, (layer - 12 * h * h) * 2)
    assert tw.backward_share == pytest.approx(95 / 96)
    assert (tw.regather_calls, tw.regather_bytes) == (3, 8 * h * h * 2)
    # backward order, 5e8-element buckets flushed before they overflow: 4h->h's weight, h->4h's bias,
    # h->4h's weight, LayerNorm 2's bias, query_key_value's weight each close one: 5 buckets a layer;
    # the two 4h x h weights (over a bucket) go alone: divided only (2 passes), the rest 6 passes
    assert tw.grad_calls == 5
    alone = 2 * 4 * h * h
    assert tw.grad_copy_s == pytest.approx((6 * (layer - alone) + 2 * alone) * 2 / 1.6e12)
    assert (tw.rest_gather_calls, tw.rest_gather_bytes) == (2, (50257 + 2048) * h * 2)
    # biases and norms of 96 layers plus the final LayerNorm: gathered once a step
    assert tw.persistent_bytes == (96 * (layer - 12 * h * h) + 2 * h) * 2
    assert tw.gather_copy_s_per_byte == pytest.approx(3 / 1.6e12)
    assert tw.grad_allreduce and tw.grad_overlap and tw.prefetch
    # without full recompute nothing is gathered a third time, and 2 x 0.28 layers keep theirs
    sel = tensorwise_zero3(model, stack, _choices("selective"), 1, 96, 2, 2, 1.6e12)
    assert sel.regather_calls == 0 and sel.backward_share == pytest.approx(95 / 96)
    # a 7B layer keeps every module through the recompute; GPT-2 124M keeps its last 22 of 12 layers: all
    assert tensorwise_zero3(load_model("llama2-7b"), stack, _choices(), 1, 32, 2, 2, 1.6e12).regather_calls == 0
    assert tensorwise_zero3(load_model("gpt2-124m"), stack, _choices(), 1, 12, 2, 2, 1.6e12).backward_share == 0
    # arrays of tp (a sweep) give arrays of the same numbers
    import numpy as np

    arr = tensorwise_zero3(model, stack, _choices(), np.array([1.0, 2.0]), 96, 2, 2, 1.6e12)
    two = tensorwise_zero3(model, stack, _choices(), 2, 96, 2, 2, 1.6e12)
    assert arr.gather_bytes[0] == pytest.approx(tw.gather_bytes) and arr.gather_bytes[1] == pytest.approx(two.gather_bytes)
    assert arr.grad_calls[1] == pytest.approx(two.grad_calls)


# the by-hand case of the two tests below: 4 ranks, alpha 10 us, beta 10 GB/s
_A, _B, _N = 10e-6, 10e9, 4


def _gather(size, calls):  # a ring all-gather per call: (n-1) alpha each, (n-1)/n S / beta in all, 3 copy passes
    return calls * (_N - 1) * _A + (_N - 1) / _N * size / _B + 3e-12 * size


def _allreduce(size, buckets, copy):
    return buckets * 2 * (_N - 1) * _A + 2 * (_N - 1) / _N * size / _B + copy


def _by_hand_tw(**changes):
    """The by-hand layer: 4 gathers of 1 MB, 2 persistent tensors of 0.1 MB, half the layers gathering
    again for the backward, 3 tensors (0.6 MB) a third time, 2 MB of gradients in 0.5 bucket
    all-reduces with 1 us of copies; outside: 2 gathers of 0.2 MB and 0.4 MB of gradients in 0.1
    buckets; 0.05 MB persistent; gather copies 3 passes at 1 TB/s."""
    tw = TensorwiseZero3(gather_bytes=1e6, gather_calls=4, small_bytes=0.1e6, small_calls=2, backward_share=0.5,
                         regather_bytes=0.6e6, regather_calls=3, grad_calls=0.5, rest_gather_bytes=0.2e6,
                         rest_gather_calls=2, rest_grad_calls=0.1, persistent_bytes=0.05e6,
                         gather_copy_s_per_byte=3e-12, grad_copy_s=1e-6, rest_grad_copy_s=0.5e-6,
                         grad_allreduce=True, grad_overlap=True, prefetch=True)
    return tw._replace(**changes)


def _by_hand_terms():
    """(gathers before the forward, before the backward, reductions, outside the layers, once a step)."""
    ag = _gather(1e6, 4) + 2 / 3 * _gather(0.1e6, 2)  # micro-batches 2 and 3 gather the persistent ones
    back = 0.5 * _gather(1e6, 4) + _gather(0.6e6, 3)
    red = _allreduce(2e6, 0.5, 1e-6)
    rest = 2 * _gather(0.2e6, 2) + _allreduce(0.4e6, 0.1, 0.5e-6)
    return ag, back, red, rest, _gather(0.05e6, 1)


def test_tensorwise_sync_by_hand():
    """4 ranks, 2 layers, 3 micro-batches; alpha 10 us, beta 10 GB/s. A layer: 4 gathers of 1 MB,
    2 persistent tensors of 0.1 MB, half the layers gathering again for the backward, 3 tensors
    (0.6 MB) a third time, 2 MB of gradients in 0.5 bucket all-reduces with 1 us of copies; outside:
    2 gathers of 0.2 MB and 0.4 MB of gradients in 0.1 buckets; 0.05 MB persistent. Gather copies
    3 passes at 1 TB/s."""
    a, b, n = 10e-6, 10e9, 4
    tw = _by_hand_tw()
    u = ShardUnits(2, 1e6, 2e6, 1e-3, 2e-3, 0.2e6, 0.4e6, tensorwise=tw)

    ag, back, red, rest, once = _by_hand_terms()
    sync, exposed = sharded_sync_times(_choices(), (a, b), n, 3, u)
    assert sync == pytest.approx(3 * (2 * (ag + back + red) + rest) + once)
    hidden = dpf.prefetched_exposed_time(ag, 1e-3, 2) + dpf.prefetched_exposed_time(back + red, 2e-3, 2)
    assert exposed == pytest.approx(3 * (hidden + rest) + once)
    # nothing prefetched and the reduction on the compute stream: everything waits
    slow = u._replace(tensorwise=tw._replace(prefetch=False, grad_overlap=False))
    sync2, exposed2 = sharded_sync_times(_choices(), (a, b), n, 3, slow)
    assert sync2 == pytest.approx(sync) and exposed2 == pytest.approx(sync)
    # one reduce-scatter per tensor instead (contiguous_gradients): 12 calls of 2 MB / 12 a layer,
    # 4 calls of 0.4 MB / 4 outside
    per_tensor = u._replace(tensorwise=tw._replace(grad_allreduce=False, grad_calls=12, rest_grad_calls=4))

    def scatter(size, calls, copy):
        return calls * ((n - 1) * a + (n - 1) / n * size / calls / b) + copy

    sync3, _ = sharded_sync_times(_choices(), (a, b), n, 3, per_tensor)
    rest3 = 2 * _gather(0.2e6, 2) + scatter(0.4e6, 4, 0.5e-6)
    assert sync3 == pytest.approx(3 * (2 * (ag + back + scatter(2e6, 12, 1e-6)) + rest3) + once)
    # one rank: nothing to send
    assert sharded_sync_times(_choices(), (a, b), 1, 3, u) == (0.0, 0.0)


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
    (dict(dtype="fp16", zero=3, shard_group=8), ("deepspeed-2021", "hybrid sharding")),
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
    ('gather = "tensor"\ngahter = "tensor"', r"\[zero3\] gahter: unknown key"),
    ('gather = "layer"\nprefetch = false', r"\[zero3\] prefetch: applies to gather = \"tensor\" only"),
    ('gather = "layer"\ncopy_passes = [1, 1]', r"\[zero3\] copy_passes: applies to gather = \"tensor\" only"),
    ('synchronize = "yes"', r"\[zero3\] synchronize: expected true or false"),
    ("per_rank_ops = 1", r"\[zero3\] per_rank_ops: expected true or false"),
    ('gather = "layer"\nper_rank_ops = true', r"\[zero3\] per_rank_ops: applies to gather"),
    ("synchronize = true", r"\[zero3\] synchronize: .*expected prefetch = false"),
    ('gather = "layer"\nsynchronize = true', r"\[zero3\] synchronize: applies to gather = \"tensor\" only"),
])
def test_a_bad_zero3_table_is_one_line_naming_the_key(tmp_path, table, message):
    from perfmodel.errors import SpecError

    path = tmp_path / "ds.toml"
    body = table if table.startswith("gather") else 'gather = "tensor"\n' + table  # the tensor keys' own checks
    path.write_text(f'name = "ds"\nbase = "deepspeed"\n\n[zero3]\n{body}\nsource = "a test"\n')
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


def test_a_tensorwise_stack_refuses_hybrid_sharding(tmp_path):
    from perfmodel.errors import PlanError

    path = tmp_path / "ds.toml"  # deepspeed runs hybrid sharding; its tensor-wise variant is not modelled with it
    path.write_text('name = "ds"\nbase = "deepspeed"\n\n[zero3]\ngather = "tensor"\nsource = "a test"\n')
    with pytest.raises(PlanError, match="tensor by tensor.*--shard-group"):
        pm.predict("llama2-7b", "dgx-a100", stack=str(path), devices=64, zero=3, shard_group=8, dtype="fp16")
    # ZeRO-2 keeps the layer model, so its hybrid sharding runs
    assert pm.predict("llama2-7b", "dgx-a100", stack=str(path), devices=64, zero=2, shard_group=8,
                      dtype="fp16").step_time_s > 0


def test_device_synchronizes_leave_the_reductions_only_the_backward_compute_by_hand():
    """[zero3] synchronize (DeepSpeed v0.3's torch.cuda.synchronize() around each gather) with no
    prefetch: every gather waits, and a layer's gradient all-reduces hide under at most its backward
    compute (without the recompute). The by-hand numbers of test_tensorwise_sync_by_hand, 2 ms of
    backward a layer of which 1 ms is a full recompute's forward."""
    a, b, n = 10e-6, 10e9, 4
    tw = _by_hand_tw(prefetch=False, synchronize=True, recompute_full=True)
    u = ShardUnits(2, 1e6, 2e6, 1e-3, 2e-3, 0.2e6, 0.4e6, tensorwise=tw)

    ag, back, red, rest, once = _by_hand_terms()
    sync, exposed = sharded_sync_times(_choices(), (a, b), n, 3, u)
    assert sync == pytest.approx(3 * (2 * (ag + back + red) + rest) + once)
    assert exposed == pytest.approx(3 * (2 * (ag + back + max(red - 1e-3, 0.0)) + rest) + once)
    # a reduction longer than the backward: the excess waits
    slow = u._replace(unit_backward_s=1.0001e-3)
    _, exposed2 = sharded_sync_times(_choices(), (a, b), n, 3, slow)
    assert exposed2 == pytest.approx(3 * (2 * (ag + back + red - 0.0001e-3) + rest) + once)


def test_deepspeed_2021_gathers_every_tensor_three_times_a_micro_batch():
    """As v0.3.15 ran (its step counter one behind the module trace: DeepSpeed issue #1069), nothing
    is prefetched and nothing kept for reuse: with full recompute every large tensor of every layer
    is gathered for the forward, the recompute and the backward, all waited for."""
    stack = load_stack("deepspeed-2021")
    z = stack.zero3
    assert (z.prefetch, z.reuse_distance_params, z.synchronize) == (False, 0.0, True)
    tw = tensorwise_zero3(load_model("gpt3-175b"), stack, _choices(), 1, 96, 2, 2, 1.5e12)
    assert tw.backward_share == 1.0 and tw.regather_bytes == tw.gather_bytes  # all four weights again


def test_a_gather_does_work_per_rank_of_its_group():
    """DeepSpeed v0.3's gather narrows its buffer once per rank in Python and PyTorch 1.8's list
    all-gather copies every rank's block out ([zero3] per_rank_ops): each gather call costs dp eager
    ops more, which grows with the ranks while the bytes per rank shrink. The by-hand case, 5 us a copy: every gather call (4 + 2/3 x
    2 forward, 0.5 x 4 + 3 backward per layer, 2 x 2 outside, 1 once a step) n = 4 copies more."""
    tw = _by_hand_tw(prefetch=False, synchronize=True, recompute_full=True)
    u = ShardUnits(2, 1e6, 2e6, 1e-3, 2e-3, 0.2e6, 0.4e6, tensorwise=tw)
    sync, exposed = sharded_sync_times(_choices(), (_A, _B), _N, 3, u)
    copies = u._replace(tensorwise=tw._replace(per_rank_op_s=5e-6))
    sync2, exposed2 = sharded_sync_times(_choices(), (_A, _B), _N, 3, copies)
    calls_per_microbatch = 2 * (4 + 2 / 3 * 2 + 0.5 * 4 + 3) + 2 * 2
    extra = (3 * calls_per_microbatch + 1) * _N * 5e-6
    assert sync2 - sync == pytest.approx(extra) and exposed2 - exposed == pytest.approx(extra)
    stack = load_stack("deepspeed-2021")
    assert stack.zero3.per_rank_ops
    assert tensorwise_zero3(load_model("gpt3-175b"), stack, _choices(), 1, 96, 2, 2, 1.5e12).per_rank_op_s == \
        stack.launch_overhead_time


def test_deepspeed_2021_holds_one_module_gathered_not_two_layers():
    """With no prefetch and no reuse, v0.3.15 holds the module that runs and, while a tensor is
    gathered, PyTorch 1.8's flat output buffer: for the 530B model (h 20480, 4h MLP) the h->4h
    module and its weight again, 2 x (20480 x 81920) + 81920 elements of 2 B, not two whole layers
    (FSDP's limit_all_gathers working set, which the deepspeed profile keeps)."""
    plan = pm.Plan(devices=640, micro_batch=4, global_batch=2560, seq=2048, dtype="fp16", recompute="full", zero=3)
    old = pm.predict("megatron-530b", "dgx-a100", plan.replace(stack="deepspeed-2021"))
    new = pm.predict("megatron-530b", "dgx-a100", plan.replace(stack="deepspeed"))
    assert old.details["memory_gathered_weights_bytes"] == pytest.approx((2 * 20480 * 81920 + 81920) * 2)
    layer = load_model("megatron-530b").n_params_per_layer
    assert new.details["memory_gathered_weights_bytes"] == pytest.approx(2 * layer * 2)
    assert old.fits_in_memory  # SC'21 Table 2 ran it on 80 GB A100s


def test_the_post_step_gather_rebuilds_each_persistent_tensor_rank_by_rank():
    """After the optimizer step DeepSpeed v0.3.15 gathers the persistent tensors (under 1e5 elements)
    in one call and rebuilds each with a device copy of every rank's slice (_allgather_params, a
    Python loop over the ranks): GPT-3 175B keeps 8 such tensors a layer (two LayerNorms' weight and
    bias, four biases) and the final LayerNorm's 2; on 1536 ranks every one of them has a slice on
    every rank (12288 / 8, 36864 / 24, 49152 / 32): (96 x 8 + 2) x 1536 = 1,182,720 copies a step,
    one eager op each (6.76 us): 8.0 s, exposed (nothing runs between the step and the next forward)."""
    import numpy as np

    from perfmodel.prediction.zero3_tensorwise import post_step_copies, tensorwise_sync_times

    assert post_step_copies((12288, 36864, 49152), 1e5, 1536) == 3 * 1536
    assert post_step_copies((20480,), 1e5, 2240) == 2048  # slices of ceil(20480 / 2240) = 10: 2048 ranks start inside
    assert post_step_copies((2 * 10**5,), 1e5, 1536) == 0  # not persistent: gathered with its module
    assert list(post_step_copies((12288,), 1e5, np.array([384.0, 1536.0]))) == [384, 1536]
    stack = load_stack("deepspeed-2021")
    tw = tensorwise_zero3(load_model("gpt3-175b"), stack, _choices(), 1, 96, 2, 2, 1.5e12)
    u = ShardUnits(96, 1e6, 2e6, 1e-3, 2e-3, 0.2e6, 0.4e6, tensorwise=tw)
    level = (5e-6, 192e9)
    sync, exposed = tensorwise_sync_times(level, 1536, 1, u, tw)
    sync0, exposed0 = tensorwise_sync_times(level, 1536, 1, u, tw._replace(layer_tensors=(), rest_tensors=()))
    rebuilt = (96 * 8 + 2) * 1536 * stack.launch_overhead_time
    assert rebuilt == pytest.approx(8.0, rel=1e-3)
    assert sync - sync0 == pytest.approx(rebuilt) and exposed - exposed0 == pytest.approx(rebuilt)


def test_backward_windows_follow_megatron_s_hooks_and_skipped_bias_adds():
    """GPT-3 175B (h 12288, tp 1): the windows between two gathers in backward order and the hooks
    that fire in each. The norms' tensors (h elements) are below the 1e5 persistence threshold: kept
    gathered, their modules fetch nothing and synchronize nothing (fetch_sub_module synchronizes only
    with partitioned parameters), so their hooks fire in the window before them. dense_h_to_4h's
    bias fires in dense_4h_to_h's window, dense's bias after the second norm, dense_4h_to_h's bias
    of the layer below after the first norm (Megatron's skip_bias_add modules). Each window's share
    of the GEMM compute by weight elements (12 h^2 in all)."""
    h = 12288
    block, _ = megatron_modules(load_model("gpt3-175b"), 1)
    windows = backward_windows(block, 1e5)
    assert [share for share, _ in windows] == pytest.approx([4 / 12, 4 / 12, 1 / 12, 3 / 12])
    assert [tensors for _, tensors in windows] == [
        (4 * h * h, 4 * h), (4 * h * h, h, h, h), (h * h,), (3 * h * h, 3 * h, h, h, h)]
    # a threshold below the norms' size: they gather, and open windows with no GEMM
    assert len(backward_windows(block, 1e3)) == 6
    assert backward_windows(block[:5], 1e5) is None  # a parallel block (one norm): another layout


def test_bucket_flushes_by_window_by_hand():
    """Buckets of 10 elements; windows (0.5, [4, 12]), (0.5, [3, 5]), (0, [2]). The first layer ends
    holding 3 + 5 + 2 = 10 (not over the bucket); every later layer: the 4 flushes those 10, the 12
    flushes the 4 and stays alone, the 3 flushes the 12 (alone), 3 + 5 + 2 fit. A layer of 3
    elements alone fills the bucket over three layers: every third layer flushes 9."""
    windows = ((0.5, (4.0, 12.0)), (0.5, (3.0, 5.0)), (0.0, (2.0,)))
    layers = window_flushes(windows, 10.0, layers=3)
    assert len(layers) == 3
    for layer in layers:
        assert [[float(x) for x, _ in fl] for _, fl in layer] == [[10.0, 4.0], [12.0, 0.0], [0.0]]
        assert [[bool(a) for _, a in fl] for _, fl in layer] == [[False, False], [True, False], [False]]
    small = window_flushes(((1.0, (3.0,)),), 10.0, layers=6)
    assert [float(layer[0][1][0][0]) for layer in small] == [0.0, 0.0, 9.0, 0.0, 0.0, 9.0]


def test_a_layer_smaller_than_the_bucket_still_reduces_its_gradients():
    """megatron-7.5b (h 4096: 12 h^2 + 13 h = 201M elements a layer) fills a 5e8 bucket every 2.5
    layers: 14 flushes over the 32 simulated layers (the steady state of a second layer alone had
    none, and the gradients went unreduced)."""
    block, _ = megatron_modules(load_model("megatron-7.5b"), 1)
    flushes, shared = bucket_counts(block, 5e8, 1e5)
    assert flushes == pytest.approx(14 / 32)
    assert shared == sum(sum(m) for m in block)  # no tensor larger than the bucket


def test_a_bucket_flushed_with_no_compute_left_in_its_window_is_waited_for_by_hand():
    """DeepSpeed v0.3.15 stage 3: a bucket's all-reduce waits at the next module's device
    synchronize, so it hides only under the compute of the window its flush fell in. A 1 ms
    backward in two windows of 0.5 ms and 0 ms; a 2 MB all-reduce (+1 us of copies) in the first
    and a 1 MB one in the second (4 ranks, 10 us, 10 GB/s): the first, 6 x 10 us + 1.5 x 2e6 / 1e10
    + 1 us = 361 us, hides under its 0.5 ms; the second waits all of its 60 + 150 + 1 us."""
    windows = ((1.0, ((0.5, ((2e6, 1e-6),)), (0.0, ((1e6, 1e-6), (0.0, 0.0))))),)
    first = 2 * 3 * _A + 1.5 * 2e6 / _B + 1e-6
    second = 2 * 3 * _A + 1.5 * 1e6 / _B + 1e-6
    assert first < 0.5e-3
    assert flushes_waited_time(windows, 1e-3, _N, _A, _B) == pytest.approx(second)
    # a 0.5 ms backward leaves the first 0.25 ms: it waits the rest
    assert flushes_waited_time(windows, 0.5e-3, _N, _A, _B) == pytest.approx(first - 0.25e-3 + second)


def test_deepspeed_2021_waits_per_window_by_hand():
    """gpt3-175b on 1536 ranks (5 us, 192 GB/s), ZeRO-3 as v0.3.15 runs it, 0.1 s of backward GEMMs
    a layer: dense_h_to_4h's window (a third of them, 33.3 ms) runs its bias's small bucket (latency
    only) and its weight's all-reduce (604M fp16 elements, more than the 5e8 bucket: alone, divided
    in place, 2 passes at 1.5 TB/s), flushed by the next norm's hook in the same window: 15.4 +
    29.5 ms, 11.6 ms more than its compute; dense_4h_to_h's window (33.3 ms) the qkv bucket of the
    layer above (453M elements: flattened, divided, copied back, 6 passes) and its own weight, 57.9
    ms; qkv's window (25 ms) hides dense's bucket (151M elements, 19.6 ms); dense's flushes none."""
    from perfmodel.formulas import collectives as coll
    stack = load_stack("deepspeed-2021")
    tw = tensorwise_zero3(load_model("gpt3-175b"), stack, _choices(), 1, 96, 2, 2, 1.5e12)
    h = 12288

    def allreduce(elements, passes):
        return coll.ring_allreduce_time(1536, 2 * elements, 5e-6, 1.92e11) + passes * 2 * elements / 1.5e12

    up = allreduce(4 * h, 6) + allreduce(4 * h * h, 2)
    down = allreduce(3 * h * h + 3 * h + 3 * h, 6) + allreduce(4 * h * h, 2)
    qkv = allreduce(h * h + 3 * h, 6)
    assert qkv < 0.1 / 4 and up > 0.1 / 3 and down > 0.1 / 3
    assert flushes_waited_time(tw.flush_windows, 0.1, 1536, 5e-6, 1.92e11) == pytest.approx(
        (up - 0.1 / 3) + (down - 0.1 / 3), rel=1e-6)
