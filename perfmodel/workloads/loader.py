"""The TOML model format: read a model file (or a preset) into a model object.

The format is documented in ``perfmodel/workloads/README.md``. Every file has a ``type``
(``transformer``, ``resnet``, ``convnet`` or ``mlp``); ``name`` defaults to the file's stem;
``description`` and ``source`` are free text. Unknown keys are errors (with a did-you-mean),
so a typo never silently falls back to a default.
"""

from __future__ import annotations

from pathlib import Path

import perfmodel._io as _io
from perfmodel.errors import ModelError
from perfmodel.workloads import convnet as cn
from perfmodel.workloads._fields import Fields
from perfmodel.workloads.mlp import ACTIVATIONS, MLPModel
from perfmodel.workloads.resnet import BLOCKS, MAX_BLOCKS, resnet
from perfmodel.workloads.transformer import (
    KINDS,
    MLPS,
    NORMS,
    POSITIONS,
    TransformerModel,
    check_structure,
)

__all__ = ["load_toml_model", "parse_toml_model", "TYPES"]

TYPES = ("transformer", "resnet", "convnet", "mlp")


def _transformer(f: Fields, common: dict) -> TransformerModel:
    hidden, heads, seq = f.int("hidden"), f.int("heads"), f.int("seq")
    kv_heads = f.int("kv_heads", heads)
    max_positions = f.int("max_positions", seq)
    positions = f.choice("positions", POSITIONS, "learned")
    head_dim = f.int("head_dim", None)
    check_structure(f.where, hidden, heads, kv_heads, seq, max_positions, positions, head_dim=head_dim)
    return TransformerModel(
        **common, kind=f.choice("kind", KINDS, "decoder"), n_layers=f.int("layers"),
        hidden=hidden, n_heads=heads, n_kv_heads=kv_heads,
        ffn_hidden=f.int("ffn_hidden", 4 * hidden), vocab=f.int("vocab"), seq_len=seq,
        max_positions=max_positions, positions=positions, mlp=f.choice("mlp", MLPS, "gelu"),
        norm=f.choice("norm", NORMS, "layernorm"), bias=f.bool("bias", True),
        tied_embeddings=f.bool("tied_embeddings", True),
        type_vocab=f.int("type_vocab", 0, minimum=0), pooler=f.bool("pooler", False), head_dim=head_dim,
        parallel_block=f.bool("parallel_block", False), shared_norm=f.bool("shared_norm", False),
        dropout=f.bool("dropout", True),
        attention_dropout=None if f.raw("attention_dropout", None, "true or false") is None else f.bool("attention_dropout"),
        **_moe(f))


def _moe(f: Fields) -> dict:
    """The mixture-of-experts keys (perfmodel/workloads/README.md); absent: a dense model."""
    cf = f.raw("capacity_factor", None)
    if cf is not None and (isinstance(cf, bool) or not isinstance(cf, (int, float))):
        raise ModelError(f"{f.where} capacity_factor: expected a number (omit it for dropless routing), got {cf!r}")
    out = dict(n_experts=f.int("experts", 1), top_k=f.int("top_k", 1),
               expert_ffn_hidden=f.int("expert_ffn_hidden", None), n_shared_experts=f.int("shared_experts", 0, minimum=0),
               shared_ffn_hidden=f.int("shared_ffn_hidden", None), moe_layer_freq=f.int("moe_layer_freq", 1),
               first_dense_layers=f.int("first_dense_layers", 0, minimum=0), capacity_factor=cf)
    # a width for experts the file does not have would be ignored: refused (checked here, on the
    # file's own keys; a model object derives these widths and keeps them through replace)
    if out["expert_ffn_hidden"] is not None and out["n_experts"] == 1:
        raise ModelError(f"{f.where} expert_ffn_hidden: the width of routed experts, but the model has none "
                         f"(set experts > 1, or use ffn_hidden)")
    if out["shared_ffn_hidden"] is not None and out["n_shared_experts"] == 0:
        raise ModelError(f"{f.where} shared_ffn_hidden: the width of shared experts, but the model has none "
                         f"(set shared_experts > 0, or leave shared_ffn_hidden out)")
    return out


