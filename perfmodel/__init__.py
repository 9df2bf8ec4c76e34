"""perfmodel: an analytical performance model for distributed deep-learning training.

    import perfmodel as pm
    system = pm.load_system("dgx-a100")

``import perfmodel`` imports only the standard library; numpy, sympy, pandas, typer and rich
load when a function that needs them runs. The public surface is ``__all__``.
"""

import importlib

from perfmodel.errors import (
    InputFileError,
    MissingSpecError,
    ModelError,
    PerfModelError,
    PlanError,
    SpecError,
    UnitError,
    UnknownNameError,
)

__version__ = "0.1.0"

# name -> module that defines it; imported on first attribute access
_LAZY = {
    "load_system": "perfmodel.specs.registry",
    "load_device": "perfmodel.specs.registry",
    "load_link": "perfmodel.specs.registry",
    "load_spec": "perfmodel.specs.registry",
    "parse_quantity": "perfmodel.units",
    "format_quantity": "perfmodel.units",
}

__all__ = [
    "__version__",
    "PerfModelError",
    "UnitError",
    "SpecError",
    "MissingSpecError",
    "UnknownNameError",
    "PlanError",
    "ModelError",
    "InputFileError",
    *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'perfmodel' has no attribute '{name}'")


def __dir__():
    return sorted(set(globals()) | set(__all__))
