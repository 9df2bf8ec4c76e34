r"""CPU offload: the optimizer step on the host (ZeRO-Offload) and saved activations parked in host
memory, each copied over the device's PCIe link and overlapped with compute where the schedule
allows.

ZeRO-Offload keeps the fp32 master weights and the Adam moments in host memory: every step the
16-bit gradient partition goes device -> host (overlapped with the backward pass), the host CPU
runs Adam over it (bound by host DRAM bandwidth), and the updated 16-bit parameters go host ->
device; the CPU step and the copy back are exposed unless the one-step delayed update (DPU) is
used, which is not modelled. Activation offload copies each layer's saved tensors to the host
after its forward and back before its backward, under the neighbouring layers' compute.

Sources: J. Ren et al., "ZeRO-Offload: Democratizing Billion-Scale Model Training", USENIX ATC
2021, Section 4 (the offload strategy: 2 Psi of fp16 gradients down, 2 Psi of fp16 parameters up
per step; Adam on the CPU), Section 4.2 (overlapping the gradient copy with the backward pass),
Section 5.1 (CPU Adam, memory-bandwidth bound); microsoft/DeepSpeed csrc/adam/cpu_adam_impl.cpp
(Step_AVX: reads parameters, gradients and both moments, writes parameters and both moments);
NVIDIA Transformer Engine docs, "CPU Offloading" (activations copied to the host in the forward
and reloaded in the backward asynchronously, hidden when the link is fast enough).
"""

from __future__ import annotations

from perfmodel.formulas._backend import maximum


def cpu_optimizer_step_time(n_params, optimizer_bytes_per_param, host_memory_bandwidth, n_devices):
    r"""The optimizer step run on the host CPU: bytes touched per parameter over host DRAM bandwidth.

    .. math:: T_{cpu} = \frac{n_{dev}\,\Psi\,K}{B_{host}}

    n_params Psi (1, parameters this device's optimizer updates), optimizer_bytes_per_param K (B
    read plus written per parameter by one step: 28 for mixed-precision Adam -- read the fp32
    parameter, gradient and two moments, write the parameter and the moments), host_memory_bandwidth
    B_host (B/s, the node's achievable DRAM bandwidth, all sockets), n_devices n_dev (1, devices of
    the node whose steps run on its CPUs at the same time, sharing that bandwidth). Assumes the
    step is memory-bound (CPU Adam with AVX-512 does ~10 FLOP per 28 B). Source: Ren et al. ATC'21
    Section 5.1; DeepSpeed csrc/adam/cpu_adam_impl.cpp (Step_AVX).

    >>> cpu_optimizer_step_time(n_params=1e10, optimizer_bytes_per_param=28, host_memory_bandwidth=280e9,
    ...                         n_devices=1)
    1.0
    """
    return n_devices * n_params * optimizer_bytes_per_param / host_memory_bandwidth


def hidden_copy_exposed_time(copy_time, compute_time):
    r"""The part of a device<->host copy that the compute it runs under does not hide.

    .. math:: T_{exposed} = \max(0,\ T_{copy} - T_x)

    copy_time T_copy (s, the copy over the device's PCIe link, contention included), compute_time
    T_x (s, the compute it overlaps: the backward pass for ZeRO-Offload's gradient copy, one
    layer's forward or backward for an activation copy). Copies run on their own stream and copy
    engine, so the overlap is complete up to the compute's length. Source: Ren et al. ATC'21
    Section 4.2 (gradient offload overlapped with backward); Transformer Engine docs "CPU
    Offloading" (asynchronous per-layer activation copies).

    >>> hidden_copy_exposed_time(copy_time=0.3, compute_time=0.2)  # doctest: +ELLIPSIS
    0.099...
    >>> hidden_copy_exposed_time(copy_time=0.1, compute_time=0.2)
    0.0
    """
    return maximum(copy_time - compute_time, 0.0)


def activation_offload_exposed_time(copy_time, forward_time, backward_time, n_units):
    r"""Activation offload left exposed in one micro-batch of a stage of L layers.

    .. math:: T_{exposed} = L\left[\max(0,\ T_{copy} - T_f) + \max(0,\ T_{copy} - T_b)\right]

    copy_time T_copy (s, one layer's saved activations over the device's PCIe link, one way),
    forward_time T_f and backward_time T_b (s, one layer's forward and backward compute,
    recompute included), n_units L (1, layers of the stage). Each layer's activations go to the
    host under the next layer's forward and come back under the previous layer's backward; a
    copy longer than that compute delays the step by the difference. Source: Transformer Engine
    docs "CPU Offloading"; Ren et al. ATC'21 Section 4.2 (the same overlap argument).

    >>> activation_offload_exposed_time(copy_time=0.004, forward_time=0.003, backward_time=0.006, n_units=10)
    0.01
    """
    return n_units * (hidden_copy_exposed_time(copy_time, forward_time)
                      + hidden_copy_exposed_time(copy_time, backward_time))


def offloaded_host_bytes(n_params, optimizer_bytes_per_param, grad_bytes_per_param):
    r"""Host memory a device's offloaded optimizer holds: its optimizer state and an fp32
    gradient buffer for the parameters it updates.

    .. math:: M_{host} = \Psi\,(K + w_{grad})

    n_params Psi (1, parameters this device updates), optimizer_bytes_per_param K (B: ZeRO's K,
    12 for mixed-precision Adam: fp32 master copy and two moments), grad_bytes_per_param w_grad
    (B: 4, DeepSpeed accumulates the offloaded gradient partition in fp32 host memory). Source:
    Ren et al. ATC'21 Section 4 (the fp32 states and the gradients live on the CPU); DeepSpeed
    deepspeed/runtime/zero/stage_1_and_2.py (cpu_offload: single_partition_of_fp32_groups with an
    fp32 .grad on the host).

    >>> offloaded_host_bytes(n_params=1e10, optimizer_bytes_per_param=12, grad_bytes_per_param=4)
    160000000000.0
    """
    return n_params * (optimizer_bytes_per_param + grad_bytes_per_param)
