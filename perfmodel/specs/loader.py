"""Build frozen specs from TOML files (grammar: hardware/README.md).

A file that is wrong does not load: the error names the file, the key, the expected kind and the
value. References between files (a system's device and links) are names of bundled specs or
paths relative to the referring file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from perfmodel.errors import PerfModelError, SpecError
from perfmodel.frozen import FrozenDict
from perfmodel.specs.bounds import BOUNDS, violation
from perfmodel.specs.host import read_host
from perfmodel.specs.kernel_tables import (attention_tables, dtype_rates, gemm_points, matmul_table, note as _note,
                                           per_dtype, sustained_table)
from perfmodel.specs.reader import Table, read_toml
from perfmodel.specs.schema import (
    Device,
    Fabric,
    Link,
    Network,
    System,
)

__all__ = ["build_spec", "load_file", "LINK_FAMILIES", "FABRICS", "NETWORK_TOPOLOGIES"]

_LINKS, _NICS, _OVERSUB = BOUNDS["fabric.links"], BOUNDS["network.nics_per_node"], BOUNDS["network.oversubscription"]
DEVICE_KINDS = ("cpu", "gpu", "xpu")
KINDS = (*DEVICE_KINDS, "link", "system")
LINK_FAMILIES = ("pcie", "nvlink", "infiniband", "ethernet", "ici", "upi", "roce")
FABRICS = ("nvswitch", "pcie-tree", "fully-connected", "torus", "ring", "none")
NETWORK_TOPOLOGIES = ("fat-tree", "switch", "fully-connected", "ring", "torus", "tree", "hypercube")


class ReferenceCycleError(SpecError):
    """Spec files that reference each other in a cycle (the message names the chain)."""


def load_file(path: Path | str, resolve) -> Any:
    """Read and build one spec file. ``resolve(name, kind, base_dir)`` loads referenced specs."""
    path = Path(path)
    data = read_toml(path)
    return build_spec(data, str(path), resolve, base_dir=path.parent, stem=path.stem)


def build_spec(data: dict, file: str, resolve, base_dir: Path | None = None, stem: str | None = None):
    top = Table(data, file)
    kind = top.string("kind", choices=KINDS)
    name = top.string("name")
    if stem is not None and name != stem:
        raise top.fail("name", f"expected the file's stem {stem!r}, got {name!r} (rename one of them)")
    description = top.string("description")
    top.string("notes", default=None)
    sources: dict[str, str] = {}
    if kind in DEVICE_KINDS:
        spec = _device(top, kind, name, description, sources, resolve, base_dir)
    elif kind == "link":
        spec = _link(top, name, description, sources)
    else:
        spec = _system(top, name, description, sources, resolve, base_dir)
    top.finish()
    return spec


def _ref(table: Table, key: str, kind: str, resolve, base_dir):
    """The spec that ``table[key]`` names (a bundled name or a path relative to the file).

    An error about the reference (unknown name, wrong kind, unreadable or bad file) keeps its class
    and is prefixed with the file and key that hold it: ``sys.toml [fabric] link: unknown link ...``.
    """
    name = table.string(key)
    try:
        return resolve(name, kind, base_dir)
    except ReferenceCycleError:  # already names the whole chain; prefixing each file would repeat it
        raise
    except PerfModelError as exc:
        raise type(exc)(f"{table._here(key)}: {exc}") from None




# --- devices ------------------------------------------------------------------------------


def _device(top: Table, kind, name, description, sources, resolve, base_dir) -> Device:
    """One device table read key by key in the order hardware/README.md documents them, each with its
    own check (long on purpose: the keys are the spec grammar)."""
    peak = top.table("peak")
    dense = dtype_rates(peak.table("dense"), sources, "peak.dense")
    if not dense:
        raise peak.fail("dense", "expected at least one dtype with a dense peak FLOP/s")
    sparse_table = peak.table("sparse", required=False)
    sparse = dtype_rates(sparse_table, sources, "peak.sparse") if sparse_table is not None else {}
    peak.finish()

    mem = top.table("memory")
    # capacity is absent when no source gives it (e.g. a cloud VM); memory checks then raise
    memory_bytes = _note(sources, "memory.capacity", mem.quantity("capacity", "bytes", required=False))
    bw = mem.quantity("bandwidth", "bandwidth", direction=True)
    if bw.direction != "aggregate":
        raise mem.fail("bandwidth.direction", f"expected 'aggregate' for a memory bandwidth, got {bw.direction!r}")
    memory_bandwidth = _note(sources, "memory.bandwidth", bw)
    mem.finish()

    host_link = None
    if top.has("host_link"):
        host_link = _ref(top, "host_link", "link", resolve, base_dir)

    measured_bw = launch = dropout = None
    measured = top.table("measured", required=False)
    if measured is not None:
        q = measured.quantity("memory_bandwidth", "bandwidth", required=False, direction=True)
        measured_bw = _note(sources, "measured.memory_bandwidth", q)
        launch = _note(sources, "measured.launch_overhead",
                       measured.quantity("launch_overhead", "time", required=False))
        dropout = _note(sources, "measured.attention_dropout",
                        measured.quantity("attention_dropout", "time", required=False))
        measured.finish()

    gemm = per_dtype(top.table("gemm", required=False),
                     lambda sub, dtype: gemm_points(sub, sources, dtype, dense.get(dtype)))

    attention = attention_tables(top.table("attention", required=False), sources, "attention", dense)
    kernels = {}
    kernels_table = top.table("attention_kernels", required=False)
    if kernels_table is not None:
        for kernel in kernels_table.keys():
            kernels[kernel] = FrozenDict(attention_tables(kernels_table.table(kernel), sources,
                                                           f"attention_kernels.{kernel}", dense))
        kernels_table.finish()

    matmul = matmul_table(top.table("matmul", required=False), sources, dense)
    sustained = sustained_table(top.table("sustained", required=False), sources, dense)

    n_cores = clock = None
    cpu = top.table("cpu", required=False)
    if cpu is not None:
        if kind != "cpu":
            raise cpu.fail(None, f"a [cpu] table belongs in a cpu spec, this is a {kind}")
        n_cores = cpu.integer("cores")
        sources["cpu.cores"] = cpu.string("cores_source")
        clock = _note(sources, "cpu.clock", cpu.quantity("clock", "frequency"))
        cpu.finish()

    return Device(
        name=name, kind=kind, description=description, peak_flops_per_s=FrozenDict(dense),
        memory_bytes=memory_bytes, memory_bandwidth=memory_bandwidth,
        sparse_flops_per_s=FrozenDict(sparse), measured_memory_bandwidth=measured_bw,
        launch_overhead_time=launch, attention_dropout_time=dropout, host_link=host_link, gemm=FrozenDict(gemm),
        attention=FrozenDict(attention), attention_kernels=FrozenDict(kernels), matmul=matmul,
        sustained=sustained, n_cores=n_cores, clock_hz=clock, sources=FrozenDict(sources), path=top.file,
    )


# --- links --------------------------------------------------------------------------------


def _link(top: Table, name, description, sources) -> Link:
    family = top.string("family", choices=LINK_FAMILIES)
    latency = _note(sources, "latency", top.quantity("latency", "time"))
    generation = lanes = payload = None
    pcie = top.table("pcie", required=(family == "pcie"))
    if pcie is not None:
        if family != "pcie":
            raise pcie.fail(None, f"a [pcie] table belongs in a pcie link, this is {family}")
        generation = pcie.integer("generation", minimum=1, maximum=6)
        lanes = pcie.integer("lanes", maximum=32)
        if lanes not in (1, 2, 4, 8, 16, 32):
            raise pcie.fail("lanes", f"expected 1, 2, 4, 8, 16 or 32 lanes, got {lanes}")
        payload = _note(sources, "pcie.max_payload", pcie.quantity("max_payload", "bytes"))
        pcie.finish()
    q = top.quantity("bandwidth", "bandwidth", required=(family != "pcie"), direction=True)
    if q is not None:
        bandwidth = q.per_direction()
        _note(sources, "bandwidth", q)
    else:
        bandwidth = _pcie_encoded_bandwidth(generation, lanes)
        sources["bandwidth"] = ("derived: formulas.pcie.pcie_link_bandwidth from generation and lanes (PCI Express Base Specification rates, line encoding, SKP ordered sets); TLP/DLLP overheads are applied by the PCIe formulas")
    mtu = _note(sources, "mtu", top.quantity("mtu", "bytes", required=False))
    return Link(name=name, family=family, description=description, bandwidth=bandwidth, latency=latency,
                pcie_generation=generation, pcie_lanes=lanes, max_payload_bytes=payload, mtu_bytes=mtu,
                sources=FrozenDict(sources), path=top.file)


def _pcie_encoded_bandwidth(generation: int, lanes: int) -> float:
    """Per-direction bandwidth left for TLPs after line encoding, flit packing and SKP ordered sets."""
    from perfmodel.formulas import pcie

    g = pcie.PCIE_GENERATIONS[generation]
    return pcie.pcie_link_bandwidth(g["line_rate_bits_per_s"], lanes, g["encoding_efficiency"],
                                    g["flit_efficiency"], g["skp_fraction"])


# --- systems ------------------------------------------------------------------------------


def _system(top: Table, name, description, sources, resolve, base_dir) -> System:
    """One system table (fabric, network and their links) read key by key in the order
    hardware/README.md documents them (long on purpose: the keys are the spec grammar)."""
    device = _ref(top, "device", "device", resolve, base_dir)
    per_node = top.integer("devices_per_node", maximum=1_000_000)
    host_cpu = _ref(top, "host_cpu", "cpu", resolve, base_dir) if top.has("host_cpu") else None

    fab = top.table("fabric")
    kind = fab.string("kind", choices=FABRICS)
    sources["fabric"] = fab.string("source")
    link = _ref(fab, "link", "link", resolve, base_dir) if kind != "none" else None
    extra: dict[str, Any] = {}
    if kind == "nvswitch":
        extra["links_per_device"] = fab.integer("links_per_device", maximum=_LINKS.high)
    elif kind == "fully-connected":
        extra["links_per_peer"] = fab.integer("links_per_peer", maximum=_LINKS.high)
    elif kind == "pcie-tree":
        extra["devices_per_switch"] = fab.integer("devices_per_switch", maximum=64)
        extra["switch_uplink"] = _ref(fab, "switch_uplink", "link", resolve, base_dir)
        root = fab.quantity("root_bandwidth", "bandwidth", direction=True)
        extra["root_bandwidth"] = root.per_direction()
        _note(sources, "fabric.root_bandwidth", root)
        if per_node % extra["devices_per_switch"]:
            raise fab.fail("devices_per_switch", f"{extra['devices_per_switch']} does not divide devices_per_node {per_node}")
    elif kind == "torus":
        dims = fab.int_list("dims")
        if len(dims) not in (2, 3):
            raise fab.fail("dims", f"expected 2 or 3 torus dimensions, got {list(dims)}")
        product = 1
        for d in dims:
            product *= d
        if product != per_node:
            raise fab.fail("dims", f"product {product} of {list(dims)} must equal devices_per_node {per_node}")
        extra["dims"] = dims
        extra["links_per_device"] = fab.integer("links_per_device", default=1, maximum=_LINKS.high)
    nvls = fab.quantity("in_network_reduction", "ratio", required=False)
    if nvls is not None:
        if kind != "nvswitch":
            raise fab.fail("in_network_reduction", f"only an nvswitch fabric reduces in the switch, this is {kind}")
        extra["in_network_reduction"] = _efficiency(fab, nvls, "in_network_reduction")
        _note(sources, "fabric.in_network_reduction", nvls)
    eff = fab.quantity("efficiency", "ratio", required=False)
    if eff is not None:
        extra["efficiency"] = _efficiency(fab, eff)
        _note(sources, "fabric.efficiency", eff)
    if fab.has("collective_units"):  # SMs of a GPU a collective's kernel holds
        units = device.matmul.units if device.kind == "gpu" and device.matmul is not None else 0
        if not units:
            raise fab.fail("collective_units", f"SMs a collective's kernel takes from a GPU, but {device.name} is a "
                                               f"{device.kind} (or states no [matmul] units)")
        extra["collective_units"] = fab.integer("collective_units", maximum=units - 1)
        sources["fabric.collective_units"] = fab.string("collective_units_source")
    if kind == "none" and per_node != 1:
        raise fab.fail("kind", f"'none' means a single device, but devices_per_node is {per_node}")
    fab.finish()
    fabric = Fabric(kind=kind, link=link, **extra)

    network = None
    net = top.table("network", required=False)
    if net is not None:
        net_eff = net.quantity("efficiency", "ratio", required=False)
        if net_eff is not None:
            _note(sources, "network.efficiency", net_eff)
        network = Network(
            efficiency=_efficiency(net, net_eff) if net_eff is not None else 1.0,
            topology=net.string("topology", choices=NETWORK_TOPOLOGIES),
            link=_ref(net, "link", "link", resolve, base_dir),
            nics_per_node=net.integer("nics_per_node", maximum=int(_NICS.high)),
            oversubscription=net.number("oversubscription", default=1.0, minimum=_OVERSUB.low, maximum=_OVERSUB.high),
            max_nodes=net.integer("max_nodes", default=None, maximum=1_000_000),
            full_bisection_nodes=net.integer("full_bisection_nodes", default=None, minimum=1, maximum=1_000_000),
        )
        if None not in (network.max_nodes, network.full_bisection_nodes) and \
                network.full_bisection_nodes > network.max_nodes:
            raise net.fail("full_bisection_nodes", f"expected at most max_nodes={network.max_nodes} (a pod larger "
                                                   f"than the network), got {network.full_bisection_nodes}")
        sources["network"] = net.string("source")
        net.finish()
    host = read_host(top, sources, lambda t, k: _ref(t, k, "link", resolve, base_dir), per_node, fabric.kind)
    return System(name=name, description=description, device=device, devices_per_node=per_node,
                  fabric=fabric, network=network, host_cpu=host_cpu, host=host,
                  sources=FrozenDict(sources), path=top.file)


def _efficiency(table: Table, q, key: str = "efficiency") -> float:
    if violation("network.efficiency", q.value):  # the bound every efficiency shares (specs/bounds.py)
        raise table.fail(key, f"expected a fraction in (0, 1], got {q.text!r}")
    return q.value


def single_device_system(device: Device) -> System:
    """A device alone: one device, no fabric, no network."""
    return System(name=device.name, description=f"{device.description} (alone, no network)",
                  device=device, devices_per_node=1, fabric=Fabric(kind="none", link=None))


def check_reference_kind(spec, kind: str, name: str, file_hint: str = "") -> None:
    want = DEVICE_KINDS if kind == "device" else (kind,)
    if spec.kind not in want:
        raise SpecError(f"{file_hint}'{name}' is a {spec.kind} spec, expected a {kind}")
