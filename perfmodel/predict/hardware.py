"""The numbers a prediction needs from a system, for one plan: rates, bandwidths, latencies.

Everything here is a plain float derived from the frozen specs by a documented rule, so a sweep
can replace any of them with a numpy array. Placement follows Megatron-LM's rank order (tensor
parallel ranks innermost, then data parallel, then pipeline stages): a TP group fills
consecutive devices of a node, data-parallel peers come next, pipeline stages are outermost.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from perfmodel.errors import MissingSpecError
from perfmodel.formulas import pcie as pcie_f

__all__ = ["RateCurve", "gemm_curve", "attention_curves", "Level", "intra_node_level", "inter_node_level", "pcie_dma_bandwidth"]

_SIXTEEN_BIT = ("bf16", "fp16")


@dataclass(frozen=True)
class RateCurve:
    """A measured throughput curve: FLOP/s as a function of a kernel's FLOPs.

    Piecewise-linear in log(FLOPs) through the measured points (points with the same FLOPs are
    averaged), flat beyond the smallest and largest. Evaluates on floats and numpy arrays with
    the same arithmetic, so scalar predictions and vectorised sweeps agree.
    """

    log_flops: tuple[float, ...]
    rates: tuple[float, ...]
    source: str

    @property
    def n_points(self) -> int:
        return len(self.rates)

    def rate(self, flops):
        xs, ys = self.log_flops, self.rates
        if len(xs) == 1:
            return ys[0] + 0.0 * flops
        if isinstance(flops, (int, float)):
            x = math.log(flops) if flops > 0 else xs[0]
            if x <= xs[0]:
                return ys[0]
            if x >= xs[-1]:
                return ys[-1]
            i = bisect.bisect_right(xs, x) - 1
            w = (x - xs[i]) / (xs[i + 1] - xs[i])
            return ys[i] + w * (ys[i + 1] - ys[i])
        import numpy as np

        x = np.log(np.maximum(np.asarray(flops, dtype=float), 1e-300))
        return np.interp(x, xs, ys)

    def time(self, flops):
        return flops / self.rate(flops)

    def scaled(self, factor: float) -> RateCurve:
        return RateCurve(self.log_flops, tuple(r * factor for r in self.rates), self.source)


def _curve(pairs: list[tuple[float, float]], source: str) -> RateCurve:
    groups: dict[float, list[float]] = {}
    for flops, rate in pairs:
        groups.setdefault(flops, []).append(rate)
    keys = sorted(groups)
    return RateCurve(tuple(math.log(k) for k in keys), tuple(sum(groups[k]) / len(groups[k]) for k in keys), source)


def gemm_curve(device, dtype: str) -> RateCurve:
    """The GEMM curve for ``dtype``: from that dtype's measured points, or from the other 16-bit
    dtype's points scaled by the ratio of peaks (fp16 and bf16 run on the same tensor cores);
    with no points at all, the dense datasheet peak (an upper bound, said in ``source``)."""
    peak = device.peak(dtype)
    candidates = [dtype] + [d for d in _SIXTEEN_BIT if d != dtype and dtype in _SIXTEEN_BIT]
    for cand in candidates:
        points = device.gemm.get(cand)
        if points:
            ratio = peak / device.peak(cand) if cand != dtype else 1.0
            pairs = [(2.0 * p.m * p.n * p.k, min(p.flops_per_s * ratio, peak)) for p in points]
            return _curve(pairs, f"{len(points)} measured {cand} GEMM points of {device.name}")
    return _curve([(1.0, peak)], f"no measured GEMM data for {dtype} on {device.name}: datasheet peak")


def attention_curves(device, dtype: str) -> tuple[RateCurve, RateCurve] | None:
    """(forward, backward) curves of the device's measured fused attention, or None."""
    points = device.attention.get(dtype)
    if not points and dtype in _SIXTEEN_BIT:
        other = [d for d in _SIXTEEN_BIT if d != dtype][0]
        points = device.attention.get(other)
    if not points:
        return None
    fwd, bwd = [], []
    for p in points:
        w = 4 * (0.5 if p.causal else 1.0) * p.batch * p.seq**2 * p.heads * p.head_dim
        t_fwd = w / p.forward_flops_per_s
        t_both = 3.5 * w / p.forward_backward_flops_per_s
        fwd.append((w, p.forward_flops_per_s))
        bwd.append((2.5 * w, 2.5 * w / (t_both - t_fwd)))
    src = f"{len(points)} measured attention points of {device.name}"
    return _curve(fwd, src), _curve(bwd, src)


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
