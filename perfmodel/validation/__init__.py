r"""Validation against published measurements: ``validate(dataset) -> ValidationResult``.

Each dataset reads the project's own copy of the published numbers (CSV files with a ``source``
column in ``perfmodel/data/validation/``), builds the model, system and plan of every run,
predicts its step time and reports the signed relative error
:math:`\epsilon = t_\mathrm{pred} / t_\mathrm{meas} - 1` per case, and the mean and max of
:math:`|\epsilon|`, the mean signed error, and the same per hardware/precision group.

Every dataset is either **in-sample** (something of the model was fitted or tuned on it; the
dataset says what) or **held-out** (used for nothing but this report). In-sample errors say how
well the model describes what it has seen; held-out errors say how well it predicts.

In-sample (:mod:`.insample`): ``narayanan2021-table1`` (Megatron-LM SC'21 Table 1, A100),
``megatron2020`` (Megatron-LM 2020, V100 and A100; its single-A100 1B run fixed the ``megatron``
stack's ``gemm_rate_scale``, reported with ``calibration: true`` and left out of the
statistics), ``megatron-core-h100`` (Megatron-Core r0.8.0 on H100).

Held-out (:mod:`.heldout`): ``heldout-2022-2024`` (BLOOM-176B, MPT on A100 and H100 with FSDP,
Nemotron-4 BF16 and FP8, Grok-1, MaxText, Gaudi 2). Runs the model cannot express yet (MoE,
hardware without a spec file, a FLOP convention the source does not state) are listed as skipped
with the reason, never silently dropped.
"""

from __future__ import annotations

from perfmodel.errors import PlanError, UnknownNameError, did_you_mean
from perfmodel.validation.flops import megatron_core_flops, narayanan_flops
from perfmodel.validation.heldout import DATASETS as _HELD_OUT
from perfmodel.validation.heldout_cpu import DATASETS as _HELD_OUT_CPU
from perfmodel.validation.insample import DATASETS as _IN_SAMPLE
from perfmodel.validation.measured_h200 import DATASETS as _H200
from perfmodel.validation.narayanan_table2 import DATASETS as _TABLE2
from perfmodel.validation.results import (
    HELD_OUT,
    IN_SAMPLE,
    CaseResult,
    Dataset,
    SkippedCase,
    ValidationCase,
    ValidationResult,
)

__all__ = ["validate", "dataset_names", "dataset_cases", "ValidationCase", "CaseResult", "SkippedCase",
           "ValidationResult", "narayanan_flops", "megatron_core_flops", "IN_SAMPLE", "HELD_OUT"]

_ALL: dict[str, Dataset] = {**_IN_SAMPLE, **_HELD_OUT, **_HELD_OUT_CPU, **_H200, **_TABLE2}
# in-sample datasets first, then held-out ones (dataset_names() lists them in this order)
_DATASETS: dict[str, Dataset] = {k: v for kind in (IN_SAMPLE, HELD_OUT) for k, v in _ALL.items() if v.kind == kind}


def dataset_names(kind: str | None = None) -> tuple[str, ...]:
    """The bundled validation datasets (of ``kind`` "in-sample" or "held-out" when given)."""
    return tuple(name for name, ds in _DATASETS.items() if kind is None or ds.kind == kind)


def _dataset(name: str) -> Dataset:
    if name not in _DATASETS:
        raise UnknownNameError(f"unknown dataset '{name}'{did_you_mean(name, _DATASETS)}"
                               f" (bundled: {', '.join(_DATASETS)})")
    return _DATASETS[name]


def dataset_cases(name: str) -> tuple[ValidationCase, ...]:
    """The cases of dataset ``name`` the model can express: measured seconds, model, system, plan."""
    return tuple(c for c in _dataset(name).build() if isinstance(c, ValidationCase))


def _validate_one(name: str) -> ValidationResult:
    from perfmodel.prediction import predict

    ds = _dataset(name)
    results, skipped = [], []
    for c in ds.build():
        if isinstance(c, SkippedCase):
            skipped.append(c)
            continue
        try:
            r = predict(c.model, c.system, c.plan)
        except PlanError as exc:  # a plan the model cannot express yet (or a stack cannot run)
            skipped.append(SkippedCase(case=c.case, reason=f"plan not expressible yet: {exc}", group=c.group))
            continue
        results.append(CaseResult(case=c.case, measured_s=c.measured_s, predicted_s=r.step_time_s,
                                  calibration=c.calibration, note=c.note, group=c.group))
    return ValidationResult(dataset=name, description=ds.description, source=ds.source, cases=tuple(results),
                            notes=ds.notes, kind=ds.kind, fitted=ds.fitted, skipped=tuple(skipped))


def validate(dataset: str | None = None) -> ValidationResult | tuple[ValidationResult, ...]:
    """Predict every case of ``dataset`` (all datasets when ``None``) and compare.

    >>> r = validate("narayanan2021-table1")
    >>> len(r.cases), r.kind, sorted(r.to_dict())[:4]
    (10, 'in-sample', ['cases', 'dataset', 'fitted', 'groups'])
    """
    if dataset is None:
        return tuple(_validate_one(name) for name in _DATASETS)
    _dataset(dataset)
    return _validate_one(dataset)
