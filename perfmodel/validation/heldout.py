"""The held-out dataset: published runs of 2022-2024 used for nothing but this report.

``heldout-2022-2024`` reads ``perfmodel/data/validation/heldout_published_runs.csv`` (each row with
its source, table and caveats; ``heldout_published_runs.md`` describes the sources). No number of
the model was fitted or tuned on these runs; a change that improves them must come from modelling
where the time goes, not from fitting to them.

Each row becomes a model, a bundled system and a plan as the source states them. What the source
does not state is assumed as written in the case's note. Runs the model cannot express yet are
reported as skipped with the reason: hardware without a bundled system
(TPU v6e, a single V100), rows whose metric is TFLOP/s under a FLOP convention the row does not
record, rows whose plan the source leaves incomplete, and MaxText runs whose model or sharding
perfmodel cannot state (:mod:`perfmodel.validation.maxtext`). MaxText's TFLOP/s per chip become
step times through its recorded FLOP convention.
"""

from __future__ import annotations

import re

from perfmodel.plan import Plan
from perfmodel.validation import maxtext
from perfmodel.validation.results import HELD_OUT, Dataset, SkippedCase, ValidationCase, read_rows

__all__ = ["DATASETS", "HELDOUT_FILE"]

HELDOUT_FILE = "heldout_published_runs.csv"

# the source's hardware -> a bundled system (its node: 8 devices on one fabric, NICs per device)
_SYSTEMS = {
    "NVIDIA A100 80GB": "dgx-a100",
    "NVIDIA A100 80GB SXM (Jean Zay)": "dgx-a100",
    "NVIDIA H100 80GB": "dgx-h100",
    "Intel Gaudi 2 (HL-225H, HLS-Gaudi2 server)": "gaudi2-hls",
    "NVIDIA A100 40GB": "dgx-a100-40g",
    "NVIDIA H100 80GB (GCP A3, h100-80gb-8)": "a3-highgpu-8g",
    # ZeRO-Offload's single V100: one V100 32GB of a DGX-2 with its Xeon 8168 host (the row's ASSUMPTION)
    "NVIDIA V100 (single GPU)": "dgx-2",
}
# hardware named with its slice count and shape ("Google TPU v5e (4x v5e-256)"): by prefix
_SYSTEM_PREFIXES = (("Google TPU v5p (", "tpu-v5p-pod"), ("Google TPU v5e (", "tpu-v5e-pod"))
# the framework of the run -> the bundled software stack closest to it (LLM Foundry's MPT runs its
# own modules under FSDP, not Hugging Face eager code: the fsdp profile)
# (Intel's Gaudi fork of Megatron-DeepSpeed trains FP8 through Intel's Transformer Engine port:
# the TE recipe of megatron-core is the closest bundled stack)
# (LLM Foundry's 2023 tables ran its Triton attention: the framework column says so for those rows)
# (ZeRO-Offload ran on the DeepSpeed of early 2021: deepspeed-2021; its ZeRO-2 is the deepspeed profile's)
_STACKS = (("MaxText", "jax-xla"), ("DeepSpeed ZeRO-Offload", "deepspeed-2021"), ("Intel Gaudi Megatron-DeepSpeed", "megatron-core"),
           ("Megatron-DeepSpeed", "megatron"),
           ("llm-foundry / Composer (PyTorch FSDP), Triton attention", "llm-foundry-2023"), ("llm-foundry", "fsdp"), ("NeMo", "megatron-core"))
