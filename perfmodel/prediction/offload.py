"""CPU offload in a step (``Plan.offload``): what moves to host memory, the copies over each
device's PCIe link, the optimizer step on the host CPU, and what stays exposed.

``optimizer`` (ZeRO-Offload; DeepSpeed ``offload_optimizer``, FSDP ``CPUOffload``): the fp32
master weights, the optimizer moments and an fp32 gradient buffer of the parameters a device
updates live in host memory; with ZeRO-2/3 the device keeps one gradient bucket instead of its
16-bit gradient partition. Every micro-batch the gradient partition goes device -> host under the
backward pass, as DeepSpeed copies it (:func:`gradient_copy_bytes`: fp32 at the step's last
micro-batch, 16-bit partial sums before it, which come back to the device to be added to);
once per step the host CPU runs the optimizer (memory-bound,
:func:`perfmodel.formulas.offload.cpu_optimizer_step_time`, the node's devices sharing its DRAM
bandwidth) and the updated 16-bit parameters go host -> device, both exposed (the one-step delayed
update, DPU, is not modelled). The device keeps weights, gradients (ZeRO-0/1; a bucket under
ZeRO-2/3) and activations.

``activations``: each layer's saved activations go to the host after its forward and come back
before its backward, overlapped with the neighbouring layers' compute
(:func:`perfmodel.formulas.offload.activation_offload_exposed_time`); the device keeps two
layers' worth in flight.

The copies share the PCIe bottlenecks between device and host: every device of a node copies at
the same phase of the step, so the devices behind one PCIe switch share its uplink and all
switches share the root complex (:func:`perfmodel.formulas.pcie_copies.pcie_root_share_bandwidth`;
a ``pcie-tree`` fabric's switches, or the system's ``[host]`` switches, :mod:`perfmodel.specs.host`).

What FSDP's ``CPUOffload(offload_params=True)`` really moves is more than this: the sharded fp32
parameters and their gradients live on the host (the optimizer step runs there, on them), and each
all-gather first copies the parameter shard host -> device. The copy of the shard before each
gather (1/dp of a layer's parameters, under the prefetch window) is not modelled separately; the
states and the step are as above.
"""

from __future__ import annotations

from typing import NamedTuple

from perfmodel.formulas import offload as off
from perfmodel.formulas import pcie_copies
from perfmodel.formulas._backend import ceil, maximum, minimum, where
from perfmodel.plan import DTYPE_BYTES
from perfmodel.prediction.hardware import host_values
from perfmodel.prediction.rules import Choices, is_mixed, optimizer_state_bytes_per_param, shard_ranks

__all__ = ["OffloadTerms", "CPU_OPTIMIZER_BYTES_PER_PARAM", "OFFLOAD_GRAD_BUCKET_ELEMENTS", "gradient_copy_bytes",
           "host_copy_bandwidth",
           "offload_terms", "offload_refusal", "offload_details"]

# bytes of host DRAM traffic per parameter of one CPU optimizer step (DeepSpeed CPU Adam, Step_AVX in
# csrc/adam/cpu_adam_impl.cpp): Adam reads the fp32 parameter, gradient and both moments (16 B) and
# writes the parameter and both moments (12 B); SGD with momentum reads parameter, gradient and
# momentum (12 B) and writes parameter and momentum (8 B); AdamW on bf16 states reads a bf16 master,
# the fp32 gradient the host holds and both moments (10 B) and writes master and moments (6 B) (derived)
CPU_OPTIMIZER_BYTES_PER_PARAM = {"adamw": 28, "sgd": 20, "adamw-bf16": 16}
_HOST_GRAD_BYTES = 4  # the fp32 gradient buffer on the host (DeepSpeed stage_1_and_2.py, cpu_offload)
_ACTIVE_LAYERS = 2  # layers whose activations the device keeps while the others sit on the host
# with ZeRO-2/3 the offloaded gradient partition lives on the host in fp32; the device keeps only the
# bucket being reduced and copied: DeepSpeed zero_optimization.reduce_bucket_size, default 5e8
# elements (docs/_pages/config-json.md), in the training dtype
OFFLOAD_GRAD_BUCKET_ELEMENTS = 5e8


