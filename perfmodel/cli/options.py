"""Every option the commands share, declared once: typer ``Annotated`` aliases with one help text each.

A command lists the aliases it takes (``model: Model``, ``tp: Tp = None``, ...) and hands its
``locals()`` to :func:`plan_and_overrides`, which returns the plan keywords and the model overrides
that were given. Choices come from :mod:`perfmodel.plan` and the bundled stack files, so ``--help``
and the library agree on them. Commands differ only in what an unset plan flag means (predict: the
default shown here; optimize: searched; sweep: the grid or the default), which their help says.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from perfmodel.cli.render import Format
from perfmodel.plan import DTYPES, GRAD_SYNC, MAX_DEVICES, OFFLOAD, OPTIMIZERS, RECOMPUTE, SCHEDULES
from perfmodel.specs.stack import stack_names

__all__ = ["MAX_DEVICES", "MAX_SIZE", "PLAN_KEYS", "OVERRIDE_KEYS", "Dtype", "GradSync", "Optimizer", "Recompute",
           "Schedule", "Model", "System", "FormatOpt", "Link", "Plot", "Out", "Devices", "Tp", "Pp", "Dp", "Ep", "MicroBatch",
           "GlobalBatch", "Seq", "DtypeOpt", "RecomputeOpt", "SequenceParallel", "ScheduleOpt", "VirtualStages",
           "Zero", "GradSyncOpt", "Overlap", "Stack", "OptimizerOpt", "Layers", "Hidden", "Heads", "KvHeads",
           "FfnHidden", "Vocab", "Offload", "OffloadOpt", "ShardGroup", "FirstStageLayers", "LastStageLayers", "plan_and_overrides", "plan_fields"]

Dtype = enum.Enum("Dtype", {d: d for d in DTYPES}, type=str)
Recompute = enum.Enum("Recompute", {r: r for r in RECOMPUTE}, type=str)
Schedule = enum.Enum("Schedule", {s: s for s in SCHEDULES}, type=str)
GradSync = enum.Enum("GradSync", {g: g for g in GRAD_SYNC}, type=str)
Optimizer = enum.Enum("Optimizer", {o: o for o in OPTIMIZERS}, type=str)
Offload = enum.Enum("Offload", {o: o for o in OFFLOAD}, type=str)

MAX_SIZE = 10**9  # model sizes (layers, hidden, vocab, ...) and batch sizes
PLAN = "Plan"
MODEL = "Model overrides (what-if)"


def _count(flag: str, help: str, panel: str = PLAN, maximum: int = MAX_DEVICES):
    return Annotated[Optional[int], typer.Option(flag, min=1, max=maximum, help=help, rich_help_panel=panel)]


def _choice(flag: str, kind, help: str):
    return Annotated[Optional[kind], typer.Option(flag, help=help, rich_help_panel=PLAN)]


# --- what to model ------------------------------------------------------------------------------------------
Model = Annotated[Optional[str], typer.Option("--model", help="a preset (see `perfmodel models list`), a Hugging "
                                              "Face config.json or a TOML model file")]
System = Annotated[str, typer.Option("--system", help="a bundled system or device name (see `perfmodel hardware "
                                     "list`; a device means that device alone) or a system TOML file")]
FormatOpt = Annotated[Format, typer.Option("--format", help="table (default), json or csv (what each holds: the "
                                           "command's description above)")]
Link = Annotated[str, typer.Option("--link", help="a link name (see `perfmodel hardware list --kind link`), e.g. "
                                   "ib-ndr, nvlink4, eth-100g, or a link TOML file")]
Plot = Annotated[Optional[Path], typer.Option("--plot", help="also draw the figure described above to FILE.png or "
                                              "FILE.svg (the path is printed on stderr)")]
Out = Annotated[Optional[Path], typer.Option("--out", help="write every row to FILE.csv or FILE.parquet (parquet "
                                             "needs pyarrow); nothing is written when the command fails")]

# --- plan flags (docs/interface.md) -------------------------------------------------------------------------
Devices = _count("--devices", "total devices N (default tp x cp x pp x dp where the command allows it unset)")
Tp = _count("--tp", "tensor-parallel degree (default 1)")
Pp = _count("--pp", "pipeline-parallel stages (default 1)")
Cp = _count("--cp", "context-parallel degree: each sequence split over cp devices, ring attention (Megatron-Core; "
            "default 1)")
Dp = _count("--dp", "data-parallel degree (default devices / (tp x cp x pp))")
Ep = _count("--ep", "expert-parallel degree of a mixture-of-experts model, carved out of dp: must divide "
            "dp and the experts (default 1)")
MicroBatch = _count("--micro-batch", "sequences (samples) per micro-batch (default 1)", maximum=MAX_SIZE)
GlobalBatch = _count("--global-batch", "sequences (samples) per optimizer step (default micro-batch x dp)",
                     maximum=MAX_SIZE)
Seq = _count("--seq", "sequence length in tokens (also resizes the model's position table; default the model's)",
             maximum=MAX_SIZE)
VirtualStages = _count("--virtual-stages", "model chunks per device of the interleaved schedule (default 1)")
DtypeOpt = _choice("--dtype", Dtype, "compute dtype (default bf16)")
RecomputeOpt = _choice("--recompute", Recompute, "activation recomputation (default none)")
ScheduleOpt = _choice("--schedule", Schedule, "pipeline schedule (default 1f1b)")
GradSyncOpt = _choice("--grad-sync", GradSync, "gradient synchronisation (default allreduce)")
OptimizerOpt = _choice("--optimizer", Optimizer, "optimizer (default adamw)")
OffloadOpt = _choice("--offload", Offload, "CPU offload: the optimizer step and its states on the host "
                     "(ZeRO-Offload), the saved activations, or both (default none; the stack must run it)")
ShardGroup = _count("--shard-group", "hybrid sharding: ZeRO-2/3 shard within groups of N data-parallel ranks "
                    "(typically one node), replicated across dp / N (default: the whole dp group)")
FirstStageLayers = Annotated[Optional[int], typer.Option(
    "--first-stage-layers", min=0, max=MAX_DEVICES, rich_help_panel=PLAN,
    help="uneven pipeline stages (stack megatron-core): the first stage's layers (0: the embedding alone); the "
         "stages between split the rest evenly (default: every stage ceil(L / pp))")]
LastStageLayers = Annotated[Optional[int], typer.Option(
    "--last-stage-layers", min=0, max=MAX_DEVICES, rich_help_panel=PLAN,
    help="uneven pipeline stages (stack megatron-core): the last stage's layers (0: the LM head and loss alone)")]
SequenceParallel = Annotated[Optional[bool], typer.Option(
    "--sequence-parallel", help="Megatron sequence parallelism (needs --tp > 1; default off)", rich_help_panel=PLAN)]
Zero = Annotated[Optional[int], typer.Option("--zero", min=0, max=3, help="ZeRO stage 0-3 (default 0)",
                                             rich_help_panel=PLAN)]
Overlap = Annotated[Optional[bool], typer.Option("--overlap/--no-overlap", help="overlap the gradient sync with "
                                                 "the backward pass (default on)", rich_help_panel=PLAN)]
Stack = Annotated[Optional[str], typer.Option("--stack", rich_help_panel=PLAN, help=(
    f"software-stack profile: {', '.join(stack_names())} (default megatron), or a stack TOML file"))]

# --- model overrides ----------------------------------------------------------------------------------------
Layers = _count("--layers", "number of transformer layers", MODEL, MAX_SIZE)
Hidden = _count("--hidden", "hidden size", MODEL, MAX_SIZE)
Heads = _count("--heads", "attention heads", MODEL, MAX_SIZE)
KvHeads = _count("--kv-heads", "key/value heads (grouped-query attention)", MODEL, MAX_SIZE)
FfnHidden = _count("--ffn-hidden", "MLP width", MODEL, MAX_SIZE)
Vocab = _count("--vocab", "vocabulary size", MODEL, MAX_SIZE)

PLAN_KEYS = ("devices", "tp", "pp", "dp", "micro_batch", "global_batch", "seq", "dtype", "recompute",
             "sequence_parallel", "schedule", "virtual_stages", "zero", "grad_sync", "overlap", "stack", "optimizer",
             "cp", "offload", "shard_group", "ep", "first_stage_layers", "last_stage_layers")
OVERRIDE_KEYS = ("layers", "hidden", "heads", "kv_heads", "ffn_hidden", "vocab", "seq")


def plan_fields(**chosen) -> dict:
    """The plan keywords the user gave (enums to their values, unset flags dropped)."""
    return {k: (v.value if isinstance(v, enum.Enum) else v) for k, v in chosen.items() if v is not None}


def plan_and_overrides(given: dict) -> tuple[dict, dict]:
    """From a command's ``locals()``: the plan keywords that were given and the model overrides
    (``seq`` is both: the plan's sequence length and the model's position table)."""
    plan = plan_fields(**{k: given[k] for k in PLAN_KEYS if k in given})
    overrides = {k: given.get(k) for k in OVERRIDE_KEYS}
    return plan, overrides
