r"""Convolutional networks as a list of layers: shape propagation, parameters and forward FLOPs.

A :class:`ConvNet` is an input shape ``(C, H, W)`` and a tuple of layers; a :class:`Residual`
holds two branches whose outputs are added. Shapes are propagated through the list (a mismatch
is a :class:`~perfmodel.errors.ModelError`), and each layer gets a :class:`LayerCost`.

FLOP accounting, per sample, forward pass (``forward_macs`` counts only the multiply-adds of
conv and linear layers, the number torchvision and most papers quote as "FLOPs"):

* Conv2d: :math:`\mathrm{MAC} = C_{out} H_{out} W_{out} \cdot (C_{in}/g)\, k_h k_w`;
  FLOP = 2 MAC (+ one add per output element with a bias).
* Linear: MAC = in x out; FLOP = 2 MAC (+ out with a bias).
* BatchNorm2d: 2 FLOP per element (normalise and affine folded into one multiply-add
  :math:`y = a x + b`, as ptflops/mmcv count an affine BatchNorm; computing the batch
  statistics in training, ~3 more per element, is not counted).
* ReLU: 1 per element. Residual add: 1 per output element.
* MaxPool2d / AvgPool2d: :math:`k_h k_w` per output element (comparisons, or adds and the
  divide). GlobalAvgPool: 1 per input element. Flatten: 0.

Output size of conv and pooling (dilation 1, floor mode, as PyTorch):
:math:`H_{out} = \lfloor (H + 2p - k)/s \rfloor + 1`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from math import prod
from typing import Union

from perfmodel.errors import ModelError
from perfmodel.workloads._fields import check_bool, check_int

__all__ = ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "AvgPool2d", "GlobalAvgPool",
           "Flatten", "Linear", "Residual", "Layer", "LayerCost", "ConvNet"]

Shape = tuple[int, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Conv2d:
    in_channels: int
    out_channels: int
    kernel: int
    stride: int = 1
    padding: int = 0
    groups: int = 1
    bias: bool = False
    name: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchNorm2d:
    channels: int
    name: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReLU:
    name: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class MaxPool2d:
    kernel: int
    stride: int | None = None  # None: = kernel (PyTorch default)
    padding: int = 0
    name: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class AvgPool2d:
    kernel: int
    stride: int | None = None
    padding: int = 0
    name: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class GlobalAvgPool:
    """Average over H and W: ``(C, H, W) -> (C, 1, 1)`` (``nn.AdaptiveAvgPool2d((1, 1))``)."""

    name: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Flatten:
    name: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Linear:
    in_features: int
    out_features: int
    bias: bool = True
    name: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Residual:
    """``main(x) + shortcut(x)``; an empty ``shortcut`` is the identity."""

    main: tuple
    shortcut: tuple = ()
    name: str = ""


Layer = Union[Conv2d, BatchNorm2d, ReLU, MaxPool2d, AvgPool2d, GlobalAvgPool, Flatten, Linear,
              Residual]


@dataclass(frozen=True, slots=True)
class LayerCost:
    """One leaf layer after shape propagation; counts are per sample, forward pass."""

    name: str
    kind: str
    in_shape: Shape
    out_shape: Shape
    n_params: int
    forward_macs: int
    forward_flops: int

    @property
    def n_out_elements(self) -> int:
        return prod(self.out_shape)


def _window(where: str, size: int, kernel: int, stride: int, padding: int) -> int:
    out = (size + 2 * padding - kernel) // stride + 1
    if out < 1:
        raise ModelError(f"{where}: kernel {kernel} (stride {stride}, padding {padding}) "
                         f"does not fit an input of size {size}")
    return out


def _spatial(where: str, shape: Shape, kind: str) -> Shape:
    if len(shape) != 3:
        raise ModelError(f"{where}: {kind} expects a (C, H, W) input, got shape {shape}")
    return shape


def _check_fields(layer: Layer, where: str) -> None:
    for f in fields(layer):
        value = getattr(layer, f.name)
        if f.name == "bias":
            check_bool(where, f.name, value)
        elif f.name != "name" and not (f.name == "stride" and value is None):
            check_int(where, f.name, value, minimum=0 if f.name == "padding" else 1)


def _leaf_cost(layer: Layer, name: str, shape: Shape) -> LayerCost:
    where = f"layer '{name}'"
    n = prod(shape)
    if not isinstance(layer, Layer.__args__):
        raise ModelError(f"{where}: not a layer: {layer!r}")
    _check_fields(layer, where)
    if isinstance(layer, Conv2d):
        c, h, w = _spatial(where, shape, "conv2d")
        if c != layer.in_channels:
            raise ModelError(f"{where} in_channels: expected {c} (from the previous layer), "
                             f"got {layer.in_channels}")
        if layer.in_channels % layer.groups or layer.out_channels % layer.groups:
            raise ModelError(f"{where} groups: expected a divisor of in_channels and "
                             f"out_channels, got {layer.groups}")
        out = (layer.out_channels, _window(where, h, layer.kernel, layer.stride, layer.padding),
               _window(where, w, layer.kernel, layer.stride, layer.padding))
        k_params = layer.in_channels // layer.groups * layer.kernel**2
        macs = prod(out) * k_params
        bias = layer.out_channels if layer.bias else 0
        return LayerCost(name, "conv2d", shape, out, layer.out_channels * k_params + bias, macs,
                         2 * macs + (prod(out) if layer.bias else 0))
    if isinstance(layer, Linear):
        if shape != (layer.in_features,):
            raise ModelError(f"{where} in_features: expected a flat input of {layer.in_features}, "
                             f"got shape {shape} (add a flatten layer?)")
        macs = layer.in_features * layer.out_features
        bias = layer.out_features if layer.bias else 0
        return LayerCost(name, "linear", shape, (layer.out_features,), macs + bias, macs,
                         2 * macs + bias)
    if isinstance(layer, BatchNorm2d):
        if _spatial(where, shape, "batchnorm")[0] != layer.channels:
            raise ModelError(f"{where} channels: expected {shape[0]}, got {layer.channels}")
        return LayerCost(name, "batchnorm", shape, shape, 2 * layer.channels, 0, 2 * n)
    if isinstance(layer, ReLU):
        return LayerCost(name, "relu", shape, shape, 0, 0, n)
    if isinstance(layer, MaxPool2d | AvgPool2d):
        kind = "maxpool" if isinstance(layer, MaxPool2d) else "avgpool"
        c, h, w = _spatial(where, shape, kind)
        stride = layer.kernel if layer.stride is None else layer.stride
        out = (c, _window(where, h, layer.kernel, stride, layer.padding),
               _window(where, w, layer.kernel, stride, layer.padding))
        return LayerCost(name, kind, shape, out, 0, 0, prod(out) * layer.kernel**2)
    if isinstance(layer, GlobalAvgPool):
        return LayerCost(name, "globalavgpool", shape, (_spatial(where, shape, "pool")[0], 1, 1),
                         0, 0, n)
    if isinstance(layer, Flatten):
        return LayerCost(name, "flatten", shape, (n,), 0, 0, 0)
    raise AssertionError(layer)  # unreachable: every Layer type is handled above


def _walk(layers: tuple, shape: Shape, prefix: str, out: list[LayerCost]) -> Shape:
    for i, layer in enumerate(layers):
        name = getattr(layer, "name", "") or f"{prefix}{i}"
        if isinstance(layer, Residual):
            main = _walk(tuple(layer.main), shape, f"{name}.", out)
            short = _walk(tuple(layer.shortcut), shape, f"{name}.shortcut.", out)
            if main != short:
                raise ModelError(f"layer '{name}': residual branches disagree: main gives "
                                 f"{main}, shortcut gives {short}")
            out.append(LayerCost(f"{name}.add", "add", main, main, 0, 0, prod(main)))
            shape = main
        else:
            cost = _leaf_cost(layer, name, shape)
            out.append(cost)
            shape = cost.out_shape
    return shape


@dataclass(frozen=True, slots=True, kw_only=True)
class ConvNet:
    """A convolutional network; shapes are checked when it is made."""

    name: str
    input_shape: Shape
    layers: tuple
    description: str = ""
    source: str = ""
    _costs: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "input_shape", tuple(self.input_shape))
        if len(self.input_shape) != 3 or not all(isinstance(v, int) and v > 0
                                                 for v in self.input_shape):
            raise ModelError(f"model '{self.name}' input: expected [C, H, W] positive integers, "
                             f"got {list(self.input_shape)}")
        costs: list[LayerCost] = []
        _walk(tuple(self.layers), tuple(self.input_shape), "", costs)
        object.__setattr__(self, "_costs", tuple(costs))

    family = property(lambda self: "convnet", doc="Model family: 'convnet'.")

    def layer_costs(self) -> tuple[LayerCost, ...]:
        """Every leaf layer in execution order (residual adds after their branches)."""
        return self._costs

    @property
    def output_shape(self) -> Shape:
        return self._costs[-1].out_shape if self._costs else tuple(self.input_shape)

    @property
    def n_params(self) -> int:
        return sum(c.n_params for c in self._costs)

    @property
    def forward_macs(self) -> int:
        """Multiply-adds of conv and linear layers per sample (the figure usually quoted)."""
        return sum(c.forward_macs for c in self._costs)

    @property
    def forward_flops(self) -> int:
        """All forward FLOPs per sample: 2 x MACs, biases and the elementwise layers."""
        return sum(c.forward_flops for c in self._costs)

    @property
    def n_activation_elements(self) -> int:
        """Sum of every leaf layer's output elements per sample (what a framework keeps for
        backward, before in-place and fusion savings)."""
        return sum(c.n_out_elements for c in self._costs)

    def summary(self) -> tuple[tuple[str, object], ...]:
        kinds: dict[str, int] = {}
        for c in self._costs:
            kinds[c.kind] = kinds.get(c.kind, 0) + 1
        return (("name", self.name), ("family", self.family), ("description", self.description),
                ("input", list(self.input_shape)), ("output", list(self.output_shape)),
                ("layers", ", ".join(f"{n} {k}" for k, n in kinds.items())),
                ("params_total", self.n_params), ("forward_macs", self.forward_macs),
                ("forward_flops", self.forward_flops), ("source", self.source))
