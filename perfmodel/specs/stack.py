"""Software-stack profiles: what a framework fuses, its attention kernel, launch overhead, optimizer.

Profiles are TOML files in ``perfmodel/specs/stacks/`` (bundled: ``megatron``, ``megatron-core``,
``pytorch-eager``, ``pytorch-compile``, ``fsdp``, ``llm-foundry-2023``, ``deepspeed``, ``deepspeed-2021``, ``jax-xla``, ``nemo-2024``:
``perfmodel stacks list``) or a user path. Every number carries a source, as in the hardware files.

The default stack of a plan that names none follows the device's generation
(:mod:`perfmodel.specs.default_stack`).

Optional parts (older files without them load unchanged):

* ``autocast = true``: the stack trains 16-bit dtypes under PyTorch autocast: fp32 parameters,
  gradients and optimizer states (no separate master copy), weights cast to 16 bits at each use.
* ``[capabilities]``: what the stack runs: ``zero`` (ZeRO stages), ``zero_with_pp`` (those it runs
  with pipeline parallelism), ``dtypes``, ``cp`` (context parallelism, ``--cp`` > 1; false when the
  table leaves it out), ``ep`` (expert parallelism, ``--ep`` > 1; false when the table leaves it out), ``offload`` (what it keeps in host memory: ``optimizer``,
  ``activations``), ``hybrid_shard`` (ZeRO-2/3 sharded within groups, replicated across them),
  ``uneven_stages`` (first / last pipeline stages of their own layer counts; false when the table
  leaves it out: Megatron-Core only),
  and their ``source``. ``predict`` refuses the rest in
  one line naming the stack and the feature; ``sweep`` marks such rows invalid with the same
  reason (:func:`refusals`). A file without the table runs everything.
* ``[grad_sync]``: how the stack reduces the gradients of ZeRO 0/1: ``overlap`` (whether it can
  overlap them with the backward; a stack that cannot turns the plan's overlap off, and the
  resolved plan says so), the bucket as ``bucket`` (a size, e.g. PyTorch DDP's "25 MiB") or
  ``bucket_params`` (+ ``bucket_params_per_rank``: Megatron-Core's max(40M, 1M x dp) parameters),
  and its ``source``. Without overlap one call of the whole buffer; with it, one call per bucket
  (:func:`perfmodel.prediction.rules.bucketed_allreduce_times`). Default: overlap, 25 MiB.
* ``[inventory]``: the kernels of one transformer layer per model family, forward and backward
  (grammar in :mod:`perfmodel.specs.inventory`). A stack with an inventory for the model's family
  is timed and its activation memory counted kernel by kernel; otherwise the role-based
  ``[layer] kernels`` list is used.
* ``base = "<bundled stack>"``: the file is a variant of that stack: every top-level key or table
  it gives replaces the base's whole, the rest is the base's (``llm-foundry-2023`` is ``fsdp`` with
  another attention rate).
* ``fused_loss = true``: the loss runs as generated kernels over the half logits (TorchInductor):
  its forward keeps the half logits and a per-token logsumexp (no fp32 copy, no log-probabilities),
  its backward writes the half gradient, and no cast kernels run for the LM head's input or the
  logits; default false (eager: ``logits.float()``, log_softmax and nll_loss, fp32 gradients).
* ``[optimizer] master_bytes`` (with ``master_source``): bytes per parameter of the optimizer's
  master copy when the weights are bf16 (default 4, fp32; 2 for Apex DistributedFusedAdam's
  ``store_param_remainders``; fp16 and FP8 parameters keep 4). ``fp8_params = true`` (with ``fp8_params_source``): an fp8 plan keeps
  its weights as FP8 tensors (1 B, plus Transformer Engine's 1 B transpose cache), gathers them as
  1 B and keeps an fp32 master; otherwise BF16 weights with TE's FP8 copies (2 + 1 + 1 B).
* ``selective_recompute``: what ``--recompute selective`` keeps for the backward. ``"attention"``
  (default): Megatron's selective recomputation, every activation but the attention core's
  (Korthikanti et al. 2022 Section 5). ``"dots"``: JAX's ``checkpoint_dots_with_no_batch_dims``
  policy (MaxText ``remat_policy=minimal``): the layer's input and the outputs of its weight matmuls
  that the backward needs; the norms, the activation function and the attention core run again
  (:func:`perfmodel.prediction.activations.layer_activation_items`). With its
  ``selective_recompute_source``.
* ``flat_grad_copy = true`` (with ``flat_grad_copy_source``): the data-parallel wrapper keeps each
  unit's gradient in one flat buffer that autograd fills by concatenating the parameters' gradients
  every micro-batch on the compute stream (PyTorch FSDP's flat parameter: its original parameters
  are views of it, so the split's backward is a cat), one read and one write of every gradient, and
  whose ZeRO-2 works unit by unit (:func:`perfmodel.prediction.rules.sharded_sync_times`); default
  false (gradients accumulate in place).
* ``logits_matmul_fp32 = true`` (with its ``_source``): the LM head's matmul takes fp32 inputs (on a GPU
  at its TF32 rate: :func:`perfmodel.prediction.hardware.fp32_input_gemm_model`); default false.
* ``qkv_split``, ``grad_accumulation``, ``bias_grad``: the copies and reductions autograd adds to a
  layer's backward (:mod:`perfmodel.specs.stack_backward`).
* ``causal_skip = false``: a decoder's attention kernel computes every score and masks the upper
  half with a mask tensor instead of skipping it (twice the causal FLOPs), as Hugging Face models run
  under torch.compile; default true (SDPA ``is_causal``). Model FLOPs and MFU still count the half.
* ``attention_rate_scale``: the fraction of the fused attention kernel's rate (``attention_kernel``
  or the device's default) the stack's own kernel reaches, with its source (an older kernel
  generation); default 100 %.
* ``[memory_efficiency]`` (required): per memory-bound op (the pointwise ops of
  :data:`perfmodel.formulas.compute.POINTWISE_OPS`, the CNN kernels of :data:`DENSE_KERNELS` and an
  inventory's casts, ``copy``),
  ``[forward, backward]`` fractions of the device's copy bandwidth, or ``{ gpu = [f, b] }`` for
  fractions measured on one kind of device (``gpu``, ``cpu``, ``xpu``), which other kinds do not
  take; ops not listed run at the copy bandwidth.
* ``[zero3]``: how ZeRO-3 / FSDP communicates the shards: per layer, or per parameter tensor with
  DeepSpeed's persistence threshold, reuse distance, gradient buckets and copies
  (:mod:`perfmodel.specs.zero3`); default: per layer, prefetched, no copies.
* ``[tp_overlap]`` (with ``tp_comm_overlap = true``): how each tensor-parallel collective runs
  under its GEMM, per Transformer Engine slot (:mod:`perfmodel.specs.tp_overlap`); without it an
  overlapping stack hides each pass's collectives under that pass's GEMMs, on no SMs, and only
  the excess waits (:func:`perfmodel.prediction.tp_overlap.pass_level_exposed`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Mapping

from perfmodel.errors import UnknownNameError, did_you_mean
from perfmodel.formulas._backend import maximum
from perfmodel.specs.default_stack import default_stack  # noqa: F401 - re-exported
from perfmodel.specs.capabilities import (  # noqa: F401 - re-exported
    Capabilities, check_capabilities, read_capabilities, refusals)
from perfmodel.specs.inventory import Inventory, read_inventory
from perfmodel.specs.loader import DEVICE_KINDS
from perfmodel.specs.reader import Table, read_toml
from perfmodel.specs.stack_backward import backward_fields
from perfmodel.specs.stack_optimizer import master_bytes, optimizer_bytes, selective
from perfmodel.specs.tp_overlap import TpOverlap, read_tp_overlap
from perfmodel.specs.zero3 import Zero3, read_zero3

__all__ = ["Stack", "Capabilities", "refusals", "check_capabilities", "load_stack", "stack_names", "default_stack", "ROLES"]

ROLES = ("norm", "activation", "dropout", "residual_add", "softmax", "rope")
ATTENTION = ("flash", "materialized")


@dataclass(frozen=True)
class Stack:
    """A software stack. Kernels are tuples of roles; roles fused in one kernel share one pass."""

    name: str
    description: str
    attention: str
    gemm_rate_scale: float
    launch_overhead_time: float
    layer_kernels: tuple[tuple[str, ...], ...]
    score_kernels: tuple[tuple[str, ...], ...]
    optimizer_fused: bool
    optimizer_bytes_per_param: float
    p2p_scatter_gather: bool
    grad_reduce_bytes: int
    logits_bytes: int
    cross_entropy_passes: float
    pad_vocab_multiple: int
    tp_comm_overlap: bool
    param_gather_overlap: bool
    memory_efficiency: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    # entries measured on one kind of device only (kind -> op -> (fwd, bwd)): a kernel of another
    # implementation elsewhere (ATen's CUDA batch norm is not oneDNN's) keeps the copy bandwidth
    memory_efficiency_on: Mapping[str, Mapping[str, tuple[float, float]]] = field(default_factory=dict)
    source: str = ""
    # bytes per gradient element reduced when the weights are bf16 (fp8 runs keep bf16 weights),
    # where it differs from grad_reduce_bytes (Megatron-LM: fp32 under bf16); 0: the same
    grad_reduce_bytes_bf16: int = 0
    capabilities: Capabilities = field(default_factory=Capabilities)

    def grad_bytes(self, dtype: str) -> int:
        """Bytes per gradient element accumulated and reduced in mixed precision with ``dtype``."""
        if dtype in ("bf16", "fp8") and self.grad_reduce_bytes_bf16:
            return self.grad_reduce_bytes_bf16
        return self.grad_reduce_bytes
    autocast: bool = False
    inventory: Mapping[str, Inventory] = field(default_factory=dict)
    # the data-parallel gradient reduce of ZeRO 0/1 (optional [grad_sync] table): overlapped with
    # the backward or not, in buckets of grad_bucket_bytes, or of max(grad_bucket_params,
    # grad_bucket_params_per_rank x dp) parameters when grad_bucket_params is set; inf: one call
    grad_sync_overlap: bool = True
    # the interleaved schedule's point-to-point transfers run under the next chunk's compute
    # (Megatron-Core --overlap-p2p-communication); the other schedules wait for them
    p2p_overlap: bool = False
    # the fused attention kernel it runs when the device file measured that kernel apart from its
    # default ([attention_kernels.<name>]); "": the device's measured default
    attention_kernel: str = ""
    # the fraction of that kernel's rate the stack's own attention reaches (an older kernel
    # generation, e.g. FlashAttention-1 against FlashAttention-2); 1: the kernel itself
    attention_rate_scale: float = 1.0
    # whether a decoder's attention kernel skips the masked half of the scores (SDPA is_causal);
    # false where the framework passes the causal mask as a tensor (Hugging Face under torch.compile)
    causal_skip: bool = True
    # the loss as fused generated kernels over the half logits (see the module docstring)
    fused_loss: bool = False
    # gradients concatenated into a flat buffer every micro-batch (see the module docstring)
    flat_grad_copy: bool = False
    logits_matmul_fp32: bool = False  # the LM head's matmul in fp32 inputs (see the module docstring)
    # the backward's autograd copies and reductions (perfmodel.specs.stack_backward)
    qkv_split: bool = False
    grad_accumulation: str = "kernel"
    bias_grad: str = "reduction"
    # what --recompute selective keeps: "attention" (Megatron) or "dots" (JAX's dots policy)
    selective_recompute: str = "attention"
    # the optimizer's master copy under mixed precision, bytes per parameter (4: fp32; 2: Apex
    # DistributedFusedAdam's store_param_remainders, the 16 bits a bf16 weight lacks of its fp32 value)
    master_bytes: float = 4.0
    # FP8 runs keep their weights as FP8 tensors (Transformer Engine fp8 parameters): 1 B a weight
    # plus TE's 1 B transpose cache, gathered as 1 B, with an fp32 master; else BF16 weights + casts
    fp8_params: bool = False
    grad_bucket_bytes: float = 25 * 2**20
    # how each tensor-parallel collective runs under its GEMM when tp_comm_overlap is on
    # ([tp_overlap]); None: each pass's collectives under that pass's GEMMs (or, without
    # tp_comm_overlap, every collective waits)
    tp_overlap: TpOverlap | None = None
    grad_bucket_params: float = 0.0
    grad_bucket_params_per_rank: float = 0.0
    # how ZeRO-3 / FSDP gathers and reduces the shards ([zero3]): per layer or per tensor, prefetched
    zero3: Zero3 = field(default_factory=Zero3)

    def recompute_policy(self, recompute: str) -> str:
        """What a plan's ``recompute`` keeps under this stack: "none", "selective" (Megatron's),
        "dots" (selective under a stack whose ``selective_recompute`` is JAX's dots policy), "full"."""
        return "dots" if recompute == "selective" and self.selective_recompute == "dots" else recompute

    def grad_bucket_size(self, dp, grad_bytes_per_param):
        """Bytes of one gradient bucket for ``dp`` data-parallel ranks (floats or arrays)."""
        if self.grad_bucket_params:
            return maximum(self.grad_bucket_params, self.grad_bucket_params_per_rank * dp) * grad_bytes_per_param
        return self.grad_bucket_bytes

    def kernel_efficiency(self, ops, direction: str, device_kind: str = "") -> float:
        """Achieved fraction of copy bandwidth of a kernel running ``ops`` (the slowest op's), on a
        device of ``device_kind`` (gpu, cpu, xpu) where the stack measured the op there."""
        index = 0 if direction == "fwd" else 1
        scoped = self.memory_efficiency_on.get(device_kind, {})
        return min(scoped.get(op, self.memory_efficiency.get(op, (1.0, 1.0)))[index] for op in ops)


@functools.cache
def stack_names() -> tuple[str, ...]:
    folder = Path(str(resources.files("perfmodel.specs") / "stacks"))
    return tuple(sorted(p.stem for p in folder.glob("*.toml")))


def _kernels(table: Table, key: str) -> tuple[tuple[str, ...], ...]:
    value = table.raw(key)
    ok = isinstance(value, list) and all(
        isinstance(k, list) and k and all(isinstance(r, str) and r in ROLES for r in k) for k in value)
    if not ok:
        raise table.fail(key, f"expected a list of kernels, each a non-empty list of roles ({', '.join(ROLES)}), got {value!r}")
    return tuple(tuple(k) for k in value)


def _scale(top: Table, key: str = "gemm_rate_scale", default: float | None = None) -> float:
    if default is not None and not top.has(key):
        return default
    q = top.quantity(key, "ratio")
    if not 0 < q.value <= 1:
        raise top.fail(key, f"expected a fraction in (0, 1], got {q.text!r}")
    return q.value


# the memory-bound kernels of the CNN / MLP path besides the pointwise ops
# (perfmodel.prediction.dense: ELEMENTWISE_ACCESSES and its kernels)
DENSE_KERNELS = ("batchnorm", "relu", "tanh", "sigmoid", "maxpool", "avgpool", "globalavgpool", "bias_grad")
# and the casts and copies of a kernel inventory (prediction.eager: op "copy")
COPY_KERNELS = ("copy",)


def _efficiencies(table: Table) -> tuple[dict[str, tuple[float, float]], dict[str, dict[str, tuple[float, float]]]]:
    """``[memory_efficiency]``: per op ``[forward, backward]`` (any device), or ``{ gpu = [f, b] }``
    for fractions measured on one kind of device; -> (any device, kind -> op -> pair)."""
    from perfmodel.formulas.compute import POINTWISE_OPS

    table.string("source")
    known = (*POINTWISE_OPS, *DENSE_KERNELS, *COPY_KERNELS)
    out, scoped = {}, {}

    def pair_of(where, pair):
        if not (isinstance(pair, list) and len(pair) == 2 and all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and 0 < x <= 1 for x in pair)):
            raise table.fail(where, f"expected [forward, backward] fractions in (0, 1], got {pair!r}")
        return float(pair[0]), float(pair[1])

    for op in table.keys():
        if op == "source":
            continue
        if op not in known:
            raise table.fail(op, f"expected a memory-bound op ({', '.join(known)}){did_you_mean(op, known)}")
        value = table.raw(op)
        if isinstance(value, dict):
            for kind, pair in value.items():
                if kind not in DEVICE_KINDS:
                    raise table.fail(f"{op}.{kind}", f"expected a device kind ({', '.join(DEVICE_KINDS)})")
                scoped.setdefault(kind, {})[op] = pair_of(f"{op}.{kind}", pair)
        else:
            out[op] = pair_of(op, value)
    table.finish()
    return out, scoped



