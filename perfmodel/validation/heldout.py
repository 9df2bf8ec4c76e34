"""The held-out dataset: published runs of 2022-2024 used for nothing but this report.

``heldout-2022-2024`` reads ``perfmodel/data/validation/heldout_published_runs.csv`` (each row with
its source, table and caveats; ``heldout_published_runs.md`` describes the sources). No number of
the model was fitted or tuned on these runs; a change that improves them must come from modelling
where the time goes, not from fitting to them.

Each row becomes a model, a bundled system and a plan as the source states them. What the source
does not state is assumed as written in the case's note. Runs the model cannot express yet are
reported as skipped with the reason: mixture-of-experts models, hardware without a bundled system
(TPU v5p/v5e/v6e pods, A100 40GB), rows whose metric is TFLOP/s under a FLOP convention the row
does not record, and rows whose plan the source leaves incomplete.
"""

from __future__ import annotations

from perfmodel.plan import Plan
from perfmodel.validation.results import HELD_OUT, Dataset, SkippedCase, ValidationCase, read_rows

__all__ = ["DATASETS", "HELDOUT_FILE"]

HELDOUT_FILE = "heldout_published_runs.csv"

# the source's hardware -> a bundled system (its node: 8 devices on one fabric, NICs per device)
_SYSTEMS = {
    "NVIDIA A100 80GB": "dgx-a100",
    "NVIDIA A100 80GB SXM (Jean Zay)": "dgx-a100",
    "NVIDIA H100 80GB": "dgx-h100",
    "Intel Gaudi 2 (HL-225H, HLS-Gaudi2 server)": "gaudi2-hls",
}
# the framework of the run -> the bundled software stack closest to it (LLM Foundry's MPT runs its
# own modules under FSDP, not Hugging Face eager code: the fsdp profile)
# (Intel's Gaudi fork of Megatron-DeepSpeed trains FP8 through Intel's Transformer Engine port:
# the TE recipe of megatron-core is the closest bundled stack)
_STACKS = (("Intel Gaudi Megatron-DeepSpeed", "megatron-core"), ("Megatron-DeepSpeed", "megatron"),
           ("llm-foundry", "fsdp"), ("NeMo", "megatron-core"))
# model families: the structure the sources (and their model cards) give
_FAMILIES = {
    # BLOOM: ALiBi (no position parameters), LayerNorm, GELU 4h, biases, tied embeddings; the
    # tokenizer's 250,680 tokens padded to 250,880 (bigscience tr11 README)
    "bloom": dict(positions="rotary", mlp="gelu", norm="layernorm", bias=True, tied_embeddings=True),
    # MPT: ALiBi, LayerNorm without bias, GELU 4h, no biases, tied embeddings (llm-foundry mpt yamls)
    "mpt": dict(positions="rotary", mlp="gelu", norm="layernorm", bias=False, tied_embeddings=True),
    # Nemotron-4: RoPE, LayerNorm, squared-ReLU MLP (one up projection, costed as GELU), no
    # biases, untied embeddings, GQA (Nemotron-4 15B/340B reports and NeMo recipes)
    "nemotron4": dict(positions="rotary", mlp="gelu", norm="layernorm", bias=False, tied_embeddings=False),
    # Llama 2: RoPE, RMSNorm, SwiGLU, no biases, untied embeddings
    "gaudi2_llama2": dict(positions="rotary", mlp="swiglu", norm="rmsnorm", bias=False, tied_embeddings=False),
    # Llama 3.1: the same structure, GQA (NVIDIA/dgxc-benchmarking llama3.1 yamls)
    "llama31": dict(positions="rotary", mlp="swiglu", norm="rmsnorm", bias=False, tied_embeddings=False),
}
_BLOOM_VOCAB = 250880


def _int(row, key, default=None):
    value = row[key].strip()
    return int(value) if value else default


def _skip_reason(row) -> str | None:
    if row["moe_experts"].strip():
        return "mixture of experts: not modelled yet (expert parallelism is issue 11)"
    if row["hardware"] not in _SYSTEMS:
        return f"no bundled system for '{row['hardware']}'"
    if row["metric"] not in ("seconds_per_step", "tokens_per_s_per_gpu", "tokens_per_s_total"):
        return f"metric '{row['metric']}': the FLOP convention behind it is not recorded, so no step time"
    if not all(row[k].strip() for k in ("layers", "hidden", "heads", "seq_len", "global_batch", "micro_batch", "tp")):
        return "the source leaves the model or the plan incomplete"
    if not any(tag in row["framework"] for tag, _ in _STACKS):
        return f"no bundled stack for '{row['framework']}'"
    return None