# model families: the structure the sources (and their model cards) give
_FAMILIES = {
    # BLOOM: ALiBi (no position parameters), LayerNorm, GELU 4h, biases, tied embeddings; the
    # tokenizer's 250,680 tokens padded to 250,880 (bigscience tr11 README)
    "bloom": dict(positions="alibi", mlp="gelu", norm="layernorm", bias=True, tied_embeddings=True),
    # MPT as LLM Foundry's benchmark yamls build it, MPTConfig's defaults where the yamls are silent
    # (llmfoundry/models/mpt/configuration_mpt.py: no_bias False, learned_pos_emb True, alibi False;
    # not the ALiBi, bias-free MPT-7B of the model card): learned positions (max_seq_len of them),
    # LayerNorm, GELU 4h, biases, tied embeddings. The benchmark README's NumParams say so to the
    # parameter: 6,658,859,008 = 32 (12 h^2 + 13 h) + (50368 + 2048) h + 2 h at h = 4096, and +125.8M
    # at seq 32k (the position table); every MPT row's count matches this structure exactly.
    # no dropout: llm-foundry MPTConfig defaults resid_pdrop = emb_pdrop = attn_pdrop = 0.0, which
    # the benchmark yamls leave as they are
    "mpt": dict(positions="learned", mlp="gelu", norm="layernorm", bias=True, tied_embeddings=True, dropout=False),
    # Nemotron-4: RoPE, LayerNorm, squared-ReLU MLP (one up projection; NeMo's squared_relu,
    # torch.pow(F.relu(x), 2), unfused: the yamls set bias_activation_fusion false), no biases,
    # untied embeddings, GQA (Nemotron-4 15B/340B reports and NeMo recipes)
    # no dropout (nemotron/nemotron4-15b-synth.yaml: hidden_dropout 0.0, attention_dropout 0.0)
    "nemotron4": dict(positions="rotary", mlp="relu2", norm="layernorm", bias=False, tied_embeddings=False, dropout=False),
    # Llama 2: RoPE, RMSNorm, SwiGLU, no biases, untied embeddings
    # Grok-1 proxy (dgxc-benchmarking grok1_314b.yaml): RoPE, gated GeLU MLP ('fast-geglu': three
    # matrices, costed as the gated MLP), no biases, untied embeddings; its tokenizer is Llama 3
    # 70B's (128,256 tokens, the vocab_size of meta-llama/Meta-Llama-3-70B's config); the norm is
    # not stated (RMSNorm assumed: h parameters a norm either way but the bias)
    # no dropout (grok1_314b.yaml: hidden_dropout 0.0, attention_dropout 0.0)
    "grok1": dict(positions="rotary", mlp="swiglu", norm="rmsnorm", bias=False, tied_embeddings=False,
                  vocab=128256, dropout=False),
    # (Intel's Gaudi page does not state the run's dropout: Megatron-DeepSpeed's default, dropout on)
    "gaudi2_llama2": dict(positions="rotary", mlp="swiglu", norm="rmsnorm", bias=False, tied_embeddings=False),
    # Llama 3.1: the same structure, GQA (NVIDIA/dgxc-benchmarking llama3.1 yamls)
    # no dropout: NeMo's LlamaConfig / Llama3Config attention_dropout = hidden_dropout = 0.0
    # (nemo/collections/llm/gpt/model/llama.py)
    "llama31": dict(positions="rotary", mlp="swiglu", norm="rmsnorm", bias=False, tied_embeddings=False,
                    dropout=False),
    # MaxText llama2-7b (MaxText/configs/models/llama2-7b.yml): the Llama 2 structure, untied logits
    # (MaxText's base.yml dropout_rate 0, for these and the synthetic models below)
    "maxtext_llama2": dict(positions="rotary", mlp="swiglu", norm="rmsnorm", bias=False, tied_embeddings=False,
                           dropout=False),
    # MaxText Mixtral 8x7B (tpu-recipes run_mixtral-8x7b.sh, model_name=mixtral-8x7b): the Mixtral
    # structure (RMSNorm, SwiGLU experts, untied logits), one block after the other
    "maxtext_mixtral": dict(positions="rotary", mlp="swiglu", norm="rmsnorm", bias=False, tied_embeddings=False,
                            dropout=False),
    # MaxText's synthetic global_parameter_scale models as the v5e/v5p tables ran them (base.yml and
    # layers/models.py @76bd53b0, the commit adding both tables, Dec 2023; the silu x linear default
    # came with 3b2ac811, Feb 2024): DecoderLayer is a parallel block (one RMSNorm
    # 'pre_self_attention_norm' feeds attention and MlpBlock, their sum added to the input),
    # mlp_activations ["relu"] (one up-projection, the elementwise ReLU costed as GELU: same bytes),
    # LLaMA rotary embedding, logits_via_embedding True (tied), dropout_rate 0. The names follow:
    # 32b = 32 layers x (4 x 10240 x 8192 + 2 x 10240 x 32768) + 32768 x 10240 = 32.5e9 parameters
    "maxtext_": dict(positions="rotary", mlp="gelu", norm="rmsnorm", bias=False, tied_embeddings=True,
                     parallel_block=True, shared_norm=True, dropout=False),
    # GPT-2 (DeepSpeed's Megatron-LM GPT-2 example): learned positions, LayerNorm, GELU 4h, biases, tied
    "zero_offload": dict(positions="learned", mlp="gelu", norm="layernorm", bias=True, tied_embeddings=True),
}
# a TFLOP/s row whose features state the FLOP convention: Megatron-LM hardware FLOPs with recompute
_MEGATRON_HW_FLOPS = "FLOP convention ASSUMED: Megatron-LM hardware FLOPs"
_BLOOM_VOCAB = 250880


