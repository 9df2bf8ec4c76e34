"""Read a Hugging Face ``config.json`` into a :class:`TransformerModel`.

Supported ``model_type`` values: bert, falcon, gemma, gemma2, gpt2, gpt_neox, gptj, llama, mistral,
mixtral, opt, phi3, qwen2, qwen2_moe; the keys each reads and what the model cannot hold are in
:mod:`perfmodel.workloads.hf_families`. Other mixture-of-experts configs (dbrx, olmoe, ... or any
other config with more than one expert per layer) are refused by name, and DeepSeek-V2/V3 because
their multi-head latent attention (MLA) is not modelled.

Sequence length: the config's position limit (``max_position_embeddings``, ``n_positions``) is the
longest context, not the training length. Up to :data:`DEFAULT_SEQ` (4096) it is the default
``seq``; above, the default is 4096 and the model's ``notes`` (shown by ``predict``) say so.

The dropout probabilities say whether the model trains with dropout (any above 0). Other keys of
the file are ignored: a config.json carries many (token ids, ...) that
do not change the model's shape. The model is named after the file: the parent directory for a
file called ``config.json`` (``.../Llama-2-7b-hf/config.json`` -> ``Llama-2-7b-hf``), else the
file's stem.
"""

from __future__ import annotations

from pathlib import Path

import perfmodel._io as _io
from perfmodel.errors import ModelError, did_you_mean
from perfmodel.workloads._fields import Fields, show
from perfmodel.workloads.hf_families import MLA_TYPES, MOE_TYPES, PARSERS, moe_keys, trains_with_dropout
from perfmodel.workloads.transformer import TransformerModel, check_structure

__all__ = ["load_hf_config", "parse_hf_config", "MODEL_TYPES", "DEFAULT_SEQ"]

MODEL_TYPES = tuple(sorted(PARSERS))
# the training sequence of a config whose position limit is longer: a config's
# max_position_embeddings is what the model can attend to (131072 for Llama 3.1), not the length
# it is trained at; 4096 is Llama 2's training length and the pre-training length of most
# families above (a long context is reached by a short final phase; --seq models that phase)
DEFAULT_SEQ = 4096


def parse_hf_config(data: object, where: str, name: str) -> TransformerModel:
    """Build a model from an already parsed config.json mapping; ``where`` prefixes errors."""
    f = Fields(data, where)
    model_type = f.str("model_type")
    experts = moe_keys(data)
    if model_type in MLA_TYPES:
        raise ModelError(f"{where} model_type: {show(model_type)} uses multi-head latent attention (MLA), which "
                         f"is not modelled; its mixture-of-experts layers alone would not give its shape")
    if model_type in MOE_TYPES or (experts and model_type not in ("mixtral", "qwen2_moe")):
        why = f" ({experts} = {data[experts]})" if experts else ""
        raise ModelError(f"{where} model_type: {show(model_type)} is a mixture-of-experts model{why}; its "
                         f"expert layers are not modelled (modelled: mixtral, qwen2_moe)")
    if model_type not in PARSERS:
        raise ModelError(f"{where} model_type: expected one of {', '.join(MODEL_TYPES)}, "
                         f"got {show(model_type)}{did_you_mean(model_type, MODEL_TYPES)}")
    parser, keys = PARSERS[model_type]
    values = parser(f)
    values["dropout"] = trains_with_dropout(f, model_type)
    values["attention_dropout"] = trains_with_dropout(f, model_type, attention_only=True)
    limit = values.get("max_positions") or values["seq_len"]
    notes = ()
    if limit > DEFAULT_SEQ:
        values["seq_len"] = DEFAULT_SEQ
        notes = (f"seq {DEFAULT_SEQ}: the default training length; the config's {keys[4]} = {limit} is the "
                 f"longest context the model takes, not the length it is trained at (--seq to set it)",)
    check_structure(where, values["hidden"], values["n_heads"],
                    values.get("n_kv_heads", values["n_heads"]), values["seq_len"],
                    limit, values["positions"], keys, head_dim=values.get("head_dim"))
    return TransformerModel(name=name, description=f"{model_type} from Hugging Face config",
                            source=f"Hugging Face config.json: {where}", notes=notes, **values)


def load_hf_config(path: str | Path) -> TransformerModel:
    """Read ``path`` (a Hugging Face config.json) into a :class:`TransformerModel`."""
    path = Path(path)
    data = _io.read_json(path, "a config.json", ModelError)
    name = path.parent.name if path.name == "config.json" and path.parent.name else path.stem
    return parse_hf_config(data, str(path), name)
