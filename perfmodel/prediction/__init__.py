"""Step-time prediction: ``predict(model, system, plan) -> Prediction``."""

from __future__ import annotations

import math
import os

from perfmodel.errors import OUT_OF_RANGE, PlanError, SpecError, did_you_mean
from perfmodel.plan import Plan, plan_fields, resolve
from perfmodel.prediction.result import Prediction

__all__ = ["predict", "Prediction"]


def predict(model, system, plan: Plan | None = None, **plan_fields) -> Prediction:
    """Predict one optimizer step of ``model`` on ``system`` with ``plan``.

    ``model`` and ``system`` may be names or paths (loaded) or loaded objects; plan fields may
    also be given as keywords (``predict("gpt2-124m", "h100-sxm5-80gb", micro_batch=8)``).
    A plan without ``stack`` or ``micro_batch`` gets the defaults of
    :mod:`perfmodel.prediction.choose` (device generation's stack; fastest micro-batch that fits),
    listed in ``Prediction.chosen`` and ``Prediction.notes``.
    """
    from perfmodel.specs.registry import load_system
    from perfmodel.workloads import load_model
    from perfmodel.workloads.transformer import TransformerModel

    if not hasattr(model, "n_params"):
        model = load_model(model)
    if isinstance(system, (str, os.PathLike)):
        system = load_system(system)
    elif not hasattr(system, "devices_per_node"):
        raise SpecError(f"system: expected a system name, a path or a loaded system, got {system!r} "
                        f"({type(system).__name__})")
    from perfmodel.prediction.choose import predict_with_defaults

    plan = _plan(plan, plan_fields)
    if isinstance(model, TransformerModel):
        from perfmodel.prediction.step import predict_transformer as step
    else:
        from perfmodel.prediction.dense import predict_dense as step
    try:
        return check_finite(predict_with_defaults(model, system, plan, step, resolve))
    except (OverflowError, ZeroDivisionError) as exc:  # math.exp/log of an absurd spec value
        raise SpecError(f"{model.name} on {system.name}: {OUT_OF_RANGE} ({type(exc).__name__}: {exc})") from None


def _plan(plan, fields: dict) -> Plan:
    """The plan argument and keyword fields as one :class:`Plan` (anything else a PlanError)."""
    if plan is not None and not isinstance(plan, Plan):
        raise PlanError(f"plan: expected a perfmodel.Plan, got a {type(plan).__name__} (write Plan(**fields) or "
                        f"pass the fields as keywords)")
    known = plan_fields()
    for key in fields:
        if key not in known:
            raise PlanError(f"unknown plan field {key!r}{did_you_mean(str(key), known)} (fields: {', '.join(known)})")
    return (plan or Plan()).replace(**fields) if fields else (plan or Plan())


def check_finite(result: Prediction) -> Prediction:
    """``result`` when every number of it is finite; else a one-line SpecError (a spec value such as a
    bandwidth of 1e-320 B/s or a launch overhead of 1e307 s makes a time overflow to inf or NaN)."""
    isfinite = math.isfinite
    if (isfinite(result.step_time_s) and isfinite(result.comm_total_s) and isfinite(result.mfu)
            and isfinite(result.throughput) and all(isfinite(v) for v in result.breakdown_s.values())
            and all(isfinite(v) for v in result.memory_bytes_per_device.values())):
        return result
    numbers = {"step time": result.step_time_s, "communication time": result.comm_total_s, "MFU": result.mfu,
               "throughput": result.throughput, **{f"{k} time": v for k, v in result.breakdown_s.items()},
               **{f"{k} memory": v for k, v in result.memory_bytes_per_device.items()}}
    for what, value in numbers.items():
        if not math.isfinite(value):
            raise SpecError(f"{result.model} on {result.system}: the {what} comes out as {value!r}, not a finite "
                            f"number: {OUT_OF_RANGE}")
    return result
