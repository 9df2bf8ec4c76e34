r"""Transformer language models: structure and exact parameter counts.

One frozen :class:`TransformerModel` covers the decoder-only GPT-2/GPT-3/Megatron-GPT and
Llama families and encoder-only BERT. It holds the structural facts the predictor needs
(:meth:`TransformerModel.linear_shapes`, :meth:`TransformerModel.lm_head_shape`) and counts
parameters exactly as the reference implementations hold them:

* Decoder (pre-norm): token embedding :math:`Vh`, learned positions :math:`Ph` (none for
  rotary or ALiBi), ``n_layers`` blocks, a final norm, and an LM head :math:`Vh` unless tied to the token
  embedding. (Hugging Face ``GPT2Model``/``LlamaForCausalLM``; Megatron-LM ``GPTModel``.)
* Encoder (post-norm, BERT): word + position + token-type embeddings followed by an embedding
  LayerNorm, ``n_layers`` blocks, no final norm, an optional pooler :math:`h^2 + h`. This is
  ``transformers.BertModel``; the MLM/NSP pre-training heads are not counted.
* Mixture of experts (Megatron-Core ``MoELayer``; Hugging Face ``MixtralSparseMoeBlock``,
  ``Qwen2MoeSparseMoeBlock``): in a MoE layer the MLP is replaced by a router (``h x E``, no bias)
  and ``E`` routed experts, each an MLP of width ``expert_ffn_hidden`` of the model's kind (gated
  or not), of which ``top_k`` run per token, plus ``n_shared_experts`` experts of width
  ``shared_ffn_hidden`` every token runs. Layer ``i`` (from 0) is a MoE layer when
  ``i >= first_dense_layers`` and ``(i + 1) % moe_layer_freq == 0`` (Qwen2-MoE's
  ``decoder_sparse_step``); the others keep the dense MLP of width ``ffn_hidden``. Total
  parameters count every expert (memory, optimizer, gradient sync); :attr:`n_active_params`
  counts the ``top_k`` routed experts a token runs (FLOPs).
* Block: q, k, v, o projections (q of width ``n_heads * head_dim``, k and v of width
  ``n_kv_heads * head_dim`` for GQA/MQA; ``head_dim`` defaults to ``hidden / n_heads`` but may
  be set, as Gemma 7B's 16 heads x 256 = 4096 on a 3072 hidden size), an MLP
  of two (GELU: up, down) or three (SwiGLU: gate, up, down) matrices, two norms. A LayerNorm has
  a weight and, when ``bias`` is true, a bias (nanoGPT ``LayerNorm(ndim, bias)``); an RMSNorm
  has a weight only. ``bias`` also adds a bias vector to every linear layer except the LM head.
  A *parallel block* (``parallel_block``: GPT-J, GPT-NeoX ``use_parallel_residual``, Falcon
  ``parallel_attn``, PaLM) computes ``x + attn(norm(x)) + mlp(norm'(x))``; with ``shared_norm``
  both branches read one norm (GPT-J, Falcon-7B: one norm a block), else two (GPT-NeoX).

With biases and LayerNorm the block is :math:`12h^2 + 13h` parameters, as in Narayanan et al.,
SC'21, Section 5.1, :math:`P = 12lh^2\,(1 + 13/(12h) + (V+s)/(12lh))` (which also counts the
embedding once, i.e. a tied output layer, and omits the final LayerNorm's :math:`2h`).
"""

from __future__ import annotations

from dataclasses import dataclass

from perfmodel.errors import ModelError
from perfmodel.frozen import IdentityMemo
from perfmodel.workloads._fields import check_bool, check_choice, check_int, check_str
from perfmodel.workloads.moe import check_moe, moe_params, moe_summary

__all__ = ["TransformerModel", "KINDS", "POSITIONS", "MLPS", "NORMS", "check_structure"]

KINDS = ("decoder", "encoder")
POSITIONS = ("learned", "rotary", "alibi")  # alibi: no parameters, no rotary kernel
# "gelu": up and down matrices, any pointwise activation; "swiglu": gated, three matrices;
# "relu2": up and down matrices with squared ReLU, run unfused (relu then pow: Nemotron-4 in NeMo)
MLPS = ("gelu", "swiglu", "relu2")
NORMS = ("layernorm", "rmsnorm")


