"""Mixture-of-experts fields of a :class:`~perfmodel.workloads.transformer.TransformerModel`:
their checks, parameter counts and display rows.

A MoE layer (Megatron-Core ``megatron/core/transformer/moe/moe_layer.py``; Hugging Face
``MixtralSparseMoeBlock``, ``Qwen2MoeSparseMoeBlock``) holds the attention and norms of a dense
block, a router ``h x E`` without bias (``TopKRouter``), ``E`` routed experts and
``n_shared_experts`` shared experts, each expert an MLP of the model's kind (three matrices when
gated, two otherwise; a bias per matrix when the model has biases). Qwen2-MoE's
``shared_expert_gate`` (``h`` parameters a layer, < 0.01 % of it) is not counted.
"""

from __future__ import annotations

from perfmodel.errors import ModelError
from perfmodel.workloads._fields import MAX_SIZE, check_int

__all__ = ["check_moe", "moe_params", "expert_mlp_params", "moe_summary", "MAX_CAPACITY_FACTOR"]

MAX_CAPACITY_FACTOR = 1e6  # a capacity above n_experts / top_k drops nothing; larger is still accepted


def check_moe(model, where: str) -> None:
    """Each MoE field's kind and range, and the cross-field rules, in one-line ModelErrors."""
    for key in ("n_experts", "top_k", "moe_layer_freq"):
        check_int(where, key, getattr(model, key))
    check_int(where, "n_shared_experts", model.n_shared_experts, minimum=0)
    check_int(where, "first_dense_layers", model.first_dense_layers, minimum=0)
    if model.expert_ffn_hidden is None:
        object.__setattr__(model, "expert_ffn_hidden", model.ffn_hidden)
    if model.shared_ffn_hidden is None:
        object.__setattr__(model, "shared_ffn_hidden", model.expert_ffn_hidden)
    check_int(where, "expert_ffn_hidden", model.expert_ffn_hidden)
    check_int(where, "shared_ffn_hidden", model.shared_ffn_hidden)
    if model.top_k > model.n_experts:
        raise ModelError(f"{where} top_k: expected at most n_experts={model.n_experts}, got {model.top_k}")
    cf = model.capacity_factor
    if cf is not None:
        if isinstance(cf, bool) or not isinstance(cf, (int, float)) or not 0 < cf <= MAX_CAPACITY_FACTOR:
            raise ModelError(f"{where} capacity_factor: expected a number in (0, {MAX_CAPACITY_FACTOR:g}] "
                             f"or none (dropless), got {cf!r}")
        object.__setattr__(model, "capacity_factor", float(cf))
    if model.n_experts > 1 and model.first_dense_layers >= model.n_layers:
        raise ModelError(f"{where} first_dense_layers: expected fewer than layers={model.n_layers} "
                         f"(a mixture of experts needs a MoE layer), got {model.first_dense_layers}")
    if model.n_experts > 1 and model.n_moe_layers < 1:
        raise ModelError(f"{where} moe_layer_freq: {model.moe_layer_freq} leaves no MoE layer among the "
                         f"{model.n_layers} layers (first_dense_layers={model.first_dense_layers}); a mixture of "
                         f"experts needs one")
    if model.n_experts == 1 and model.capacity_factor is not None:
        raise ModelError(f"{where} capacity_factor: applies to routed experts, but the model has none "
                         f"(set experts > 1, or leave capacity_factor out)")
    if model.n_experts > 1 and model.kind != "decoder":
        raise ModelError(f"{where} n_experts: mixture-of-experts encoders are not modelled (decoders only)")
    if model.n_experts > MAX_SIZE:
        raise ModelError(f"{where} n_experts: expected at most {MAX_SIZE}, got {model.n_experts}")


def expert_mlp_params(model, width: int) -> int:
    """One expert of ``width``: up (+ gate when gated) ``h x width`` and down ``width x h`` (+ biases)."""
    h = model.hidden
    n_in = 2 if model.mlp == "swiglu" else 1
    bias = (n_in * width + h) if model.bias else 0
    return (n_in + 1) * h * width + bias


def moe_params(model) -> dict:
    """Parameters of all blocks of a MoE model: ``layers`` (everything but the routed experts:
    attention, norms, dense MLPs, routers, shared experts), ``experts`` (routed experts of every
    MoE layer), ``active_experts`` (the top_k of them a token runs) and ``expert_per_moe_layer``
    (all routed experts of one MoE layer)."""
    n_moe = model.n_moe_layers
    n_dense = model.n_layers - n_moe
    common = model.n_attention_params_per_layer + model.n_block_norms * model.n_norm_params
    one = expert_mlp_params(model, model.expert_ffn_hidden)
    router = model.hidden * model.n_experts
    shared = model.n_shared_experts * expert_mlp_params(model, model.shared_ffn_hidden)
    layers = n_dense * (common + model.n_mlp_params_per_layer) + n_moe * (common + router + shared)
    return {"layers": layers, "experts": n_moe * model.n_experts * one, "active_experts": n_moe * model.top_k * one,
            "expert_per_moe_layer": model.n_experts * one}


def moe_summary(model) -> list:
    """``models show`` rows of the MoE fields (none for a dense model)."""
    if not model.is_moe:
        return []
    cf = model.capacity_factor
    return [("experts", model.n_experts), ("top_k", model.top_k), ("expert_ffn_hidden", model.expert_ffn_hidden),
            ("shared_experts", model.n_shared_experts),
            ("shared_ffn_hidden", model.shared_ffn_hidden if model.n_shared_experts else "-"),
            ("moe_layers", model.n_moe_layers), ("moe_layer_freq", model.moe_layer_freq),
            ("first_dense_layers", model.first_dense_layers),
            ("capacity_factor", "dropless" if cf is None else cf)]
