"""``perfmodel compare devices | topologies``: the same workload on other hardware, side by side.

One typer group, one command per comparison. ``devices`` is here; ``topologies`` (collective time
per network topology) is registered on the same ``app`` below it.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Optional

import typer

from perfmodel.cli.options import (
    MAX_SIZE,
    Dtype,
    GradSync,
    Optimizer,
    format_option,
    plan_fields,
    plan_option,
)
from perfmodel.cli.render import Format, emit_json, emit_rows

app = typer.Typer(help="Compare devices (CPU vs GPU vs XPU on one network) or network topologies.",
                  no_args_is_help=True)

PLAN = "Plan (every worker count)"


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


DEVICE_COLUMNS = ["device", "kind", "workers", "step_time_s", "speedup", "efficiency", "comm_fraction",
                  "comm_total_s", "bandwidth_elasticity", "bound", "crossover_workers"]


@app.command("devices")
def devices(
    model: str = typer.Option(..., "--model", help="a preset, a Hugging Face config.json or a TOML model file"),
    devices_list: str = typer.Option(..., "--devices-list", help="comma-separated device names, e.g. "
                                     "xeon-8480p,h100-sxm5-80gb,tpu-v4 (see `perfmodel hardware list`)"),
    link: str = typer.Option(..., "--link", help="the network link of every node (one NIC per node), e.g. eth-100g"),
    topology: str = typer.Option("switch", "--topology", help="network topology joining the nodes: fat-tree, "
                                 "switch, fully-connected, ring, torus, tree or hypercube"),
    scheme: CompareScheme = typer.Option(CompareScheme.dp, "--scheme", help="dp (data parallel) or tp (tensor "
                                         "parallel across the nodes)"),
    workers: str = typer.Option("1,2,4,8,16,32,64", "--workers", help="worker counts, comma-separated"),
    plot: Optional[Path] = typer.Option(None, "--plot", help="write step time, scaling efficiency and "
                                        "communication share vs workers per device to FILE.png or FILE.svg"),
    global_batch: Optional[int] = typer.Option(None, "--global-batch", min=1, max=MAX_SIZE, rich_help_panel=PLAN,
                                               help="sequences (samples) per step, the same at every worker count "
                                               "(default 512 sequences or 256 images)"),
    micro_batch: Optional[int] = typer.Option(None, "--micro-batch", min=1, max=MAX_SIZE, rich_help_panel=PLAN,
                                              help="fixed micro-batch with gradient accumulation (default: each "
                                              "worker runs its share of the batch as one micro-batch)"),
    dtype: Optional[Dtype] = plan_option("dtype", PLAN, "compute dtype (default bf16)"),
    grad_sync: Optional[GradSync] = plan_option("grad_sync", PLAN, "gradient synchronisation (default allreduce)"),
    overlap: Optional[bool] = plan_option("overlap", PLAN, "overlap the gradient sync with the backward pass "
                                          "(default on)"),
    stack: Optional[str] = plan_option("stack", PLAN, "software-stack profile for every device: megatron (default), megatron-core, pytorch-eager (`perfmodel stacks list`) or a stack TOML file"),
    optimizer: Optional[Optimizer] = plan_option("optimizer", PLAN, "optimizer (default adamw)"),
    format: Format = format_option("table (default), json ({model, link, topology, scheme, global_batch, "
                                   "micro_batch, dtype, workers, rows: [...], crossovers: [...]}) or csv (one row "
                                   "per device and worker count)"),
) -> None:
    """The same model, network and scheme on CPU, GPU and XPU devices: per device and worker count
    the step time, scaling efficiency T(1)/(n T(n)) at a fixed global batch, the share of the step
    spent in exposed communication, and each device's crossover (workers at which communication
    equals compute).

    Example: perfmodel compare devices --model resnet50 --devices-list xeon-8480p,h100-sxm5-80gb,tpu-v4 --link eth-100g --topology switch --scheme dp --workers 1,2,4,8,16,32,64
    """
    from perfmodel.compare.devices import compare_devices

    if plot is not None:
        from perfmodel.cli.paths import check_plot

        check_plot(plot)
    names = [name for name in devices_list.replace(" ", "").split(",") if name]
    fields = plan_fields(dtype=dtype, grad_sync=grad_sync, overlap=overlap, stack=stack, optimizer=optimizer)
    result = compare_devices(model, names, link, topology, scheme.value, _int_list(workers, "--workers"),
                             global_batch=global_batch, micro_batch=micro_batch, **fields)
    if plot is not None:
        from perfmodel.plots import plot_device_comparison

        plot_device_comparison(result, plot)
    if format == Format.json:
        emit_json(result.to_dict())
    elif format == Format.csv:
        cross = {c["device"]: c["crossover_workers"] for c in result.crossovers}
        rows = [{**dict(r), "crossover_workers": cross[r["device"]]} for r in result.rows]
        emit_rows(rows, format, columns=DEVICE_COLUMNS)
    else:
        from rich.console import Console

        Console().print(result)


# --- compare topologies, compare pcie -------------------------------------------------------------
# Collective time per network topology, and the PCIe contention story: their command functions live
# in perfmodel/cli/compare_topologies.py and are registered on the same `app`.
from perfmodel.cli.compare_topologies import pcie, topologies  # noqa: E402

app.command("topologies")(topologies)
app.command("pcie")(pcie)
