"""How much GPUs on a PCIe tree slow each other: the PCIe contention story of a system.

``pcie_contention_story(system, model)`` answers, for a system whose devices sit on a PCIe tree
(``pcie-8gpu``: 8 GPUs, two per PCIe 4.0 switch, four switches on the root complex):

* **transaction overhead** -- of the link's raw rate, what the line code and SKP ordered sets
  take, what TLP framing and headers take at the link's max payload size (1 - TLP efficiency),
  and what the DLLPs (Acks, flow control) take when both directions are busy
  (:mod:`perfmodel.formulas.pcie`);
* **tensor parallelism over 2, 4, 8 GPUs** -- the per-GPU bandwidth of the TP ring
  (:func:`perfmodel.prediction.hardware.intra_node_level`, the number the prediction uses), the
  per-GPU bandwidth of host<->device copies when the group's GPUs copy at once
  (``pcie_root_share_bandwidth`` of :mod:`perfmodel.formulas.pcie_copies`: k GPUs sharing a switch
  uplink and the root complex), which of link / switch uplink / root complex limits each, and the
  predicted step (:func:`perfmodel.prediction.predict`, tp = k on k devices) with its verdict:
  the smallest k at which the step is bus-bound (``bound == "communication"`` or TP communication
  above compute), and the crossover TP degree of :func:`perfmodel.crossover.find.find_crossover`;
* **devices per switch** (a what-if on the same host: 1, 2, 4, 8 GPUs behind each switch) -- the
  per-GPU copy bandwidth when the k GPUs behind one switch copy at once (it falls as 1/k once the
  uplink is the limit), when all GPUs of the node copy at once (where the root complex can take
  over), and the TP ring and step at the largest TP degree.

What dominates on the bundled ``pcie-8gpu``: a TP ring in rank order crosses every switch uplink
once per direction, so it is limited by each GPU's own x16 link, not by sharing; the root
complex (126 GB/s per direction) would limit it only below ``root_limits_ring_below``. The step
turns bus-bound because the per-layer all-reduces stay the same size while each GPU's compute
shrinks as 1/k. Sharing shows in host<->device copies: two GPUs behind a switch each get half
its uplink. Bandwidths are PCIe data rates of posted writes (DMA writes, peer-to-peer and
device-to-host), as the prediction uses them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from perfmodel.errors import MissingSpecError, PerfModelError, SpecError
from perfmodel.formulas import pcie as pf
from perfmodel.formulas import pcie_copies as pcopy

__all__ = ["PcieOverheads", "TpRow", "SwitchRow", "PcieContentionStory", "pcie_overheads", "pcie_contention_story"]

TP_DEGREES = (1, 2, 4, 8)


@dataclass(frozen=True)
class PcieOverheads:
    """Where a PCIe link's raw rate goes, per direction, for full TLPs of the max payload size."""

    link: str
    generation: int
    lanes: int
    max_payload_bytes: float
    raw_bandwidth: float  # lanes x transfer rate
    link_bandwidth: float  # after line code (and flits) and SKP ordered sets
    write_bandwidth: float  # data of posted writes, one direction busy
    duplex_write_bandwidth: float  # the same with the other direction busy (its DLLPs share the link)
    encoding_share: float  # 1 - link / raw
    tlp_overhead_share: float  # 1 - TLP efficiency of writes (framing + 64-bit header)
    completion_overhead_share: float  # 1 - TLP efficiency of read completions (3-DW header)
    dllp_share: float  # Acks + UpdateFCs at the spec's Ack latency limit
    total_overhead_share: float  # 1 - write / raw

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class TpRow:
    """Tensor parallelism over ``tp`` consecutive GPUs of the node."""

    tp: int
    switches_spanned: int
    concurrent_groups: int
    ring_bandwidth: float | None  # B/s per GPU, what the prediction's TP all-reduce uses (None: tp = 1)
    ring_latency_s: float | None
    ring_limited_by: str
    copy_bandwidth: float  # B/s per GPU when the group's GPUs copy to/from the host at once
    copy_limited_by: str
    compute_s: float | None = None
    tp_comm_s: float | None = None
    step_time_s: float | None = None
    bound: str | None = None
    bus_bound: bool | None = None
    fits_in_memory: bool | None = None  # the prediction is timed even when the model does not fit
    memory_bytes_per_device: float | None = None
    note: str = ""

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class SwitchRow:
    """What-if: ``devices_per_switch`` GPUs behind each PCIe switch of the same host."""

    devices_per_switch: int
    n_switches: int
    copy_bandwidth_per_switch_group: float  # per GPU, the k GPUs of one switch copying at once
    copy_bandwidth_all: float  # per GPU, every GPU of the node copying at once
    copy_all_limited_by: str
    tp: int
    ring_bandwidth: float
    ring_limited_by: str
    step_time_s: float | None
    bound: str | None
    bus_bound: bool | None
    bundled: bool

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class PcieContentionStory:
    system: str
    model: str
    overheads: PcieOverheads
    tp_rows: tuple[TpRow, ...]
    switch_rows: tuple[SwitchRow, ...]
    bus_bound_tp: int | None  # smallest TP degree whose predicted step is bus-bound
    crossover_tp: float | None  # find_crossover(scheme="tp", solve_for="devices")
    crossover_closed_form_latex: str | None
    root_bandwidth: float
    root_limits_ring_below: float  # root bandwidth below which the root complex limits the TP rings
    root_limits_copies_below: float  # ... and the copies of all GPUs of the node at once
    notes: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"system": self.system, "model": self.model, "overheads": self.overheads.to_dict(),
                "tp": [r.to_dict() for r in self.tp_rows],
                "devices_per_switch": [r.to_dict() for r in self.switch_rows],
                "bus_bound_tp": self.bus_bound_tp, "crossover_tp": self.crossover_tp,
                "crossover_closed_form_latex": self.crossover_closed_form_latex,
                "root_bandwidth": self.root_bandwidth, "root_limits_ring_below": self.root_limits_ring_below,
                "root_limits_copies_below": self.root_limits_copies_below,
                "notes": list(self.notes)}

    def to_rows(self) -> list[dict]:
        """The CSV rows: one per tensor-parallel degree."""
        return [r.to_dict() for r in self.tp_rows]

    def __rich_console__(self, console, options):
        from perfmodel.compare.pcie_render import render_story

        yield render_story(self, options.max_width)


