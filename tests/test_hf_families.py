"""Hugging Face config.json families (issue 13 A3): each config below holds the real key names
and values of the published config.json of the named checkpoint (transformers configuration_<type>.py
names the keys); parameter counts are the checkpoints' published totals."""

import json

import pytest

import perfmodel as pm
from perfmodel.errors import ModelError

CONFIGS = {
    # meta-llama/Llama-3.1-8B: 8,030,261,248 parameters
    "llama3.1-8b": ({"architectures": ["LlamaForCausalLM"], "attention_bias": False, "hidden_act": "silu",
                     "hidden_size": 4096, "intermediate_size": 14336, "max_position_embeddings": 131072,
                     "mlp_bias": False, "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 32,
                     "num_key_value_heads": 8, "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
                     "rope_scaling": {"factor": 8.0, "rope_type": "llama3"}, "tie_word_embeddings": False,
                     "vocab_size": 128256}, 8_030_261_248, 0),
    # Qwen/Qwen2-7B: 7,615,616,512 (the q/k/v biases, 129,024, are not held: 2e-5 off)
    "qwen2-7b": ({"architectures": ["Qwen2ForCausalLM"], "hidden_act": "silu", "hidden_size": 3584,
                  "intermediate_size": 18944, "max_position_embeddings": 131072, "max_window_layers": 28,
                  "model_type": "qwen2", "num_attention_heads": 28, "num_hidden_layers": 28,
                  "num_key_value_heads": 4, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
                  "sliding_window": 131072, "tie_word_embeddings": False, "use_sliding_window": False,
                  "vocab_size": 152064}, 7_615_616_512, 1e-4),
    # google/gemma-2b: 2,506,172,416
    "gemma-2b": ({"architectures": ["GemmaForCausalLM"], "head_dim": 256, "hidden_act": "gelu",
                  "hidden_size": 2048, "intermediate_size": 16384, "max_position_embeddings": 8192,
                  "model_type": "gemma", "num_attention_heads": 8, "num_hidden_layers": 18,
                  "num_key_value_heads": 1, "rms_norm_eps": 1e-06, "vocab_size": 256000}, 2_506_172_416, 0),
    # microsoft/Phi-3-mini-4k-instruct: 3,821,079,552
    "phi3-mini": ({"architectures": ["Phi3ForCausalLM"], "hidden_act": "silu", "hidden_size": 3072,
                   "intermediate_size": 8192, "max_position_embeddings": 4096, "model_type": "phi3",
                   "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 32,
                   "original_max_position_embeddings": 4096, "rms_norm_eps": 1e-05, "sliding_window": 2047,
                   "tie_word_embeddings": False, "vocab_size": 32064}, 3_821_079_552, 0),
    # tiiuae/falcon-7b: 6,921,720,704 (one LayerNorm a layer with parallel attention; the model counts two: 4e-5 off)
    "falcon-7b": ({"alibi": False, "apply_residual_connection_post_layernorm": False,
                   "architectures": ["FalconForCausalLM"], "bias": False, "hidden_size": 4544,
                   "model_type": "falcon", "multi_query": True, "new_decoder_architecture": False,
                   "num_attention_heads": 71, "num_hidden_layers": 32, "parallel_attn": True,
                   "vocab_size": 65024}, 6_921_720_704, 1e-4),
    # EleutherAI/pythia-1b: 1,011,781,632
    "pythia-1b": ({"architectures": ["GPTNeoXForCausalLM"], "hidden_act": "gelu", "hidden_size": 2048,
                   "intermediate_size": 8192, "max_position_embeddings": 2048, "model_type": "gpt_neox",
                   "num_attention_heads": 8, "num_hidden_layers": 16, "rotary_pct": 0.25,
                   "tie_word_embeddings": False, "use_parallel_residual": True, "vocab_size": 50304},
                  1_011_781_632, 0),
    # facebook/opt-1.3b: 1,315,758,080 (OPT's position table has 2 offset rows more: 4096 parameters)
    "opt-1.3b": ({"activation_function": "relu", "architectures": ["OPTForCausalLM"], "do_layer_norm_before": True,
                  "ffn_dim": 8192, "hidden_size": 2048, "max_position_embeddings": 2048, "model_type": "opt",
                  "num_attention_heads": 32, "num_hidden_layers": 24, "vocab_size": 50272,
                  "word_embed_proj_dim": 2048}, 1_315_758_080, 1e-5),
}


