"""The numbers a prediction needs from a system, for one plan: rates, bandwidths, latencies
(the device's kernel rates come from :mod:`.kernels`).

Everything here is a plain float derived from the frozen specs by a documented rule, so a sweep
can replace any of them with a numpy array. Placement follows Megatron-LM's rank order (tensor
parallel ranks innermost, then data parallel, then pipeline stages): a TP group fills
consecutive devices of a node, data-parallel peers come next, pipeline stages are outermost.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from perfmodel.errors import MissingSpecError
from perfmodel.frozen import FrozenDict, IdentityMemo
from perfmodel.plan import precision_of
from perfmodel.formulas import pcie as pcie_f
from perfmodel.formulas import pcie_copies
from perfmodel.formulas._backend import ceil, floor, maximum, minimum, where
from perfmodel.prediction.kernels import (  # noqa: F401 - re-exported: hardware's public names of before
    ALIGNMENT,
    TIMING_FLOOR_FACTOR,
    GemmShapeModel,
    RateCurve,
    attention_curves,
    dtype_candidates,
    gemm_curve,
    gemm_model,
    gemm_shape_model,
    is_aligned,
    misaligned_model,
    timing_floor_time,
)

__all__ = ["HwParams", "hw_params", "SWEEPABLE", "intra_node_level", "inter_node_level", "allreduce_beta",
           "pcie_dma_bandwidth", "link_data_bandwidth", "gemm_rates_source", "host_values", "sustained_values",
           # the device's kernel-rate models, defined in .kernels
           "RateCurve", "GemmShapeModel", "gemm_shape_model", "gemm_model", "gemm_curve", "attention_curves",
           "is_aligned", "ALIGNMENT", "timing_floor_time", "TIMING_FLOOR_FACTOR", "misaligned_model"]

@dataclass(frozen=True)
class HwParams:
    """Every hardware number a prediction uses, flat and overridable (sweeps put arrays here).

    Bandwidths are per direction, in B/s, as data rates (PCIe after TLP overheads); ``*_links``
    count parallel links; efficiencies are the achieved fraction in collectives (calibrated).
    ``gemm_scale`` multiplies the measured GEMM and attention curves (the stack's factor, and a
    swept peak relative to the datasheet one).
    """

    device: str
    fabric_kind: str
    devices_per_node: int
    peak_flops_per_s: object
    gemm: RateCurve | GemmShapeModel  # measured curve (measured wins), else the shape model
    gemm_misaligned: RateCurve | GemmShapeModel
    attention: tuple[RateCurve, RateCurve] | None
    gemm_scale: object
    memory_bandwidth: object
    memory_capacity: object  # B; inf when the spec gives none
    fabric_bandwidth: object = float("inf")
    fabric_latency: object = 0.0
    fabric_links: object = 1
    fabric_efficiency: object = 1.0
    # in-switch all-reduce (NVLink SHARP): achieved fraction of the device's fabric bandwidth
    # (0: the switch cannot reduce); a fraction, so a swept link bandwidth carries it along
    fabric_reduction_efficiency: object = 0.0
    devices_per_switch: object = 1
    uplink_bandwidth: object = float("inf")
    uplink_latency: object = 0.0
    root_bandwidth: object = float("inf")
    has_network: bool = False
    network_bandwidth: object = float("inf")
    network_latency: object = 0.0
    nics_per_node: object = 1
    oversubscription: object = 1.0
    network_efficiency: object = 1.0
    pod_nodes: object = 0.0  # nodes of a non-blocking pod, oversubscription beyond it (0: no pod)
    # the linear layers' GEMMs when they run in another dtype than the rest (FP8 under
    # Transformer Engine; plan.precision_of); None: the same as ``gemm``
    gemm_linear: RateCurve | GemmShapeModel | None = None
    # (aligned, misaligned) GEMMs with fp32 inputs on an NVIDIA GPU (a stack's logits_matmul_fp32):
    # TF32 tensor cores, else fp32 (:func:`fp32_input_gemm_model`); None elsewhere
    gemm_fp32_inputs: tuple | None = None
    # the host side (CPU offload, perfmodel.prediction.offload): each device's PCIe data bandwidth
    # to the host (0: no host link known), devices per host-side PCIe switch, that switch's uplink
    # and the root complex (inf: no shared bottleneck), the node's host DRAM bandwidth (0: no host
    # CPU known) and capacity (inf: not stated)
    host_link_bandwidth: object = 0.0
    host_devices_per_switch: object = 1
    host_uplink_bandwidth: object = float("inf")
    host_root_bandwidth: object = float("inf")
    host_memory_bandwidth: object = 0.0
    host_memory_capacity: object = float("inf")
    # curves of the named attention kernels the device was measured with besides its default
    # (a stack that runs one of them uses it: Stack.attention_kernel)
    attention_kernels: Mapping[str, tuple[RateCurve, RateCurve]] = field(default_factory=FrozenDict)
    # streaming multiprocessors (compute units) of a GPU, from its [matmul] table (0: not stated, or
    # not a GPU: a CPU's or an XPU's [matmul] units are cores or matrix engines, which no collective
    # kernel occupies): what a collective's kernels take from a GEMM beside them (prediction.tp_overlap)
    compute_units: int = 0
    # SMs one data-parallel collective's kernel holds while hidden under compute (the system's
    # [fabric] collective_units; 0 without it or without compute_units)
    collective_units: int = 0
    # under the board's power cap (the device's [sustained] table, where measured): the most
    # FLOP/s a GEMM keeps in the compute dtype and in the linear layers' dtype (inf: not
    # measured), and the share of its short-run rate fused attention keeps (1: not measured)
    gemm_sustained: object = float("inf")
    linear_sustained: object = float("inf")
    attention_sustained: object = 1.0
    device_kind: str = ""  # gpu, cpu or xpu: which of a stack's device-scoped kernel efficiencies apply
    # seconds per score element dropout adds to a fused attention forward (0: not measured)
    attention_dropout_time: object = 0.0


# dotted names a sweep may vary -> HwParams field (docs/interface.md: hardware fields of a grid)
SWEEPABLE = {
    "device.peak": "peak_flops_per_s",
    "device.memory.bandwidth": "memory_bandwidth",
    "device.memory.capacity": "memory_capacity",
    "fabric.link.bandwidth": "fabric_bandwidth",
    "fabric.link.latency": "fabric_latency",
    "fabric.links": "fabric_links",
    "fabric.efficiency": "fabric_efficiency",
    "fabric.in_network_reduction": "fabric_reduction_efficiency",
    "fabric.switch_uplink.bandwidth": "uplink_bandwidth",
    "fabric.root_bandwidth": "root_bandwidth",
    "network.link.bandwidth": "network_bandwidth",
    "network.link.latency": "network_latency",
    "network.nics_per_node": "nics_per_node",
    "network.oversubscription": "oversubscription",
    "network.full_bisection_nodes": "pod_nodes",
    "network.efficiency": "network_efficiency",
    "host.memory.bandwidth": "host_memory_bandwidth",
    "host.memory.capacity": "host_memory_capacity",
}


def pcie_dma_bandwidth(link) -> float:
    """Large-transfer data bandwidth of a PCIe link: posted writes with its max payload size."""
    if link.max_payload_bytes is None:
        raise MissingSpecError(f"{link.name}: 'pcie.max_payload' is needed for PCIe transfers")
    g = pcie_f.PCIE_GENERATIONS[link.pcie_generation]
    return pcie_f.pcie_write_bandwidth(link.bandwidth, 0.0, link.max_payload_bytes,
                                       pcie_f.TLP_HEADER_BYTES["mem_64bit"], g["tlp_framing_bytes"])


def link_data_bandwidth(link) -> float:
    """Per-direction data bandwidth of one link (PCIe: after TLP overheads)."""
    return pcie_dma_bandwidth(link) if link.family == "pcie" else link.bandwidth


# hw_params per (system object, dtype, scale): specs are frozen, so the same object always gives the
# same numbers (a predict loop builds them once)
_RECENT = IdentityMemo(limit=64)


def hw_params(system, dtype: str, gemm_scale: float = 1.0) -> HwParams:
    """The numbers of ``system`` for ``dtype``; ``gemm_scale`` is the stack's GEMM factor
    (remembered per system object)."""
    return _RECENT.get(system, (dtype, gemm_scale), lambda: _hw_params(system, dtype, gemm_scale))


def _hw_params(system, dtype: str, gemm_scale: float = 1.0) -> HwParams:
    """The numbers of ``system`` for ``dtype``; ``gemm_scale`` is the stack's GEMM factor.

    Mixed precision as it is run (:func:`perfmodel.plan.precision_of`): the linear layers' GEMMs
    in ``gemm_linear`` (FP8 under ``fp8``), attention and every other GEMM in the compute dtype.
    The peak is the plan dtype's (MFU of an FP8 run is against the FP8 peak)."""
    device = system.device
    fab = system.fabric
    precision = precision_of(dtype)
    compute = precision.compute
    values = dict(
        device=device.name, device_kind=device.kind, fabric_kind=fab.kind, devices_per_node=system.devices_per_node,
        peak_flops_per_s=device.peak(dtype), gemm=gemm_model(device, compute),
        gemm_misaligned=misaligned_model(device, compute),
        gemm_linear=gemm_model(device, precision.linear) if precision.linear != compute else None,
        gemm_fp32_inputs=fp32_input_gemm_model(device),
        attention=attention_curves(device, compute), gemm_scale=gemm_scale,
        attention_kernels=FrozenDict({k: c for k in device.attention_kernels
                                      if (c := attention_curves(device, compute, k)) is not None}),
        memory_bandwidth=device.measured_memory_bandwidth or device.memory_bandwidth,
        memory_capacity=device.memory_bytes if device.memory_bytes is not None else float("inf"),
        compute_units=device.matmul.units if device.matmul is not None and device.kind == "gpu" else 0,
        collective_units=fab.collective_units,  # the loader allows it on GPU systems only, below their SMs
        **sustained_values(device, compute, precision.linear),
        attention_dropout_time=device.attention_dropout_time or 0.0,
    )
    if fab.kind != "none":
        links = {"nvswitch": fab.links_per_device, "fully-connected": fab.links_per_peer,
                 "ring": fab.links_per_device, "torus": fab.links_per_device}.get(fab.kind, 1)
        values.update(fabric_bandwidth=link_data_bandwidth(fab.link), fabric_latency=fab.link.latency,
                      fabric_links=links, fabric_efficiency=fab.efficiency)
        if fab.in_network_reduction is not None:
            values["fabric_reduction_efficiency"] = fab.in_network_reduction
    if fab.kind == "pcie-tree":
        values.update(devices_per_switch=fab.devices_per_switch,
                      uplink_bandwidth=link_data_bandwidth(fab.switch_uplink),
                      uplink_latency=fab.switch_uplink.latency, root_bandwidth=fab.root_bandwidth)
    elif fab.kind not in ("none", "nvswitch", "fully-connected", "ring", "torus"):
        raise MissingSpecError(f"{system.name}: fabric '{fab.kind}' has no collective model")
    net = system.network
    if net is not None:
        values.update(has_network=True, network_bandwidth=link_data_bandwidth(net.link),
                      network_latency=net.link.latency, nics_per_node=net.nics_per_node,
                      oversubscription=net.oversubscription, network_efficiency=net.efficiency,
                      pod_nodes=0.0 if net.full_bisection_nodes is None else float(net.full_bisection_nodes))
    values.update(host_values(system))
    return HwParams(**values)


