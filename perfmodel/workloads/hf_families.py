"""The Hugging Face ``model_type`` families :mod:`perfmodel.workloads.hf` reads, one function each.

Each maps the keys of its transformers config class (``transformers/models/<type>/configuration_
<type>.py``; defaults as there) to the fields of :class:`~perfmodel.workloads.transformer.
TransformerModel`: layers, hidden, heads, kv heads, MLP width, vocabulary, the position limit,
activation (a gated MLP: ``swiglu``, three matrices; else ``gelu``, two), norm, biases, tied
embeddings, the head width (``head_dim``, Gemma 7B: 256 x 16 heads = 4096 on hidden 3072) and the
parallel attention + MLP block (GPT-NeoX ``use_parallel_residual``, Falcon ``parallel_attn``, GPT-J).
What the transformer model cannot hold is said per family.
"""

from __future__ import annotations

from perfmodel.errors import ModelError
from perfmodel.workloads._fields import Fields, show

__all__ = ["PARSERS", "MOE_TYPES", "MLA_TYPES", "moe_keys", "DROPOUT_KEYS", "ATTENTION_DROPOUT_KEYS", "trains_with_dropout"]

# mixture-of-experts families whose layers are not modelled: refused by name (mixtral and
# qwen2_moe are read below)
MOE_TYPES = ("arctic", "dbrx", "granitemoe", "gpt_oss", "jamba", "jetmoe", "nllb_moe", "olmoe", "phimoe",
             "qwen3_moe", "switch_transformers")
# DeepSeek-V2/V3: mixture of experts with multi-head latent attention (low-rank compressed k/v,
# q_lora_rank / kv_lora_rank, decoupled rotary heads): the attention is not modelled, so refused
MLA_TYPES = ("deepseek_v2", "deepseek_v3")
# keys that give a config more than one expert per layer, whatever its model_type says
_EXPERT_KEYS = ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts")


def moe_keys(data) -> str | None:
    """The key that makes ``data`` a mixture of experts (more than one expert), or None."""
    for key in _EXPERT_KEYS:
        value = data.get(key) if hasattr(data, "get") else None
        if isinstance(value, int) and not isinstance(value, bool) and value > 1:
            return key
    return None


def _head_dim(f: Fields) -> int | None:
    """The config's ``head_dim`` (transformers LlamaConfig / GemmaConfig / MistralConfig / Qwen3Config:
    ``self.head_dim = head_dim or hidden_size // num_attention_heads``); None: hidden / heads."""
    return f.int("head_dim", None)


def _gpt2(f: Fields) -> dict:
    hidden = f.int("n_embd")
    return dict(kind="decoder", n_layers=f.int("n_layer"), hidden=hidden, n_heads=f.int("n_head"),
                vocab=f.int("vocab_size"), seq_len=f.int("n_positions"),
                ffn_hidden=f.int("n_inner", 4 * hidden), positions="learned", mlp="gelu",
                norm="layernorm", bias=True, tied_embeddings=f.bool("tie_word_embeddings", True))


def _llama_like(f: Fields, model_type: str, *, tied: bool = False, bias: bool | None = None) -> dict:
    """Llama, Mistral, Qwen2, Phi-3, Gemma, Gemma 2: rotary, gated MLP, RMSNorm."""
    heads = f.int("num_attention_heads")
    hidden = f.int("hidden_size")
    if bias is None:
        bias = f.bool("attention_bias", False)
        if bias != f.bool("mlp_bias", False):
            raise ModelError(f"{f.where} mlp_bias: expected the same as attention_bias={show(bias)} (one bias "
                             f"flag per model), got {show(f.bool('mlp_bias'))}")
    seq = f.int("max_position_embeddings")
    return dict(kind="decoder", n_layers=f.int("num_hidden_layers"), hidden=hidden, n_heads=heads, head_dim=_head_dim(f),
                n_kv_heads=f.int("num_key_value_heads", heads), ffn_hidden=f.int("intermediate_size"),
                vocab=f.int("vocab_size"), seq_len=seq, max_positions=seq, positions="rotary", mlp="swiglu",
                norm="rmsnorm", bias=bias, tied_embeddings=f.bool("tie_word_embeddings", tied))