def _grad_sync(top: Table) -> dict:
    """The optional ``[grad_sync]`` table: ``overlap`` (bool), and the bucket as ``bucket`` (a size
    such as "25 MiB", or "buffer": the whole gradient buffer in one call) or ``bucket_params``
    (with optional ``bucket_params_per_rank``), and its ``source``."""
    table = top.table("grad_sync", required=False)
    if table is None:
        return {}
    out = {"grad_sync_overlap": table.boolean("overlap")}
    if table.has("bucket_params"):
        out["grad_bucket_params"] = table.number("bucket_params", minimum=1.0, maximum=1e12)
        out["grad_bucket_params_per_rank"] = table.number("bucket_params_per_rank", default=0.0, maximum=1e12)
    elif table.raw("bucket", None) == "buffer":
        out["grad_bucket_bytes"] = float("inf")
    else:
        out["grad_bucket_bytes"] = table.quantity("bucket", "bytes").value
    table.string("source")
    table.finish()
    return out


def _tp_overlap(top: Table) -> TpOverlap | None:
    """The stack's ``[tp_overlap]`` table (only with ``tp_comm_overlap = true``), or None."""
    table = read_tp_overlap(top)
    if table is not None and not top.boolean("tp_comm_overlap"):
        raise top.fail("tp_overlap", "given, but tp_comm_overlap = false: the stack waits for every TP collective")
    return table


