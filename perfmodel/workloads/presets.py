"""Bundled model presets, :func:`load_model` (preset, HF config.json or TOML file) and overrides.

Presets are the TOML files in ``perfmodel/workloads/presets/`` (package data); a preset's name
is its file's stem. ``load_model`` accepts a preset name, a path to a Hugging Face config.json
(``.json``), a path to a TOML model file (``.toml``), or an already built model, and applies
the what-if overrides ``layers, hidden, heads, kv_heads, ffn_hidden, vocab, seq`` (the CLI's
``--layers`` ... ``--seq``; ``None`` means "not given").
"""

from __future__ import annotations

import dataclasses
import functools
import os
from importlib import resources
from pathlib import Path

import perfmodel._io as _io
from perfmodel.errors import ModelError, UnknownNameError, did_you_mean
from perfmodel.workloads._fields import check_int
from perfmodel.workloads.convnet import ConvNet
from perfmodel.workloads.hf import load_hf_config
from perfmodel.workloads.loader import load_toml_model, parse_toml_model
from perfmodel.workloads.mlp import MLPModel
from perfmodel.workloads.transformer import TransformerModel, check_structure

__all__ = ["load_model", "list_models", "preset_names", "summary", "OVERRIDES", "Model"]

Model = TransformerModel | ConvNet | MLPModel
OVERRIDES = ("layers", "hidden", "heads", "kv_heads", "ffn_hidden", "vocab", "seq")
_FAMILY_ORDER = {"transformer": 0, "convnet": 1, "mlp": 2}


def _preset_dir():
    return resources.files("perfmodel.workloads").joinpath("presets")


@functools.cache
def preset_names() -> tuple[str, ...]:
    """Names of the bundled presets (file stems), unordered."""
    return tuple(p.name[: -len(".toml")] for p in _preset_dir().iterdir()
                 if p.name.endswith(".toml"))


@functools.cache
def _load_preset(name: str) -> Model:
    resource = _preset_dir().joinpath(f"{name}.toml")
    where = f"preset {name} (perfmodel/workloads/presets/{name}.toml)"
    data = _io.parse_toml(resource.read_text(encoding="utf-8"), where, ModelError)
    return parse_toml_model(data, where, name)


def _prefix(name: str) -> str:
    """Family prefix for sorting: 'gpt2' of 'gpt2-1.5b', 'resnet' of 'resnet101'."""
    return name.split("-")[0] if "-" in name else name.rstrip("0123456789")


def list_models() -> tuple[tuple[str, str], ...]:
    """``(name, description)`` of every preset: transformers, convnets, MLPs; by name prefix,
    then size within a family (gpt2-124m before gpt2-1.5b)."""
    models = [_load_preset(n) for n in preset_names()]
    models.sort(key=lambda m: (_FAMILY_ORDER[m.family], _prefix(m.name), m.n_params))
    return tuple((m.name, m.description) for m in models)


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long for the OS, a NUL byte: not a file
        return False


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def _looks_like_path(text: str) -> bool:
    return (os.sep in text or "/" in text or text.endswith((".json", ".toml"))
            or _is_file(Path(text)))


def load_model(name_or_path: str | os.PathLike | Model, **overrides: int | None) -> Model:
    """Load a model and apply what-if overrides.

    >>> load_model("gpt2-124m").n_params
    124439808
    >>> load_model("gpt2-124m", layers=24).name
    'gpt2-124m[layers=24]'
    """
    if isinstance(name_or_path, TransformerModel | ConvNet | MLPModel):
        model = name_or_path
    elif isinstance(name_or_path, str) and name_or_path.strip().lower() in preset_names():
        model = _load_preset(name_or_path.strip().lower())
    elif isinstance(name_or_path, os.PathLike) or (isinstance(name_or_path, str)
                                                   and _looks_like_path(name_or_path)):
        path = Path(name_or_path)
        if _is_dir(path):  # a Hugging Face model directory
            path = path / "config.json"
        if path.suffix == ".json":
            model = load_hf_config(path)
        elif path.suffix == ".toml":
            model = load_toml_model(path)
        else:
            raise ModelError(f"{path}: expected a Hugging Face config .json or a TOML model file "
                             f".toml, got a '{path.suffix or 'suffix-less'}' file")
    elif isinstance(name_or_path, str):
        name = name_or_path.strip().lower()
        raise UnknownNameError(f"unknown model '{name_or_path}'{did_you_mean(name, preset_names())}"
                               f" (see `perfmodel models list`, or give a path to a config.json "
                               f"or .toml file)")
    else:
        raise ModelError(f"model: expected a preset name, a path or a model, got {name_or_path!r}")
    return apply_overrides(model, **overrides)