def _write(tmp_path, name, data):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(data))
    return folder / "config.json"


@pytest.mark.parametrize("name", CONFIGS)
def test_each_family_loads_with_its_published_parameter_count(tmp_path, name):
    data, params, rel = CONFIGS[name]
    m = pm.load_model(str(_write(tmp_path, name, data)))
    assert abs(m.n_params - params) <= rel * params, (m.n_params, params)


def test_a_long_position_limit_is_not_the_training_length(tmp_path):
    """Llama 3.1's 131072 positions: seq defaults to 4096, said in the model's notes and predict's."""
    path = _write(tmp_path, "Llama-3.1-8B", CONFIGS["llama3.1-8b"][0])
    m = pm.load_model(str(path))
    assert m.seq_len == 4096 and m.max_positions == 131072
    assert any("131072" in n and "--seq" in n for n in m.notes)
    r = pm.predict(m, "dgx-h100", devices=8, global_batch=64)
    assert any("131072" in n for n in r.notes)
    longer = pm.load_model(str(path), seq=8192)
    assert longer.seq_len == 8192 and not longer.notes


@pytest.mark.parametrize("model_type, extra", [("olmoe", {"num_experts": 64}), ("dbrx", {}),
                                               ("llama", {"num_experts": 4})])
def test_unmodelled_mixture_of_experts_is_refused_by_name(tmp_path, model_type, extra):
    data = dict(CONFIGS["llama3.1-8b"][0], model_type=model_type, **extra)
    with pytest.raises(ModelError, match="mixture-of-experts .*not modelled .modelled: mixtral, qwen2_moe") as info:
        pm.load_model(str(_write(tmp_path, model_type, data)))
    assert "did you mean" not in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("model_type", ["deepseek_v2", "deepseek_v3"])
def test_deepseek_is_refused_for_its_latent_attention(tmp_path, model_type):
    data = dict(CONFIGS["llama3.1-8b"][0], model_type=model_type, n_routed_experts=256, kv_lora_rank=512)
    with pytest.raises(ModelError, match="multi-head latent attention .MLA., which is not modelled"):
        pm.load_model(str(_write(tmp_path, model_type, data)))


def test_gemma_7b_attention_wider_than_hidden_loads_with_its_head_dim(tmp_path):
    data = dict(CONFIGS["gemma-2b"][0], hidden_size=3072, num_attention_heads=16, num_key_value_heads=16,
                intermediate_size=24576, num_hidden_layers=28)  # google/gemma-7b
    m = pm.load_model(str(_write(tmp_path, "gemma-7b", data)))
    assert (m.head_dim, m.q_dim, m.kv_dim) == (256, 4096, 4096)
    # q, k, v 3072 x 4096 and o 4096 x 3072: 4 x 12,582,912 = 50,331,648; gated MLP 3 x 3072 x 24576 =
    # 226,492,416; two RMSNorms 6144: 276,830,208 a layer x 28 = 7,751,245,824; tied embedding
    # 256000 x 3072 = 786,432,000; final norm 3072: 8,537,680,896 (google/gemma-7b: 8.54B)
    assert m.n_params == 8_537_680_896


def test_cli_predict_names_the_seq_default(tmp_path):
    from perfmodel.cli import main

    path = _write(tmp_path, "Llama-3.1-8B", CONFIGS["llama3.1-8b"][0])
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["predict", "--model", str(path), "--system", "dgx-h100", "--devices", "8",
                     "--global-batch", "64", "--format", "json"])
    assert code in (0, None)
    obj = json.loads(out.getvalue())
    assert obj["plan"]["seq"] == 4096 and any("131072" in n for n in obj["notes"])