def _build(data: dict, file: str, stem: str) -> Stack:
    top = Table(data, file)
    name = top.string("name")
    if name != stem:
        raise top.fail("name", f"expected the file's stem {stem!r}, got {name!r}")
    layer = top.table("layer")
    opt = top.table("optimizer")
    bytes_per_param = optimizer_bytes(opt)
    efficiency, efficiency_on = _efficiencies(top.table("memory_efficiency"))
    stack = Stack(
        name=name,
        description=top.string("description"),
        source=top.string("source"),
        attention=top.string("attention", choices=ATTENTION),
        gemm_rate_scale=_scale(top),
        launch_overhead_time=top.quantity("launch_overhead", "time").value,
        layer_kernels=_kernels(layer, "kernels"),
        score_kernels=_kernels(layer, "score_kernels"),
        optimizer_fused=opt.boolean("fused"),
        optimizer_bytes_per_param=bytes_per_param,
        p2p_scatter_gather=top.boolean("p2p_scatter_gather"),
        grad_reduce_bytes=top.integer("grad_reduce_bytes", maximum=8),
        logits_bytes=top.integer("logits_bytes", maximum=8),
        cross_entropy_passes=top.number("cross_entropy_passes", minimum=0.0, maximum=100.0),
        pad_vocab_multiple=top.integer("pad_vocab_multiple", maximum=4096),
        tp_comm_overlap=top.boolean("tp_comm_overlap"),
        param_gather_overlap=top.boolean("param_gather_overlap"),
        memory_efficiency=efficiency,
        memory_efficiency_on=efficiency_on,
        grad_reduce_bytes_bf16=top.integer("grad_reduce_bytes_bf16", default=0, minimum=0, maximum=8),
        capabilities=read_capabilities(top),
        autocast=top.boolean("autocast", False),
        inventory=read_inventory(top.table("inventory", required=False)),
        p2p_overlap=top.boolean("p2p_overlap", False),
        attention_kernel=top.string("attention_kernel", default=""),
        attention_rate_scale=_scale(top, "attention_rate_scale", 1.0),
        causal_skip=top.boolean("causal_skip", True), fused_loss=top.boolean("fused_loss", False),
        flat_grad_copy=top.boolean("flat_grad_copy", False),
        **backward_fields(top), logits_matmul_fp32=top.boolean("logits_matmul_fp32", False),
        selective_recompute=selective(top),
        master_bytes=master_bytes(opt), fp8_params=top.boolean("fp8_params", False),
        tp_overlap=_tp_overlap(top), zero3=read_zero3(top),
        **_grad_sync(top),
    )
    top.string("cross_entropy_source")
    if top.has("grad_reduce_bytes_bf16"):
        top.string("grad_reduce_source")
    if stack.attention_kernel:
        top.string("attention_kernel_source")
    if stack.fp8_params:
        top.string("fp8_params_source")
    for key in ("flat_grad_copy", "logits_matmul_fp32"):  # a source, required when true
        top.string(f"{key}_source", default=... if getattr(stack, key) else "")
    if stack.attention_rate_scale != 1.0 and stack.attention != "flash":
        raise top.fail("attention_rate_scale", "scales a fused (flash) attention kernel: expected attention = \"flash\"")
    layer.finish()
    opt.finish()
    top.finish()
    return stack


