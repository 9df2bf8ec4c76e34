"""What ``perfmodel stacks list`` and ``perfmodel stacks show`` print: the bundled stacks, the
devices each is the default for, and one stack's fields (:mod:`perfmodel.specs.stack` reads them)."""

from __future__ import annotations

from perfmodel.specs.stack import load_stack, stack_names

__all__ = ["DEFAULT_FOR", "list_stacks", "stack_summary"]

# the devices each bundled stack is the default for (what `perfmodel stacks list` says)
DEFAULT_FOR = {"megatron": "NVIDIA Volta and Ampere GPUs (V100, A100)",
               "megatron-core": "NVIDIA Hopper and Blackwell GPUs (H100, H200, B200)",
               "pytorch-eager": "CPUs, Gaudi, AMD and other devices; CNNs and MLPs on every device",
               "deepspeed": "none (choose it with --stack deepspeed for Megatron-DeepSpeed runs: ZeRO-Offload, MiCS)",
               "deepspeed-2021": "none (choose it with --stack deepspeed-2021 for runs on the DeepSpeed of 2021, "
                                 "v0.3 to v0.4.2, whose ZeRO-3 gathers tensor by tensor)",
               "fsdp": "none (choose it with --stack fsdp for FSDP training loops such as LLM Foundry)",
               "jax-xla": "Google TPUs (v4, v5e, v5p); on GPUs choose it with --stack jax-xla for JAX programs compiled "
                          "by XLA, such as MaxText",
               "pytorch-compile": "none (choose it with --stack pytorch-compile for eager model code under torch.compile)",
               "llm-foundry-2023": "none (choose it with --stack llm-foundry-2023 for LLM Foundry's 2023 runs with its "
                                   "Triton attention)",
               "nemo-2024": "none (choose it with --stack nemo-2024 for NeMo 24.09 runs with its distributed_fused_adam "
                            "optimizer: bf16 gradients, param remainders, FP8 parameters)"}


def list_stacks() -> list[dict]:
    """The bundled stacks: name, the devices it is the default for, description."""
    return [{"name": n, "default_for": DEFAULT_FOR.get(n, ""), "description": load_stack(n).description}
            for n in stack_names()]


def stack_summary(name_or_path: str) -> list[tuple[str, object]]:
    """(field, value) rows of one stack, for ``perfmodel stacks show``."""
    from dataclasses import fields as dc_fields

    stack = load_stack(name_or_path)
    rows: list[tuple[str, object]] = []
    for f in dc_fields(stack):
        value = getattr(stack, f.name)
        if f.name == "memory_efficiency":
            value = {op: list(pair) for op, pair in value.items()}
        elif f.name == "memory_efficiency_on":
            value = {kind: {op: list(pair) for op, pair in ops.items()} for kind, ops in value.items()}
        elif f.name == "capabilities":
            value = {"zero": list(value.zero), "zero_with_pp": list(value.zero_with_pp),
                     "dtypes": list(value.dtypes), "cp": value.cp, "offload": list(value.offload),
                     "hybrid_shard": value.hybrid_shard, "ep": value.ep, "uneven_stages": value.uneven_stages,
                     "source": value.source}
        elif f.name == "tp_overlap" and value is not None:
            value = {"slots": {k: {"method": v.method, "sms": v.sms, "splits": v.splits, "margin": v.margin}
                               for k, v in value.slots.items()},
                     "streams": value.streams, "needs_sequence_parallel": value.needs_sequence_parallel,
                     "source": value.source}
        elif f.name == "zero3":
            value = {"gather": value.gather, "prefetch": value.prefetch,
                     "persistence_threshold": value.persistence_threshold,
                     "reuse_distance": None if value.reuse_distance_params == float("inf") else value.reuse_distance_params,
                     "grad_reduce": value.grad_reduce, "grad_bucket": value.grad_bucket,
                     "grad_overlap": value.grad_overlap,
                     "copy_passes": [value.gather_copy_passes, value.grad_copy_passes],
                     "synchronize": value.synchronize, "per_rank_ops": value.per_rank_ops,
                     "source": value.source}
        elif f.name == "inventory":
            value = {family: {"forward": [k.name for k in inv.forward], "backward": [k.name for k in inv.backward]}
                     for family, inv in value.items()}
        elif isinstance(value, tuple):
            value = [" + ".join(k) for k in value]
        rows.append((f.name, value))
    rows.insert(2, ("default_for", DEFAULT_FOR.get(stack.name, "")))
    return rows