def gradient_copy_bytes(half_bytes, m):
    """(first, middle, last) bytes per offloaded parameter that the gradient copies of a step's
    micro-batches move over the device's PCIe link, as DeepSpeed's ZeRO-Offload runs them from
    v0.3 (runtime/zero/stage2.py) to v0.15.1 (stage_1_and_2.py, ``copy_grads_in_partition``; v0.15.2
    stops copying the partial sums back down, 4 + h m in all: not modelled); FSDP's CPUOffload,
    which copies each fp32 gradient shard once a micro-batch, is priced the same way: the step's last
    micro-batch casts the partition's gradients to fp32 on the device and copies them to the
    host's fp32 buffer (``async_inplace_copy_grad_to_fp32_buffer_from_gpu``: 4 B); with gradient
    accumulation (m > 1, ``async_accumulate_grad_in_cpu_via_gpu``) every micro-batch but the last
    copies its 16-bit gradients to a host buffer (h B), and every one but the first first brings
    that buffer back to add to (h B more). m = 1: 4 B once; m >= 2: h, 2h for each of the m - 2
    between, h + 4 (4 + 2h (m - 1) in all). ``half_bytes``: h, the training dtype's bytes."""
    several = m > 1
    return where(several, half_bytes, 4.0), 2.0 * half_bytes, where(several, half_bytes + 4.0, 0.0)


class OffloadTerms(NamedTuple):
    """What offloading changes in one step (floats or arrays): the optimizer time that replaces the
    device's, the exposed copies (breakdown ``other``), device memory, host bytes per device and
    whether the node's host memory holds them, and the parts (details)."""

    optimizer_s: object
    other_s: object
    memory: dict
    host_bytes: object
    fits_host: object
    d2h_s: object  # the gradient copies of one micro-batch, whole (the step's mean)
    h2d_s: object  # the parameter copy back, once per step
    cpu_step_s: object
    activation_exposed_s: object  # per step


def host_copy_bandwidth(hw, devices):
    """Per-device bandwidth of the device<->host copies when every device of the node (up to
    ``devices``) copies at once: its own PCIe link, its switch's uplink shared by the devices behind
    it, the root complex shared by all (max-min fair shares, formulas.pcie_copies)."""
    active = minimum(devices, hw.devices_per_node)
    per_switch = minimum(hw.host_devices_per_switch, active)
    switches = ceil(active / per_switch)
    return pcie_copies.pcie_root_share_bandwidth(per_switch, switches, hw.host_link_bandwidth,
                                                 hw.host_uplink_bandwidth, hw.host_root_bandwidth)