def _int(row, key, default=None):
    value = row[key].strip()
    return int(value) if value else default


def _system(row) -> str | None:
    hardware = row["hardware"]
    return _SYSTEMS.get(hardware) or next((s for p, s in _SYSTEM_PREFIXES if hardware.startswith(p)), None)


def _skip_reason(row) -> str | None:
    if _system(row) is None:
        return f"no bundled system for '{row['hardware']}'"
    if maxtext.is_maxtext(row):  # TFLOP/s per chip under MaxText's recorded convention
        return maxtext.skip_reason(row)
    if row["metric"] not in ("seconds_per_step", "tokens_per_s_per_gpu", "tokens_per_s_total") and not (
            row["metric"] == "tflops_per_gpu" and _MEGATRON_HW_FLOPS in row["features"]):
        return f"metric '{row['metric']}': the FLOP convention behind it is not recorded, so no step time"
    if not all(row[k].strip() for k in ("layers", "hidden", "heads", "seq_len", "global_batch", "micro_batch", "tp")):
        return "the source leaves the model or the plan incomplete"
    if not any(tag in row["framework"] for tag, _ in _STACKS):
        return f"no bundled stack for '{row['framework']}'"
    return None


def _measured_s(row, model) -> float:
    if maxtext.is_maxtext(row) and row["metric"] == "tflops_per_gpu":  # MaxText's own FLOP convention
        return maxtext.step_seconds(row, model)
    value, n = float(row["value"]), int(row["n_devices"])
    tokens = int(row["global_batch"]) * int(row["seq_len"])
    if row["metric"] == "tflops_per_gpu":  # the FLOPs of one step under the row's stated convention
        from perfmodel.formulas.training import megatron_training_flops

        flops = megatron_training_flops(int(row["global_batch"]), int(row["seq_len"]), int(row["layers"]),
                                        int(row["hidden"]), int(row["vocab"]))
        return flops / (value * 1e12 * n)
    return {"seconds_per_step": value, "tokens_per_s_per_gpu": tokens / (value * n) if value else 0.0,
            "tokens_per_s_total": tokens / value if value else 0.0}[row["metric"]]


def _model(row):
    from perfmodel.workloads.transformer import TransformerModel

    family = next(f for f in _FAMILIES if row["case"].startswith(f))
    shape = dict(_FAMILIES[family])
    vocab = _int(row, "vocab") or shape.pop("vocab", None) or (_BLOOM_VOCAB if family == "bloom" else None)
    shape.pop("vocab", None)
    # mixture of experts: the row's experts and top-k (dropless, every layer a MoE layer: Megatron-Core's
    # default --moe-layer-freq 1 and no capacity factor; the expert width is the row's ffn_hidden)
    experts = dict(n_experts=_int(row, "moe_experts", 1), top_k=_int(row, "moe_top_k", 1))
    return TransformerModel(name=f"heldout-{row['case']}", n_layers=int(row["layers"]), hidden=int(row["hidden"]),
                            n_heads=int(row["heads"]), n_kv_heads=_int(row, "kv_heads"),
                            ffn_hidden=_int(row, "ffn_hidden"), vocab=vocab, seq_len=int(row["seq_len"]),
                            head_dim=maxtext.head_dim(row) if maxtext.is_maxtext(row) else None,
                            description=f"{row['model']} as published in the held-out run {row['case']}",
                            **experts, **shape)


def _zero(row) -> int:
    how = row["zero_or_fsdp"]
    if "FULL_SHARD" in how:
        return 3
    if "SHARD_GRAD_OP" in how or "ZeRO-2" in how:
        return 2
    if "ici_fsdp_parallelism" in how:  # MaxText's fsdp mesh axis shards parameters, gradients, states
        return 3
    return 1 if ("ZeRO-1" in how or "distributed optimizer" in how) else 0


def _schedule(row) -> dict:
    """The pipeline schedule the row's features state ("interleaved PP VP=12": Megatron-Core's
    interleaved 1F1B with 12 model chunks per stage); without one, perfmodel's default."""
    found = re.search(r"interleaved PP VP=(\d+)", row["features"])
    return dict(schedule="interleaved", virtual_stages=int(found.group(1))) if found else {}


def _stack(row) -> str:
    """The bundled stack closest to the row's framework; NeMo with its distributed_fused_adam
    optimizer (Apex DistributedFusedAdam: bf16 gradients, param remainders, FP8 parameters) is
    nemo-2024, NeMo with Megatron-Core's own optimizer megatron-core."""
    if "distributed_fused_adam" in row["zero_or_fsdp"]:
        return "nemo-2024"
    return next(stack for tag, stack in _STACKS if tag in row["framework"])


