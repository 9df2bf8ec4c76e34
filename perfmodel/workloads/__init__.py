"""Workloads: the models perfmodel predicts for (transformers, convnets, MLPs).

>>> from perfmodel.workloads import load_model
>>> load_model("llama2-7b").n_params
6738415616

Public surface: :func:`load_model` (preset name, Hugging Face config.json, TOML model file;
what-if overrides), :func:`list_models`, :func:`summary`, the model classes
:class:`TransformerModel`, :class:`ConvNet` (with its layer classes) and :class:`MLPModel`,
and the :func:`resnet` builder. The file format is described in ``README.md`` next to this file.
Only the standard library is imported.
"""

from perfmodel.workloads.convnet import (
                                         AvgPool2d,
                                         BatchNorm2d,
                                         Conv2d,
                                         ConvNet,
                                         Flatten,
                                         GlobalAvgPool,
                                         LayerCost,
                                         Linear,
                                         MaxPool2d,
                                         ReLU,
                                         Residual,
)
from perfmodel.workloads.hf import load_hf_config
from perfmodel.workloads.loader import load_toml_model
from perfmodel.workloads.mlp import MLPModel
from perfmodel.workloads.presets import (
                                         OVERRIDES,
                                         Model,
                                         apply_overrides,
                                         list_models,
                                         load_model,
                                         preset_names,
                                         summary,
)
from perfmodel.workloads.resnet import resnet
from perfmodel.workloads.transformer import TransformerModel

__all__ = [
    "Model", "TransformerModel", "ConvNet", "MLPModel", "LayerCost",
    "Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "AvgPool2d", "GlobalAvgPool", "Flatten",
    "Linear", "Residual", "resnet",
    "load_model", "apply_overrides", "list_models", "preset_names", "summary",
    "load_hf_config", "load_toml_model", "OVERRIDES",
]