def fp32_input_gemm_model(device):
    """(aligned, misaligned) models of a GEMM whose inputs are fp32 on an NVIDIA GPU: TF32 where the
    device has it (XLA's CUDA build runs fp32 dots at DEFAULT precision as TF32 on Ampere and later:
    JAX's default), else fp32. None elsewhere: the caller keeps the compute dtype's rate, which is an
    XPU's (its default precision runs fp32 inputs through its 16-bit matrix units); an AMD GPU
    (ROCm runs fp32 dots in fp32) and a CPU are not modelled here. A device without measured TF32
    points gets its shape model at the datasheet peak, an upper bound."""
    if device.kind != "gpu" or not device.description.startswith("NVIDIA"):
        return None
    for dtype in ("tf32", "fp32"):
        try:
            return gemm_model(device, dtype), misaligned_model(device, dtype)
        except MissingSpecError:
            continue
    return None


def sustained_values(device, compute: str, linear: str) -> dict:
    """HwParams' power-cap fields from the device's ``[sustained]`` table: the sustained GEMM rate of
    the compute dtype and of the linear layers' dtype (fp16 and bf16 share the tensor cores, so
    one stands for the other), and the attention fraction; nothing where the table is absent."""
    sustained = device.sustained
    if sustained is None:
        return {}

    def rate(dtype):
        return next((sustained.matmul[c] for c in dtype_candidates(dtype) if c in sustained.matmul), float("inf"))

    out = {"gemm_sustained": rate(compute), "linear_sustained": rate(linear)}
    if sustained.attention_fraction is not None:
        out["attention_sustained"] = sustained.attention_fraction
    return out


