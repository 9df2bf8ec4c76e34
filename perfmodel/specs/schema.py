"""Frozen hardware specs: devices (cpu, gpu, xpu), links and systems.

All numbers are SI floats (s, B, FLOP/s, B/s). Bandwidths of links are per direction; a
bidirectional datasheet figure is halved when read. What-ifs are copies:
``dataclasses.replace(system, device=replace(system.device, memory_bytes=...))``.
``sources`` maps each field that came from a file to its source, so ``hardware show`` can cite it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from perfmodel.errors import MissingSpecError
from perfmodel.frozen import FrozenDict

__all__ = ["GemmPoint", "AttentionPoint", "Matmul", "MatmulRate", "Device", "Link", "Fabric", "Network", "System", "DTYPES"]

DTYPES = ("fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8")


def _empty() -> Mapping:
    return FrozenDict({})


@dataclass(frozen=True)
class GemmPoint:
    """One measured GEMM: C[m, n] = A[m, k] @ B[k, n] at ``flops_per_s`` achieved."""

    m: int
    n: int
    k: int
    flops_per_s: float


@dataclass(frozen=True)
class AttentionPoint:
    """One measured fused (flash) attention kernel: forward and forward+backward FLOP rates.

    FLOPs follow the FlashAttention benchmark convention: forward 4 b s^2 a d x 0.5 when causal,
    backward 2.5 x forward (formulas.compute.attention_core_flops, ATTENTION_BACKWARD_FACTOR).
    """

    batch: int
    heads: int
    seq: int
    head_dim: int
    causal: bool
    forward_flops_per_s: float
    forward_backward_flops_per_s: float


@dataclass(frozen=True)
class MatmulRate:
    """A measured maximum achievable matmul rate (MAMF) of one dtype and the shape it was reached at."""

    flops_per_s: float
    shape: tuple[int, int, int] | None  # (m, n, k) of C[m,n] = A[m,k] B[k,n]; None when not published


@dataclass(frozen=True)
class Matmul:
    """What the GEMM shape model needs: compute units, the output tile (and k step) one unit works
    on, and per dtype a measured maximum achievable matmul rate (MAMF), where one is published.

    ``tile`` is for 16-bit inputs; the k step scales with the element size (same bytes per stage).
    """

    units: int
    tile: tuple[int, int, int]
    achievable: Mapping[str, MatmulRate] = field(default_factory=_empty)


@dataclass(frozen=True)
class Sustained:
    """What a device holds under its power cap when it runs compute-bound work back to back.

    A board power limit lets the clock boost for the first tens of milliseconds of a kernel loop,
    then the power controller lowers it until the board draws its limit: a training step runs
    at that clock, a microbenchmark of a few milliseconds (and a MAMF sweep) at the boost one.
    ``matmul``: per dtype, the FLOP/s of large GEMMs after the clock has settled (an upper bound
    on any GEMM's rate in a step); ``attention_fraction``: the share of its short-run rate a fused
    attention kernel keeps. Memory-bound kernels keep their bandwidth (measured: a copy and an
    add lose nothing), so nothing is stated for them.
    """

    matmul: Mapping[str, float] = field(default_factory=_empty)
    attention_fraction: float | None = None


@dataclass(frozen=True)
class Link:
    """A point-to-point link type: PCIe, NVLink, InfiniBand, Ethernet, ICI, UPI, ...

    ``bandwidth`` is the per-direction data rate one link carries before protocol overheads the
    formulas model (for PCIe: after line encoding; TLP/DLLP overheads come from formulas.pcie).
    """

    name: str
    family: str
    description: str
    bandwidth: float
    latency: float
    pcie_generation: int | None = None
    pcie_lanes: int | None = None
    max_payload_bytes: float | None = None
    mtu_bytes: float | None = None
    sources: Mapping[str, str] = field(default_factory=_empty, compare=False, repr=False)
    path: str | None = field(default=None, compare=False, repr=False)

    @property
    def kind(self) -> str:
        return "link"


@dataclass(frozen=True)
class Device:
    """A compute device: cpu, gpu or xpu (TPU, Gaudi, ...)."""

    name: str
    kind: str
    description: str
    peak_flops_per_s: Mapping[str, float]
    memory_bytes: float | None
    memory_bandwidth: float
    sparse_flops_per_s: Mapping[str, float] = field(default_factory=_empty)
    measured_memory_bandwidth: float | None = None
    launch_overhead_time: float | None = None
    # seconds per attention score element that dropout inside the fused attention kernel adds to its
    # forward (its random numbers), where measured
    attention_dropout_time: float | None = None
    host_link: Link | None = None
    gemm: Mapping[str, tuple[GemmPoint, ...]] = field(default_factory=_empty)
    attention: Mapping[str, tuple[AttentionPoint, ...]] = field(default_factory=_empty)
    # points of a named attention kernel other than the measured default (a stack names the kernel
    # it runs: FlashAttention-2 on Hopper, where the device's own measurement is a newer kernel)
    attention_kernels: Mapping[str, Mapping[str, tuple[AttentionPoint, ...]]] = field(default_factory=_empty)
    matmul: Matmul | None = None
    sustained: Sustained | None = None  # rates under the power cap, where measured
    n_cores: int | None = None
    clock_hz: float | None = None
    sources: Mapping[str, str] = field(default_factory=_empty, compare=False, repr=False)
    path: str | None = field(default=None, compare=False, repr=False)

    @property
    def memory_capacity(self) -> float:
        """Device memory in bytes; an error naming the field when the spec has none."""
        return _require(self.name, "memory.capacity", self.memory_bytes)

    def peak(self, dtype: str) -> float:
        """Dense peak FLOP/s for ``dtype``; a datasheet that does not give it is an error, not a guess."""
        try:
            return self.peak_flops_per_s[dtype]
        except KeyError:
            have = ", ".join(self.peak_flops_per_s) or "none"
            raise MissingSpecError(
                f"{self.name}: no dense peak FLOP/s for dtype '{dtype}' in its spec (has: {have})"
            ) from None


def _require(spec_name: str, field_name: str, value):
    if value is None:
        raise MissingSpecError(f"{spec_name}: '{field_name}' is not in its spec (no source gives it); "
                               f"add it to the spec file to use this")
    return value


@dataclass(frozen=True)
class Fabric:
    """The intra-node fabric and its shape.

    kinds: ``nvswitch`` (every device reaches a non-blocking switch with ``links_per_device``
    links), ``pcie-tree`` (``devices_per_switch`` devices share one switch uplink; switches share
    the root complex), ``fully-connected`` (``links_per_peer`` direct links between every pair),
    ``torus`` (``dims``), ``ring``, ``none`` (a single device).
    """

    kind: str
    link: Link | None
    links_per_device: int = 1
    links_per_peer: int = 1
    devices_per_switch: int | None = None
    switch_uplink: Link | None = None
    root_bandwidth: float | None = None
    dims: tuple[int, ...] | None = None
    efficiency: float = 1.0  # achieved fraction of link bandwidth in collectives (calibrated)
    # NVSwitch with in-network reduction (NVLink SHARP): achieved fraction of the device's link
    # bandwidth for an in-switch all-reduce; None when the switch cannot reduce
    in_network_reduction: float | None = None
    # SMs the kernel of one collective (NCCL: one CTA per channel) holds while it runs on a GPU of
    # this system, taken from the compute it runs under; 0: not stated (no contention modelled)
    collective_units: int = 0


@dataclass(frozen=True)
class Network:
    """The inter-node network: NICs per node, their link and the topology that joins nodes."""

    topology: str
    link: Link
    nics_per_node: int
    oversubscription: float = 1.0
    max_nodes: int | None = None
    efficiency: float = 1.0  # achieved fraction of NIC bandwidth in collectives (calibrated)
    # nodes of one non-blocking pod: traffic of a group within it sees full bisection, the
    # oversubscription applies to groups spanning more nodes (None: to every group)
    full_bisection_nodes: int | None = None


@dataclass(frozen=True)
class System:
    """Nodes of identical devices: an intra-node fabric and, for clusters, a network."""

    name: str
    description: str
    device: Device
    devices_per_node: int
    fabric: Fabric
    network: Network | None = None
    host_cpu: Device | None = None
    host: object | None = None  # perfmodel.specs.host.Host: host CPU sockets, DRAM, host-side PCIe switches
    sources: Mapping[str, str] = field(default_factory=_empty, compare=False, repr=False)
    path: str | None = field(default=None, compare=False, repr=False)

    @property
    def kind(self) -> str:
        return "system"

    @property
    def default_stack(self) -> str:
        """The software stack a transformer's plan without ``stack`` runs (by device generation; a CNN
        or an MLP runs pytorch-eager instead: :meth:`default_stack_for`)."""
        return self.default_stack_for()

    def default_stack_for(self, model=None) -> str:
        """The stack a plan of ``model`` without ``stack`` runs: the device generation's for a
        transformer, pytorch-eager for a CNN or an MLP (:mod:`perfmodel.specs.default_stack`)."""
        from perfmodel.specs.default_stack import default_stack

        return default_stack(self.device, model)[0]
