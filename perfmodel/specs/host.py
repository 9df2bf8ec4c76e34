"""The host side of a node, from a system file's optional ``[host]`` table: how many host CPUs
(sockets of ``host_cpu``), how much host memory, and the PCIe switches between the devices and the
host (what CPU offload -- :mod:`perfmodel.prediction.offload` -- moves data over and stores data in).

```toml
[host]
cpus = 2                                   # sockets of host_cpu per node (default 1)
memory = { value = "2 TB", source = "..." }  # host DRAM per node (optional: no capacity check without it)
devices_per_switch = 2                     # optional: devices sharing one PCIe switch to the host
switch_uplink = "pcie4-x16"                # with devices_per_switch: the switch's link to the CPU
source = "..."
```

A ``pcie-tree`` fabric already names the switches (its ``devices_per_switch``, ``switch_uplink``
and ``root_bandwidth``); the table's switch keys are for systems whose devices talk to each other
over another fabric (NVSwitch) but reach the host through shared PCIe switches (DGX-style: two
GPUs and two NICs behind each switch).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Host", "read_host"]


@dataclass(frozen=True)
class Host:
    """A node's host: CPU sockets, DRAM bytes (None: not stated) and the host-side PCIe switches."""

    cpus: int = 1
    memory_bytes: float | None = None
    devices_per_switch: int | None = None
    switch_uplink: object | None = None  # a Link


def read_host(top, sources: dict, link_ref, per_node: int, fabric_kind: str = "") -> Host | None:
    """The ``[host]`` table of a system file (``top``: its top-level Table), or None.

    ``link_ref(table, key)`` resolves a link name; ``sources`` collects the cited sources. A
    ``pcie-tree`` fabric names the switches itself, so the table may not name them again."""
    table = top.table("host", required=False)
    if table is None:
        return None
    if fabric_kind == "pcie-tree":
        for key in ("devices_per_switch", "switch_uplink"):
            if table.has(key):
                raise table.fail(key, "the pcie-tree fabric already names the PCIe switches to the host (its "
                                      "devices_per_switch and switch_uplink); leave it out of [host]")
    if table.has("switch_uplink") and not table.has("devices_per_switch"):
        raise table.fail("switch_uplink", "needs devices_per_switch (the devices behind each such switch)")
    cpus = table.integer("cpus", default=1, maximum=64)
    memory = table.quantity("memory", "bytes", required=False)
    if memory is not None:
        sources["host.memory"] = memory.source
    per_switch = table.integer("devices_per_switch", default=None, maximum=64)
    uplink = link_ref(table, "switch_uplink") if per_switch is not None else None
    if uplink is not None and uplink.family != "pcie":
        raise table.fail("switch_uplink", f"expected a PCIe link (the switch's way to the host CPU), got "
                                          f"{uplink.name} ({uplink.family})")
    if per_switch is not None and per_node % per_switch:
        raise table.fail("devices_per_switch", f"{per_switch} does not divide devices_per_node {per_node}")
    sources["host"] = table.string("source")
    table.finish()
    return Host(cpus=cpus, memory_bytes=None if memory is None else memory.value, devices_per_switch=per_switch,
                switch_uplink=uplink)