def gemm_rates_source(hw: HwParams) -> str:
    """What times the GEMMs of a prediction, as its table ("GEMM rates") and JSON
    (``details.gemm_curve``) say: a measured curve, the shape model at a measured maximum
    achievable matmul rate, or the datasheet peak (then the text says it is an upper bound).
    Under FP8 the linear layers' GEMMs have their own source (:func:`perfmodel.plan.precision_of`),
    named first, so an FP8 rate at the datasheet peak is never hidden behind a measured BF16 one."""
    cap = _sustained_text(hw)
    if hw.gemm_linear is None or hw.gemm_linear.source == hw.gemm.source:
        return hw.gemm.source + cap
    return f"linear layers: {hw.gemm_linear.source}; attention and the other GEMMs: {hw.gemm.source}" + cap


def _sustained_text(hw: HwParams) -> str:
    """What the power cap adds to the GEMM source: the sustained rates that bound the curves."""
    caps = [hw.gemm_sustained] + ([hw.linear_sustained] if hw.gemm_linear is not None else [])
    caps = [c for c in caps if isinstance(c, float) and c != float("inf")]
    if not caps:
        return ""
    rates = " / ".join(f"{c / 1e12:.0f}" for c in caps)
    return f"; at most {rates} TFLOP/s sustained under the power cap (device [sustained])"