def _stack_file(name: str) -> Path:
    return Path(str(resources.files("perfmodel.specs") / "stacks" / f"{name}.toml"))


def _with_base(data: dict, file: str, seen: tuple = ()) -> dict:
    """A stack file's keys over those of the bundled stack its ``base`` names (a variant of that
    stack: every top-level key or table it gives replaces the base's whole)."""
    if "base" not in data:
        return data
    if "name" not in data:
        raise Table(data, file).fail("name", "missing: a variant names itself (its file's stem) as well as its base")
    base = data["base"]
    if not isinstance(base, str) or base not in stack_names() or base in seen:
        raise Table(data, file).fail("base", f"expected a bundled stack that is not this one or its own base "
                                             f"({', '.join(stack_names())}), got {base!r}")
    merged = dict(_with_base(read_toml(_stack_file(base)), str(_stack_file(base)), seen + (base,)))
    merged.update({k: v for k, v in data.items() if k != "base"})
    return merged


@functools.cache
def _bundled(name: str) -> Stack:
    path = _stack_file(name)
    return _build(_with_base(read_toml(path), str(path), (name,)), str(path), name)


def load_stack(name_or_path: str | Stack) -> Stack:
    """A bundled stack by name, or a stack TOML file by path."""
    if isinstance(name_or_path, Stack):
        return name_or_path
    text = str(name_or_path)
    if text.endswith(".toml") or "/" in text:
        path = Path(text)
        return _build(_with_base(read_toml(path), str(path)), str(path), path.stem)
    if text not in stack_names():
        raise UnknownNameError(f"unknown stack '{text}'{did_you_mean(text, stack_names())}"
                               f" (bundled: {', '.join(stack_names())})")
    return _bundled(text)