def offload_terms(c: Choices, hw, *, params, dp, m, devices, memory: dict, optimizer_s, backward_s,
                  layer_bytes, n_layers, inflight, layer_forward_s, layer_backward_s) -> OffloadTerms:
    """The offload terms of a step (see the module docstring). ``params``: parameters of the device;
    ``optimizer_s``: the device optimizer step offloading replaces; ``backward_s``: one micro-batch's
    backward of the stage; ``layer_bytes``: one layer's saved activations for one micro-batch;
    ``inflight``: micro-batches whose activations a stage holds; ``layer_*_s``: one layer's compute."""
    beta = host_copy_bandwidth(hw, devices)
    active = minimum(devices, hw.devices_per_node)
    zero = 0.0 * beta
    memory = dict(memory)
    host, other, d2h, h2d, cpu, act = zero, zero, zero, zero, zero, zero
    if c.offload in ("optimizer", "both"):
        updated = params / (shard_ranks(c, dp) if c.zero >= 1 else 1)
        half = DTYPE_BYTES[c.dtype]  # 16-bit partial gradients and parameters (fp32: 4 B)
        first, middle, last = (updated * n / beta for n in gradient_copy_bytes(half, m))
        between = maximum(m - 2, 0)
        d2h = (first + between * middle + last) / m
        h2d = updated * half / beta
        cpu = off.cpu_optimizer_step_time(updated, CPU_OPTIMIZER_BYTES_PER_PARAM[c.optimizer],
                                          hw.host_memory_bandwidth, active)
        optimizer_s = cpu + h2d
        other = other + (off.hidden_copy_exposed_time(first, backward_s) + between * off.hidden_copy_exposed_time(
            middle, backward_s) + off.hidden_copy_exposed_time(last, backward_s))
        host = host + off.offloaded_host_bytes(updated, optimizer_state_bytes_per_param(c.optimizer, c.dtype),
                                               _HOST_GRAD_BYTES if is_mixed(c.dtype) else 0)
        memory["optimizer"] = zero
        if c.zero >= 2:  # the gradient partition went to the host with the optimizer (ZeRO-Offload Sec. 4)
            memory["gradients"] = minimum(memory["gradients"], OFFLOAD_GRAD_BUCKET_ELEMENTS * half)
    if c.offload in ("activations", "both"):
        copy = layer_bytes / beta
        act = m * off.activation_offload_exposed_time(copy, layer_forward_s, layer_backward_s, n_layers)
        other = other + act
        layers_total = layer_bytes * n_layers * inflight
        kept = layer_bytes * minimum(n_layers, _ACTIVE_LAYERS)
        memory["activations"] = maximum(memory["activations"] - layers_total + kept, 0.0)
        host = host + layers_total - kept
    memory["total"] = memory["weights"] + memory["gradients"] + memory["optimizer"] + memory["activations"]
    return OffloadTerms(optimizer_s, other, memory, host, host * active <= hw.host_memory_capacity, d2h, h2d, cpu, act)


def offload_refusal(offload: str, system) -> str | None:
    """Why ``system`` cannot run ``offload`` (one line), or None: a device without a known PCIe link
    to the host, or an offloaded optimizer on a system that names no host CPU."""
    if offload == "none":
        return None
    host, system_name = host_values(system), system.name
    if not host.get("host_link_bandwidth"):
        return (f"--offload {offload} copies over each device's PCIe link to the host, but {system.device.name} "
                f"(in {system_name}) names no host_link; add one to its spec (hardware/README.md)")
    if offload in ("optimizer", "both") and not host.get("host_memory_bandwidth"):
        return (f"--offload {offload} runs the optimizer on the host CPU, but {system_name} names no host_cpu "
                f"(whose memory bandwidth sets the step); add host_cpu to the system file (hardware/README.md)")
    return None


def offload_details(terms: OffloadTerms | None, hw, plan, system) -> dict:
    """The offload numbers of a prediction (``details``), after refusing a plan whose host memory
    does not hold what it offloads (one line)."""
    from perfmodel.errors import PlanError
    from perfmodel.units import format_quantity

    if terms is None:
        return {}
    active = min(plan.devices, system.devices_per_node)
    per_device = float(terms.host_bytes)
    if not bool(terms.fits_host):
        raise PlanError(f"--offload {plan.offload}: {active} device(s) of a {system.name} node put "
                        f"{format_quantity(per_device * active, 'bytes')} in host memory "
                        f"({format_quantity(per_device, 'bytes')} each), more than its "
                        f"{format_quantity(hw.host_memory_capacity, 'bytes')}; offload less or use more devices")
    return {"host_memory_bytes_per_device": per_device, "host_memory_capacity_bytes": float(hw.host_memory_capacity),
            "host_copy_bandwidth": float(host_copy_bandwidth(hw, plan.devices)),
            "offload_d2h_per_microbatch_s": float(terms.d2h_s), "offload_h2d_s": float(terms.h2d_s),
            "cpu_optimizer_s": float(terms.cpu_step_s), "activation_offload_exposed_s": float(terms.activation_exposed_s)}