def _resnet(f: Fields, common: dict) -> cn.ConvNet:
    return resnet(**common, block=f.choice("block", BLOCKS), blocks=f.int_list("blocks", length=4, maximum=MAX_BLOCKS),
                  n_classes=f.int("classes", 1000),
                  input_shape=f.int_list("input", [3, 224, 224], length=3),
                  groups=f.int("groups", 1), width_per_group=f.int("width_per_group", 64))


_LAYERS = {  # type -> (class, {key: kind}); kind "int", "int0" (>= 0), "bool", "layers"
    "conv2d": (cn.Conv2d, {"in_channels": "int", "out_channels": "int", "kernel": "int",
                           "stride": "int", "padding": "int0", "groups": "int", "bias": "bool"}),
    "batchnorm": (cn.BatchNorm2d, {"channels": "int"}),
    "relu": (cn.ReLU, {}),
    "maxpool": (cn.MaxPool2d, {"kernel": "int", "stride": "int", "padding": "int0"}),
    "avgpool": (cn.AvgPool2d, {"kernel": "int", "stride": "int", "padding": "int0"}),
    "globalavgpool": (cn.GlobalAvgPool, {}),
    "flatten": (cn.Flatten, {}),
    "linear": (cn.Linear, {"in_features": "int", "out_features": "int", "bias": "bool"}),
    "residual": (cn.Residual, {"main": "layers", "shortcut": "layers"}),
}
_REQUIRED = {"conv2d": ("in_channels", "out_channels", "kernel"), "batchnorm": ("channels",),
             "maxpool": ("kernel",), "avgpool": ("kernel",), "residual": ("main",),
             "linear": ("in_features", "out_features")}


def _layers(value: object, where: str, prefix: str) -> tuple:
    if not isinstance(value, list):
        raise ModelError(f"{where} {prefix.rstrip('.')}: expected an array of layer tables "
                         f"([[{prefix.rstrip('.')}]]), got {value!r}")
    out = []
    for i, item in enumerate(value):
        f = Fields(item, where, f"{prefix}[{i}].")
        kind = f.choice("type", _LAYERS)
        cls, keys = _LAYERS[kind]
        args: dict = {"name": f.str("name", "")}
        for key, what in keys.items():
            if key in f.data or key in _REQUIRED.get(kind, ()):
                if what == "layers":
                    args[key] = _layers(f.raw(key), where, f"{prefix}[{i}].{key}")
                elif what == "bool":
                    args[key] = f.bool(key)
                else:
                    args[key] = f.int(key, minimum=0 if what == "int0" else 1)
        f.finish()
        out.append(cls(**args))
    return tuple(out)


def _convnet(f: Fields, common: dict) -> cn.ConvNet:
    layers = _layers(f.raw("layers", expected="an array of layer tables"), f.where, "layers")
    if not layers:
        raise ModelError(f"{f.where}: layers: expected at least one layer, got an empty list")
    model = cn.ConvNet(**common, input_shape=f.int_list("input", length=3), layers=layers)
    if model.n_params == 0:
        raise ModelError(f"{f.where}: layers: no layer has parameters (a conv2d, linear or batchnorm): nothing to train")
    return model


def _mlp(f: Fields, common: dict) -> MLPModel:
    return MLPModel(**common, widths=f.int_list("widths"),
                    activation=f.choice("activation", ACTIVATIONS, "relu"),
                    bias=f.bool("bias", True))


_BUILDERS = {"transformer": _transformer, "resnet": _resnet, "convnet": _convnet, "mlp": _mlp}


def parse_toml_model(data: object, where: str, default_name: str):
    """Build a model from a parsed TOML mapping; ``where`` (a path) prefixes every error."""
    f = Fields(data, where)
    kind = f.choice("type", TYPES)
    common = {"name": f.str("name", default_name), "description": f.str("description", ""),
              "source": f.str("source", "")}
    try:
        model = _BUILDERS[kind](f, common)
    except ModelError as exc:  # shape errors found while building: say which file
        if str(exc).startswith(where):
            raise
        raise ModelError(f"{where}: {exc}") from None
    f.finish()
    return model


def load_toml_model(path: str | Path):
    """Read a TOML model file into a TransformerModel, ConvNet or MLPModel."""
    path = Path(path)
    data = _io.read_toml(path, "a TOML model file", ModelError)
    return parse_toml_model(data, str(path), path.stem)