def _plan(row) -> Plan:
    recompute = maxtext.recompute(row) if maxtext.is_maxtext(row) else row["recompute"].split(" ")[0]
    tp = int(row["tp"])
    micro = maxtext.micro_batch(row) if maxtext.is_maxtext(row) else int(row["micro_batch"])
    # cp: context parallelism (Megatron-Core --context-parallel-size; an empty cell is 1)
    return Plan(devices=int(row["n_devices"]), tp=tp, pp=_int(row, "pp", 1), cp=_int(row, "cp", 1),
                ep=_int(row, "ep", 1),  # expert parallelism, carved out of dp x cp
                micro_batch=micro,
                global_batch=int(row["global_batch"]), seq=int(row["seq_len"]),
                dtype="fp8" if row["group"].endswith("fp8") or row["precision"].startswith("fp8") else
                ("fp16" if row["precision"].startswith("fp16") else "bf16"),
                offload="optimizer" if "ZeRO-Offload" in row["zero_or_fsdp"] else "none",
                recompute=recompute if recompute in ("none", "selective", "full") else "none",
                sequence_parallel=tp > 1 and ("NeMo" in row["framework"] or maxtext.is_maxtext(row)),
                zero=_zero(row), overlap=True,
                shard_group=maxtext.shard_group(row) if maxtext.is_maxtext(row) else None,
                stack=_stack(row), optimizer="adamw-bf16" if "optimizer states bf16" in row["features"] else "adamw",
                **_schedule(row))


def _cases() -> list:
    out = []
    for row in read_rows(HELDOUT_FILE):
        reason = _skip_reason(row)
        if reason:
            out.append(SkippedCase(case=row["case"], reason=reason, group=row["group"]))
            continue
        group = "xpu" if row["group"] == "xpu" else row["group"].replace("a100-bf16", "a100")
        model = _model(row)
        out.append(ValidationCase(case=row["case"], measured_s=_measured_s(row, model), model=model,
                                  system=_system(row), plan=_plan(row), group=group,
                                  note=f"{row['framework']}; {row['zero_or_fsdp']}"))
    return out


DATASETS = {
    "heldout-2022-2024": Dataset(
        "BLOOM-176B (A100), MPT 1B-70B with FSDP (A100, H100 BF16 and FP8), Nemotron-4 15B/340B "
        "(H100 BF16 and FP8), Llama 3.1 8B/70B with context parallelism CP 2 (H100 BF16 and FP8), "
        "Grok-1 314B MoE proxy (H100 BF16 and FP8, EP 8), Llama 2 7B on Gaudi 2 FP8, Llama 2 7B with MaxText on GCP A3 (H100)",
        "bigscience-workshop/bigscience tr11 README and chronicles; mosaicml/llm-foundry benchmarking README; "
        "NVIDIA/dgxc-benchmarking v24.11.1; Intel Gaudi model performance page; AI-Hypercomputer/maxtext "
        "configs READMEs "
        "(perfmodel/data/validation/" + HELDOUT_FILE + ", sources per row)",
        _cases,
        ("measured seconds: as published, or global batch x sequence / tokens per second, or (MaxText) "
         "its FLOPs per chip per step (6 N s b + causal attention, maxtext_utils.py) / its TFLOP/s per chip",
         "MaxText: the fsdp mesh axis as ZeRO-3, the tensor axis with sequence parallelism (the residual "
         "stream is sharded over it), remat minimal/minimal_flash as selective recompute, "
         "one micro-batch of global batch / (data x fsdp) sequences, stack jax-xla",
         "FSDP FULL_SHARD runs as ZeRO-3, SHARD_GRAD_OP as ZeRO-2, NeMo's distributed optimizer as ZeRO-1 "
         "(distributed_fused_adam rows run the nemo-2024 stack: Apex DistributedFusedAdam's bf16 gradients, "
         "param remainders and FP8 parameters; Megatron-Core's optimizer megatron-core); "
         "LLM Foundry's 2023 tables (attn_impl triton) run as stack llm-foundry-2023, its 2024 table as fsdp; "
         "BLOOM runs ALiBi (no position parameters, no rotary kernel); MPT as LLM Foundry's benchmark yamls build it "
         "(learned positions and biases, no ALiBi: its published parameter counts match); the interleaved schedule with "
         "its virtual stages where the row states it (VP=N); plan details the source does not give take "
         "perfmodel's defaults",
         "mixture of experts (Grok-1): the row's experts, top-k and EP; dropless, every layer a MoE layer"),
        HELD_OUT, "nothing"),
}
