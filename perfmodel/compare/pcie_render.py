"""Words and tables for :mod:`perfmodel.compare.pcie`: the notes a story prints and its rich view."""

from __future__ import annotations

from perfmodel.units import format_quantity

__all__ = ["story_notes", "render_story", "tp_table_rows", "switch_table_rows"]


def _bw(x: float) -> str:
    return format_quantity(x, "bandwidth")


def _pct(x: float) -> str:
    return f"{x * 100:.2f} %"


def story_notes(system, o, tp_rows, switch_rows, bus_bound_tp, root_bandwidth, ring_limit, copy_limit,
                efficiency) -> list[str]:
    """The story in sentences, each number taken from the rows."""
    notes = [
        f"{o.link}: raw {_bw(o.raw_bandwidth)} per direction; line code and SKP ordered sets take "
        f"{_pct(o.encoding_share)}, TLP framing and 64-bit headers at the {o.max_payload_bytes:g}-B max payload "
        f"{_pct(o.tlp_overhead_share)} (read completions {_pct(o.completion_overhead_share)}), DLLPs "
        f"{_pct(o.dllp_share)} more when both directions are busy: {_bw(o.write_bandwidth)} of data "
        f"({_pct(o.total_overhead_share)} below raw).",
    ]
    multi = [r for r in tp_rows if r.tp > 1]
    if multi:
        rates = {round(r.ring_bandwidth) for r in multi}
        if len(rates) == 1:
            notes.append(
                f"The TP ring runs at {_bw(multi[0].ring_bandwidth)} per GPU for tp = "
                f"{', '.join(str(r.tp) for r in multi)}: in rank order it crosses each switch uplink once per "
                f"direction, so the GPUs of a group do not share a link and each is limited by its own link "
                f"({_bw(o.write_bandwidth)} data rate x the collective efficiency {efficiency:.3g}); the root "
                f"complex ({_bw(root_bandwidth)}) would limit it only below {_bw(ring_limit)}.")
        else:
            parts = ", ".join(f"tp {r.tp}: {_bw(r.ring_bandwidth)} ({r.ring_limited_by})" for r in multi)
            notes.append(f"Per-GPU TP ring bandwidth: {parts}.")
    if bus_bound_tp is not None:
        r = next(r for r in tp_rows if r.tp == bus_bound_tp)
        notes.append(
            f"The step turns bus-bound at tp = {bus_bound_tp}: TP communication "
            f"{format_quantity(r.tp_comm_s, 'time')} vs compute {format_quantity(r.compute_s, 'time')} per step. "
            f"What dominates is volume, not sharing: each layer's all-reduces move 2(k-1)/k of the activations "
            f"over a ~{_bw(r.ring_bandwidth)} link while each GPU's compute shrinks as 1/k.")
    elif any(r.bus_bound is not None for r in tp_rows):
        notes.append("No TP degree up to the node size makes this step bus-bound.")
    bundled = next((r for r in switch_rows if r.bundled), None)
    if switch_rows and bundled is not None:
        falls = ", ".join(f"{r.devices_per_switch} per switch: {_bw(r.copy_bandwidth_per_switch_group)}"
                          for r in switch_rows)
        notes.append(
            f"Host<->device copies do share: k GPUs behind one switch copying at once get min(link, uplink/k) "
            f"each ({falls}; {system.name} has {bundled.devices_per_switch}). With all "
            f"{system.devices_per_node} GPUs copying at once each gets {_bw(bundled.copy_bandwidth_all)}, limited "
            f"by the {bundled.copy_all_limited_by}; the root complex's share, "
            f"{_bw(root_bandwidth / system.devices_per_node)} per GPU, takes over below a root bandwidth of "
            f"{_bw(copy_limit)} or with fewer GPUs per switch.")
    return notes


def tp_table_rows(story) -> list[dict]:
    t = lambda x: "" if x is None else format_quantity(x, "time")  # noqa: E731
    return [{"tp": r.tp, "switches": r.switches_spanned,
             "TP ring / GPU": "-" if r.ring_bandwidth is None else _bw(r.ring_bandwidth),
             "ring limited by": r.ring_limited_by, "host copies / GPU": _bw(r.copy_bandwidth),
             "copies limited by": r.copy_limited_by, "compute": t(r.compute_s), "tp comm": t(r.tp_comm_s),
             "step": t(r.step_time_s), "bound": r.bound or r.note,
             "fits": "" if r.fits_in_memory is None else "yes" if r.fits_in_memory else
             f"no ({format_quantity(r.memory_bytes_per_device, 'bytes')})"} for r in story.tp_rows]


def switch_table_rows(story) -> list[dict]:
    return [{"GPUs/switch": f"{r.devices_per_switch}{' (bundled)' if r.bundled else ''}",
             "switches": r.n_switches, "copies / GPU, one switch busy": _bw(r.copy_bandwidth_per_switch_group),
             "copies / GPU, all GPUs busy": _bw(r.copy_bandwidth_all), "limited by": r.copy_all_limited_by,
             f"tp {r.tp} ring / GPU": _bw(r.ring_bandwidth),
             f"tp {r.tp} step": "" if r.step_time_s is None else format_quantity(r.step_time_s, "time"),
             "bound": r.bound or ""} for r in story.switch_rows]


def render_story(story, width: int = 100):
    """The story's tables and notes for a terminal ``width`` characters wide."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from perfmodel.tables import from_rows, packed

    o = story.overheads
    head = Table(title=f"PCIe contention on {story.system} ({o.link}), {story.model}", show_header=False)
    head.add_column("", style="bold")
    head.add_column("")
    for k, v in (("raw per direction", _bw(o.raw_bandwidth)), ("after line code + SKP", _bw(o.link_bandwidth)),
                 ("data (posted writes)", _bw(o.write_bandwidth)),
                 ("transaction overhead (1 - TLP efficiency)", _pct(o.tlp_overhead_share)),
                 ("DLLP share (both directions busy)", _pct(o.dllp_share)),
                 ("bus-bound from tp", str(story.bus_bound_tp)),
                 ("crossover tp (find_crossover)", "" if story.crossover_tp is None else f"{story.crossover_tp:.3g}")):
        head.add_row(k, v)
    parts = [head]
    for rows, title in ((tp_table_rows(story), "tensor parallelism over k GPUs"),
                        (switch_table_rows(story), "what-if: GPUs per PCIe switch")):
        text = ("ring limited by", "copies limited by", "limited by", "bound", "GPUs/switch")
        parts.append(packed(from_rows(rows, text=text), width, title=title))
    parts += [Text(f"- {n}") for n in story.notes]
    return Group(*parts)
