"""Tests for perfmodel.formulas.gemm: worked examples, numpy = loop, sympy = typed equation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp

from perfmodel.formulas import gemm as g
from tests.formulas.backends import assert_numpy_matches_loop, assert_sympy_matches_float

H100 = dict(tile_m=128, tile_n=256, tile_k=64, n_units=132, fill_steps=1)


def test_nvidia_guide_worked_examples():
    # NVIDIA "Matrix Multiplication Background User's Guide": 1792 x 1792 output in 256 x 128
    # tiles is 7 x 14 = 98 tiles, one wave on A100's 108 SMs; 109 tiles take two waves
    assert g.gemm_tile_count(1792, 1792, 256, 128) == 98
    assert g.gemm_wave_count(98, 108) == 1
    assert g.gemm_wave_count(109, 108) == 2
    # one more row than a tile multiple costs a whole row of tiles
    assert g.gemm_tile_count(1793, 1792, 256, 128) == 8 * 14


def test_gemm_time_worked_example_h100_8192_cubed():
    # 8192^3 bf16 on H100: 64 x 32 = 2048 tiles, 16 waves over 132 SMs, 128 + 1 k steps;
    # R from the MAMF 794.5 TFLOP/s at 2048 x 2048 x 13312 (128 tiles, one wave, 208 + 1 steps)
    r = g.gemm_achievable_rate(794.5e12, 2048, 2048, 13312, peak_flops_per_s=989e12, **H100)
    assert r == pytest.approx(794.5e12 * 132 * 209 * 2 * 128 * 256 * 64 / (2 * 2048 * 2048 * 13312))
    comp = 16 * 129 * 2 * 128 * 256 * 64 * 132 / r
    epi = 16 * 132 * 128 * 256 * 2 / 3.028e12
    t = g.gemm_time(8192, 8192, 8192, **H100, achievable_flops_per_s=r, a_bytes_per_element=2,
                    b_bytes_per_element=2, c_bytes_per_element=2, memory_bandwidth=3.028e12, fixed_time=0.0)
    assert t == pytest.approx(comp + epi)
    # gemm.csv measures 1.449 ms (758.8 TFLOP/s): the model is within 3 %
    assert t == pytest.approx(1.44902e-3, rel=0.03)


def test_skinny_gemm_is_memory_bound():
    # a 16-row GEMM against a 65536 x 65536 weight reads 8.6 GB of B: memory-bound (2.9 ms vs
    # 1.4 ms of quantized compute). With one tile size and no split-K, a 16 x 8192 x 8192 GEMM is
    # instead priced by its 32 half-empty tiles on 32 of 132 SMs (92 us vs 45 us of memory).
    kw = dict(a_bytes_per_element=2, b_bytes_per_element=2, c_bytes_per_element=2, memory_bandwidth=3e12)
    t = g.gemm_time(16, 65536, 65536, **H100, achievable_flops_per_s=800e12, fixed_time=0.0, **kw)
    assert t == pytest.approx(g.gemm_memory_time(16, 65536, 65536, **kw))


def test_unaligned_rate_and_flash_bytes():
    assert g.unaligned_gemm_rate(989e12, 2) == pytest.approx(989e12 / 8)
    # forward: Q, O (a heads) and K, V (a_kv heads), plus the fp32 LSE
    b, s, a, akv, d = 2, 1024, 16, 4, 64
    assert g.flash_attention_forward_bytes(b, s, a, akv, d, 2) == b * s * d * (2 * a + 2 * akv) * 2 + 4 * b * a * s
    assert g.flash_attention_backward_bytes(b, s, a, akv, d, 2) == b * s * d * (4 * a + 4 * akv) * 2 + 12 * b * a * s
    assert g.memory_kernel_time(1e9, 1e12, 5e-6) == pytest.approx(1e-3 + 5e-6)


def test_numpy_broadcasting_equals_a_loop():
    m = np.array([[1.0], [127.0], [128.0], [129.0], [8192.0]])
    n = np.array([[64.0, 256.0, 257.0, 50257.0]])
    assert_numpy_matches_loop(g.gemm_time, gemm_m=m, gemm_n=n, gemm_k=np.array(768.0), **H100,
                              achievable_flops_per_s=8e14, a_bytes_per_element=2, b_bytes_per_element=2,
                              c_bytes_per_element=2, memory_bandwidth=3e12, fixed_time=0.0)
    assert_numpy_matches_loop(g.gemm_achievable_rate, mamf_flops_per_s=np.array([[7e14], [8e14]]),
                              mamf_m=np.array([1024.0, 2048.0]), mamf_n=2048, mamf_k=13312, **H100,
                              peak_flops_per_s=989e12)
    assert_numpy_matches_loop(g.flash_attention_time, flops=np.array([[1e9], [1e12]]),
                              bytes_moved=np.array([1e6, 1e10]), achievable_flops_per_s=8e14, attention_efficiency=0.835,
                              softmax_flops=1e9, vector_flops_per_s=6.7e13, memory_bandwidth=3e12,
                              key_blocks=np.array([[[1.0]], [[64.0]]]), row_overhead_blocks=1.9)
    assert_numpy_matches_loop(g.attention_key_blocks, seq_len=np.array([[64.0], [2048.0]]),
                              causal_fraction=np.array([0.5, 1.0]), block_size=128)


def test_sympy_forms():
    M, N, K, tm, tn, tk, U, f, R = sp.symbols("gemm_m gemm_n gemm_k tile_m tile_n tile_k n_units fill_steps "
                                                "achievable_flops_per_s", positive=True)
    got = g.gemm_compute_time(M, N, K, tm, tn, tk, U, f, R)
    tiles, steps = sp.ceiling(M / tm) * sp.ceiling(N / tn), sp.ceiling(K / tk)
    split = sp.Max(1, sp.Min(sp.floor(U / tiles), steps))  # split-K (CUTLASS "Parallelized Reductions")
    want = sp.ceiling(tiles * split / U) * (sp.ceiling(steps / split) + f) * 2 * tm * tn * tk * U / R
    assert sp.simplify(got - want) == 0
    assert_sympy_matches_float(g.gemm_time, gemm_m=8192, gemm_n=3072, gemm_k=768, **H100,
                               achievable_flops_per_s=8e14, a_bytes_per_element=2, b_bytes_per_element=2,
                               c_bytes_per_element=2, memory_bandwidth=3e12, fixed_time=1e-6)


def test_time_never_falls_as_one_dimension_grows():
    # along each of m, n, k (others fixed) the FLOPs grow, and the time may stay flat (a tile,
    # wave or k step not yet full) or jump up at a quantization step, but never falls
    kw = dict(**H100, achievable_flops_per_s=8e14, a_bytes_per_element=2, b_bytes_per_element=2,
              c_bytes_per_element=2, memory_bandwidth=3e12, fixed_time=0.0)
    x = np.arange(1.0, 20000.0, 7.0)
    for axis in range(3):
        dims = [np.full_like(x, 3000.0) for _ in range(3)]
        dims[axis] = x
        t = g.gemm_time(*dims, **kw)
        assert np.all(np.diff(t) >= 0), axis
        # quantization: the rate is not monotone (a step up in time at the edge of a tile)
        rate = 2 * dims[0] * dims[1] * dims[2] / t
        assert np.any(np.diff(rate) < 0) and math.isfinite(float(rate[-1]))


def test_split_k_fills_the_units_of_a_weight_gradient():
    # dW of ResNet-50's stem at 256 images: a 64 x 147 output (2 tiles of 256 x 128) over K = 3.2 M
    # pixels; without split-K 2 of 108 A100 SMs would work: split 54 gives every SM a slice
    assert g.gemm_split_k(64, 147, 3211264, 256, 128, 64, 108) == 54
    whole = g.gemm_compute_time(64, 147, 3211264, 256, 128, 64, 108, 1, 2.7e14)
    # by hand: 1 wave of 2 x 54 slices, ceil(50176 / 54) + 1 = 931 k steps of 256 x 128 x 64 at
    # 2.7e14 / 108 FLOP/s per SM, against 50176 + 1 steps on 2 SMs without the split
    step = 2 * 256 * 128 * 64 / (2.7e14 / 108)
    assert whole == pytest.approx(931 * step, rel=1e-12)
    # a GEMM with enough tiles is not split
    assert g.gemm_split_k(8192, 8192, 8192, 256, 128, 64, 108) == 1
