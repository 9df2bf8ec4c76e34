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

from perfmodel.errors import (
    InputFileError,
    MissingSpecError,
    ModelError,
    NoCrossoverError,
    PerfModelError,
    PlanError,
    SpecError,
    SweepError,
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
    "predict": "perfmodel.prediction",
    "layer_kernels": "perfmodel.prediction.detail",
    "validate": "perfmodel.validation",
    "sweep": "perfmodel.sweeps",
    "optimize": "perfmodel.sweeps.search",
    "calibrate_nccl": "perfmodel.calibrate",
    "calibrate_gemm": "perfmodel.calibrate",
    "find_crossover": "perfmodel.crossover.find",
    "compare_devices": "perfmodel.compare.devices",
    "compare_topologies": "perfmodel.topologies.compare",
    "pcie_contention_story": "perfmodel.compare.pcie",
    "load_task_graph": "perfmodel.tasks.graph",
    "schedule_tasks": "perfmodel.tasks.schedule",
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
    "SweepError",
    "NoCrossoverError",
    *_LAZY,
]

# No public name is also the name of a submodule: importing a submodule binds it as an attribute of
# this package, which would replace a same-named function (hence perfmodel.prediction for predict,
# perfmodel.validation, perfmodel.sweeps, perfmodel.sweeps.search; tests/test_import.py checks).


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'perfmodel' has no attribute '{name}'")


def __dir__():
    return sorted(set(globals()) | set(__all__))
