"""perfmodel: an analytical performance model for distributed deep-learning training.

    import perfmodel as pm
    system = pm.load_system("dgx-a100"); model = pm.load_model("gpt3-175b")
    plan = pm.Plan(tp=8, pp=8, dp=16, micro_batch=1, global_batch=1536, recompute="selective")
    r = pm.predict(model, system, plan)      # frozen Prediction: r.step_time_s, r.breakdown, r.to_frame()
    pm.validate("narayanan2021-table1")      # measured vs predicted on published runs

``import perfmodel`` imports only the standard library; numpy, sympy, pandas, typer and rich
load when a function that needs them runs. The public surface is ``__all__``.
"""

import importlib
import sys
import types

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
    "load_model": "perfmodel.workloads",
    "Plan": "perfmodel.plan",
    "predict": "perfmodel.predict",
    "validate": "perfmodel.validate",
    "sweep": "perfmodel.sweep",
    "optimize": "perfmodel.optimize",
    "calibrate_nccl": "perfmodel.calibrate",
    "calibrate_gemm": "perfmodel.calibrate",
    "find_crossover": "perfmodel.crossover",
    "compare_devices": "perfmodel.compare",
    "compare_topologies": "perfmodel.topologies",
    "pcie_contention_story": "perfmodel.pcie_contention",
    "load_task_graph": "perfmodel.taskgraph",
    "schedule_tasks": "perfmodel.tasks",
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


# Functions that share their name with a submodule (the subpackage perfmodel.predict, the module
# perfmodel.validate). Python's import system binds a submodule as an attribute of its package
# when it is first imported, which would make ``pm.predict`` the subpackage or the function
# depending on what was imported first; the package class below keeps the function. The
# submodules stay importable as usual (``from perfmodel.predict import predict``).
_FUNCTIONS_OVER_MODULES = frozenset({"predict", "validate", "sweep", "optimize"})


class _Package(types.ModuleType):
    def __setattr__(self, name, value):
        if name in _FUNCTIONS_OVER_MODULES and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'perfmodel' has no attribute '{name}'")


def __dir__():
    return sorted(set(globals()) | set(__all__))