def host_values(system) -> dict:
    """The host side of ``system`` (HwParams' host_* fields). A PCIe-tree fabric's device links,
    switches and root complex are also the way to the host; otherwise each device's ``host_link``,
    behind the ``[host]`` table's switches when it names them. Host DRAM bandwidth: the host CPU's
    (measured where its spec has it) times the node's sockets."""
    fab, host, device = system.fabric, getattr(system, "host", None), system.device
    out = {}
    if fab.kind == "pcie-tree":
        out.update(host_link_bandwidth=link_data_bandwidth(fab.link), host_devices_per_switch=fab.devices_per_switch,
                   host_uplink_bandwidth=link_data_bandwidth(fab.switch_uplink), host_root_bandwidth=fab.root_bandwidth)
    elif getattr(device, "host_link", None) is not None:
        out["host_link_bandwidth"] = link_data_bandwidth(device.host_link)
        if host is not None and host.devices_per_switch is not None:
            out.update(host_devices_per_switch=host.devices_per_switch,
                       host_uplink_bandwidth=link_data_bandwidth(host.switch_uplink))
    cpu, sockets = system.host_cpu, (host.cpus if host is not None else 1)
    if cpu is not None:
        bandwidth = getattr(cpu, "measured_memory_bandwidth", None) or cpu.memory_bandwidth
        out["host_memory_bandwidth"] = sockets * bandwidth if bandwidth else 0.0
    if host is not None and host.memory_bytes is not None:
        out["host_memory_capacity"] = host.memory_bytes
    return out


