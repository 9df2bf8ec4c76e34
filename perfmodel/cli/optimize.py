"""``perfmodel optimize --model M --system S --devices N --global-batch B [--top K]``: the fastest plans."""

from __future__ import annotations

from typing import Annotated

import typer

from perfmodel.cli.options import (
    Cp,
    Devices,
    Ep,
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
    OffloadOpt,
    OptimizerOpt,
    Overlap,
    Pp,
    RecomputeOpt,
    ScheduleOpt,
    Seq,
    SequenceParallel,
    ShardGroup,
    Stack,
    System,
    Tp,
    VirtualStages,
    Vocab,
    Zero,
    plan_and_overrides,
)
from perfmodel.cli.render import Format, show

Top = Annotated[int, typer.Option("--top", min=1, max=1000, help="how many plans to show")]


def optimize(model: Model = ..., system: System = ..., devices: Devices = ..., global_batch: GlobalBatch = ...,
             top: Top = 5, seq: Seq = None, dtype: DtypeOpt = None, stack: Stack = None,
             optimizer: OptimizerOpt = None, grad_sync: GradSyncOpt = None, tp: Tp = None, pp: Pp = None,
             micro_batch: MicroBatch = None, schedule: ScheduleOpt = None, virtual_stages: VirtualStages = None,
             recompute: RecomputeOpt = None, sequence_parallel: SequenceParallel = None, zero: Zero = None,
             overlap: Overlap = None, layers: Layers = None, hidden: Hidden = None, heads: Heads = None,
             kv_heads: KvHeads = None, ffn_hidden: FfnHidden = None, vocab: Vocab = None,
             cp: Cp = None, ep: Ep = None, offload: OffloadOpt = None, shard_group: ShardGroup = None,
             format: FormatOpt = Format.table) -> None:
    """Search every valid plan (tp, pp, dp, micro-batch, schedule and virtual stages, recompute, sequence
    parallelism, ZeRO stage, overlap) of a model on N devices and show the fastest that fit in memory.
    --devices and --global-batch are required; a plan flag that is given is fixed instead of searched
    (--cp, --offload and --shard-group are never searched, only fixed when given; --ep is searched for a
    mixture-of-experts model on a stack that runs it).

    Formats: table; json ({plans: [...], evaluated, valid, fit, ...}; each plan as `predict --format json`
    shows it, with its rank); csv (one flat row per plan).

    Example: perfmodel optimize --model gpt3-175b --system dgx-a100 --devices 1024 --global-batch 1536
    """
    from perfmodel.sweeps.search import optimize as run
    from perfmodel.workloads import load_model

    fixed, overrides = plan_and_overrides({k: v for k, v in locals().items() if k not in ("devices", "global_batch")})
    import sys

    show(run(load_model(model, **overrides), system, devices, global_batch, top, progress=sys.stderr.isatty(),
             **fixed), format)
