"""Read a Hugging Face ``config.json`` into a :class:`TransformerModel`.

Supported ``model_type`` values and the keys read (defaults are those of the transformers
config classes, ``transformers/models/<type>/configuration_<type>.py``):

* ``gpt2`` (``GPT2Config``): ``n_layer``, ``n_embd``, ``n_head``, ``vocab_size``,
  ``n_positions`` (also the default ``seq``), ``n_inner`` (absent or null: 4 x n_embd),
  ``tie_word_embeddings`` (default true). Learned positions, GELU MLP, LayerNorm, biases.
* ``llama`` and ``mistral`` (``LlamaConfig``/``MistralConfig``): ``num_hidden_layers``,
  ``hidden_size``, ``num_attention_heads``, ``num_key_value_heads`` (default: = heads),
  ``intermediate_size``, ``vocab_size``, ``max_position_embeddings`` (also the default
  ``seq``), ``tie_word_embeddings`` (default false), ``attention_bias``/``mlp_bias`` (default
  false). Rotary positions, SwiGLU MLP, RMSNorm.
* ``bert`` (``BertConfig``): ``num_hidden_layers``, ``hidden_size``, ``num_attention_heads``,
  ``intermediate_size``, ``vocab_size``, ``max_position_embeddings`` (also the default
  ``seq``), ``type_vocab_size``. Encoder with pooler (``BertModel``), LayerNorm, biases.

Other keys of the file are ignored: a config.json carries many (dropout, token ids, ...) that
do not change the model's shape. The model is named after the file: the parent directory for a
file called ``config.json`` (``.../Llama-2-7b-hf/config.json`` -> ``Llama-2-7b-hf``), else the
file's stem.
"""

from __future__ import annotations

from pathlib import Path

import perfmodel._io as _io
from perfmodel.errors import ModelError, did_you_mean
from perfmodel.workloads._fields import Fields, show
from perfmodel.workloads.transformer import TransformerModel, check_structure

__all__ = ["load_hf_config", "parse_hf_config", "MODEL_TYPES"]

MODEL_TYPES = ("bert", "gpt2", "llama", "mistral")


def _gpt2(f: Fields) -> dict:
    hidden = f.int("n_embd")
    return dict(kind="decoder", n_layers=f.int("n_layer"), hidden=hidden, n_heads=f.int("n_head"),
                vocab=f.int("vocab_size"), seq_len=f.int("n_positions"),
                ffn_hidden=f.int("n_inner", 4 * hidden), positions="learned", mlp="gelu",
                norm="layernorm", bias=True, tied_embeddings=f.bool("tie_word_embeddings", True))


def _llama(f: Fields) -> dict:
    heads = f.int("num_attention_heads")
    hidden = f.int("hidden_size")
    attention_bias, mlp_bias = f.bool("attention_bias", False), f.bool("mlp_bias", False)
    if attention_bias != mlp_bias:
        raise ModelError(f"{f.where} mlp_bias: expected the same as attention_bias="
                         f"{show(attention_bias)} (one bias flag per model), got {show(mlp_bias)}")
    head_dim = f.int("head_dim", None)
    if head_dim is not None and head_dim * heads != hidden:  # e.g. Gemma: not representable
        raise ModelError(f"{f.where} head_dim: expected hidden_size / num_attention_heads = "
                         f"{hidden / heads:g}, got {head_dim}")
    seq = f.int("max_position_embeddings")
    return dict(kind="decoder", n_layers=f.int("num_hidden_layers"), hidden=hidden, n_heads=heads,
                n_kv_heads=f.int("num_key_value_heads", heads),
                ffn_hidden=f.int("intermediate_size"), vocab=f.int("vocab_size"), seq_len=seq,
                max_positions=seq, positions="rotary", mlp="swiglu", norm="rmsnorm",
                bias=attention_bias, tied_embeddings=f.bool("tie_word_embeddings", False))


def _bert(f: Fields) -> dict:
    return dict(kind="encoder", n_layers=f.int("num_hidden_layers"), hidden=f.int("hidden_size"),
                n_heads=f.int("num_attention_heads"), ffn_hidden=f.int("intermediate_size"),
                vocab=f.int("vocab_size"), seq_len=f.int("max_position_embeddings"),
                type_vocab=f.int("type_vocab_size", 2), positions="learned", mlp="gelu",
                norm="layernorm", bias=True, tied_embeddings=True, pooler=True)


_PARSERS = {"gpt2": _gpt2, "llama": _llama, "mistral": _llama, "bert": _bert}
_KEYS = {  # (hidden, heads, kv_heads, seq, max_positions) as each config spells them
    "gpt2": ("n_embd", "n_head", "n_head", "n_positions", "n_positions"),
    "llama": ("hidden_size", "num_attention_heads", "num_key_value_heads",
              "max_position_embeddings", "max_position_embeddings"),
    "bert": ("hidden_size", "num_attention_heads", "num_attention_heads",
             "max_position_embeddings", "max_position_embeddings"),
}
_KEYS["mistral"] = _KEYS["llama"]


def parse_hf_config(data: object, where: str, name: str) -> TransformerModel:
    """Build a model from an already parsed config.json mapping; ``where`` prefixes errors."""
    f = Fields(data, where)
    model_type = f.str("model_type")
    if model_type not in _PARSERS:
        raise ModelError(f"{where} model_type: expected one of {', '.join(MODEL_TYPES)}, "
                         f"got {show(model_type)}{did_you_mean(model_type, MODEL_TYPES)}")
    values = _PARSERS[model_type](f)
    check_structure(where, values["hidden"], values["n_heads"],
                    values.get("n_kv_heads", values["n_heads"]), values["seq_len"],
                    values["seq_len"], values["positions"], _KEYS[model_type])
    return TransformerModel(name=name, description=f"{model_type} from Hugging Face config",
                            source=f"Hugging Face config.json: {where}", **values)


def load_hf_config(path: str | Path) -> TransformerModel:
    """Read ``path`` (a Hugging Face config.json) into a :class:`TransformerModel`."""
    path = Path(path)
    data = _io.read_json(path, "a config.json", ModelError)
    name = path.parent.name if path.name == "config.json" and path.parent.name else path.stem
    return parse_hf_config(data, str(path), name)
