"""``perfmodel compare devices | topologies``: the same workload on other hardware, side by side.

One typer group, one command per comparison. ``devices`` is here; ``topologies`` (collective time
per network topology) is registered on the same ``app`` below it.
"""

from __future__ import annotations

import enum
from typing import Annotated

import typer

from perfmodel.cli.options import (
    DtypeOpt,
    FormatOpt,
    GlobalBatch,
    GradSyncOpt,
    Link,
    MicroBatch,
    Model,
    OptimizerOpt,
    Overlap,
    Plot,
    Stack,
    plan_fields,
)
from perfmodel.cli.paths import check_plot, plotted
from perfmodel.cli.render import Format, show

app = typer.Typer(help="Compare devices (CPU vs GPU vs XPU on one network) or network topologies.",
                  no_args_is_help=True)

class CompareScheme(str, enum.Enum):
    dp = "dp"
    tp = "tp"


def _int_list(text: str, flag: str) -> list[int]:
    from perfmodel.errors import PlanError

    try:
        values = [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise PlanError(f"{flag}: expected comma-separated positive integers like '1,2,4,8', got '{text}'") from None
    if not values or min(values) < 1 or max(values) > 10**7:
        raise PlanError(f"{flag}: expected comma-separated integers in [1, 10000000], got '{text}'")
    return values


DevicesList = Annotated[str, typer.Option("--devices-list", help="comma-separated device names, e.g. "
                                          "xeon-8480p,h100-sxm5-80gb,tpu-v4 (see `perfmodel hardware list`)")]
Topology = Annotated[str, typer.Option("--topology", help="network topology joining the nodes: fat-tree, switch, "
                                       "fully-connected, ring, torus, tree or hypercube")]
SchemeOpt = Annotated[CompareScheme, typer.Option("--scheme", help="dp (data parallel) or tp (tensor parallel "
                                                  "across the nodes)")]
Workers = Annotated[str, typer.Option("--workers", help="worker counts, comma-separated")]


@app.command("devices")
def devices(model: Model = ..., devices_list: DevicesList = ..., link: Link = ..., topology: Topology = "switch",
            scheme: SchemeOpt = CompareScheme.dp, workers: Workers = "1,2,4,8,16,32,64", plot: Plot = None,
            global_batch: GlobalBatch = None, micro_batch: MicroBatch = None, dtype: DtypeOpt = None,
            grad_sync: GradSyncOpt = None, overlap: Overlap = None, stack: Stack = None,
            optimizer: OptimizerOpt = None, format: FormatOpt = Format.table) -> None:
    """The same model, network and scheme on CPU, GPU and XPU devices: per device and worker count
    the step time, scaling efficiency T(1)/(n T(n)) at a fixed global batch, the share of the step
    spent in exposed communication, and each device's crossover (workers at which communication
    equals compute). --link is every node's network link (one NIC per node). The global batch is the
    same at every worker count (default 512 sequences or 256 images); without --micro-batch each worker
    runs its share of the batch as one micro-batch, with it gradients accumulate over micro-batches.

    Formats: table; json ({model, link, topology, scheme, global_batch, micro_batch, dtype, workers,
    rows: [...], crossovers: [...]}); csv (one row per device and worker count). --plot: step time,
    scaling efficiency and communication share vs workers per device.

    Example: perfmodel compare devices --model resnet50 --devices-list xeon-8480p,h100-sxm5-80gb,tpu-v4 --link eth-100g --topology switch --scheme dp --workers 1,2,4,8,16,32,64
    """
    from perfmodel.compare.devices import compare_devices

    check_plot(plot)
    names = [name for name in devices_list.replace(" ", "").split(",") if name]
    fields = plan_fields(dtype=dtype, grad_sync=grad_sync, overlap=overlap, stack=stack, optimizer=optimizer)
    result = compare_devices(model, names, link, topology, scheme.value, _int_list(workers, "--workers"),
                             global_batch=global_batch, micro_batch=micro_batch, **fields)
    if plot is not None:
        from perfmodel.plots import plot_device_comparison

        plotted(plot_device_comparison, result, plot)
    show(result, format)


# --- compare topologies, compare pcie -------------------------------------------------------------
# Collective time per network topology, and the PCIe contention story: their command functions live
# in perfmodel/cli/compare_topologies.py and are registered on the same `app`.
from perfmodel.cli.compare_topologies import pcie, topologies  # noqa: E402

app.command("topologies")(topologies)
app.command("pcie")(pcie)
