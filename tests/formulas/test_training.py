"""Tests for perfmodel.formulas.training: published numbers, numpy = loop, sympy = typed equation."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from perfmodel.formulas import compute as c
from perfmodel.formulas import training as tr
from tests.formulas.backends import (
    assert_numpy_matches_loop,
    assert_sympy_equals,
    assert_sympy_matches_float,
)

# --- float values from sources -------------------------------------------------------------------


def test_megatron_training_flops_gpt3_training_time():
    # Narayanan et al. SC'21, Section 5.1: GPT-3 175B (96 layers, h 12288, s 2048, V 51200) on
    # 300B tokens, n = 1024 A100s at X = 140 TFLOP/s, batch 1536: "34 days" (from eq. 4,
    # 8TP/(nX), which drops the small terms of eq. 3; eq. 3 itself gives 34.7 days).
    f = tr.megatron_training_flops(1536, 2048, 96, 12288, 51200)
    seconds = 300e9 / (1536 * 2048) * f / (1024 * 140e12)
    assert seconds / 86400 == pytest.approx(34, rel=0.03)


def test_mfu_korthikanti_table5():
    # Korthikanti et al. 2022, Tables 3 and 5 (A100 peak 312 TFLOP/s, s = 2048, v = 51200):
    # (batch, layers, hidden, GPUs, iteration s, MFU). Iteration times carry 3-4 significant
    # figures (1.10 s: +-0.45 %), hence rel=0.005.
    rows = [(4, 48, 6144, 8, 1.10, 0.415), (64, 96, 12288, 64, 13.75, 0.514),
            (280, 105, 20480, 280, 37.83, 0.560), (512, 128, 25600, 512, 71.49, 0.563)]
    for batch, layers, hidden, gpus, t, expected in rows:
        f = tr.megatron_model_flops(batch, 2048, layers, hidden, 51200)
        assert tr.mfu(f, t, gpus, 312e12) == pytest.approx(expected, rel=0.005)


def test_dense_6nt_vs_megatron_model_flops():
    # Kaplan et al. 2020 count 6 N per token with N = 12 l h^2 (non-embedding); Korthikanti eq. 7
    # adds the attention-score and logit terms: the ratio is exactly 1 + s/(6h) + v/(12hL).
    B, s, L, h, v = sp.symbols("B s L h v", positive=True)
    ratio = tr.megatron_model_flops(B, s, L, h, v) / tr.dense_training_flops(12 * L * h**2, B * s)
    assert sp.simplify(ratio - (1 + s / (6 * h) + v / (12 * h * L))) == 0
    # GPT-3: 6NT is 3.1 % below the Megatron model FLOPs.
    gpt3 = float(ratio.subs({B: 1, s: 2048, L: 96, h: 12288, v: 51200}))
    assert gpt3 == pytest.approx(1.031, abs=1e-3)


# --- numpy broadcasting = loop, for every public function ----------------------------------------

A = np.array([[1.0, 2.0, 3.0]])
B = np.array([[2.0], [5.0]])
NUMPY_CASES = [
    (tr.megatron_layer_forward_flops, dict(batch_size=A, seq_len=B * 1024, hidden_size=4096)),
    (tr.megatron_training_flops, dict(batch_size=A * 512, seq_len=2048, n_layers=B * 24, hidden_size=4096,
                                     vocab_size=51200)),
    (tr.megatron_model_flops, dict(batch_size=A * 512, seq_len=2048, n_layers=B * 24, hidden_size=4096,
                                  vocab_size=51200)),
    (tr.dense_training_flops, dict(n_params=A * 1e9, n_tokens=B * 1e12)),
    (tr.mfu, dict(model_flops_per_step=A * 1e17, step_time=B, n_devices=64, peak_flops_per_s=312e12)),
]


@pytest.mark.parametrize("func,arrays", NUMPY_CASES, ids=[f.__name__ for f, _ in NUMPY_CASES])
def test_numpy_matches_loop(func, arrays):
    assert_numpy_matches_loop(func, **arrays)


def test_every_public_function_has_a_numpy_case():
    public = {n for n, f in vars(tr).items() if callable(f) and getattr(f, "__module__", "") == tr.__name__
              and not n.startswith("_")}
    assert public == {f.__name__ for f, _ in NUMPY_CASES}


# --- sympy: the expression typed from the source ---------------------------------------------------

SYMPY_CASES = [
    # Narayanan et al. SC'21 Appendix / Korthikanti App. A: 24Bsh^2 + 4Bs^2h
    (tr.megatron_layer_forward_flops, lambda batch_size, seq_len, hidden_size:
        24 * batch_size * seq_len * hidden_size**2 + 4 * batch_size * seq_len**2 * hidden_size),
    # Narayanan et al. SC'21 eq. (3): F = 96 B s l h^2 (1 + s/(6h) + V/(16 l h))
    (tr.megatron_training_flops, lambda batch_size, seq_len, n_layers, hidden_size, vocab_size:
        96 * batch_size * seq_len * n_layers * hidden_size**2
        * (1 + seq_len / (6 * hidden_size) + vocab_size / (16 * n_layers * hidden_size))),
    # Korthikanti et al. eq. (7): 72 B L s h^2 (1 + s/(6h) + v/(12 h L))
    (tr.megatron_model_flops, lambda batch_size, seq_len, n_layers, hidden_size, vocab_size:
        72 * batch_size * n_layers * seq_len * hidden_size**2
        * (1 + seq_len / (6 * hidden_size) + vocab_size / (12 * hidden_size * n_layers))),
    (tr.dense_training_flops, lambda n_params, n_tokens: 6 * n_params * n_tokens),
    (tr.mfu, lambda model_flops_per_step, step_time, n_devices, peak_flops_per_s:
        model_flops_per_step / step_time / n_devices / peak_flops_per_s),
]


@pytest.mark.parametrize("func,typed", SYMPY_CASES, ids=[f.__name__ for f, _ in SYMPY_CASES])
def test_sympy_equals_typed_expression(func, typed):
    assert_sympy_equals(func, typed)


def test_megatron_totals_compose_from_layer_and_head():
    # eq. (3): 4 passes per layer (fwd, recompute, 2x bwd) + 3 passes of the logit layer.
    B, s, l, h, V = sp.symbols("B s l h V", positive=True)
    layers = 4 * l * tr.megatron_layer_forward_flops(B, s, h)
    head = 3 * c.lm_head_forward_flops(B * s, h, V)
    assert sp.simplify(layers + head - tr.megatron_training_flops(B, s, l, h, V)) == 0
    no_recompute = 3 * l * tr.megatron_layer_forward_flops(B, s, h) + head
    assert sp.simplify(no_recompute - tr.megatron_model_flops(B, s, l, h, V)) == 0


def test_sympy_substitution_matches_float():
    assert_sympy_matches_float(tr.megatron_training_flops, batch_size=1536, seq_len=2048, n_layers=96,
                               hidden_size=12288, vocab_size=51200)