def _measured_s(row) -> float:
    value, n = float(row["value"]), int(row["n_devices"])
    tokens = int(row["global_batch"]) * int(row["seq_len"])
    return {"seconds_per_step": value, "tokens_per_s_per_gpu": tokens / (value * n) if value else 0.0,
            "tokens_per_s_total": tokens / value if value else 0.0}[row["metric"]]


def _model(row):
    from perfmodel.workloads.transformer import TransformerModel

    family = next(f for f in _FAMILIES if row["case"].startswith(f))
    vocab = _int(row, "vocab") or (_BLOOM_VOCAB if family == "bloom" else None)
    return TransformerModel(name=f"heldout-{row['case']}", n_layers=int(row["layers"]), hidden=int(row["hidden"]),
                            n_heads=int(row["heads"]), n_kv_heads=_int(row, "kv_heads"),
                            ffn_hidden=_int(row, "ffn_hidden"), vocab=vocab, seq_len=int(row["seq_len"]),
                            description=f"{row['model']} as published in the held-out run {row['case']}",
                            **_FAMILIES[family])


def _zero(row) -> int:
    how = row["zero_or_fsdp"]
    if "FULL_SHARD" in how:
        return 3
    if "SHARD_GRAD_OP" in how:
        return 2
    return 1 if ("ZeRO-1" in how or "distributed optimizer" in how) else 0


def _plan(row) -> Plan:
    recompute = row["recompute"].split(" ")[0]
    tp = int(row["tp"])
    # cp: context parallelism (Megatron-Core --context-parallel-size; an empty cell is 1)
    return Plan(devices=int(row["n_devices"]), tp=tp, pp=_int(row, "pp", 1), cp=_int(row, "cp", 1),
                micro_batch=int(row["micro_batch"]),
                global_batch=int(row["global_batch"]), seq=int(row["seq_len"]),
                dtype="fp8" if row["group"].endswith("fp8") or row["precision"].startswith("fp8") else "bf16",
                recompute=recompute if recompute in ("none", "selective", "full") else "none",
                sequence_parallel=tp > 1 and "NeMo" in row["framework"], zero=_zero(row), overlap=True,
                stack=next(stack for tag, stack in _STACKS if tag in row["framework"]))


def _cases() -> list:
    out = []
    for row in read_rows(HELDOUT_FILE):
        reason = _skip_reason(row)
        if reason:
            out.append(SkippedCase(case=row["case"], reason=reason, group=row["group"]))
            continue
        group = "xpu" if row["group"] == "xpu" else row["group"].replace("a100-bf16", "a100")
        out.append(ValidationCase(case=row["case"], measured_s=_measured_s(row), model=_model(row),
                                  system=_SYSTEMS[row["hardware"]], plan=_plan(row), group=group,
                                  note=f"{row['framework']}; {row['zero_or_fsdp']}"))
    return out


DATASETS = {
    "heldout-2022-2024": Dataset(
        "BLOOM-176B (A100), MPT 1B-70B with FSDP (A100, H100 BF16 and FP8), Nemotron-4 15B/340B "
        "(H100 BF16 and FP8), Llama 3.1 8B/70B with context parallelism CP 2 (H100 BF16 and FP8), "
        "Llama 2 7B on Gaudi 2 FP8",
        "bigscience-workshop/bigscience tr11 README and chronicles; mosaicml/llm-foundry benchmarking README; "
        "NVIDIA/dgxc-benchmarking v24.11.1; Intel Gaudi model performance page "
        "(perfmodel/data/validation/" + HELDOUT_FILE + ", sources per row)",
        _cases,
        ("measured seconds: as published, or global batch x sequence / tokens per second",
         "FSDP FULL_SHARD runs as ZeRO-3, SHARD_GRAD_OP as ZeRO-2, NeMo's distributed optimizer as ZeRO-1; "
         "ALiBi models (BLOOM, MPT) run as rotary (no position parameters); plan details the source does not "
         "give (schedule, virtual stages) take perfmodel's defaults"),
        HELD_OUT, "nothing"),
}
