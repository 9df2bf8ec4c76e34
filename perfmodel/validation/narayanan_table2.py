"""Held-out: Narayanan et al. SC'21 Table 2, PTD parallelism vs ZeRO-3 on up to 2240 A100s.

``megatron_narayanan2021_table2_zero3_vs_ptdp_a100.csv``: GPT-3 175B and the 530B model trained
with PTD parallelism (Megatron-LM: tensor x pipeline model parallelism, data parallelism across
copies) and with ZeRO-3 without model parallelism (sharded data parallelism over every GPU), at a
fixed global batch as the GPU count doubles. Nothing of the model was fitted or tuned on it; the
same paper's Table 1 is in-sample (:mod:`.insample`).

Plans: PTD rows take their Table 1 model's run script where one exists (530B: interleaved, one
layer per virtual stage, Megatron's local DDP, no overlap) and otherwise perfmodel's defaults
(175B: 1F1B, TP 8 x PP 12 = the table's model-parallel size 96); every row fp16 with full
recomputation, as all of the paper's runs. ZeRO-3 rows run the ``deepspeed-2021`` stack (the
DeepSpeed of the paper's time, v0.3, with its configuration defaults: ZeRO-3 tensor by tensor,
gradients all-reduced in buckets) at ZeRO stage 3 with the table's micro-batch (one micro-batch per
GPU per step in every row).
"""

from __future__ import annotations

from perfmodel.plan import Plan
from perfmodel.validation.flops import narayanan_flops
from perfmodel.validation.results import HELD_OUT, Dataset, ValidationCase, read_rows

__all__ = ["DATASETS", "TABLE2_FILE"]

TABLE2_FILE = "megatron_narayanan2021_table2_zero3_vs_ptdp_a100.csv"
_SEQ, _VOCAB = 2048, 51200  # Table 1's sequence and vocabulary (the paper's GPT models)
# model-parallel size -> (tp, pp, schedule, virtual stages): Table 1's 530B script
# (examples/sc21/run_table_1.sh: --num-layers-per-virtual-pipeline-stage 1, 105 / 35 = 3 layers a stage)
_PTD = {96: (8, 12, "1f1b", 1), 280: (8, 35, "interleaved", 3)}
_PRESET = {"174.6": "gpt3-175b", "529.6": "megatron-530b"}


def _cases() -> list:
    from perfmodel.workloads import load_model

    out = []
    for row in read_rows(TABLE2_FILE):
        n, gb, mb = int(row["num_gpus"]), int(row["global_batch_size"]), int(row["micro_batch_size"])
        model = load_model(_PRESET[row["params_billion"]])
        measured = narayanan_flops(gb, _SEQ, model.n_layers, model.hidden, _VOCAB) / (
            float(row["achieved_tflops_per_gpu"]) * 1e12 * n)
        common = dict(devices=n, micro_batch=mb, global_batch=gb, seq=_SEQ, dtype="fp16", recompute="full")
        if row["scheme"].startswith("PTD"):
            tp, pp, schedule, virtual = _PTD[int(row["model_parallel_size"])]
            plan = Plan(tp=tp, pp=pp, schedule=schedule, virtual_stages=virtual, overlap=False, stack="megatron",
                        **common)
            name = f"{model.name} PTD tp{tp} pp{pp} ({n} GPUs)"
        else:
            plan = Plan(zero=3, stack="deepspeed-2021", **common)
            name = f"{model.name} ZeRO-3 ({n} GPUs)"
        out.append(ValidationCase(case=name, measured_s=measured, model=model, system="dgx-a100", plan=plan,
                                  group="a100", note=row["scheme"]))
    return out


DATASETS = {
    "narayanan2021-table2": Dataset(
        "GPT-3 175B and 530B with PTD parallelism and with ZeRO-3 on 384-2240 A100 80GB (Selene), fixed batch",
        "Narayanan et al. SC'21 Table 2 and eq. (3) (perfmodel/data/validation/" + TABLE2_FILE + ")",
        _cases,
        ("measured seconds = 96 B s l h^2 (1 + s/(6h) + V/(16 l h)) / (TFLOP/s per GPU x 1e12 x GPUs)",
         "PTD: Table 1's run script where it has the model (530B), else perfmodel's defaults (175B: 1F1B); "
         "ZeRO-3: the deepspeed-2021 stack (DeepSpeed v0.3 and its defaults), stage 3, no model parallelism; "
         "all fp16 with full recomputation"),
        HELD_OUT, "nothing"),
}
