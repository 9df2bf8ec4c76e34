r"""Validation against published measurements: ``validate(dataset) -> ValidationResult``.

Each dataset reads the project's own copy of the published numbers (CSV files with a ``source``
column in ``perfmodel/data/validation/``), builds the model, system and plan of every run,
predicts its step time and reports the signed relative error
:math:`\epsilon = t_\mathrm{pred} / t_\mathrm{meas} - 1` per case and the mean and max of
:math:`|\epsilon|` per dataset.

Datasets:

``narayanan2021-table1``
    Narayanan et al., SC'21, Table 1: GPT 1.7B-1T on 32-3072 A100 80GB (Selene). The paper gives
    achieved TFLOP/s per GPU :math:`X`; seconds per iteration follow from its FLOP count, eq. (3),
    :math:`F = 96 B s l h^2 (1 + s/(6h) + V/(16 l h))`, as :math:`t = F / (X \cdot 10^{12} n)`.
``megatron2020``
    Measured iteration times of Megatron-LM in 2020 (GPT-2 1B-8B, model-parallel 1-8 GPUs on a
    DGX-2 and a DGX A100, and 128-way data parallel on DGX A100s).
``megatron-core-h100``
    Megatron-Core r0.8.0 weak scaling on H100 (1.7B-462B, 48-6144 GPUs): TFLOP/s per GPU turned
    into seconds per iteration with Megatron-Core's own FLOP count of that release.

One case was used for calibration: the single-A100 1B run of ``megatron2020`` fixed the
``megatron`` stack's ``gemm_rate_scale``. It is reported with ``calibration: true`` and left
out of that dataset's error statistics.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from importlib import resources
from typing import Callable

from perfmodel.errors import InputFileError, UnknownNameError, did_you_mean

__all__ = ["validate", "dataset_names", "dataset_cases", "ValidationCase", "CaseResult",
           "ValidationResult", "narayanan_flops", "megatron_core_flops"]


# -- FLOP counts the publications used to turn TFLOP/s into seconds -------------------------------

def narayanan_flops(batch: int, seq: int, layers: int, hidden: int, vocab: int) -> float:
    r"""FLOPs of one iteration of a GPT model with full activation recomputation.

    .. math:: F = 96 B s l h^2 \left(1 + \frac{s}{6h} + \frac{V}{16 l h}\right)

    ``batch`` :math:`B` sequences of ``seq`` :math:`s` tokens, ``layers`` :math:`l`, ``hidden``
    :math:`h`, ``vocab`` :math:`V`. Source: Narayanan et al., "Efficient Large-Scale Language
    Model Training on GPU Clusters Using Megatron-LM", SC'21, Section 5.1, eq. (3).

    >>> round(narayanan_flops(512, 2048, 24, 2304, 51200) / 1e15, 2)  # 1.7B row of Table 1
    15.47
    """
    B, s, l, h, V = batch, seq, layers, hidden, vocab
    return 96 * B * s * l * h**2 * (1 + s / (6 * h) + V / (16 * l * h))


def megatron_core_flops(batch: int, seq: int, layers: int, hidden: int, vocab: int, heads: int,
                        query_groups: int | None = None, ffn_hidden: int | None = None,
                        swiglu: bool = False) -> float:
    r"""FLOPs of one iteration as Megatron-Core r0.8.0 counts them (no recomputation term).

    .. math:: F = 12 B s L h^2 \left(\left(1 + \frac{g}{a} + \frac{s}{h}\right)
              + \frac{f}{h}\,\gamma + \frac{V}{2 L h}\right)

    with :math:`g` query groups, :math:`a` attention heads, :math:`f` the MLP width and
    :math:`\gamma = 3/2` for a gated (SwiGLU) MLP, else 1; the query projection is assumed as wide
    as the hidden size (``kv_channels * heads == hidden``, true for these models). Source:
    ``num_floating_point_operations(args, batch_size)`` in megatron/training/training.py of
    Megatron-LM r0.8.0 (read as vendored with megatron_core 0.8.0 in PKU-YuanGroup/Open-Sora-Plan,
    megatron/training/training.py @1a7697ba; package_info.py @850df260 says version 0.8.0).
    ``vocab`` stands for ``padded_vocab_size`` (131072 needs no padding).

    >>> round(megatron_core_flops(192, 4096, 24, 2048, 131072, 16) / 1e15, 2)  # the 1.7B run
    8.87
    """
    B, s, L, h, V = batch, seq, layers, hidden, vocab
    g = heads if query_groups is None else query_groups
    f = 4 * h if ffn_hidden is None else ffn_hidden
    gated = 1.5 if swiglu else 1.0
    return 12 * B * s * L * h**2 * ((1 + g / heads + s / h) + f / h * gated + V / (2 * L * h))


# -- cases and results -----------------------------------------------------------------------------

@dataclass(frozen=True)
class ValidationCase:
    """One published run: what was measured and the model, system and plan that reproduce it."""

    case: str
    measured_s: float
    model: object
    system: str
    plan: object
    calibration: bool = False
    note: str = ""


@dataclass(frozen=True)
class CaseResult:
    case: str
    measured_s: float
    predicted_s: float
    calibration: bool = False
    note: str = ""

    @property
    def error(self) -> float:
        """Signed relative error, predicted / measured - 1."""
        return self.predicted_s / self.measured_s - 1

    def to_dict(self) -> dict:
        return {"case": self.case, "measured_s": self.measured_s, "predicted_s": self.predicted_s,
                "error": self.error, "calibration": self.calibration}


@dataclass(frozen=True)
class ValidationResult:
    """A dataset's cases with their errors; statistics leave the calibration case out."""

    dataset: str
    description: str
    source: str
    cases: tuple[CaseResult, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def scored(self) -> tuple[CaseResult, ...]:
        return tuple(c for c in self.cases if not c.calibration)

    @property
    def mean_abs_error(self) -> float:
        scored = self.scored
        return sum(abs(c.error) for c in scored) / len(scored)

    @property
    def max_abs_error(self) -> float:
        return max(abs(c.error) for c in self.scored)

    def to_dict(self) -> dict:
        """``{"dataset", "cases", "mean_abs_error", "max_abs_error"}`` (issue 3's JSON shape)."""
        return {"dataset": self.dataset, "cases": [c.to_dict() for c in self.cases],
                "mean_abs_error": self.mean_abs_error, "max_abs_error": self.max_abs_error}


# -- reading the bundled CSV copies ------------------------------------------------------------------

def _rows(filename: str) -> list[dict[str, str]]:
    resource = resources.files("perfmodel").joinpath("data", "validation", filename)
    try:
        text = resource.read_text(encoding="utf-8")
    except (FileNotFoundError, OSError) as exc:
        raise InputFileError(f"validation data perfmodel/data/validation/{filename}: cannot be read ({exc})") from None
    return list(csv.DictReader(text.splitlines()))


def _plan(**fields):
    from perfmodel.plan import Plan

    return Plan(**fields)


# -- narayanan2021-table1 ----------------------------------------------------------------------------

_NARAYANAN_FILE = "megatron_narayanan2021_table1_weak_scaling_a100.csv"


def _narayanan_cases() -> list[ValidationCase]:
    from perfmodel.workloads import load_model

    cases = []
    for row in _rows(_NARAYANAN_FILE):
        n = int(row["num_gpus"])
        B = int(row["global_batch_size"])
        s, V = int(row["seq_len"]), int(row["vocab_size"])
        layers, hidden = int(row["num_layers"]), int(row["hidden_size"])
        tp, pp = int(row["tensor_parallel"]), int(row["pipeline_parallel"])
        measured = narayanan_flops(B, s, layers, hidden, V) / (float(row["achieved_tflops_per_gpu"]) * 1e12 * n)
        # the SC'21 run script: --num-layers-per-virtual-pipeline-stage k gives the interleaved
        # schedule with layers / pp / k model chunks per device; without it, 1F1B
        extra = row["extra_args_sc21_script"].split()
        flag = "--num-layers-per-virtual-pipeline-stage"
        if flag in extra:
            per_chunk = int(extra[extra.index(flag) + 1])
            schedule, virtual = "interleaved", layers // pp // per_chunk
        else:
            schedule, virtual = "1f1b", 1
        plan = _plan(devices=n, tp=tp, pp=pp, micro_batch=int(row["micro_batch_size_sc21_script"]),
                     global_batch=B, seq=s, dtype="fp16", recompute="full", schedule=schedule,
                     virtual_stages=virtual, overlap=row["ddp_impl_sc21_script"] == "torch",
                     stack="megatron")
        cases.append(ValidationCase(case=f"{row['model_case']} ({n} GPUs)", measured_s=measured,
                                    model=load_model(f"megatron-{row['model_case'].lower()}"),
                                    system="dgx-a100", plan=plan))
    return cases


# -- megatron2020 ------------------------------------------------------------------------------------

_MEGATRON2020_FILE = "megatron_2020_iteration_time_v100_a100.csv"
# the CSV's system labels -> bundled systems. The DGX-2H (Megatron v1.0 blog) is a DGX-2 whose
# V100s run at 450 W and higher clocks; no such device is bundled, so it runs as a DGX-2.
_SYSTEMS_2020 = {"DGX-2 (V100)": "dgx-2", "DGX-2H (V100)": "dgx-2", "DGX-A100": "dgx-a100"}
_SEQ_2020, _VOCAB_2020 = 1024, 51200  # README of NVIDIA/Megatron-LM @5281919420ac


def _megatron2020_cases() -> list[ValidationCase]:
    from perfmodel.specs.registry import load_system
    from perfmodel.workloads.transformer import TransformerModel

    rows = _rows(_MEGATRON2020_FILE)
    shapes = {row["params_billion"]: row for row in rows if row["case"]}
    cases = []
    for row in rows:
        note = ""
        shape = row
        if not row["case"]:
            # The v1.0 blog table gives parameter counts (1.2, 2.0, 4.2, 8.7 B) but no shapes:
            # they are tables.tex's 1.16, 2.03, 4.24, 8.67 B configurations rounded.
            shape = next(r for p, r in shapes.items() if round(float(p), 1) == float(row["params_billion"]))
            note = (f"Megatron v1.0 blog row (DGX-2H); shape of tables.tex case {shape['case']} "
                    f"({shape['params_billion']} B params), run on dgx-2")
        label = shape["case"]
        layers, hidden, heads = int(shape["num_layers"]), int(shape["hidden_size"]), int(shape["attention_heads"])
        model = TransformerModel(name=f"gpt2-megatron2020-{label.lower()}", n_layers=layers, hidden=hidden,
                                 n_heads=heads, vocab=_VOCAB_2020, seq_len=_SEQ_2020,
                                 description=f"Megatron-LM 2020 GPT-2 {label}: {layers} layers, hidden {hidden}, {heads} heads")
        tp, dp, n = int(row["model_parallel_partitions"]), int(row["data_parallel_size"]), int(row["num_gpus"])
        batch = int(row["batch_size"])
        system = _SYSTEMS_2020[row["system"]]
        if n == 1:  # a single GPU: the device alone, no fabric
            system = load_system(system).device.name
        # Megatron-LM 2020 (--DDP-impl local) all-reduces the gradients after the whole backward
        # pass (megatron/training.py: model.allreduce_params after backward), so no overlap
        plan = _plan(devices=n, tp=tp, dp=dp, micro_batch=batch // dp, global_batch=batch, seq=_SEQ_2020,
                     dtype="fp16", recompute="full", overlap=False, stack="megatron")
        where = row["system"] + (" v1.0 blog" if not row["case"] else "")
        name = f"{row['case'] or row['params_billion'] + 'B'} {where} ({n} GPU{'s' if n > 1 else ''})"
        calibration = row["case"] == "1B" and row["system"] == "DGX-A100" and n == 1
        if calibration:
            note = "calibrated the megatron stack's gemm_rate_scale; excluded from the statistics"
        cases.append(ValidationCase(case=name, measured_s=float(row["iteration_time_ms"]) / 1e3, model=model,
                                    system=system, plan=plan, calibration=calibration, note=note))
    return cases


# -- megatron-core-h100 ------------------------------------------------------------------------------

_MCORE_FILE = "megatron_core_h100_weak_scaling_2024.csv"


def _megatron_core_cases() -> list[ValidationCase]:
    from perfmodel.workloads.transformer import TransformerModel

    cases = []
    for row in _rows(_MCORE_FILE):
        layers, hidden, heads = int(row["num_layers"]), int(row["hidden_size"]), int(row["attention_heads"])
        s, V = int(row["seq_len"]), int(row["vocab_size"])
        tp, pp, dp, n = (int(row[k]) for k in ("tensor_parallel", "pipeline_parallel", "data_parallel", "num_gpus"))
        B = int(row["batch_size"])
        measured = megatron_core_flops(B, s, layers, hidden, V, heads) / (float(row["per_gpu_tflops"]) * 1e12 * n)
        # GPT with a 4h GELU MLP, multi-head attention and an untied output layer: the README's
        # sizes (1.7B, 7.1B, 16B, ...) are the parameter counts of exactly that shape
        model = TransformerModel(name=f"gpt-mcore-{row['model_size'].lower()}", n_layers=layers, hidden=hidden,
                                 n_heads=heads, vocab=V, seq_len=s, tied_embeddings=False,
                                 description=f"Megatron-Core benchmark GPT {row['model_size']}")
        # micro-batch 1 is assumed (the README does not state it); --overlap-param-gather in the
        # benchmark's options works only with Megatron's distributed optimizer, i.e. ZeRO-1
        plan = _plan(devices=n, tp=tp, pp=pp, dp=dp, micro_batch=1, global_batch=B, seq=s, dtype="bf16",
                     recompute="none", sequence_parallel=tp > 1, overlap=True, zero=1, stack="megatron-core")
        cases.append(ValidationCase(case=f"{row['model_size']} ({n} GPUs)", measured_s=measured, model=model,
                                    system="dgx-h100", plan=plan))
    return cases


@dataclass(frozen=True)
class _Dataset:
    description: str
    source: str
    build: Callable[[], list[ValidationCase]]
    notes: tuple[str, ...] = ()


_DATASETS = {
    "narayanan2021-table1": _Dataset(
        "GPT 1.7B-1T on 32-3072 A100 80GB (Selene), seconds per iteration from achieved TFLOP/s",
        "Narayanan et al. SC'21 Table 1 and eq. (3); configurations from NVIDIA/Megatron-LM "
        "examples/sc21 (perfmodel/data/validation/" + _NARAYANAN_FILE + ")",
        _narayanan_cases,
        ("measured seconds = 96 B s l h^2 (1 + s/(6h) + V/(16 l h)) / (TFLOP/s per GPU x 1e12 x GPUs)",
         "overlap of the gradient all-reduce where the run script used torch DDP; interleaved schedule "
         "where it set --num-layers-per-virtual-pipeline-stage")),
    "megatron2020": _Dataset(
        "Megatron-LM 2020: GPT-2 1B-8B, model parallel on DGX-2 (V100) and DGX A100, 128-way data parallel",
        "NVIDIA/Megatron-LM images/tables.tex and README @5281919420ac; nv-adlr.github.io Megatron v1.0 "
        "blog (perfmodel/data/validation/" + _MEGATRON2020_FILE + ")",
        _megatron2020_cases,
        ("the 1B single-A100 run calibrated the megatron stack's gemm_rate_scale: marked calibration, "
         "excluded from mean and max",
         "DGX-2 GPUs modelled with the v100-sxm2-32gb spec (no V100 SXM3 spec is bundled); the four "
         "DGX-2H rows of the v1.0 blog (450 W V100s, older software) also run on dgx-2",
         "seq 1024, vocab 51200, full recomputation, fp16, gradient all-reduce after backward (no overlap)")),
    "megatron-core-h100": _Dataset(
        "Megatron-Core r0.8.0 on H100: GPT 1.7B-462B on 48-6144 GPUs, seconds per iteration from TFLOP/s per GPU",
        "NVIDIA/Megatron-LM README @d98e8a64 'Performance Benchmarking'; FLOP count of Megatron-LM r0.8.0 "
        "megatron/training/training.py (perfmodel/data/validation/" + _MCORE_FILE + ")",
        _megatron_core_cases,
        ("measured seconds = 12 B s L h^2 ((1 + g/a + s/h) + f/h + V/(2 L h)) / (TFLOP/s per GPU x 1e12 x GPUs)",
         "assumed: micro-batch 1, 1F1B schedule, ZeRO-1 (distributed optimizer), sequence parallel when tp > 1, "
         "gradient reduce overlapped, no recomputation, bf16")),
}


def dataset_names() -> tuple[str, ...]:
    """The bundled validation datasets."""
    return tuple(_DATASETS)


def _dataset(name: str) -> _Dataset:
    if name not in _DATASETS:
        raise UnknownNameError(f"unknown dataset '{name}'{did_you_mean(name, _DATASETS)}"
                               f" (bundled: {', '.join(_DATASETS)})")
    return _DATASETS[name]


def dataset_cases(name: str) -> tuple[ValidationCase, ...]:
    """The cases of dataset ``name``: measured seconds, model, system and plan of each run."""
    return tuple(_dataset(name).build())


def _validate_one(name: str) -> ValidationResult:
    from perfmodel.prediction import predict

    ds = _dataset(name)
    results = []
    for c in ds.build():
        r = predict(c.model, c.system, c.plan)
        results.append(CaseResult(case=c.case, measured_s=c.measured_s, predicted_s=r.step_time_s,
                                  calibration=c.calibration, note=c.note))
    return ValidationResult(dataset=name, description=ds.description, source=ds.source,
                            cases=tuple(results), notes=ds.notes)


def validate(dataset: str | None = None) -> ValidationResult | tuple[ValidationResult, ...]:
    """Predict every case of ``dataset`` (all datasets when ``None``) and compare.

    >>> r = validate("narayanan2021-table1")
    >>> len(r.cases), sorted(r.to_dict())
    (10, ['cases', 'dataset', 'max_abs_error', 'mean_abs_error'])
    """
    if dataset is None:
        return tuple(_validate_one(name) for name in _DATASETS)
    _dataset(dataset)
    return _validate_one(dataset)
