"""Facts of the product description, derived from the model with bundled hardware (issue 4, item 7):
data vs model parallelism, the bus as the bottleneck of tensor parallelism, and why a GPU cluster
is more sensitive to the network than a CPU cluster. Each fact is computed, not asserted from a
table: change a formula or a spec file so that the fact no longer follows, and its test fails.
"""

import math

import pytest

from perfmodel.compare.devices import compare_devices, device_cluster
from perfmodel.crossover.find import find_crossover, scaled_system
from perfmodel.prediction import predict

MICRO_BATCHES = (1, 4, 16)
CPU, GPU = "xeon-8480p", "h100-sxm5-80gb"


# --- data parallelism communicates once per mini-batch; model parallelism inside it --------------


def test_data_parallel_communication_per_step_does_not_grow_with_micro_batches():
    """Gradients are accumulated over the micro-batches and synchronised once per optimizer step."""
    comm = [predict("gpt2-1.5b", "dgx-a100", devices=16, micro_batch=1, global_batch=16 * m).comm_total_s
            for m in MICRO_BATCHES]
    assert comm[0] > 0
    assert all(math.isclose(c, comm[0], rel_tol=1e-12) for c in comm)
    # ... while the compute it competes with grows with them: more micro-batches, less comm-bound
    steps = [predict("gpt2-1.5b", "dgx-a100", devices=16, global_batch=16 * m) for m in MICRO_BATCHES]
    shares = [s.breakdown_s["dp_comm"] / s.step_time_s for s in steps]
    assert shares[0] > shares[1] > shares[2]


def test_tensor_parallel_communication_grows_with_every_micro_batch():
    """Tensor parallelism all-reduces activations inside every layer of every micro-batch."""
    comm = [predict("megatron-1.7b", "dgx-a100", tp=8, micro_batch=1, global_batch=m).comm_total_s
            for m in MICRO_BATCHES]
    for m, c in zip(MICRO_BATCHES, comm):
        assert math.isclose(c / comm[0], m, rel_tol=1e-12)


# --- tensor parallelism can make the bus the bottleneck -----------------------------------------


@pytest.mark.parametrize("model", ["megatron-1.7b", "llama2-7b"])
def test_tensor_parallel_over_pcie_is_communication_bound_but_not_over_nvswitch(model):
    pcie = predict(model, "pcie-8gpu", tp=8, global_batch=8)
    nvswitch = predict(model, "dgx-a100", tp=8, global_batch=8)
    assert pcie.bound == "communication" and pcie.breakdown_s["tp_comm"] > pcie.breakdown_s["compute"]
    assert nvswitch.bound == "compute" and nvswitch.breakdown_s["tp_comm"] < nvswitch.breakdown_s["compute"] / 2
    # the bottleneck is the bus: a PCIe 4.0 x16 port's share, far below an NVSwitch GPU's
    assert pcie.details["tp_bandwidth_per_device"] <= 32e9 < nvswitch.details["tp_bandwidth_per_device"] / 5


def test_tensor_parallel_crossover_is_inside_the_pcie_node_and_at_the_edge_of_the_nvswitch_node():
    pcie = find_crossover("megatron-1.7b", "pcie-8gpu", "tp", "devices")
    nvswitch = find_crossover("megatron-1.7b", "dgx-a100", "tp", "devices")
    assert pcie.value < 8 and pcie.integer_value <= 8
    # on NVSwitch TP stays compute-bound in the node; it turns communication-bound only by
    # leaving it (the jump to the inter-node network at t > 8)
    assert nvswitch.value == 8 and nvswitch.at_discontinuity


# --- GPU clusters are more sensitive to the network; CPU clusters scale more efficiently ----------


@pytest.fixture(scope="module", params=[("resnet50", "eth-100g"), ("resnet50", "ib-hdr"), ("gpt2-124m", "eth-100g")])
def cpu_vs_gpu(request):
    model, link = request.param
    return compare_devices(model, [CPU, GPU], link, "switch", "dp", (1, 2, 4, 8, 16, 32, 64))


def test_gpu_cluster_is_more_sensitive_to_communication(cpu_vs_gpu):
    r = cpu_vs_gpu
    # the cause: the same model, bytes and link, but a GPU computes a step much faster
    t1 = {row["device"]: row["step_time_s"] for row in r.rows if row["workers"] == 1}
    assert t1[GPU] < t1[CPU] / 3
    # so it runs out of compute to hide the same gradient sync behind at fewer workers
    assert r.crossover(GPU) < r.crossover(CPU) / 3
    at16 = {row["device"]: row for row in r.rows if row["workers"] == 16}
    assert at16[GPU]["comm_fraction"] > at16[CPU]["comm_fraction"]
    assert at16[GPU]["bandwidth_elasticity"] < at16[CPU]["bandwidth_elasticity"] <= 0  # more negative


def test_the_network_slows_a_gpu_cluster_more(cpu_vs_gpu):
    """The step on the real link over the step on an ideal one (1000x the bandwidth, no latency):
    the slowdown that communication alone causes, larger for the GPU cluster at every size."""
    r = cpu_vs_gpu
    for device in (CPU, GPU):
        assert r.efficiency(device, 1) == 1
    slowdown = {}
    for device in (CPU, GPU):
        real = device_cluster(device, r.link, r.topology)
        ideal = scaled_system(real, "network", bandwidth=1e3, latency=0.0)
        slowdown[device] = [predict(r.model, real, devices=n, dp=n, micro_batch=r.global_batch // n,
                                    global_batch=r.global_batch).step_time_s
                            / predict(r.model, ideal, devices=n, dp=n, micro_batch=r.global_batch // n,
                                      global_batch=r.global_batch).step_time_s for n in (8, 16, 32, 64)]
    assert all(g > c >= 1 for g, c in zip(slowdown[GPU], slowdown[CPU])), slowdown


def test_cpu_cluster_scales_more_efficiently(cpu_vs_gpu):
    r = cpu_vs_gpu
    ratios = [r.efficiency(CPU, n) / r.efficiency(GPU, n) for n in (8, 16, 32, 64)]
    print(f"{r.model} over {r.link}: CPU/GPU scaling efficiency at 8..64 workers: "
          + ", ".join(f"{x:.2f}" for x in ratios))
    assert all(x > 1 for x in ratios)
    assert ratios[-1] > 1.2
