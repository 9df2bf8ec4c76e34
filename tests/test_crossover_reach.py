"""issue 13 A8: crossover output does not contradict itself (reach, operating point, compare devices)."""

import pytest

import perfmodel as pm
from perfmodel.compare.devices import compare_devices


@pytest.fixture(scope="module")
def dp_gpt2():
    # fp16 on the megatron stack with local DDP (one all-reduce call): fp16 gradients reduced, a
    # slower backward, a crossover beyond the 512 devices a global batch of 512 can use (the issue's
    # case; bf16 reduces fp32 gradients and the H100's default megatron-core stack computes faster,
    # and torch DDP's 25 MiB buckets pay the ring latency per bucket, so each crosses below 512)
    return pm.find_crossover("gpt2-1.5b", "dgx-h100", "dp", "devices", dtype="fp16", stack="megatron", overlap=False)


def test_a_crossover_beyond_the_plans_reach_says_not_reached(dp_gpt2):
    c = dp_gpt2
    assert c.value > 512 and c.reach_limit == 512 and not c.reachable
    headline = dict(c.summary_rows())["crossover"]
    assert headline.startswith("not reached: would need") and "at most 512 devices with global batch 512" in headline
    assert c.to_dict()["reachable"] is False


def test_without_devices_the_operating_point_is_meaningful(dp_gpt2):
    op = dp_gpt2.operating_point
    assert op["x"] == 512  # the largest valid count at or below crossover and reach, not 1 device
    assert dp_gpt2.sensitivity["bandwidth"] < 0 and dp_gpt2.sensitivity["latency"] > 0
    assert any("chosen (no --devices given)" in n for n in dp_gpt2.notes)


def test_a_given_device_count_is_kept():
    c = pm.find_crossover("gpt2-1.5b", "dgx-h100", "dp", "devices", devices=64, global_batch=512, dtype="fp16",
                          stack="megatron")
    assert c.operating_point["x"] == 64 and not any("chosen" in n for n in c.notes)


def test_a_reachable_crossover_has_a_plain_headline():
    c = pm.find_crossover("gpt2-1.5b", "dgx-h100", "dp", "devices", global_batch=4096)
    assert c.reachable and not dict(c.summary_rows())["crossover"].startswith("not reached")


def test_compare_devices_rows_and_crossover_use_one_definition():
    r = compare_devices("resnet50", ["xeon-8480p", "h100-sxm5-80gb", "tpu-v4"], "eth-100g", "switch", "dp",
                        (1, 2, 4, 8, 16, 32, 64))
    for c in r.crossovers:
        x = c["crossover_workers"]
        for row in r.rows:
            if row["device"] == c["device"] and row["workers"] > 1:
                assert row["past_crossover"] == (row["workers"] > x), (row, x)
    cpu = {row["workers"]: row["past_crossover"] for row in r.rows if row["device"] == "xeon-8480p"}
    assert cpu[64] and not cpu[32]  # 33.1 workers (at the measured DDR5 bandwidth): 64 is past it, 32 not
    assert "definitions" in r.to_dict() and r.to_dict()["stack"] == "megatron"


@pytest.mark.parametrize("system, scheme, solve_for, fields, said", [
    ("dgx-h100", "dp", "bandwidth", {}, "dp = 1 at this operating point, so the scheme has nothing to communicate"),
    ("dgx-h100", "tp", "bandwidth", {"tp": 1}, "tp = 1 at this operating point"),
    ("h100-sxm5-80gb", "dp", "devices", {}, "the system is one device, with nothing to communicate"),
])
def test_nothing_to_communicate_is_said_instead_of_compute_bound_throughout(system, scheme, solve_for, fields, said):
    """A scheme of degree 1 (or a one-device system) communicates nothing: a line saying so and
    what to give, not 'compute-bound throughout' (found by a newcomer audit)."""
    from perfmodel.errors import NoCrossoverError

    with pytest.raises(NoCrossoverError, match=said):
        pm.find_crossover("llama2-7b", system, scheme, solve_for, **fields)
