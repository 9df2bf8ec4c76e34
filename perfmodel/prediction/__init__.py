"""Step-time prediction: ``predict(model, system, plan) -> Prediction``."""

from __future__ import annotations

from perfmodel.plan import Plan, resolve
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
    if isinstance(system, str):
        system = load_system(system)
    from perfmodel.prediction.choose import predict_with_defaults

    plan = (plan or Plan()).replace(**plan_fields) if plan_fields else (plan or Plan())
    if isinstance(model, TransformerModel):
        from perfmodel.prediction.step import predict_transformer as run
    else:
        from perfmodel.prediction.dense import predict_dense as run
    return predict_with_defaults(model, system, plan, run, resolve)
