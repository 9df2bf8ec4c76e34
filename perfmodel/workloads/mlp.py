"""Multi-layer perceptrons: a chain of fully connected layers.

``widths = (784, 1024, 1024, 10)`` is three linear layers 784->1024->1024->10 with the
activation after every layer but the last. Per sample, forward: a linear layer is
2 x in x out FLOP (+ out with a bias), an activation 1 FLOP per element (the same accounting
as :mod:`perfmodel.workloads.convnet`).

>>> m = MLPModel(name="mlp-mnist", widths=(784, 1024, 1024, 10))
>>> m.n_params, m.forward_macs
(1863690, 1861632)
"""

from __future__ import annotations

from dataclasses import dataclass

from perfmodel.errors import ModelError
from perfmodel.workloads._fields import check_bool, check_choice, check_int, show
from perfmodel.workloads.convnet import LayerCost

__all__ = ["MLPModel", "ACTIVATIONS"]

ACTIVATIONS = ("relu", "gelu", "tanh", "sigmoid", "none")


@dataclass(frozen=True, slots=True, kw_only=True)
class MLPModel:
    """Layer widths from input to output; ``activation`` after each hidden layer."""

    name: str
    widths: tuple[int, ...]
    activation: str = "relu"
    bias: bool = True
    description: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        where = f"model '{self.name}'"
        if not isinstance(self.widths, tuple | list) or len(self.widths) < 2:
            raise ModelError(f"{where} widths: expected at least two widths (input and output), "
                             f"got {show(self.widths)}")
        object.__setattr__(self, "widths", tuple(self.widths))
        for w in self.widths:
            check_int(where, "widths", w)
        check_choice(where, "activation", self.activation, ACTIVATIONS)
        check_bool(where, "bias", self.bias)

    family = property(lambda self: "mlp", doc="Model family: 'mlp'.")

    @property
    def input_shape(self) -> tuple[int]:
        return (self.widths[0],)

    def linear_shapes(self) -> tuple[tuple[str, int, int], ...]:
        """``(name, in_features, out_features)`` of each layer: fc0, fc1, ..."""
        return tuple((f"fc{i}", a, b) for i, (a, b) in enumerate(zip(self.widths, self.widths[1:])))

    def layer_costs(self) -> tuple[LayerCost, ...]:
        costs = []
        shapes = self.linear_shapes()
        for i, (name, a, b) in enumerate(shapes):
            bias = b if self.bias else 0
            costs.append(LayerCost(name, "linear", (a,), (b,), a * b + bias, a * b,
                                   2 * a * b + bias))
            if i < len(shapes) - 1 and self.activation != "none":
                costs.append(LayerCost(f"{name}.{self.activation}", self.activation, (b,), (b,),
                                       0, 0, b))
        return tuple(costs)

    @property
    def n_params(self) -> int:
        return sum(c.n_params for c in self.layer_costs())

    @property
    def forward_macs(self) -> int:
        return sum(c.forward_macs for c in self.layer_costs())

    @property
    def forward_flops(self) -> int:
        return sum(c.forward_flops for c in self.layer_costs())

    def summary(self) -> tuple[tuple[str, object], ...]:
        return (("name", self.name), ("family", self.family), ("description", self.description),
                ("widths", "-".join(map(str, self.widths))), ("activation", self.activation),
                ("bias", self.bias), ("params_total", self.n_params),
                ("forward_macs", self.forward_macs), ("forward_flops", self.forward_flops),
                ("source", self.source))