def _llama(f: Fields) -> dict:
    return _llama_like(f, "llama")


def _qwen2(f: Fields) -> dict:
    # Qwen2 has biases on the q, k, v projections only (modeling_qwen2.py); the model's one bias
    # flag is off: the missing (hidden + 2 kv_dim) parameters a layer are < 0.01 % of it
    return _llama_like(f, "qwen2", bias=False)


def _phi3(f: Fields) -> dict:
    return _llama_like(f, "phi3", bias=False)  # fused qkv and gate_up projections: the same matrices


def _gemma(f: Fields) -> dict:
    # GeGLU (gate, up, down: the gated three-matrix MLP), RMSNorm, tied embeddings by default;
    # Gemma 2's extra pre/post-feed-forward norms (2 h a layer) and sliding-window layers are not counted
    return _llama_like(f, "gemma", tied=True, bias=False)


def _falcon(f: Fields) -> dict:
    hidden = f.int("hidden_size") if "hidden_size" in f.data else f.int("n_embed")
    layers = f.int("num_hidden_layers") if "num_hidden_layers" in f.data else f.int("n_layer")
    heads = f.int("num_attention_heads") if "num_attention_heads" in f.data else f.int("n_head")
    if f.bool("new_decoder_architecture", False):
        kv = f.int("num_kv_heads") if "num_kv_heads" in f.data else f.int("n_head_kv", heads)
    else:
        kv = 1 if f.bool("multi_query", True) else heads
    alibi = f.bool("alibi", False)  # ALiBi: no position parameters, a bias in the attention scores
    seq = f.int("max_position_embeddings", 2048)
    # modeling_falcon.py FalconDecoderLayer: the new architecture (40B/180B) or parallel_attn
    # (default true) adds attention and MLP to the same residual; the new one has two norms
    # ln_attn / ln_mlp (num_ln_in_parallel_attn, None -> 2), the old one (7B) one input_layernorm
    parallel = f.bool("parallel_attn", True)
    new = f.bool("new_decoder_architecture", False)
    two_norms = new and f.int("num_ln_in_parallel_attn", 2) == 2
    return dict(kind="decoder", n_layers=layers, hidden=hidden, n_heads=heads, n_kv_heads=kv,
                parallel_block=parallel or new, shared_norm=(parallel or new) and not two_norms,
                ffn_hidden=f.int("ffn_hidden_size", 4 * hidden), vocab=f.int("vocab_size"), seq_len=seq,
                max_positions=seq, positions="alibi" if alibi else "rotary", mlp="gelu", norm="layernorm",
                bias=f.bool("bias", False), tied_embeddings=f.bool("tie_word_embeddings", True))


def _gpt_neox(f: Fields) -> dict:
    seq = f.int("max_position_embeddings")
    # modeling_gpt_neox.py GPTNeoXLayer: use_parallel_residual (default true) computes
    # x + attn(input_layernorm(x)) + mlp(post_attention_layernorm(x)): parallel, two norms
    return dict(kind="decoder", n_layers=f.int("num_hidden_layers"), hidden=f.int("hidden_size"),
                parallel_block=f.bool("use_parallel_residual", True),
                n_heads=f.int("num_attention_heads"), ffn_hidden=f.int("intermediate_size"),
                vocab=f.int("vocab_size"), seq_len=seq, max_positions=seq, positions="rotary", mlp="gelu",
                norm="layernorm", bias=f.bool("attention_bias", True),
                tied_embeddings=f.bool("tie_word_embeddings", False))