# --- the link's overheads ------------------------------------------------------------------------


def pcie_overheads(link) -> PcieOverheads:
    """The transaction-overhead account of a PCIe link spec (raw -> link -> data)."""
    if link.family != "pcie" or link.pcie_generation is None or link.pcie_lanes is None:
        raise SpecError(f"{link.name} is not a PCIe link (family '{link.family}')")
    if link.max_payload_bytes is None:
        raise MissingSpecError(f"{link.name}: 'pcie.max_payload' is needed for the TLP overhead")
    gen = pf.PCIE_GENERATIONS[link.pcie_generation]
    lanes, mps = link.pcie_lanes, link.max_payload_bytes
    raw = pf.pcie_raw_bandwidth(gen["line_rate_bits_per_s"], lanes)
    header, framing = pf.TLP_HEADER_BYTES["mem_64bit"], gen["tlp_framing_bytes"]
    eta_write = pf.pcie_tlp_efficiency(mps, header, framing)
    eta_cpl = pf.pcie_tlp_efficiency(mps, pf.TLP_HEADER_BYTES["completion"], framing)
    rate_key = 8.0e9 if gen["line_rate_bits_per_s"] >= 8.0e9 else gen["line_rate_bits_per_s"]
    ack = pf.PCIE_ACK_LATENCY_LIMIT_SYMBOLS.get(rate_key, {}).get(int(mps), {}).get(lanes)
    # Flit Mode (gen 6) carries Acks in the flit's DLP bytes: no DLLP share on top
    dllp = 0.0 if gen["flit_efficiency"] < 1 or ack is None else pf.pcie_dllp_fraction(2, pf.DLLP_BYTES, lanes, ack)
    write = pf.pcie_write_bandwidth(link.bandwidth, 0.0, mps, header, framing)
    duplex = pf.pcie_write_bandwidth(link.bandwidth, dllp, mps, header, framing)
    return PcieOverheads(link.name, link.pcie_generation, lanes, mps, raw, link.bandwidth, write, duplex,
                         1 - link.bandwidth / raw, 1 - eta_write, 1 - eta_cpl, dllp, 1 - write / raw)


# --- contention ----------------------------------------------------------------------------------


def _limit(named: dict) -> tuple[float, str]:
    """(smallest value, its name) of {name: bandwidth}; the first listed wins a tie."""
    name = min(named, key=lambda k: named[k])
    return named[name], name


def _copy_share(hw, active_per_switch, n_switches) -> tuple[float, str]:
    value = pcopy.pcie_root_share_bandwidth(active_per_switch, n_switches, hw.fabric_bandwidth,
                                            hw.uplink_bandwidth, hw.root_bandwidth)
    _, name = _limit({"own link": hw.fabric_bandwidth, "switch uplink": hw.uplink_bandwidth / active_per_switch,
                      "root complex": hw.root_bandwidth / (active_per_switch * n_switches)})
    return float(value), name


