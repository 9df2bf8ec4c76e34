r"""Mixture-of-experts token counts: tokens each expert computes, bytes of the all-to-all.

A router sends each of :math:`T` tokens to its top :math:`k` of :math:`E` experts. Without token
dropping (Megatron-Core ``--moe-token-dispatcher-type alltoall`` with no capacity factor; Mixtral)
every routed copy is computed and an expert sees the average :math:`Tk/E` when the router
balances the load (the auxiliary load-balancing loss aims at this; Fedus et al., "Switch
Transformers", JMLR 2022, Section 2.2). With a capacity factor :math:`c` each expert takes at most
:math:`\lceil c\,Tk/E\rceil` tokens (Megatron-Core ``megatron/core/transformer/moe/moe_utils.py``
get_capacity; Lepikhin et al., "GShard", ICLR 2021, Section 2.2), padded to that capacity
(``--moe-pad-expert-input-to-capacity``), so the kernels run on the capacity.
"""

from __future__ import annotations

from perfmodel.formulas._backend import ceil

__all__ = ["moe_dropless_tokens_per_expert", "moe_capacity_tokens_per_expert", "moe_dispatch_bytes"]


def moe_dropless_tokens_per_expert(n_tokens, top_k, n_experts):
    r"""Tokens one expert computes without token dropping, on a balanced router.

    .. math:: m_e = \frac{T\,k}{E}

    n_tokens: T, tokens routed from (1); top_k: k (1); n_experts: E (1). Source: Fedus et al.,
    "Switch Transformers", JMLR 2022, Section 2.2 (the balanced load the auxiliary loss targets).

    >>> moe_dropless_tokens_per_expert(n_tokens=4096, top_k=2, n_experts=8)
    1024.0
    """
    return n_tokens * top_k / n_experts


def moe_capacity_tokens_per_expert(n_tokens, top_k, n_experts, capacity_factor):
    r"""Tokens one expert computes with a capacity factor (padded to its capacity).

    .. math:: m_e = \left\lceil c\,\frac{T\,k}{E} \right\rceil

    n_tokens: T (1); top_k: k (1); n_experts: E (1); capacity_factor: c (1). Source:
    NVIDIA/Megatron-LM megatron/core/transformer/moe/moe_utils.py (get_capacity, r0.8);
    Lepikhin et al., "GShard", ICLR 2021, Section 2.2 (expert capacity).

    >>> moe_capacity_tokens_per_expert(n_tokens=4096, top_k=2, n_experts=8, capacity_factor=1.25)
    1280
    """
    return ceil(capacity_factor * n_tokens * top_k / n_experts)


def moe_dispatch_bytes(n_tokens, top_k, hidden_size, bytes_per_element, capacity_factor):
    r"""Send buffer of one rank's token dispatch (and of the combine that returns them).

    .. math:: S = c\,T\,k\,h\,w

    Each of the rank's T tokens goes to k experts as an h-wide activation; with a capacity
    factor c the buffer is padded to c times that (c = 1: dropless). The all-to-all moves
    (n-1)/n of S off the rank (:func:`perfmodel.formulas.logtree.pairwise_alltoall_time`).
    n_tokens: T (1); top_k: k (1); hidden_size: h (1); bytes_per_element: w (B); capacity_factor:
    c (1). Source: NVIDIA/Megatron-LM megatron/core/transformer/moe/token_dispatcher.py
    (MoEAlltoAllTokenDispatcher.token_permutation / token_unpermutation, r0.8).

    >>> moe_dispatch_bytes(n_tokens=4096, top_k=2, hidden_size=4096, bytes_per_element=2, capacity_factor=1)
    67108864
    """
    return capacity_factor * n_tokens * top_k * hidden_size * bytes_per_element