def _gptj(f: Fields) -> dict:
    # modeling_gptj.py GPTJBlock: x + attn(ln_1(x)) + mlp(ln_1(x)), one norm for both branches;
    # rotary on rotary_dim of each head; q, k, v, out projections without bias, fc_in / fc_out
    # and the LayerNorm with (the model's one bias flag: on; 4h attention biases a layer too many,
    # < 0.01 % of GPT-J 6B's 202M a layer), LM head untied
    hidden = f.int("n_embd")
    f.int("rotary_dim", None)
    seq = f.int("n_positions")
    return dict(kind="decoder", n_layers=f.int("n_layer"), hidden=hidden, n_heads=f.int("n_head"),
                ffn_hidden=f.int("n_inner", 4 * hidden), vocab=f.int("vocab_size"), seq_len=seq, max_positions=seq,
                positions="rotary", mlp="gelu", norm="layernorm", bias=True,
                tied_embeddings=f.bool("tie_word_embeddings", False), parallel_block=True, shared_norm=True)


def _opt(f: Fields) -> dict:
    hidden = f.int("hidden_size")
    proj = f.int("word_embed_proj_dim", hidden)
    if proj != hidden:  # OPT-350m projects a 512-wide embedding: not representable
        raise ModelError(f"{f.where} word_embed_proj_dim: opt with an embedding projection ({proj} != hidden_size "
                         f"{hidden}) is not modelled yet")
    seq = f.int("max_position_embeddings", 2048)
    return dict(kind="decoder", n_layers=f.int("num_hidden_layers"), hidden=hidden,
                n_heads=f.int("num_attention_heads"), ffn_hidden=f.int("ffn_dim"), vocab=f.int("vocab_size"),
                seq_len=seq, max_positions=seq, positions="learned", mlp="gelu", norm="layernorm",
                bias=f.bool("enable_bias", True), tied_embeddings=f.bool("tie_word_embeddings", True))


def _bert(f: Fields) -> dict:
    return dict(kind="encoder", n_layers=f.int("num_hidden_layers"), hidden=f.int("hidden_size"),
                n_heads=f.int("num_attention_heads"), ffn_hidden=f.int("intermediate_size"),
                vocab=f.int("vocab_size"), seq_len=f.int("max_position_embeddings"),
                type_vocab=f.int("type_vocab_size", 2), positions="learned", mlp="gelu",
                norm="layernorm", bias=True, tied_embeddings=True, pooler=True)


def _experts(f: Fields, n_key: str, values: dict) -> dict:
    """The routed-expert keys shared by Mixtral and Qwen2-MoE: ``n_key`` experts, top-k."""
    n = f.int(n_key)
    k = f.int("num_experts_per_tok")
    if k > n:
        raise ModelError(f"{f.where} num_experts_per_tok: expected at most {n_key}={n}, got {k}")
    return dict(values, n_experts=n, top_k=k)


def _mixtral(f: Fields) -> dict:
    # MixtralSparseMoeBlock: a router (no bias) and num_local_experts SwiGLU experts of width
    # intermediate_size in every layer, top num_experts_per_tok per token, no token dropping
    return _experts(f, "num_local_experts", _llama_like(f, "mixtral"))


def _qwen2_moe(f: Fields) -> dict:
    # Qwen2MoeSparseMoeBlock: num_experts experts of width moe_intermediate_size and one shared
    # expert of width shared_expert_intermediate_size in every decoder_sparse_step-th layer; the
    # other layers (and mlp_only_layers) keep a dense MLP of width intermediate_size
    values = _experts(f, "num_experts", _llama_like(f, "qwen2_moe", bias=False))
    dense = f.raw("mlp_only_layers", [])
    if (not isinstance(dense, list) or any(not isinstance(i, int) or isinstance(i, bool) for i in dense)
            or sorted(dense) != list(range(len(dense)))):
        raise ModelError(f"{f.where} mlp_only_layers: expected the first k layer indices [0, 1, ..., k-1] "
                         f"(dense layers elsewhere are not modelled), got {show(dense)}")
    return dict(values, expert_ffn_hidden=f.int("moe_intermediate_size"), n_shared_experts=1,
                shared_ffn_hidden=f.int("shared_expert_intermediate_size"),
                moe_layer_freq=f.int("decoder_sparse_step", 1), first_dense_layers=len(dense))