# --- communication levels ----------------------------------------------------------------------


def intra_node_level(hw: HwParams, span, n_concurrent_groups, stride=1):
    """(alpha, beta per device) of the fabric for a ring over a group in one node.

    The group's ranks sit ``stride`` devices apart and cover ``span`` consecutive devices;
    ``n_concurrent_groups`` such groups run at once in the node (e.g. 4 TP groups of 2, or 2
    strided DP groups of 4). On a PCIe tree a ring that leaves its switch crosses each switch
    uplink once per direction; the uplink is shared by every concurrent group with members
    behind that switch (k / members-per-switch of them), and all crossings share the root
    complex (pcie_root_share_bandwidth).
    """
    if hw.fabric_kind == "none":
        return 0.0, float("inf")
    eff = hw.fabric_efficiency
    if hw.fabric_kind != "pcie-tree":
        return hw.fabric_latency, hw.fabric_links * hw.fabric_bandwidth * eff
    k = hw.devices_per_switch
    switches = minimum(ceil(span / k), ceil(span / stride))  # switches holding a member
    members_per_switch = maximum(floor(k / stride), 1)
    sharing = minimum(maximum(k / members_per_switch, 1), maximum(n_concurrent_groups, 1))
    root_flows = maximum(switches * n_concurrent_groups, 1)
    shared = pcie_copies.pcie_root_share_bandwidth(sharing, root_flows / sharing, hw.fabric_bandwidth,
                                                   hw.uplink_bandwidth, hw.root_bandwidth)
    local = switches <= 1
    alpha = where(local, hw.fabric_latency, hw.fabric_latency + hw.uplink_latency)
    beta = where(local, hw.fabric_bandwidth, shared) * eff
    return alpha, beta


def allreduce_beta(hw: HwParams, ring_beta, n):
    """The per-device bandwidth an intra-node all-reduce over n devices achieves.

    With in-switch reduction (NVLink SHARP) a device moves S each way instead of 2(n-1)/n S
    through a ring (formulas.collectives.in_network_allreduce_time); expressed as the ring
    bandwidth that gives the same time, the faster of the two is used (NCCL picks the faster
    algorithm per call).
    """
    if hw.fabric_kind == "none":  # a device alone: no fabric, no collective (its bandwidth is inf)
        return ring_beta
    reduction = hw.fabric_links * hw.fabric_bandwidth * hw.fabric_reduction_efficiency
    return maximum(ring_beta, 2 * (n - 1) / n * reduction)


def inter_node_level(hw: HwParams, active_devices_per_node, span_nodes=None):
    """(alpha, beta per device) of the network with ``active_devices_per_node`` devices sending.

    The node's NICs are shared by the devices that communicate at once; one device drives one NIC
    (NCCL's rail per GPU) when there are enough of them; oversubscription divides what leaves
    the leaf switches -- for a group spanning more than one non-blocking pod (``span_nodes`` >
    the network's ``full_bisection_nodes``), or for every group when the span is not given or
    the network names no pod (per-tier oversubscription: e.g. full bisection within 384 nodes,
    1:7 above).
    """
    if not hw.has_network:
        return 0.0, float("inf")
    nic = hw.network_bandwidth * hw.network_efficiency
    share = hw.nics_per_node * nic / maximum(active_devices_per_node, 1)
    oversub = hw.oversubscription if span_nodes is None else where(span_nodes > hw.pod_nodes, hw.oversubscription, 1.0)
    return hw.network_latency, minimum(share, nic) / oversub
