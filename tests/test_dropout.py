"""Models trained without dropout (issue 11, memory of the plans that ran): Llama-family configs
set every dropout probability to 0, and PyTorch's dropout returns its input at p = 0 (no kernel,
no mask kept for the backward). The model says whether it trains with dropout; the stacks' kernel
lists and the activation memory follow."""

from __future__ import annotations

import dataclasses
import json

import pytest

import perfmodel as pm
from perfmodel.errors import ModelError
from perfmodel.prediction.detail import layer_kernel_table
from perfmodel.prediction.shapes import role_kernels
from perfmodel.specs.stack import load_stack

GPT2 = {"model_type": "gpt2", "n_embd": 768, "n_head": 12, "n_layer": 12, "n_positions": 1024, "vocab_size": 50257}
LLAMA = {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008, "num_attention_heads": 32,
         "num_hidden_layers": 32, "max_position_embeddings": 4096, "vocab_size": 32000}


def _config(tmp_path, data):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_hugging_face_configs_say_whether_the_model_trains_with_dropout(tmp_path):
    assert pm.load_model(_config(tmp_path, GPT2)).dropout  # GPT2Config: resid/embd/attn_pdrop 0.1
    assert not pm.load_model(_config(tmp_path, LLAMA)).dropout  # LlamaConfig: attention_dropout 0.0
    off = dict(GPT2, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    assert not pm.load_model(_config(tmp_path, off)).dropout
    assert pm.load_model(_config(tmp_path, dict(LLAMA, attention_dropout=0.1))).dropout
    with pytest.raises(ModelError, match=r"attention_dropout: expected a dropout probability in \[0, 1\), got 1.5"):
        pm.load_model(_config(tmp_path, dict(LLAMA, attention_dropout=1.5)))


def test_presets_and_toml_files_state_it():
    assert not pm.load_model("llama2-7b").dropout and not pm.load_model("mixtral-8x7b").dropout
    assert pm.load_model("gpt3-175b").dropout and pm.load_model("gpt2-124m").dropout
    assert ("dropout", False) in pm.load_model("llama3-8b").summary()


def test_without_dropout_the_kernel_list_keeps_the_adds():
    core = load_stack("megatron-core")
    assert core.layer_kernels[-1] == ("dropout", "residual_add")
    llama, gpt = pm.load_model("llama2-7b"), pm.load_model("gpt3-175b")
    assert role_kernels(core.layer_kernels, llama) == (("norm",), ("rope",), ("norm",), ("activation",),
                                                       ("residual_add",), ("residual_add",))
    # learned positions: no rotary kernel
    assert role_kernels(core.layer_kernels, gpt) == tuple(k for k in core.layer_kernels if k != ("rope",))
    eager = load_stack("pytorch-eager")  # unfused: the lone dropout kernels disappear
    assert role_kernels(eager.score_kernels, llama) == (("softmax",),)


def test_a_model_without_dropout_saves_time_and_masks_and_nothing_else():
    llama = pm.load_model("llama2-7b")
    plan = pm.Plan(tp=2, devices=2, sequence_parallel=True, global_batch=1)
    without = pm.predict(llama, "dgx-h100", plan)
    with_ = pm.predict(dataclasses.replace(llama, dropout=True), "dgx-h100", plan)
    d0, d1 = without.details, with_.details
    # two 1-byte masks of T h / t on 32 layers: 32 x 2 x 4096 x 4096 / 2 B
    masks = 32 * 2 * 4096 * 4096 / 2
    assert d0["memory_layer_dropout_masks_bytes"] == 0 and d1["memory_layer_dropout_masks_bytes"] == masks / 32
    assert with_.memory_bytes_per_device["activations"] - without.memory_bytes_per_device["activations"] == masks
    assert without.breakdown_s["compute"] < with_.breakdown_s["compute"]
    assert without.breakdown_s["tp_comm"] == pytest.approx(with_.breakdown_s["tp_comm"], rel=1e-12)
    kernels = [r["kernel"] for r in layer_kernel_table(llama, "dgx-h100", plan)]
    assert "4.residual_add" in kernels and "1.rope" in kernels and not any("dropout" in k for k in kernels)


def test_a_toml_model_key(tmp_path):
    text = (tmp_path / "m.toml")
    text.write_text('name = "m"\ntype = "transformer"\nlayers = 2\nhidden = 64\nheads = 4\nvocab = 100\nseq = 32\n'
                    'dropout = "no"\n')
    with pytest.raises(ModelError, match="dropout: expected true or false"):
        pm.load_model(str(text))


def test_an_eager_inventory_drops_its_dropout_kernels_too(tmp_path):
    # Hugging Face GPT-2 on pytorch-eager runs its own kernel inventory: with every pdrop at 0 its
    # dropout kernels and their 1-byte masks go (attention-probability dropout is inside SDPA; the
    # layer's own: resid_dropout after attention and after the MLP)
    plan = pm.Plan(micro_batch=8, global_batch=8, seq=1024, stack="pytorch-eager")
    on = pm.predict(pm.load_model(_config(tmp_path, GPT2)), "h100-sxm5-80gb", plan)
    off = pm.predict(pm.load_model(_config(tmp_path, dict(GPT2, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0))),
                     "h100-sxm5-80gb", plan)
    assert off.step_time_s < on.step_time_s
    # two hidden-state masks of T h x 1 B on each of 12 layers
    saved = on.memory_bytes_per_device["activations"] - off.memory_bytes_per_device["activations"]
    assert saved == pytest.approx(12 * 2 * 8 * 1024 * 768, rel=1e-9)


def test_attention_dropout_is_its_own_flag(tmp_path):
    """Dropout on the attention probabilities (what a fused attention kernel pays for) is read from
    the attention keys alone: a GPT-2 config with attn_pdrop 0 keeps its residual dropout but no
    attention dropout; a TOML model may state it, else it follows ``dropout``."""
    no_attn = pm.load_model(_config(tmp_path, dict(GPT2, attn_pdrop=0.0)))
    assert no_attn.dropout and not no_attn.attention_dropout
    assert pm.load_model(_config(tmp_path, GPT2)).attention_dropout
    assert not pm.load_model(_config(tmp_path, LLAMA)).attention_dropout
    text = tmp_path / "m.toml"
    base = 'name = "m"\ntype = "transformer"\nlayers = 2\nhidden = 64\nheads = 4\nvocab = 100\nseq = 32\n'
    text.write_text(base + "attention_dropout = false\n")
    m = pm.load_model(str(text))
    assert m.dropout and not m.attention_dropout
    text.write_text(base + "dropout = false\n")
    assert not pm.load_model(str(text)).attention_dropout
    text.write_text(base + 'attention_dropout = "no"\n')
    with pytest.raises(ModelError, match="attention_dropout: expected true or false"):
        pm.load_model(str(text))