def _ring(hw, tp) -> tuple[float, float, str, int, int]:
    from perfmodel.prediction.hardware import intra_node_level

    groups = max(hw.devices_per_node // tp, 1)
    alpha, beta = intra_node_level(hw, tp, groups)
    switches = math.ceil(tp / hw.devices_per_switch)
    if tp == 1:
        name = "no ring (tp = 1)"
    elif switches <= 1:
        name = "own link (through its switch)"
    else:
        eff = hw.fabric_efficiency
        _, name = _limit({"own link": hw.fabric_bandwidth * eff, "switch uplink": hw.uplink_bandwidth * eff,
                          "root complex": hw.root_bandwidth / (switches * groups) * eff})
    return float(beta), float(alpha), name, switches, groups


def _predict(model, system, tp, plan_fields):
    from perfmodel.prediction import predict

    try:
        r = predict(model, system, devices=tp, tp=tp, **plan_fields)
    except PerfModelError as exc:
        return None, exc
    b = r.breakdown_s
    bus = r.bound == "communication" or b["tp_comm"] > b["compute"] + b["recompute"]
    return (b["compute"] + b["recompute"], b["tp_comm"], r.step_time_s, r.bound, bus, r.fits_in_memory,
            r.memory_bytes_per_device["total"]), ""


def pcie_contention_story(system="pcie-8gpu", model="megatron-1.7b", **plan_fields) -> PcieContentionStory:
    """The PCIe contention story of ``system`` (a PCIe-tree system) for ``model``; see the module doc.

    ``plan_fields`` (micro_batch, global_batch, seq, dtype, ...) go to every prediction.

    Long on purpose: the story's three tables (link overheads, TP rows, switch rows) and its notes are built from the same system numbers in the order the story tells them.
    """
    from perfmodel.prediction.hardware import hw_params
    from perfmodel.specs.registry import load_system
    from perfmodel.workloads import load_model

    if isinstance(system, str):
        system = load_system(system)
    if not hasattr(model, "n_params"):
        model = load_model(model)
    fab = system.fabric
    if fab.kind != "pcie-tree":
        raise SpecError(f"{system.name}: fabric '{fab.kind}' is not a PCIe tree; the PCIe story needs a "
                             f"system like pcie-8gpu")
    hw = hw_params(system, plan_fields.get("dtype", "bf16"))
    per_node = system.devices_per_node
    overheads = pcie_overheads(fab.link)
    notes: list[str] = []

    tp_rows, failures = [], []
    for tp in (k for k in TP_DEGREES if k <= per_node):
        ring_bw, ring_lat, ring_by, switches, groups = _ring(hw, tp)
        copy_bw, copy_by = _copy_share(hw, min(tp, hw.devices_per_switch), switches)
        pred, why = _predict(model, system, tp, plan_fields)
        failures.append(why)
        extra = (dict(zip(("compute_s", "tp_comm_s", "step_time_s", "bound", "bus_bound", "fits_in_memory",
                           "memory_bytes_per_device"), pred)) if pred else {})
        if tp == 1:
            ring_bw = ring_lat = None
        tp_rows.append(TpRow(tp, switches, groups, ring_bw, ring_lat, ring_by, copy_bw, copy_by, note=str(why or ""),
                             **extra))
    if all(failures):  # no TP degree can run the plan: the plan itself is wrong, not one row of the story
        raise failures[0]
    bus_bound_tp = next((r.tp for r in tp_rows if r.bus_bound), None)

    switch_rows = []
    top = max(r.tp for r in tp_rows)
    for dps in (d for d in (1, 2, 4, 8, 16) if d <= per_node and per_node % d == 0):
        what_if = replace(system, fabric=replace(fab, devices_per_switch=dps))
        hw_k = replace(hw, devices_per_switch=dps)
        group_bw = float(pcopy.pcie_switch_share_bandwidth(dps, hw.fabric_bandwidth, hw.uplink_bandwidth))
        all_bw, all_by = _copy_share(hw_k, dps, per_node // dps)
        ring_bw, _, ring_by, _, _ = _ring(hw_k, top)
        pred, _ = _predict(model, what_if, top, plan_fields)
        step, bound, bus = (pred[2], pred[3], pred[4]) if pred else (None, None, None)
        switch_rows.append(SwitchRow(dps, per_node // dps, group_bw, all_bw, all_by, top, ring_bw, ring_by, step,
                                     bound, bus, dps == fab.devices_per_switch))

    # the root complex limits a ring crossing c uplinks below c x min(link, uplink), and all-GPU copies
    # below n x min(link, uplink / k); the larger of the two is where it starts to matter
    crossings = max(r.switches_spanned * r.concurrent_groups for r in tp_rows if r.switches_spanned > 1) \
        if any(r.switches_spanned > 1 for r in tp_rows) else 0
    ring_threshold = crossings * min(hw.fabric_bandwidth, hw.uplink_bandwidth)
    copy_threshold = per_node * min(hw.fabric_bandwidth, hw.uplink_bandwidth / hw.devices_per_switch)

    crossover, latex = None, None
    try:
        from perfmodel.crossover.find import find_crossover

        c = find_crossover(model, system, "tp", "devices", **plan_fields)
        crossover, latex = c.value, c.closed_form_latex
    except (PerfModelError, ImportError) as exc:
        notes.append(f"no TP crossover from find_crossover: {exc}")

    from perfmodel.compare.pcie_render import story_notes

    notes = story_notes(system, overheads, tp_rows, switch_rows, bus_bound_tp, hw.root_bandwidth, ring_threshold,
                        copy_threshold, hw.fabric_efficiency) + notes
    return PcieContentionStory(system.name, model.name, overheads, tuple(tp_rows), tuple(switch_rows), bus_bound_tp,
                               crossover, latex, hw.root_bandwidth, ring_threshold, copy_threshold, tuple(notes))
