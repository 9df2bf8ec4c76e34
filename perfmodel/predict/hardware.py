"""The numbers a prediction needs from a system, for one plan: rates, bandwidths, latencies.

Everything here is a plain float derived from the frozen specs by a documented rule, so a sweep
can replace any of them with a numpy array. Placement follows Megatron-LM's rank order (tensor
parallel ranks innermost, then data parallel, then pipeline stages): a TP group fills
consecutive devices of a node, data-parallel peers come next, pipeline stages are outermost.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from perfmodel.errors import MissingSpecError
from perfmodel.formulas import pcie as pcie_f

__all__ = ["GemmFit", "gemm_fit", "Level", "intra_node_level", "inter_node_level", "pcie_dma_bandwidth"]

_SIXTEEN_BIT = ("bf16", "fp16")


@dataclass(frozen=True)
class GemmFit:
    """Measured GEMM throughput as ``t = W / rate + fixed_time`` (W = 2 m n k FLOP).

    The fixed time absorbs launch latency, tails and wave quantisation of small GEMMs; the rate
    is the asymptotic throughput. Fitted by least squares to the device's measured points (a
    legitimate microbenchmark calibration, not a per-case constant). ``measured`` says whether
    the device had points for this dtype; without any, the rate is the datasheet peak.
    """

    rate: float
    fixed_time: float
    n_points: int
    source: str

    def time(self, flops):
        return flops / self.rate + self.fixed_time


@functools.lru_cache(maxsize=256)
def _fit(points: tuple, peak_ratio: float) -> tuple[float, float]:
    # least squares of t_i = W_i / R + t0 over the points (times t_i = W_i / rate_i)
    ws = [2.0 * p.m * p.n * p.k for p in points]
    ts = [w / p.flops_per_s for w, p in zip(ws, points)]
    if len(points) == 1:
        return points[0].flops_per_s * peak_ratio, 0.0
    n = len(ws)
    mw, mt = sum(ws) / n, sum(ts) / n
    sww = sum((w - mw) ** 2 for w in ws)
    slope = sum((w - mw) * (t - mt) for w, t in zip(ws, ts)) / sww
    t0 = mt - slope * mw
    if slope <= 0:  # degenerate points: fall back to the best measured rate
        return max(p.flops_per_s for p in points) * peak_ratio, 0.0
    if t0 < 0:  # a fixed time cannot be negative: refit the rate through the origin
        slope = sum(w * t for w, t in zip(ws, ts)) / sum(w * w for w in ws)
        t0 = 0.0
    return peak_ratio / slope, t0


def gemm_fit(device, dtype: str) -> GemmFit:
    """The GEMM curve for ``dtype``: from that dtype's points, or from the other 16-bit dtype's
    points scaled by the ratio of peaks (fp16 and bf16 run on the same tensor cores), else the
    dense peak with no fixed time."""
    peak = device.peak(dtype)
    candidates = [dtype] + ([d for d in _SIXTEEN_BIT if d != dtype] if dtype in _SIXTEEN_BIT else [])
    if dtype in ("fp32", "tf32"):
        candidates = [dtype]
    for cand in candidates:
        points = device.gemm.get(cand)
        if points:
            ratio = peak / device.peak(cand) if cand != dtype else 1.0
            rate, t0 = _fit(tuple(points), ratio)
            rate = min(rate, peak)
            return GemmFit(rate, t0, len(points), f"fit of {len(points)} measured {cand} GEMM points")
    return GemmFit(peak, 0.0, 0, f"no measured GEMM data for {dtype}: datasheet peak")


# --- communication levels --------------------------------------------------------------------


@dataclass(frozen=True)
class Level:
    """One level of the system as a collective sees it: per-device bandwidth and latency."""

    name: str
    alpha: float  # s per message step
    beta: float  # B/s per device per direction, after sharing and efficiency


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


def intra_node_level(system, group_size: int, n_concurrent_groups: int = 1) -> Level:
    """The fabric as seen by a ring of ``group_size`` consecutive devices in one node.

    ``n_concurrent_groups`` such groups run at once in the node (e.g. 4 TP groups of 2).
    """
    fab = system.fabric
    eff = fab.efficiency
    if fab.kind == "none":
        return Level("none", 0.0, float("inf"))
    link_bw = link_data_bandwidth(fab.link)
    if fab.kind == "nvswitch":
        return Level("nvswitch", fab.link.latency, fab.links_per_device * link_bw * eff)
    if fab.kind == "fully-connected":
        # a ring uses one peer per direction: the links to that peer
        return Level("fully-connected", fab.link.latency, fab.links_per_peer * link_bw * eff)
    if fab.kind in ("ring", "torus"):
        return Level(fab.kind, fab.link.latency, fab.links_per_device * link_bw * eff)
    if fab.kind == "pcie-tree":
        k = fab.devices_per_switch
        switches_per_group = -(-group_size // k)
        if switches_per_group <= 1:
            return Level("pcie-switch", fab.link.latency, link_bw * eff)
        # a ring over s switches sends one flow up and one down each switch uplink; every
        # concurrent group's crossings share the root complex
        uplink_bw = link_data_bandwidth(fab.switch_uplink)
        crossings = switches_per_group * n_concurrent_groups
        beta = pcie_f.pcie_root_share_bandwidth(1, crossings, link_bw, uplink_bw, fab.root_bandwidth)
        return Level("pcie-root", fab.link.latency + fab.switch_uplink.latency, beta * eff)
    raise MissingSpecError(f"{system.name}: fabric '{fab.kind}' has no collective model")


def inter_node_level(system, active_devices_per_node: int) -> Level:
    """The network as seen by each of ``active_devices_per_node`` devices communicating at once."""
    net = system.network
    if net is None:
        raise MissingSpecError(f"{system.name}: the plan spans nodes but the system has no [network]")
    nic_bw = link_data_bandwidth(net.link) * net.efficiency
    # the node's NICs are shared by the devices that communicate at once; one device drives one
    # NIC (NCCL's rail per GPU) when there are enough of them
    share = net.nics_per_node * nic_bw / max(1, active_devices_per_node)
    return Level(net.topology, net.link.latency, min(share, nic_bw) / net.oversubscription)