def apply_overrides(model: Model, **overrides: int | None) -> Model:
    """A copy of ``model`` with the given sizes replaced (``None`` values are ignored).

    Coupled sizes follow when the base model has them tied to the changed one: a multi-head
    model (kv_heads == heads) keeps kv_heads == heads when heads change; a model whose
    ffn_hidden is 4 x hidden (GPT, BERT) keeps 4 x hidden when hidden changes; a learned
    position table grows to a longer seq; a mixture of experts whose experts are as wide as its
    ffn_hidden (Mixtral) keeps them so. Anything else is kept, and checked.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    for key, value in given.items():
        if key not in OVERRIDES:
            raise ModelError(f"override '{key}': expected one of {', '.join(OVERRIDES)}"
                             f"{did_you_mean(key, OVERRIDES)}")
        check_int("override", f"--{key.replace('_', '-')}", value)
    if not given:
        return model
    if not isinstance(model, TransformerModel):
        raise ModelError(f"override --{next(iter(given)).replace('_', '-')}: applies to "
                         f"transformer models only; '{model.name}' is a {model.family}")
    m = model
    heads = given.get("heads", m.n_heads)
    hidden = given.get("hidden", m.hidden)
    kv = given.get("kv_heads", heads if m.n_kv_heads == m.n_heads else m.n_kv_heads)
    ffn = given.get("ffn_hidden", 4 * hidden if m.ffn_hidden == 4 * m.hidden else m.ffn_hidden)
    seq = given.get("seq", m.seq_len)
    max_positions = max(m.max_positions, seq) if m.positions == "learned" else m.max_positions
    # a head width derived from hidden / heads follows them; one the model sets (Gemma 7B) stays
    head_dim = None if m.head_dim * m.n_heads == m.hidden else m.head_dim
    where = f"model '{m.name}' with overrides"
    check_structure(where, hidden, heads, kv, seq, max_positions, m.positions,
                    ("--hidden", "--heads", "--kv-heads", "--seq", "max_positions"), head_dim=head_dim)
    tag = ",".join(f"{k}={v}" for k, v in given.items())
    experts = {}
    if m.is_moe and m.expert_ffn_hidden == m.ffn_hidden:  # the experts' width follows the MLP width
        experts = {"expert_ffn_hidden": ffn, "shared_ffn_hidden": ffn if m.shared_ffn_hidden == m.ffn_hidden
                   else m.shared_ffn_hidden}
    return dataclasses.replace(m, **experts, name=f"{m.name}[{tag}]",
                               description=f"{m.description} (what-if: {tag})",
                               n_layers=given.get("layers", m.n_layers),
                               hidden=hidden, n_heads=heads, n_kv_heads=kv, ffn_hidden=ffn, head_dim=head_dim,
                               vocab=given.get("vocab", m.vocab), seq_len=seq,
                               max_positions=max_positions,
                               notes=tuple(n for n in m.notes if "seq" not in given or not n.startswith("seq ")))


def summary(model: str | os.PathLike | Model) -> tuple[tuple[str, object], ...]:
    """Rows of ``(key, value)`` describing a model (for ``perfmodel models show NAME``)."""
    return load_model(model).summary()
