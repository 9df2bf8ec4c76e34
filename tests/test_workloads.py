"""Workload layer: exact parameter counts, ResNet FLOPs, HF config parsing, overrides, bad input.

Where each expected number comes from is written next to it. Parameter counts of Hugging Face
models are what ``sum(p.numel() for p in model.parameters())`` gives; the arithmetic is spelled
out here so the expected value does not rest on a library we do not run.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from perfmodel.errors import (
    InputFileError,
    ModelError,
    PerfModelError,
    UnknownNameError,
)
from perfmodel.workloads import (
    ConvNet,
    MLPModel,
    TransformerModel,
    list_models,
    load_model,
    preset_names,
    resnet,
    summary,
)

HF = Path(__file__).parent / "data" / "hf"


# -- exact parameter counts ---------------------------------------------------------------------
# GPT-2 (Radford et al. 2019, Table 2; HF configs gpt2, gpt2-medium/-large/-xl): V=50257,
# P=1024 learned positions, tied LM head. Per block 12h^2 + 13h (ln_1 2h, c_attn 3h^2+3h,
# c_proj h^2+h, ln_2 2h, c_fc 4h^2+4h, mlp c_proj 4h^2+h); total = (V+P)h + L(12h^2+13h) + 2h.
#   124M: L=12, h=768:  38,597,376 + 786,432 + 12*7,087,872 + 1,536            =   124,439,808
#   355M: L=24, h=1024: 51,463,168 + 1,048,576 + 24*12,596,224 + 2,048        =   354,823,168
#   774M: L=36, h=1280: 64,328,960 + 1,310,720 + 36*19,677,440 + 2,560        =   774,030,080
#   1.5B: L=48, h=1600: 80,411,200 + 1,638,400 + 48*30,740,800 + 3,200        = 1,557,611,200
# These equal transformers' GPT2Model parameter counts (the well-known 124M/355M/774M/1.5B).
@pytest.mark.parametrize("name, expected", [
    ("gpt2-124m", 124_439_808), ("gpt2-355m", 354_823_168),
    ("gpt2-774m", 774_030_080), ("gpt2-1.5b", 1_557_611_200)])
def test_gpt2_exact_params(name, expected):
    assert load_model(name).n_params == expected


def test_llama2_7b_exact_params():
    # Llama-2-7b-hf: V=32000, h=4096, L=32, ffn 11008, untied, RMSNorm, no biases, RoPE.
    # embed 131,072,000 + 32 * (4h^2 [q,k,v,o] 67,108,864 + 3*h*11008 135,266,304 + 2h 8,192)
    # + final norm 4,096 + lm_head 131,072,000 = 6,738,415,616 (HF LlamaForCausalLM count).
    m = load_model("llama2-7b")
    assert m.n_params == 6_738_415_616
    assert m.params_breakdown() == {"embedding": 131_072_000, "layers": 6_476_267_520,
                                    "final_norm": 4_096, "lm_head": 131_072_000, "pooler": 0}


def test_bert_large_exact_params():
    # bert-large-uncased as transformers.BertModel (embeddings + encoder + pooler), verified by
    # hand: embeddings (30522 + 512 + 2) * 1024 = 31,780,864 + LayerNorm 2,048 = 31,782,912;
    # per layer: q,k,v 3*(1024^2+1024) = 3,148,800, attn out 1,049,600, LN 2,048,
    # intermediate 1024*4096+4096 = 4,198,400, output 4096*1024+1024 = 4,195,328, LN 2,048
    # = 12,596,224; x 24 = 302,309,376; pooler 1024^2+1024 = 1,049,600.
    # Total 31,782,912 + 302,309,376 + 1,049,600 = 335,141,888.
    m = load_model("bert-large")
    assert m.n_params == 335_141_888
    assert m.n_embedding_params == 31_782_912
    assert m.n_params_per_layer == 12_596_224
    assert m.n_pooler_params == 1_049_600 and m.n_final_norm_params == 0
    assert m.lm_head_shape() is None


def test_llama_gqa_exact_params():
    # Llama-2-70b: 2*32000*8192 + 80*(2*8192^2 + 2*8192*1024 + 3*8192*28672 + 2*8192) + 8192
    #   = 68,976,648,192.  Llama-3-8B: 2*128256*4096 + 32*(2*4096^2 + 2*4096*1024
    #   + 3*4096*14336 + 2*4096) + 4096 = 8,030,261,248 (the "8B" of Meta's model card).
    assert load_model("llama2-70b").n_params == 68_976_648_192
    assert load_model("llama3-8b").n_params == 8_030_261_248
    shapes = dict((n, (i, o)) for n, i, o in load_model("llama2-70b").linear_shapes())
    assert shapes == {"attn_q": (8192, 8192), "attn_k": (8192, 1024), "attn_v": (8192, 1024),
                      "attn_o": (8192, 8192), "mlp_gate": (8192, 28672),
                      "mlp_up": (8192, 28672), "mlp_down": (28672, 8192)}


def test_gpt3_175b():
    # Brown et al. 2020, Table 2.1: n_params 175.0B (rounded), 96 layers, d_model 12288, 96 heads,
    # d_head 128. Exact count with 50257 x 12288 tied embeddings and 2048 positions: 174.6B.
    m = load_model("gpt3-175b")
    assert (m.n_layers, m.hidden, m.n_heads, m.head_dim, m.seq_len) == (96, 12288, 96, 128, 2048)
    assert m.n_params == 174_604_259_328
    assert abs(m.n_params / 175.0e9 - 1) < 0.005
    assert m.lm_head_shape() == ("lm_head", 12288, 50257)


# Narayanan et al. SC'21 Table 1 (validation copy megatron_narayanan2021_table1_weak_scaling_
# a100.csv): name -> (heads, hidden, layers, params in billions as printed, rounded to 0.1B).
MEGATRON = {
    "megatron-1.7b": (24, 2304, 24, 1.7), "megatron-3.6b": (32, 3072, 30, 3.6),
    "megatron-7.5b": (32, 4096, 36, 7.5), "megatron-18b": (48, 6144, 40, 18.4),
    "megatron-39b": (64, 8192, 48, 39.1), "megatron-76b": (80, 10240, 60, 76.1),
    "megatron-145b": (96, 12288, 80, 145.6), "megatron-310b": (128, 16384, 96, 310.1),
    "megatron-530b": (128, 20480, 105, 529.6), "megatron-1t": (160, 25600, 128, 1008.0),
}


@pytest.mark.parametrize("name", MEGATRON)
def test_megatron_table1(name):
    heads, hidden, layers, billions = MEGATRON[name]
    m = load_model(name)
    assert (m.n_heads, m.hidden, m.n_layers, m.vocab, m.seq_len) == (heads, hidden, layers,
                                                                     51200, 2048)
    assert m.tied_embeddings and m.ffn_hidden == 4 * hidden
    # Section 5.1: P = 12 l h^2 (1 + 13/(12h) + (V+s)/(12lh)) counts a tied embedding once and
    # leaves out the final LayerNorm (2h), which we count.
    l, h, V, s = layers, hidden, 51200, 2048
    assert m.n_params == 12 * l * h * h + 13 * l * h + (V + s) * h + 2 * h
    assert abs(m.n_params / 1e9 - billions) <= 0.05  # Table 1 prints 0.1B resolution


# -- convnets and MLPs --------------------------------------------------------------------------
def test_resnet50_params_and_flops():
    # torchvision/models/resnet.py, ResNet50_Weights.IMAGENET1K_V1 meta: num_params 25557032,
    # _ops 4.089 (the docs' "GFLOPS" column, which counts multiply-adds) at 224x224.
    m = load_model("resnet50")
    assert isinstance(m, ConvNet)
    assert m.n_params == 25_557_032
    assert abs(m.forward_macs / 4.089e9 - 1) < 0.02
    assert m.forward_flops > 2 * m.forward_macs  # + biases, BN, ReLU, adds, pools
    costs = {c.name: c for c in m.layer_costs()}
    assert costs["conv1"].out_shape == (64, 112, 112)
    assert costs["maxpool"].out_shape == (64, 56, 56)
    # v1.5: the stride of 2 is on the 3x3 conv (conv2), not on the first 1x1
    assert costs["layer2.0.conv1"].out_shape == (128, 56, 56)
    assert costs["layer2.0.conv2"].out_shape == (128, 28, 28)
    assert costs["layer2.0.downsample.0"].out_shape == (512, 28, 28)
    assert costs["layer4.2.add"].out_shape == (2048, 7, 7)
    assert costs["fc"].n_params == 2048 * 1000 + 1000 and m.output_shape == (1000,)
    assert sum(c.kind == "conv2d" for c in costs.values()) == 53


def test_other_resnets_built_not_typed():
    # torchvision meta num_params: resnet18 11689512 (_ops 1.814), resnet101 44549160 (7.801),
    # resnext50_32x4d 25028904, wide_resnet50_2 68883240.
    assert load_model("resnet18").n_params == 11_689_512
    assert abs(load_model("resnet18").forward_macs / 1.814e9 - 1) < 0.02
    assert load_model("resnet101").n_params == 44_549_160
    assert resnet("x", block="bottleneck", blocks=(3, 4, 6, 3), groups=32,
                  width_per_group=4).n_params == 25_028_904
    assert resnet("w", block="bottleneck", blocks=(3, 4, 6, 3),
                  width_per_group=128).n_params == 68_883_240


def test_lenet5_and_mlp():
    # PyTorch tutorial Net: 156 + 2,416 + 48,120 + 10,164 + 850 = 61,706 parameters.
    lenet = load_model("lenet5")
    assert lenet.n_params == 61_706 and lenet.output_shape == (10,)
    # conv1: 6*28*28 outputs x 25 MACs; conv2: 16*10*10 x 150; fc: 400*120 + 120*84 + 84*10
    assert lenet.forward_macs == 6 * 784 * 25 + 16 * 100 * 150 + 48_000 + 10_080 + 840
    mlp = load_model("mlp-mnist")
    assert isinstance(mlp, MLPModel)
    # (784*1024 + 1024) + (1024*1024 + 1024) + (1024*10 + 10)
    assert mlp.n_params == 1_863_690
    assert mlp.forward_flops == 2 * mlp.forward_macs + (1024 + 1024 + 10) + 2 * 1024


# -- presets, summary -----------------------------------------------------------------------------
DESIGN_NAMES = {"gpt2-124m", "gpt2-355m", "gpt2-774m", "gpt2-1.5b", "gpt3-175b", *MEGATRON,
                "llama2-7b", "llama2-70b", "llama3-8b", "bert-large", "resnet50", "mlp-mnist"}


def test_presets_listed_named_and_sourced():
    listed = dict(list_models())
    assert DESIGN_NAMES <= set(listed) == set(preset_names())
    for name in listed:
        m = load_model(name)
        assert m.name == name and m.description and len(m.source) > 20, name
    order = [n for n, _ in list_models()]
    assert order.index("gpt2-124m") < order.index("gpt2-1.5b") < order.index("gpt3-175b")


def test_summary_rows():
    rows = dict(summary("llama2-70b"))
    assert rows["kv_heads"] == 8 and rows["params_total"] == 68_976_648_192
    assert dict(summary("resnet50"))["forward_macs"] == load_model("resnet50").forward_macs
    assert all(isinstance(k, str) for k, _ in summary("mlp-mnist"))


def test_models_are_frozen():
    m = load_model("gpt2-124m")
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.n_layers = 48


# -- Hugging Face config.json -------------------------------------------------------------------
@pytest.mark.parametrize("fixture, preset", [
    ("gpt2.json", "gpt2-124m"), ("llama-2-7b.json", "llama2-7b"),
    ("bert-large-uncased.json", "bert-large")])
def test_hf_config_matches_preset(fixture, preset):
    m, p = load_model(HF / fixture), load_model(preset)
    assert m.name == fixture.removesuffix(".json")
    assert dataclasses.replace(m, name=p.name, description=p.description, source=p.source) == p


def test_hf_directory_and_defaults(tmp_path):
    d = tmp_path / "Llama-2-7b-hf"
    d.mkdir()
    shutil.copy(HF / "llama-2-7b.json", d / "config.json")
    assert load_model(d / "config.json").name == "Llama-2-7b-hf"
    assert load_model(str(d)).n_params == 6_738_415_616  # a model directory works too
    cfg = json.loads((HF / "gpt2.json").read_text())
    cfg.update(n_inner=1000, tie_word_embeddings=False)
    (tmp_path / "g.json").write_text(json.dumps(cfg))
    g = load_model(tmp_path / "g.json")
    assert g.ffn_hidden == 1000 and g.n_lm_head_params == 50257 * 768


# -- overrides ----------------------------------------------------------------------------------
def test_overrides():
    base = load_model("gpt2-124m")
    deeper = load_model("gpt2-124m", layers=24, vocab=None)  # None = flag not given
    assert deeper.n_params == base.n_params + 12 * base.n_params_per_layer
    assert deeper.name == "gpt2-124m[layers=24]" and base.n_layers == 12  # base untouched
    wide = load_model("gpt2-124m", hidden=1024, heads=16)
    assert (wide.ffn_hidden, wide.n_kv_heads) == (4096, 16)  # 4h and MHA follow
    assert load_model("gpt2-124m", seq=2048).max_positions == 2048  # learned table grows
    llama = load_model("llama2-70b", hidden=4096, heads=32)
    assert (llama.ffn_hidden, llama.n_kv_heads) == (28672, 8)  # not 4h, GQA kept
    assert load_model("llama2-7b", kv_heads=8, seq=8192).kv_dim == 1024
    assert load_model(base, ffn_hidden=1000).ffn_hidden == 1000


def test_toml_model_file(tmp_path):
    f = tmp_path / "tiny.toml"
    f.write_text('type = "transformer"\nlayers = 2\nhidden = 64\nheads = 4\nkv_heads = 2\n'
                 'vocab = 100\nseq = 16\npositions = "rotary"\nmlp = "swiglu"\n'
                 'norm = "rmsnorm"\nbias = false\ntied_embeddings = false\n')
    m = load_model(f)
    assert isinstance(m, TransformerModel) and m.name == "tiny"
    # 2 * (q 64*64 + k,v 2*64*32 + o 64*64 + 3*64*256 + 2*64) + 64 + 2*100*64
    assert m.n_params == 2 * (4096 + 4096 + 4096 + 49152 + 128) + 64 + 12800


def test_toml_convnet_with_residual(tmp_path):
    f = tmp_path / "res.toml"
    f.write_text('type = "convnet"\ninput = [16, 8, 8]\n[[layers]]\ntype = "residual"\n'
                 'name = "block"\n[[layers.main]]\ntype = "conv2d"\nin_channels = 16\n'
                 'out_channels = 16\nkernel = 3\npadding = 1\n[[layers.main]]\n'
                 'type = "batchnorm"\nchannels = 16\n[[layers]]\ntype = "globalavgpool"\n'
                 '[[layers]]\ntype = "flatten"\n[[layers]]\ntype = "linear"\n'
                 'in_features = 16\nout_features = 4\n')
    m = load_model(f)
    assert [c.kind for c in m.layer_costs()] == ["conv2d", "batchnorm", "add", "globalavgpool",
                                                 "flatten", "linear"]
    assert m.n_params == 16 * 16 * 9 + 2 * 16 + 16 * 4 + 4
    # 2 FLOP per MAC for conv/linear (+ linear bias), BN 2/element, add 1, global pool 1
    assert m.forward_flops == 2 * 16 * 64 * 144 + 2 * 1024 + 1024 + 1024 + 2 * 64 + 4


# -- bad input: one line, naming file, key, expectation and value --------------------------------
T = 'type = "transformer"\nlayers = 2\nhidden = 64\nheads = 4\nvocab = 100\nseq = 16\n'
GOOD_HF = '"n_layer": 2, "n_embd": 64, "n_head": 4, "vocab_size": 10, "n_positions": 16'
BAD = [  # (file name, content, error class, fragments of the message)
    ("a.toml", T + "hiden = 3\n", ModelError, ["unknown key 'hiden'", "did you mean 'hidden'"]),
    ("b.toml", T.replace("layers = 2\n", ""), ModelError, ["missing key 'layers'"]),
    ("c.toml", T.replace("layers = 2", 'layers = "2"'), ModelError,
     ["layers: expected a positive integer", '"2"']),
    ("d.toml", T.replace("layers = 2", "layers = 0"), ModelError, ["layers", "got 0"]),
    ("e.toml", T.replace("heads = 4", "heads = 5"), ModelError,
     ["heads: expected a divisor of hidden=64, got 5"]),
    ("f.toml", T + "kv_heads = 3\n", ModelError, ["kv_heads: expected a divisor of heads=4"]),
    ("g.toml", T + 'mlp = "swiglo"\n', ModelError, ["mlp", "did you mean 'swiglu'"]),
    ("h.toml", T + 'bias = "yes"\n', ModelError, ["bias: expected true or false"]),
    ("i.toml", "type = \n", ModelError, ["malformed TOML"]),
    ("j.toml", T.replace("seq = 16", "seq = 16\nmax_positions = 8"), ModelError,
     ["seq: expected at most max_positions=8"]),
    ("k.toml", 'type = "convnet"\ninput = [3, 8, 8]\n[[layers]]\ntype = "conv2d"\n'
               'in_channels = 4\nout_channels = 8\nkernel = 3\n', ModelError,
     ["in_channels: expected 3", "got 4"]),
    ("l.toml", 'type = "convnet"\ninput = [3, 8, 8]\n[[layers]]\ntype = "conv2d"\n'
               'in_channels = 3\nout_channels = 8\nkernal = 3\n', ModelError,
     ["layers[0].kernel"]),
    ("m.toml", 'type = "resnet"\nblock = "bottleneck"\nblocks = [3, 4, 6]\n', ModelError,
     ["blocks: expected a list of 4 positive integers", "[3, 4, 6]"]),
    ("n.toml", 'type = "transformers"\n', ModelError, ["did you mean 'transformer'"]),
    ("o.toml", 'type = "convnet"\ninput = [16, 8, 8]\n[[layers]]\ntype = "residual"\n'
               '[[layers.main]]\ntype = "conv2d"\nin_channels = 16\nout_channels = 16\n'
               'kernel = 3\n', ModelError,
     ["residual branches disagree", "(16, 6, 6)", "(16, 8, 8)"]),
    ("a.json", '{"model_type": "gpt2", "n_layer": 2,}', ModelError, ["malformed JSON", "line 1"]),
    ("b.json", '{"model_type": "gtp2"}', ModelError, ["model_type", "gtp2", "did you mean 'gpt2'"]),
    ("c.json", '{"model_type": "gpt2", ' + GOOD_HF.replace('"n_head": 4', '"n_head": 5') + "}",
     ModelError, ["n_head: expected a divisor of n_embd=64, got 5"]),
    ("d.json", '{"model_type": "gpt2", ' + GOOD_HF.replace(', "n_positions": 16', "") + "}",
     ModelError, ["missing key 'n_positions'"]),
    ("e.json", '{"model_type": "gpt2", ' + GOOD_HF.replace('"n_layer": 2', '"n_layer": 2.0')
     + "}", ModelError, ["n_layer: expected a positive integer, got 2.0"]),
    ("f.json", "[1, 2]", ModelError, ["expected a table"]),
    ("a.txt", "", ModelError, ["expected a Hugging Face config .json or a TOML"]),
]


@pytest.mark.parametrize("fname, content, error, fragments", BAD, ids=[b[0] for b in BAD])
def test_bad_files(tmp_path, fname, content, error, fragments):
    path = tmp_path / fname
    path.write_text(content)
    with pytest.raises(error) as info:
        load_model(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize("args, overrides, error, fragment", [
    (("gpt2-125m",), {}, UnknownNameError, "did you mean 'gpt2-124m'"),
    (("/no/such/model.toml",), {}, InputFileError, "no such file"),
    (("/no/such/config.json",), {}, InputFileError, "no such file"),
    (("gpt2-124m",), {"layers": 0}, ModelError, "--layers: expected a positive integer, got 0"),
    (("gpt2-124m",), {"heads": 7}, ModelError, "--heads: expected a divisor of --hidden=768"),
    (("llama2-70b",), {"kv_heads": 5}, ModelError, "--kv-heads: expected a divisor of --heads"),
    (("gpt2-124m",), {"layer": 3}, ModelError, "did you mean 'layers'"),
    (("gpt2-124m",), {"seq": True}, ModelError, "--seq: expected a positive integer, got true"),
    (("resnet50",), {"seq": 128}, ModelError, "transformer models only"),
])
def test_bad_names_and_overrides(args, overrides, error, fragment):
    with pytest.raises(error) as info:
        load_model(*args, **overrides)
    assert fragment in str(info.value) and isinstance(info.value, PerfModelError)


def test_programmatic_models_validated():
    with pytest.raises(ModelError, match="heads: expected a divisor of hidden=10"):
        TransformerModel(name="x", n_layers=1, hidden=10, n_heads=3, vocab=5, seq_len=4)
    with pytest.raises(ModelError, match="widths"):
        MLPModel(name="m", widths=(10,))


def test_import_is_light():
    code = ("import sys, perfmodel.workloads as w; w.load_model('resnet50');"
            "print(sorted(m for m in ('numpy', 'sympy', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- bounds: no size above 10^9 (the CLI flags' bound), from any source -----------------------------

@pytest.mark.parametrize("key, value", [("layers", 10**9 + 1), ("hidden", 2**40), ("vocab", 10**30),
                                        ("seq", 10**12), ("ffn_hidden", 10**10), ("type_vocab", 10**10)])
def test_toml_sizes_are_bounded(tmp_path, key, value):
    sizes = {"layers": 4, "hidden": 256, "heads": 4, "vocab": 1000, "seq": 128, key: value}
    path = tmp_path / "m.toml"
    path.write_text('type = "transformer"\n' + "".join(f"{k} = {v}\n" for k, v in sizes.items()))
    with pytest.raises(ModelError) as exc:
        load_model(path)
    message = str(exc.value)
    assert "m.toml" in message and key in message and str(value) in message and "at most 1000000000" in message


def test_hf_and_override_and_constructor_sizes_are_bounded(tmp_path):
    data = json.loads((HF / "gpt2.json").read_text())
    data["n_layer"] = 10**30
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ModelError, match=r"n_layer: .*at most 1000000000, got 1000000000000000000000000000000"):
        load_model(path)
    with pytest.raises(ModelError, match=r"--layers: .*at most 1000000000, got 1000000000000000000000000000000"):
        load_model("gpt2-124m", layers=10**30)
    with pytest.raises(ModelError, match="vocab"):
        TransformerModel(name="t", n_layers=1, hidden=8, n_heads=2, vocab=10**10, seq_len=4)
    assert load_model("gpt2-124m", layers=10**9).n_layers == 10**9  # the bound itself is allowed
    with pytest.raises(ModelError, match=r"widths"):
        MLPModel(name="m", widths=(4, 10**10))


def test_resnet_depth_is_bounded(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text('type = "resnet"\nblock = "bottleneck"\nblocks = [3, 4, 1000000000, 3]\n')
    with pytest.raises(ModelError, match=r"r.toml blocks: .*at most 1000, got \[3, 4, 1000000000, 3\]"):
        load_model(path)
    with pytest.raises(ModelError, match=r"blocks: expected 4 integers in \[1, 1000\]"):
        resnet("r", block="basic", blocks=(2, 2, 10**6, 2))


# -- files that cannot be read: one named error ------------------------------------------------------

@pytest.mark.parametrize("suffix, text", [(".toml", "a = " + "[" * 100_000 + "]" * 100_000 + "\n"),
                                          (".json", "[" * 100_000 + "]" * 100_000)])
def test_deeply_nested_files_are_refused(tmp_path, suffix, text):
    path = tmp_path / f"m{suffix}"
    path.write_text(text)
    with pytest.raises(ModelError, match=f"m{suffix}: nested too deeply"):
        load_model(path)


@pytest.mark.parametrize("name", ["a" * 100_000, "x" * 300 + ".toml", "y" * 300 + ".json", "d/" + "z" * 300])
def test_names_too_long_for_the_os_are_named_errors(name):
    with pytest.raises((UnknownNameError, InputFileError, ModelError)) as exc:
        load_model(name)
    assert "\n" not in str(exc.value)
