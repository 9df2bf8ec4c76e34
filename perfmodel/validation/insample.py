"""The in-sample datasets: published runs the model was developed against.

Something of the model was fitted or tuned by hand on each of these, so their errors say how
well the model describes what it has seen, not how well it predicts; the held-out datasets
(:mod:`.heldout`) say that.
"""

from __future__ import annotations

from perfmodel.plan import Plan as _plan
from perfmodel.validation.flops import megatron_core_flops, narayanan_flops
from perfmodel.validation.results import IN_SAMPLE, Dataset, ValidationCase
from perfmodel.validation.results import read_rows as _rows

__all__ = ["DATASETS"]


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
                                    system="dgx-a100", plan=plan, group="a100"))
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
                                    system=system, plan=plan, calibration=calibration, note=note,
                                    group="a100" if "A100" in row["system"] else "v100"))
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
                                    system="dgx-h100", plan=plan, group="h100-bf16"))
    return cases


DATASETS = {
    "narayanan2021-table1": Dataset(
        "GPT 1.7B-1T on 32-3072 A100 80GB (Selene), seconds per iteration from achieved TFLOP/s",
        "Narayanan et al. SC'21 Table 1 and eq. (3); configurations from NVIDIA/Megatron-LM "
        "examples/sc21 (perfmodel/data/validation/" + _NARAYANAN_FILE + ")",
        _narayanan_cases,
        ("measured seconds = 96 B s l h^2 (1 + s/(6h) + V/(16 l h)) / (TFLOP/s per GPU x 1e12 x GPUs)",
         "overlap of the gradient all-reduce where the run script used torch DDP; interleaved schedule "
         "where it set --num-layers-per-virtual-pipeline-stage"),
        IN_SAMPLE, "the megatron stack's profile (kernel fusion, scatter-gather) and the A100 placement were "
        "developed while comparing against these runs; nothing fitted per case"),
    "megatron2020": Dataset(
        "Megatron-LM 2020: GPT-2 1B-8B, model parallel on DGX-2 (V100) and DGX A100, 128-way data parallel",
        "NVIDIA/Megatron-LM images/tables.tex and README @5281919420ac; nv-adlr.github.io Megatron v1.0 "
        "blog (perfmodel/data/validation/" + _MEGATRON2020_FILE + ")",
        _megatron2020_cases,
        ("the 1B single-A100 run calibrated the megatron stack's gemm_rate_scale: marked calibration, "
         "excluded from mean and max",
         "DGX-2 GPUs modelled with the v100-sxm2-32gb spec (no V100 SXM3 spec is bundled); the four "
         "DGX-2H rows of the v1.0 blog (450 W V100s, older software) also run on dgx-2",
         "seq 1024, vocab 51200, full recomputation, fp16, gradient all-reduce after backward (no overlap)"),
        IN_SAMPLE, "the megatron stack's gemm_rate_scale (86.5 % of the A100 shape-model rate) was fitted on the 1B single-A100 run"),
    "megatron-core-h100": Dataset(
        "Megatron-Core r0.8.0 on H100: GPT 1.7B-462B on 48-6144 GPUs, seconds per iteration from TFLOP/s per GPU",
        "NVIDIA/Megatron-LM README @d98e8a64 'Performance Benchmarking'; FLOP count of Megatron-LM r0.8.0 "
        "megatron/training/training.py (perfmodel/data/validation/" + _MCORE_FILE + ")",
        _megatron_core_cases,
        ("measured seconds = 12 B s L h^2 ((1 + g/a + s/h) + f/h + V/(2 L h)) / (TFLOP/s per GPU x 1e12 x GPUs)",
         "assumed: micro-batch 1, 1F1B schedule, ZeRO-1 (distributed optimizer), sequence parallel when tp > 1, "
         "gradient reduce overlapped, no recomputation, bf16"),
        IN_SAMPLE, "the megatron-core stack (TP-comm and distributed-optimizer overlap) was built against these runs"),
}


