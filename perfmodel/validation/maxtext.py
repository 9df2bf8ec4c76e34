"""MaxText rows of the held-out set: their FLOP convention, sharding and remat policy as a plan.

MaxText (AI-Hypercomputer/maxtext) publishes TFLOP/s per chip, not step times. Its convention is
recorded (``MaxText/maxtext_utils.py`` @efb6d9e4 ``calculate_tflops_training_per_device``, the
same arithmetic as ``MaxText/train.py`` @76bd53b0 ``calculate_training_tflops``): per device and
step, ``6 N s b`` for the learnable weights (N: every parameter, embeddings included; s: sequence;
b: per-device batch) plus ``12 h L d s^2 b / 2`` for causal attention (h heads, L layers, d the
head dimension); recomputation is not counted. So a published rate R gives the step time
``(6 N s b + 6 h L d s^2 b) / R``.

Sharding: the ``fsdp`` mesh axis shards parameters, gradients and optimizer state (ZeRO-3); the
``tensor`` axis is tensor parallelism; the DCN ``data`` axis replicates (pure data parallelism
between slices or VMs). The batch is split over ``data`` x ``fsdp`` only, with no gradient
accumulation (base.yml @76bd53b0 has none), so one micro-batch per step of
``global batch / (data x fsdp)`` sequences. The residual stream between the layers is sharded
over the ``tensor`` axis too (base.yml ``logical_axis_rules``: ``activation_embed`` -> ``tensor``),
so with tensor parallelism the norms and residual adds run on 1/tp of the activations and a layer's
input is kept at 1/tp, with an all-gather before and a reduce-scatter after the parallel matmuls:
Megatron's sequence parallelism in cost and memory, which these rows therefore set.

FSDP within a slice x pure data parallelism across slices (MaxText's multi-slice / multi-VM
runs) is hybrid sharding: ZeRO-3 within a shard group of one slice's (or VM's) ranks, replicated
across the ``data`` axis (``shard_group``). MaxText's synthetic ``global_parameter_scale``
models keep base.yml's ``head_dim: 256`` while ``emb_dim`` and ``num_heads`` scale, so their
attention width ``heads x 256`` differs from the hidden size (the model's ``head_dim``).
"""

from __future__ import annotations

__all__ = ["is_maxtext", "skip_reason", "recompute", "micro_batch", "step_seconds", "SYNTHETIC_HEAD_DIM", "head_dim",
           "shard_group"]

# MaxText/configs/base.yml @76bd53b0f44caf989c88189afadeb1062f9254f0: head_dim 256 (not scaled by
# global_parameter_scale, which scales emb_dim, num_heads, mlp_dim and the layer count)
SYNTHETIC_HEAD_DIM = 256

# MaxText/layers/models.py @efb6d9e4 remat policies -> perfmodel's recompute: 'full' recomputes the
# whole layer; 'minimal' saves every weight matmul's output (checkpoint_dots_with_no_batch_dims) and
# recomputes the elementwise ops and attention's batched dots; 'minimal_flash' also saves the flash
# attention output ('context'). Both run as 'selective', which the jax-xla stack defines as that
# dots policy (selective_recompute = "dots"); minimal_flash's saved context is not counted (one
# tensor of tokens x heads x head_dim a layer) and its attention is recomputed as minimal's is (the
# flash kernel's row statistics carry no name the policy saves)
_REMAT = {"full": "full", "minimal": "selective", "minimal_flash": "selective"}


def is_maxtext(row) -> bool:
    return "MaxText" in row["framework"]


def _dcn_data_parallel(row) -> int:
    """The ``data`` (DCN) axis: the row's ``dp`` column for MaxText runs (slices or VMs)."""
    value = row["dp"].strip()
    return int(value) if value else 1


def head_dim(row) -> int | None:
    """The attention head dimension of a MaxText row's model: base.yml's 256 for the synthetic
    ``global_parameter_scale`` models, else None (hidden / heads)."""
    if row["case"].startswith("maxtext_") and "global_parameter_scale" in row["model"]:
        return SYNTHETIC_HEAD_DIM
    return None


def shard_group(row) -> int | None:
    """FSDP within each slice/VM and pure data parallelism over the ``data`` (DCN) axis across them:
    ZeRO-3 shards over one slice's data-parallel ranks (hybrid sharding), or None for one slice."""
    dcn = _dcn_data_parallel(row)
    if dcn > 1 and "fsdp" in row["zero_or_fsdp"].lower():
        return int(row["n_devices"]) // (int(row["tp"]) * dcn)
    return None


def skip_reason(row) -> str | None:
    """Why a MaxText row cannot be stated as a perfmodel model and plan, or None."""
    if _policy(row) not in _REMAT:
        return f"remat policy '{row['recompute']}' has no perfmodel equivalent"
    return None


def _policy(row) -> str:
    """'remat_policy=minimal_flash' -> 'minimal_flash'; a recipe that sets none runs base.yml's
    default, recorded as 'base.yml default (full) ...' -> 'full'."""
    text = row["recompute"]
    if text.startswith("base.yml default (") and ")" in text:
        return text[len("base.yml default ("):text.index(")")]
    return text.split(" ")[0].split("=")[-1]


def recompute(row) -> str:
    return _REMAT[_policy(row)]


def micro_batch(row) -> int:
    """Sequences per data-parallel rank per step: the batch is split over data x fsdp, tensor-parallel
    chips share theirs, and there is no gradient accumulation."""
    ranks = int(row["n_devices"]) // int(row["tp"])
    return int(row["global_batch"]) // ranks


def step_seconds(row, model) -> float:
    r"""Seconds per step from a MaxText TFLOP/s-per-chip figure.

    .. math:: t = \frac{6 N s b + 6 h L d s^2 b}{R}

    with N the model's parameters (embeddings and LM head included, as MaxText counts the
    parameter tree), s the sequence, b = global batch / chips (MaxText's per_device_batch_size),
    h heads, L layers, d the head dimension and R the published FLOP/s per chip. Source:
    AI-Hypercomputer/maxtext MaxText/maxtext_utils.py @efb6d9e4 calculate_tflops_training_per_device.
    """
    seq = int(row["seq_len"])
    per_device_batch = int(row["global_batch"]) / int(row["n_devices"])
    weights = 6 * model.n_params * seq * per_device_batch
    attention = 6 * model.n_heads * model.n_layers * model.head_dim * seq**2 * per_device_batch
    return (weights + attention) / (float(row["value"]) * 1e12)