def check_structure(where: str, hidden: int, heads: int, kv_heads: int, seq: int,
                    max_positions: int, positions: str, keys: tuple[str, ...] = (),
                    head_dim: int | None = None) -> None:
    """Cross-key constraints of a transformer, in the words of the file's keys.

    ``keys`` names (hidden, heads, kv_heads, seq, max_positions) as the file spells them;
    the default is the TOML model format's spelling. A model that gives ``head_dim`` may have
    attention of any width (heads x head_dim, Gemma 7B: 16 x 256 = 4096 on hidden 3072);
    without it the heads must divide the hidden size.
    """
    k_hidden, k_heads, k_kv, k_seq, k_max = keys or ("hidden", "heads", "kv_heads", "seq",
                                                      "max_positions")
    if head_dim is None and hidden % heads:
        raise ModelError(f"{where} {k_heads}: expected a divisor of {k_hidden}={hidden}, "
                         f"got {heads}")
    if heads % kv_heads:
        raise ModelError(f"{where} {k_kv}: expected a divisor of {k_heads}={heads}, "
                         f"got {kv_heads}")
    if positions == "learned" and seq > max_positions:
        raise ModelError(f"{where} {k_seq}: expected at most {k_max}={max_positions} "
                         f"(learned position table), got {seq}")


# parameters of one block per model object: see TransformerModel.n_params_per_layer
_PER_LAYER = IdentityMemo(limit=256)


