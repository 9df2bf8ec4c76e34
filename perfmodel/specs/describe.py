"""Rows that describe a spec for people (``hardware show``) and for JSON/CSV output."""

from __future__ import annotations

from perfmodel.specs.schema import Device, Link, System
from perfmodel.units import format_quantity

__all__ = ["describe", "summary_row"]


def _row(field: str, value, dimension: str | None, source: str = "") -> dict:
    if dimension is None or value is None:
        text = "" if value is None else str(value)
    else:
        text = format_quantity(value, dimension)
    return {"field": field, "value": text, "si_value": value, "source": source}


def summary_row(spec) -> dict:
    """One line per spec for ``hardware list``."""
    return {"name": spec.name, "kind": spec.kind, "description": spec.description}


def describe(spec) -> list[dict]:
    """Field rows: name, formatted value, SI value, source."""
    if isinstance(spec, System):
        return _system(spec)
    if isinstance(spec, Link):
        return _link(spec)
    if isinstance(spec, Device):
        return _device(spec)
    raise TypeError(type(spec))


def _device(d: Device) -> list[dict]:
    src = d.sources
    rows = [_row("kind", d.kind, None), _row("description", d.description, None)]
    for dtype, value in d.peak_flops_per_s.items():
        rows.append(_row(f"peak.dense.{dtype}", value, "flop_rate", src.get(f"peak.dense.{dtype}", "")))
    for dtype, value in d.sparse_flops_per_s.items():
        rows.append(_row(f"peak.sparse.{dtype}", value, "flop_rate", src.get(f"peak.sparse.{dtype}", "")))
    if d.memory_bytes is not None:
        rows.append(_row("memory.capacity", d.memory_bytes, "bytes", src.get("memory.capacity", "")))
    rows.append(_row("memory.bandwidth", d.memory_bandwidth, "bandwidth", src.get("memory.bandwidth", "")))
    if d.measured_memory_bandwidth is not None:
        rows.append(_row("measured.memory_bandwidth", d.measured_memory_bandwidth, "bandwidth",
                         src.get("measured.memory_bandwidth", "")))
    if d.launch_overhead_time is not None:
        rows.append(_row("measured.launch_overhead", d.launch_overhead_time, "time", src.get("measured.launch_overhead", "")))
    if d.n_cores is not None:
        rows.append(_row("cpu.cores", d.n_cores, None, src.get("cpu.cores", "")))
        rows.append(_row("cpu.clock", d.clock_hz, "frequency", src.get("cpu.clock", "")))
    for dtype, points in d.gemm.items():
        best = max(points, key=lambda p: p.flops_per_s)
        rows.append(_row(f"gemm.{dtype}", f"{len(points)} points, best {format_quantity(best.flops_per_s, 'flop_rate')}"
                         f" at {best.m}x{best.n}x{best.k}", None, src.get(f"gemm.{dtype}", "")))
    if d.sustained is not None:
        for dtype, value in d.sustained.matmul.items():
            rows.append(_row(f"sustained.matmul.{dtype}", value, "flop_rate", src.get(f"sustained.matmul.{dtype}", "")))
        if d.sustained.attention_fraction is not None:
            rows.append(_row("sustained.attention", f"{d.sustained.attention_fraction:.0%}", None,
                             src.get("sustained.attention", "")))
    if d.host_link is not None:
        rows.append(_row("host_link", d.host_link.name, None))
    return rows


def _link(link: Link) -> list[dict]:
    src = link.sources
    rows = [_row("kind", "link", None), _row("family", link.family, None),
            _row("description", link.description, None),
            _row("bandwidth (per direction)", link.bandwidth, "bandwidth", src.get("bandwidth", "")),
            _row("latency", link.latency, "time", src.get("latency", ""))]
    if link.pcie_generation is not None:
        rows += [_row("pcie.generation", link.pcie_generation, None), _row("pcie.lanes", link.pcie_lanes, None),
                 _row("pcie.max_payload", link.max_payload_bytes, "bytes", src.get("pcie.max_payload", ""))]
    if link.mtu_bytes is not None:
        rows.append(_row("mtu", link.mtu_bytes, "bytes", src.get("mtu", "")))
    return rows


def _system(s: System) -> list[dict]:
    src = s.sources
    f = s.fabric
    rows = [_row("kind", "system", None), _row("description", s.description, None),
            _row("device", s.device.name, None), _row("devices_per_node", s.devices_per_node, None),
            _row("fabric.kind", f.kind, None, src.get("fabric", ""))]
    if f.link is not None:
        rows.append(_row("fabric.link", f"{f.link.name} ({format_quantity(f.link.bandwidth, 'bandwidth')} per direction)", None))
    if f.kind == "nvswitch":
        rows.append(_row("fabric.links_per_device", f.links_per_device, None))
        rows.append(_row("fabric.bandwidth_per_device", f.links_per_device * f.link.bandwidth, "bandwidth"))
    if f.kind == "fully-connected":
        rows.append(_row("fabric.links_per_peer", f.links_per_peer, None))
    if f.kind == "pcie-tree":
        rows.append(_row("fabric.devices_per_switch", f.devices_per_switch, None))
        rows.append(_row("fabric.switch_uplink", f.switch_uplink.name, None))
        rows.append(_row("fabric.root_bandwidth", f.root_bandwidth, "bandwidth", src.get("fabric.root_bandwidth", "")))
    if f.dims is not None:
        rows.append(_row("fabric.dims", "x".join(map(str, f.dims)), None))
    if f.collective_units:
        rows.append(_row("fabric.collective_units", f.collective_units, None, src.get("fabric.collective_units", "")))
    if s.network is not None:
        n = s.network
        rows += [_row("network.topology", n.topology, None, src.get("network", "")),
                 _row("network.link", f"{n.link.name} ({format_quantity(n.link.bandwidth, 'bandwidth')} per direction)", None),
                 _row("network.nics_per_node", n.nics_per_node, None),
                 _row("network.bandwidth_per_node", n.nics_per_node * n.link.bandwidth, "bandwidth"),
                 _row("network.oversubscription", n.oversubscription, None)]
        if n.full_bisection_nodes is not None:
            rows.append(_row("network.full_bisection_nodes", n.full_bisection_nodes, None))
    if s.host_cpu is not None:
        rows.append(_row("host_cpu", s.host_cpu.name, None))
    return rows
