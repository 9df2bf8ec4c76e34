"""ZeRO-3 as the DeepSpeed of 2021 ran it (stack deepspeed-2021, its [zero3] table): one collective
per parameter tensor, each waited for, with copies around it, and a layer gathered again for the
backward when it is larger than the reuse distance; checked against hand calculations."""

import pytest

import perfmodel as pm
from perfmodel.prediction.rules import Choices, ShardUnits, sharded_sync_times
from perfmodel.specs.stack import load_stack
from perfmodel.workloads import load_model


def test_parameter_tensors_as_megatron_lays_them_out():
    # GPT-3: fused qkv, proj, fc1, fc2, each with a bias, two LayerNorms of weight and bias = 12;
    # outside: word and position embeddings, the final LayerNorm (2), tied head = 4
    assert load_model("gpt3-175b").param_tensors() == (12, 4)
    # Llama 2: four weights without bias (q/k/v fused, gate/up fused), two RMSNorm scales = 6;
    # outside: embedding, final norm, untied LM head = 3
    assert load_model("llama2-7b").param_tensors() == (6, 3)


def _choices(recompute="full"):
    return Choices(dtype="fp16", recompute=recompute, sequence_parallel=False, schedule="1f1b", zero=3,
                   grad_sync="allreduce", overlap=True, optimizer="adamw")


def test_per_tensor_waited_gathers_by_hand():
    """4 ranks, 2 layers of 1 MB parameters and 1 MB gradients in 12 tensors each, 4 tensors of
    0.1 MB outside; alpha 10 us, beta 10 GB/s; gather copies 3 passes and scatter copies 4 passes at
    1 TB/s; one regather; 2 micro-batches. Ring all-gather of S in k calls: k (n-1) alpha +
    (n-1)/n S / beta."""
    alpha, beta, n, k, size, rest = 10e-6, 10e9, 4, 12, 1e6, 0.1e6
    u = ShardUnits(2, size, size, 1.0, 2.0, rest, rest, unit_calls=k, rest_calls=4, prefetch=False,
                   gather_copy_s_per_byte=3 / 1e12, scatter_copy_s_per_byte=4 / 1e12, regather=1)

    def ring(calls, s):
        return calls * (n - 1) * alpha + (n - 1) / n * s / beta

    ag = ring(k, size) + 3 * size / 1e12
    rs = ring(k, size) + 4 * size / 1e12
    rest_t = 2 * (ring(4, rest) + 3 * rest / 1e12) + ring(4, rest) + 4 * rest / 1e12
    expected = 2 * (2 * (ag + 2 * ag + rs) + rest_t)  # m x (layers x (forward + backward) + rest)
    sync, exposed = sharded_sync_times(_choices(), (alpha, beta), n, 2, u)
    assert sync == pytest.approx(expected)
    assert exposed == pytest.approx(expected)  # nothing prefetched: all of it waits
    # prefetched instead: the layers' gathers hide under 1 s / 2 s of compute, only the first of
    # each pass and the parameters outside the layers wait
    u_pre = u._replace(prefetch=True)
    sync2, exposed2 = sharded_sync_times(_choices(), (alpha, beta), n, 2, u_pre)
    assert sync2 == pytest.approx(expected)
    assert exposed2 == pytest.approx(2 * (ag + 2 * ag + rs + rest_t))


def test_deepspeed_2021_stack_and_its_effect_on_a_175b_zero3_step():
    z = load_stack("deepspeed-2021").zero3
    assert (z.gather, z.prefetch, z.gather_copy_passes, z.scatter_copy_passes, z.reuse_distance_params) == (
        "tensor", False, 3.0, 4.0, 1e9)
    assert load_stack("deepspeed").zero3.gather == "layer" and load_stack("fsdp").zero3.prefetch
    kw = dict(devices=768, zero=3, micro_batch=2, global_batch=1536, dtype="fp16", recompute="full")
    new = pm.predict("gpt3-175b", "dgx-a100", stack="deepspeed-2021", **kw)
    old = pm.predict("gpt3-175b", "dgx-a100", stack="deepspeed", **kw)
    assert new.breakdown_s["compute"] == pytest.approx(old.breakdown_s["compute"])
    # 96 layers x 12 tensors x 4 collectives (forward gather, recompute and backward gathers: a
    # 1.8e9-parameter layer is past the 1e9 reuse distance, gradient reduce-scatter) x 767 ring
    # steps x 5 us (HDR's per-step latency) = 17.7 s of latency alone, all of it waited for
    latency = 96 * 12 * 4 * 767 * 5e-6
    assert new.breakdown_s["dp_comm"] > latency > 10 * old.breakdown_s["dp_comm"]


@pytest.mark.parametrize("table, message", [
    ('gather = "param"', r"\[zero3\] gather: expected one of layer, tensor"),
    ('prefetch = "no"', r"\[zero3\] prefetch: expected true or false"),
    ("copy_passes = [3]", r"\[zero3\] copy_passes: expected \[gather, scatter\]"),
    ("copy_passes = [3, -1]", r"\[zero3\] copy_passes"),
    ("reuse_distance = -5", r"\[zero3\] reuse_distance"),
    ("reuse_distance = nan", r"\[zero3\] reuse_distance: expected a finite number"),
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
                    'source = "a test"\n')
    kw = dict(devices=64, zero=3, micro_batch=1, global_batch=64, dtype="bf16")
    mine = pm.predict("llama2-7b", "dgx-a100", stack=str(path), **kw)
    base = pm.predict("llama2-7b", "dgx-a100", stack="deepspeed", **kw)
    assert mine.breakdown_s["dp_comm"] > base.breakdown_s["dp_comm"]