@dataclass(frozen=True, slots=True, kw_only=True)
class TransformerModel:
    """A transformer's shape. Sizes are counts; ``seq_len`` is the default training sequence.

    >>> m = TransformerModel(name="gpt2-124m", n_layers=12, hidden=768, n_heads=12,
    ...                      vocab=50257, seq_len=1024)
    >>> m.n_params, m.head_dim
    (124439808, 64)
    """

    name: str
    n_layers: int
    hidden: int
    n_heads: int
    vocab: int
    seq_len: int
    kind: str = "decoder"
    n_kv_heads: int | None = None  # None: = n_heads (multi-head attention)
    ffn_hidden: int | None = None  # None: = 4 * hidden
    max_positions: int | None = None  # None: = seq_len
    positions: str = "learned"
    mlp: str = "gelu"
    norm: str = "layernorm"
    bias: bool = True
    tied_embeddings: bool = True
    type_vocab: int = 0  # token-type (segment) embeddings, BERT: 2
    pooler: bool = False
    head_dim: int | None = None  # None: = hidden / n_heads
    parallel_block: bool = False  # attention and MLP side by side on the block input (GPT-J, NeoX, Falcon, PaLM)
    shared_norm: bool = False  # a parallel block with one input norm for both branches (GPT-J, Falcon-7B)
    # trained with dropout (hidden and/or attention p > 0: GPT-2, Megatron GPT, BERT); false: no
    # dropout kernels and no masks (Llama-family configs, p = 0: PyTorch's dropout returns its input)
    dropout: bool = True
    # dropout on the attention probabilities (inside a fused attention kernel); None: as ``dropout``
    # (OPT trains with dropout 0.1 and attention_dropout 0.0)
    attention_dropout: bool | None = None
    # mixture of experts (n_experts = 1: a dense model; see the module docstring)
    n_experts: int = 1
    top_k: int = 1
    expert_ffn_hidden: int | None = None  # None: = ffn_hidden
    n_shared_experts: int = 0
    shared_ffn_hidden: int | None = None  # None: = expert_ffn_hidden
    moe_layer_freq: int = 1
    first_dense_layers: int = 0
    capacity_factor: float | None = None  # None: dropless (every routed token computed)
    description: str = ""
    source: str = ""
    notes: tuple[str, ...] = ()  # what a reader should know about defaults taken (shown by predict)

    def __post_init__(self) -> None:
        where = f"model '{self.name}'"
        check_str(where, "name", self.name)
        if self.n_kv_heads is None:
            object.__setattr__(self, "n_kv_heads", self.n_heads)
        if self.ffn_hidden is None:
            object.__setattr__(self, "ffn_hidden", 4 * self.hidden)
        if self.max_positions is None:
            object.__setattr__(self, "max_positions", self.seq_len)
        for key, attr in (("layers", "n_layers"), ("hidden", "hidden"), ("heads", "n_heads"),
                          ("kv_heads", "n_kv_heads"), ("ffn_hidden", "ffn_hidden"),
                          ("vocab", "vocab"), ("seq", "seq_len"),
                          ("max_positions", "max_positions")):
            check_int(where, key, getattr(self, attr))
        if self.head_dim is None and self.hidden % self.n_heads == 0:
            object.__setattr__(self, "head_dim", self.hidden // self.n_heads)
        elif self.head_dim is not None:
            check_int(where, "head_dim", self.head_dim)
        check_int(where, "type_vocab", self.type_vocab, minimum=0)
        check_choice(where, "kind", self.kind, KINDS)
        check_choice(where, "positions", self.positions, POSITIONS)
        check_choice(where, "mlp", self.mlp, MLPS)
        check_choice(where, "norm", self.norm, NORMS)
        for key in ("bias", "tied_embeddings", "pooler", "parallel_block", "shared_norm", "dropout"):
            check_bool(where, key, getattr(self, key))
        if self.attention_dropout is None:
            object.__setattr__(self, "attention_dropout", self.dropout)
        check_bool(where, "attention_dropout", self.attention_dropout)
        if self.shared_norm and not self.parallel_block:
            raise ModelError(f"{where} shared_norm: expected false unless parallel_block is true (one norm "
                             f"feeds both branches of a parallel block only), got true")
        check_moe(self, where)
        check_str(where, "description", self.description)
        check_str(where, "source", self.source)
        check_structure(where, self.hidden, self.n_heads, self.n_kv_heads, self.seq_len,
                        self.max_positions, self.positions, head_dim=self.head_dim)

    # -- structure ---------------------------------------------------------------------------
    family = property(lambda self: "transformer", doc="Model family: 'transformer'.")

    @property
    def q_dim(self) -> int:
        """Width of the q projection and the attention output, ``n_heads * head_dim``."""
        return self.n_heads * self.head_dim

    @property
    def n_block_norms(self) -> int:
        """Norms per block: 2, or 1 for a parallel block with a shared input norm."""
        return 1 if self.shared_norm else 2

    @property
    def kv_dim(self) -> int:
        """Width of the k and v projections, ``n_kv_heads * head_dim`` (< hidden for GQA/MQA)."""
        return self.n_kv_heads * self.head_dim

    def linear_shapes(self) -> tuple[tuple[str, int, int], ...]:
        """The weight matrices of one block as ``(name, in_features, out_features)``.

        Names: ``attn_q, attn_k, attn_v, attn_o, mlp_gate`` (SwiGLU only), ``mlp_up, mlp_down``.

        >>> TransformerModel(name="t", n_layers=1, hidden=8, n_heads=2, n_kv_heads=1,
        ...                  vocab=10, seq_len=4, mlp="swiglu", ffn_hidden=16).linear_shapes()
        (('attn_q', 8, 8), ('attn_k', 8, 4), ('attn_v', 8, 4), ('attn_o', 8, 8), ('mlp_gate', 8, 16), ('mlp_up', 8, 16), ('mlp_down', 16, 8))
        """
        h, q, kv, f = self.hidden, self.n_heads * self.head_dim, self.kv_dim, self.ffn_hidden
        attn = (("attn_q", h, q), ("attn_k", h, kv), ("attn_v", h, kv), ("attn_o", q, h))
        gate = (("mlp_gate", h, f),) if self.mlp == "swiglu" else ()
        return attn + gate + (("mlp_up", h, f), ("mlp_down", f, h))

    def lm_head_shape(self) -> tuple[str, int, int] | None:
        """The logits projection ``("lm_head", hidden, vocab)`` of a decoder (computed even when
        its weight is tied to the embedding); ``None`` for an encoder (BertModel has no LM head)."""
        return ("lm_head", self.hidden, self.vocab) if self.kind == "decoder" else None

    # -- parameters --------------------------------------------------------------------------
    @property
    def n_norm_params(self) -> int:
        """Parameters of one norm: LayerNorm weight (+ bias when ``bias``), RMSNorm weight."""
        two = self.norm == "layernorm" and self.bias
        return 2 * self.hidden if two else self.hidden

    @property
    def n_attention_params_per_layer(self) -> int:
        return sum(i * o + (o if self.bias else 0) for n, i, o in self.linear_shapes()
                   if n.startswith("attn_"))

    @property
    def n_mlp_params_per_layer(self) -> int:
        """The dense MLP of width ``ffn_hidden`` (every layer of a dense model)."""
        return sum(i * o + (o if self.bias else 0) for n, i, o in self.linear_shapes()
                   if n.startswith("mlp_"))

    @property
    def n_params_per_layer(self):
        """One block: attention + MLP + its norms (two; one for a shared-norm parallel block); for a
        mixture of experts the mean over the blocks of everything in them (routed experts included),
        an int when they divide evenly. Computed once per model object (models are frozen; a
        predict asks several times)."""
        return _PER_LAYER.get(self, "n_params_per_layer", self._params_per_layer)

    def _params_per_layer(self):
        dense = (self.n_attention_params_per_layer + self.n_mlp_params_per_layer
                 + self.n_block_norms * self.n_norm_params)
        if not self.is_moe:
            return dense
        parts = moe_params(self)
        total = parts["layers"] + parts["experts"]
        return total // self.n_layers if total % self.n_layers == 0 else total / self.n_layers

    is_moe = property(lambda self: self.n_experts > 1, doc="More than one routed expert per MoE layer.")

    @property
    def n_moe_layers(self) -> int:
        """Layers whose MLP is a mixture of experts (0 for a dense model)."""
        if not self.is_moe:
            return 0
        # layers i in [first_dense_layers, L) with (i + 1) a multiple of the frequency
        return self.n_layers // self.moe_layer_freq - min(self.first_dense_layers, self.n_layers) // self.moe_layer_freq

    @property
    def n_active_params(self) -> int:
        """Parameters one token runs through: all but the routed experts it is not sent to."""
        if not self.is_moe:
            return self.n_params
        parts = moe_params(self)
        return self.n_params - parts["experts"] + parts["active_experts"]

    @property
    def n_embedding_params(self) -> int:
        """Token (+ learned position, + token-type) embeddings, + the encoder's embedding norm."""
        rows = self.vocab + self.type_vocab
        rows += self.max_positions if self.positions == "learned" else 0
        return rows * self.hidden + (self.n_norm_params if self.kind == "encoder" else 0)

    @property
    def n_final_norm_params(self) -> int:
        """The norm after the last block of a pre-norm decoder (0 for a post-norm encoder)."""
        return self.n_norm_params if self.kind == "decoder" else 0

    @property
    def n_lm_head_params(self) -> int:
        """The output projection's own weight: 0 when tied to the token embedding (or encoder)."""
        untied = self.kind == "decoder" and not self.tied_embeddings
        return self.vocab * self.hidden if untied else 0

    @property
    def n_pooler_params(self) -> int:
        """BERT pooler: a dense ``h x h`` layer (+ bias) on the first token."""
        return self.hidden * self.hidden + (self.hidden if self.bias else 0) if self.pooler else 0

    @property
    def n_params(self) -> int:
        """All trainable parameters, each shared tensor counted once."""
        return sum(self.params_breakdown().values())

    def params_breakdown(self) -> dict[str, int]:
        """Parameters by part: embedding, layers (all blocks; for a mixture of experts all but the
        routed experts), experts (routed experts of every MoE layer; MoE models only), final_norm,
        lm_head, pooler."""
        if self.is_moe:
            moe = moe_params(self)
            layers = {"layers": moe["layers"], "experts": moe["experts"]}
        else:
            layers = {"layers": self.n_layers * self.n_params_per_layer}
        return {"embedding": self.n_embedding_params, **layers,
                "final_norm": self.n_final_norm_params,
                "lm_head": self.n_lm_head_params,
                "pooler": self.n_pooler_params}

    def summary(self) -> tuple[tuple[str, object], ...]:
        """Rows of ``(key, value)`` for display (``perfmodel models show``)."""
        rows: list[tuple[str, object]] = [
            ("name", self.name), ("family", self.family), ("kind", self.kind),
            ("description", self.description), ("layers", self.n_layers),
            ("hidden", self.hidden), ("heads", self.n_heads), ("kv_heads", self.n_kv_heads),
            ("head_dim", self.head_dim), ("ffn_hidden", self.ffn_hidden), ("vocab", self.vocab),
            ("seq", self.seq_len), ("max_positions", self.max_positions),
            ("positions", self.positions), ("mlp", self.mlp), ("norm", self.norm),
            ("bias", self.bias), ("tied_embeddings", self.tied_embeddings), ("dropout", self.dropout)]
        if self.parallel_block:
            rows += [("parallel_block", True), ("shared_norm", self.shared_norm)]
        if self.kind == "encoder":
            rows += [("type_vocab", self.type_vocab), ("pooler", self.pooler)]
        rows += moe_summary(self)
        rows += [("params_per_layer", self.n_params_per_layer)]
        rows += [(f"params_{k}", v) for k, v in self.params_breakdown().items()]
        rows += [("params_total", self.n_params)]
        rows += [("params_active", self.n_active_params)] if self.is_moe else []
        rows += [("source", self.source)]
        rows += [("notes", "; ".join(self.notes))] if self.notes else []
        return tuple(rows)
