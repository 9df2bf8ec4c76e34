"""Training steps measured by this project on one H200 (``perfmodel/data/validation/h200/``).

``eager_runs.csv`` holds Hugging Face models trained in eager PyTorch (and one under torch.compile)
on the H200 this project's workplace lent it, timed by ``benchmarks/device/hopper_probe.py``. Two
datasets, by what each run was used for:

* ``h200-eager-profiled`` (in-sample): GPT-2 124M, whose kernel table was read to find what the
  model missed (a device curve of aligned GEMMs was timing the LM head's vocab-50257 GEMMs);
  torchvision ResNet-50, whose kernel table calibrated the GPU batch-norm and max-pool efficiencies
  of the pytorch-eager stack (and GPT-2 124M's its cast efficiency); BERT-large, whose error showed
  GPT-2's kernel inventory applied to an encoder and whose kernel table checked the encoder
  inventory written since; GPT-2 355M under torch.compile, whose kernel table showed Inductor
  padding the LM head and gave the pytorch-compile stack its GPT-2 kernel inventory and its fitted
  Inductor efficiency.
* ``h200-eager`` (held-out): the other runs, used for nothing but this report.

Model sizes the presets do not have are preset overrides (``layers=22;hidden=2048;...``). The
step time measured is the median step; the peak memory is in the file and checked in the tests.
"""

from __future__ import annotations

from perfmodel.plan import Plan
from perfmodel.validation.results import HELD_OUT, IN_SAMPLE, Dataset, ValidationCase, read_rows

__all__ = ["DATASETS", "H200_FILE", "h200_cases"]

H200_FILE = "h200/eager_runs.csv"


def _overrides(text: str) -> dict:
    pairs = [p.split("=") for p in text.split(";") if p.strip()]
    return {k.strip(): int(v) for k, v in pairs}


def h200_cases(dataset: str) -> list:
    """The ValidationCases of the rows of ``eager_runs.csv`` marked ``dataset`` (profiled or heldout)."""
    from perfmodel.workloads import load_model

    out = []
    for row in read_rows(H200_FILE):
        if row["dataset"] != dataset:
            continue
        b = int(row["micro_batch"])
        seq = {"seq": int(row["seq"])} if row["seq"] else {}  # a CNN has none
        plan = Plan(devices=1, micro_batch=b, global_batch=b, dtype=row["dtype"], stack=row["stack"], **seq)
        model = load_model(row["model"], **_overrides(row["overrides"]))
        out.append(ValidationCase(case=row["case"], measured_s=float(row["step_ms"]) / 1e3, model=model,
                                  system=row["system"], plan=plan, group=row["group"], note=row["stack"]))
    return out


_SOURCE = ("this project's measurements on one H200 SXM, 2026-12-04 (benchmarks/device/hopper_probe.py; "
           "perfmodel/data/validation/" + H200_FILE + ")")
_NOTES = ("measured seconds: the median of 10 steps after 3 warm-ups (CUDA events)",
          "Hugging Face models built from their configs: fp32 parameters, bf16 autocast, SDPA attention, fused AdamW; "
          "ResNet-50: torchvision, channels_last, bf16 autocast, SGD with momentum")

DATASETS = {
    "h200-eager-profiled": Dataset(
        "GPT-2 124M, ResNet-50, BERT-large in eager PyTorch and GPT-2 355M compiled on one H200 (read to develop)",
        _SOURCE, lambda: h200_cases("profiled"), _NOTES, IN_SAMPLE,
        "the pytorch-eager stack's GPU batch-norm and max-pool efficiencies (ResNet-50's kernel table) and its "
        "cast efficiency (GPT-2 124M's); the H200's attention-dropout cost (GPT-2 124M's and BERT-large's "
        "tables); the pytorch-compile stack's GPT-2 kernel inventory and its one Inductor efficiency, 76.1 % "
        "(GPT-2 355M compiled's table); GPT-2 124M's table also showed the LM head's misaligned GEMMs timed at "
        "aligned rates, BERT-large's error GPT-2's inventory applied to an encoder"),
    "h200-eager": Dataset(
        "GPT-2 355M/774M and a TinyLlama-shaped 1.1B in eager PyTorch, GPT-2 124M under torch.compile, one H200",
        _SOURCE, lambda: h200_cases("heldout"), _NOTES, HELD_OUT, "nothing"),
}