_LLAMA_KEYS = ("hidden_size", "num_attention_heads", "num_key_value_heads", "max_position_embeddings",
               "max_position_embeddings")
# model_type -> (parser, (hidden, heads, kv_heads, seq, max_positions) as the config spells them)
PARSERS = {
    "gpt2": (_gpt2, ("n_embd", "n_head", "n_head", "n_positions", "n_positions")),
    "llama": (_llama, _LLAMA_KEYS), "mistral": (_llama, _LLAMA_KEYS), "qwen2": (_qwen2, _LLAMA_KEYS),
    "phi3": (_phi3, _LLAMA_KEYS), "mixtral": (_mixtral, _LLAMA_KEYS), "qwen2_moe": (_qwen2_moe, _LLAMA_KEYS), "gemma": (_gemma, _LLAMA_KEYS), "gemma2": (_gemma, _LLAMA_KEYS),
    "falcon": (_falcon, ("hidden_size", "num_attention_heads", "num_kv_heads", "max_position_embeddings",
                         "max_position_embeddings")),
    "gpt_neox": (_gpt_neox, ("hidden_size", "num_attention_heads", "num_attention_heads",
                             "max_position_embeddings", "max_position_embeddings")),
    "gptj": (_gptj, ("n_embd", "n_head", "n_head", "n_positions", "n_positions")),
    "opt": (_opt, ("hidden_size", "num_attention_heads", "num_attention_heads", "max_position_embeddings",
                   "max_position_embeddings")),
    "bert": (_bert, ("hidden_size", "num_attention_heads", "num_attention_heads", "max_position_embeddings",
                     "max_position_embeddings")),
}


_LLAMA_DROPOUT = {"attention_dropout": 0.0}
# model_type -> {dropout probability key: the config class's default}; a model trains with dropout
# when any is > 0 (transformers configuration_<type>.py defaults)
DROPOUT_KEYS = {
    "gpt2": {"resid_pdrop": 0.1, "embd_pdrop": 0.1, "attn_pdrop": 0.1},
    "llama": _LLAMA_DROPOUT, "mistral": _LLAMA_DROPOUT, "qwen2": _LLAMA_DROPOUT, "mixtral": _LLAMA_DROPOUT,
    "qwen2_moe": _LLAMA_DROPOUT, "gemma": _LLAMA_DROPOUT, "gemma2": _LLAMA_DROPOUT,
    "phi3": {"attention_dropout": 0.0, "resid_pdrop": 0.0, "embd_pdrop": 0.0},
    "falcon": {"attention_dropout": 0.0, "hidden_dropout": 0.0},
    "gpt_neox": {"attention_dropout": 0.0, "hidden_dropout": 0.0},
    "gptj": {"resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0},
    "opt": {"dropout": 0.1, "attention_dropout": 0.0},
    "bert": {"hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1},
}


# the keys of DROPOUT_KEYS that drop attention probabilities (inside a fused attention kernel)
ATTENTION_DROPOUT_KEYS = ("attn_pdrop", "attention_dropout", "attention_probs_dropout_prob")


def trains_with_dropout(f: Fields, model_type: str, attention_only: bool = False) -> bool:
    """Whether the config's dropout probabilities (:data:`DROPOUT_KEYS`; ``attention_only``: those
    on the attention probabilities) leave any above 0."""
    on = False
    for key, default in DROPOUT_KEYS[model_type].items():
        if attention_only and key not in ATTENTION_DROPOUT_KEYS:
            continue
        p = f.raw(key, default, "a probability")
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
            raise ModelError(f"{f.where} {f.key(key)}: expected a dropout probability in [0, 1), got {show(p)}")
        on = on or p > 0
    return on
