"""``perfmodel crossover --model M --system S --scheme dp|tp|pp --solve-for devices|bandwidth|micro-batch``."""

from __future__ import annotations

import enum
from typing import Annotated

import typer

from perfmodel.cli.options import (
    Devices,
    Dp,
    DtypeOpt,
    FfnHidden,
    FormatOpt,
    GlobalBatch,
    GradSyncOpt,
    Heads,
    Hidden,
    KvHeads,
    Layers,
    MicroBatch,
    Model,
    OptimizerOpt,
    Overlap,
    Plot,
    Pp,
    RecomputeOpt,
    ScheduleOpt,
    Seq,
    SequenceParallel,
    Stack,
    System,
    Tp,
    VirtualStages,
    Vocab,
    Zero,
    plan_and_overrides,
)
from perfmodel.cli.paths import check_plot, plotted
from perfmodel.cli.render import Format, show


class Scheme(str, enum.Enum):
    dp = "dp"
    tp = "tp"
    pp = "pp"


class SolveFor(str, enum.Enum):
    devices = "devices"
    bandwidth = "bandwidth"
    micro_batch = "micro-batch"


SchemeOpt = Annotated[Scheme, typer.Option("--scheme", help="dp: gradient sync vs backward compute; tp: per-layer "
                                           "all-reduces vs layer compute; pp: point-to-point + bubble vs stage "
                                           "compute")]
SolveForOpt = Annotated[SolveFor, typer.Option("--solve-for", help="the unknown: devices (strong scaling at a fixed "
                                               "global batch for dp; the tp degree; the pp stages), bandwidth (the "
                                               "link of the level the scheme's messages cross, per direction) or "
                                               "micro-batch")]
Symbolic = Annotated[bool, typer.Option("--symbolic", help="also print the equation, the closed form (LaTeX and "
                                        "sympy) and every parameter's symbol and value")]


def crossover(model: Model = ..., system: System = ..., scheme: SchemeOpt = ..., solve_for: SolveForOpt = ...,
              symbolic: Symbolic = False, plot: Plot = None, devices: Devices = None, tp: Tp = None, pp: Pp = None,
              dp: Dp = None, micro_batch: MicroBatch = None, global_batch: GlobalBatch = None, seq: Seq = None,
              dtype: DtypeOpt = None, recompute: RecomputeOpt = None, sequence_parallel: SequenceParallel = None,
              schedule: ScheduleOpt = None, virtual_stages: VirtualStages = None, zero: Zero = None,
              grad_sync: GradSyncOpt = None, overlap: Overlap = None, stack: Stack = None,
              optimizer: OptimizerOpt = None, layers: Layers = None, hidden: Hidden = None, heads: Heads = None,
              kv_heads: KvHeads = None, ffn_hidden: FfnHidden = None, vocab: Vocab = None,
              format: FormatOpt = Format.table) -> None:
    """Find where a parallel scheme turns communication-bound: the devices, link bandwidth or
    micro-batch at which its communication equals the compute it competes with. Numeric root and
    sympy closed form from the same formulas, the full prediction's first communication-bound
    integer, and the step time's sensitivity to bandwidth and latency at the operating point (the
    plan flags; without --global-batch the model family's published batch: 512 sequences, 256 images).

    Formats: table; json (one object: solve_for, value, t_compute_s, t_comm_s, closed_form_latex (null
    when none), then model, system, scheme, unit, direction, scope, numeric_value, symbolic_value,
    closed_form, equation_latex, integer_value, at_discontinuity, sensitivity, operating_point,
    parameters, notes); csv (a header and one row). --plot: step time and its parts vs the unknown,
    with the crossover marked.

    Example: perfmodel crossover --model gpt2-1.5b --system dgx-h100 --scheme dp --solve-for devices --symbolic
    """
    from perfmodel.crossover.find import find_crossover
    from perfmodel.plan import Plan
    from perfmodel.workloads import load_model

    plan, overrides = plan_and_overrides(locals())
    check_plot(plot)
    result = find_crossover(load_model(model, **overrides), system, scheme.value, solve_for.value, Plan(**plan))
    if plot is not None:
        from perfmodel.plots import plot_crossover

        plotted(plot_crossover, result, plot)
    show(result, format, table=result.render(symbolic))
