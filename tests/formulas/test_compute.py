"""Tests for perfmodel.formulas.compute: published numbers, numpy = loop, sympy = typed equation."""

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

# Measured H100 SXM numbers, perfmodel/data/validation/h100/ (README: medians of CUDA events).
H100_HBM_COPY_BANDWIDTH = 3027.76e9  # micro.csv d2d_copy at 4 GiB, gbps_rw_median (read + write)
H100_FP32_PEAK = 51e12  # README headline: measured fp32 GEMM ~51 TFLOP/s (only to show AdamW is memory-bound)


# --- float values from sources -------------------------------------------------------------------


def test_roofline_picks_the_binding_limit():
    # Compute-bound: 1 TFLOP at 50% of 1 PFLOP/s = 2 ms; memory 1 GB at 2 TB/s = 0.5 ms.
    assert c.roofline_time(1e12, 1e9, 1e15, 0.5, 2e12) == pytest.approx(2e-3)
    # Memory-bound: 1 GFLOP -> 2 us; 10 GB at 2 TB/s = 5 ms.
    assert c.roofline_time(1e9, 1e10, 1e15, 0.5, 2e12) == pytest.approx(5e-3)
    # At the ridge point (500 FLOP/B here) compute time equals memory time.
    ridge = c.ridge_point(1e15, 2e12)
    assert ridge == pytest.approx(500.0)
    q = 1e9
    assert c.arithmetic_intensity(ridge * q, q) == pytest.approx(ridge)
    assert c.roofline_time(ridge * q, q, 1e15, 1.0, 2e12) == pytest.approx(ridge * q / 1e15)
    assert c.roofline_time(ridge * q, q, 1e15, 1.0, 2e12) == pytest.approx(q / 2e12)


def test_adamw_fused_step_roofline_vs_h100():
    # micro2.csv adamw_step_fp32, fused=True: (params, measured ms). fp32 AdamW moves
    # 2*4 (param r+w) + 4 (grad) + 2*2*4 (two moments r+w) = 28 B/param in one fused kernel.
    measured = [(124439808, 1.4137), (354823168, 3.8935), (1100048384, 11.9548)]
    errors = []
    for n_params, ms in measured:
        q = c.optimizer_update_bytes(n_params, 4, 4, 4, c.OPTIMIZERS["adamw"]["n_moments"], 0)
        f = c.optimizer_update_flops(n_params, c.OPTIMIZERS["adamw"]["flops_per_param"])
        t = c.roofline_time(f, q, H100_FP32_PEAK, 1.0, H100_HBM_COPY_BANDWIDTH)
        assert q / H100_HBM_COPY_BANDWIDTH == t  # memory-bound
        errors.append((t * 1e3 - ms) / ms)
    # A roofline is a lower bound, and the fixed per-step overhead fades as the model grows:
    # errors -18.6 %, -15.7 %, -14.9 %.
    assert all(e < 0 for e in errors)
    assert abs(errors[2]) < abs(errors[1]) < abs(errors[0])
    # Brief's tolerance for the bandwidth-bound (largest) case: within ~15 %.
    assert abs(errors[2]) < 0.15
    # The foreach (unfused) rows measure ~92 B/param, 3.3x the fused 28: not this formula.
    assert 92.4 / 28 > 3


def test_pointwise_rooflines_vs_h100_eager_ops():
    # micro2.csv memop_bf16 at 8192 tokens x 8192 hidden, forward ms (eager PyTorch, bf16).
    n = 8192 * 8192
    measured = {"layernorm": 0.17632, "gelu": 0.11046, "residual_add": 0.14958, "dropout": 0.16294}
    for op, ms in measured.items():
        row = c.POINTWISE_OPS[op]
        q = c.pointwise_bytes(n, row["fwd_accesses"], 2, row["fwd_mask_bytes"])
        t = q / H100_HBM_COPY_BANDWIDTH
        assert t * 1e3 < ms, op  # roofline is a lower bound (errors -50 %, -20 %, -11 %, -32 %)
    # The add (2 reads + 1 write) is purely bandwidth-bound: within 15 % (measured -11 %).
    add = c.pointwise_bytes(n, c.POINTWISE_OPS["residual_add"]["fwd_accesses"], 2, 0)
    assert add / H100_HBM_COPY_BANDWIDTH * 1e3 == pytest.approx(0.14958, rel=0.15)
    # Eager silu_mul runs two kernels, silu then mul: 2 + 3 accesses; measured 0.24106 ms
    # (-8 %), while one fused kernel (3 accesses) would be 45 % faster than measured.
    eager = sum(c.pointwise_bytes(n, c.POINTWISE_OPS[k]["fwd_accesses"], 2, 0) for k in ("silu", "mul"))
    assert eager / H100_HBM_COPY_BANDWIDTH * 1e3 == pytest.approx(0.24106, rel=0.15)


def test_linear_flops_match_h100_gemm_benchmark_convention():
    # gemm_shapes.csv rows (m, k, n, ms, TFLOP/s) for hidden 768; the benchmark counts 2mkn.
    fwd_up = (8192, 768, 3072, 0.0796, 485.6)
    dgrad_up = (8192, 3072, 768, 0.07005, 551.8)
    wgrad_up = (768, 8192, 3072, 0.07256, 532.7)
    for m, k, n, ms, tflops in (fwd_up, dgrad_up, wgrad_up):
        assert c.linear_forward_flops(m, k, n) / (ms * 1e-3) / 1e12 == pytest.approx(tflops, rel=2e-3)
    # backward of the up projection = its dgrad GEMM + its wgrad GEMM
    back = c.linear_backward_flops(8192, 768, 3072)
    assert back == c.linear_forward_flops(*dgrad_up[:3]) + c.linear_forward_flops(*wgrad_up[:3])
    # lm_head_fwd at hidden 8192, vocab 50257: 48.68872 ms, 138.5 TFLOP/s
    assert c.lm_head_forward_flops(8192, 8192, 50257) / 48.68872e-3 / 1e12 == pytest.approx(138.5, rel=2e-3)


def test_conv2d_resnet50_multiply_adds():
    # He et al. 2016 (ResNet), Table 1: ResNet-50 is 3.8e9 FLOPs, counted as multiply-adds.
    # Recount it here (v1: stride in the first 1x1 of a stage, projection shortcuts, fc 2048x1000).
    def conv(h, cin, cout, k, stride, pad):
        ho = c.conv2d_output_extent(h, k, stride, pad, 1)
        return c.conv2d_forward_flops(1, ho, ho, cin, cout, k, k, 1) / 2, ho

    macs, h = conv(224, 3, 64, 7, 2, 3)
    assert h == 112 and macs == 118013952  # conv1: 112x112x64 outputs x 3x7x7 taps
    h = c.conv2d_output_extent(h, 3, 2, 1, 1)  # 3x3 max pool, stride 2
    cin = 64
    for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for i in range(blocks):
            s = stride if i == 0 else 1
            m1, h1 = conv(h, cin, width, 1, s, 0)
            m2, h2 = conv(h1, width, width, 3, 1, 1)
            m3, _ = conv(h2, width, 4 * width, 1, 1, 0)
            macs += m1 + m2 + m3 + (conv(h, cin, 4 * width, 1, s, 0)[0] if i == 0 else 0)
            h, cin = h2, 4 * width
    assert h == 7
    macs += 2048 * 1000
    # 3.858e9; the paper gives 2 significant figures and does not say whether shortcuts/fc count.
    assert macs == pytest.approx(3.8e9, rel=0.03)
    assert c.conv2d_backward_flops(1, 112, 112, 3, 64, 7, 7, 1) == 2 * 2 * 118013952


def test_conv2d_output_extent_shapes():
    assert c.conv2d_output_extent(56, 3, 2, 1, 1) == 28  # ResNet 3x3 stride 2
    assert c.conv2d_output_extent(56, 3, 1, 2, 2) == 56  # dilated 3x3 keeps size with padding 2
    assert c.conv2d_output_extent(7, 2, 2, 0, 1) == 3  # floor


def test_attention_flops_match_flash_attention_convention_on_h100():
    # micro.csv sdpa_causal_bf16 rows: (b, heads, seq, head_dim, fwd_ms, fwd_bwd_ms, fwd TF/s,
    # fwd_bwd TF/s). The benchmark counts 4 b s^2 a d / 2 for causal and 2.5x that for backward,
    # as Dao-AILab/flash-attention benchmarks do.
    rows = [(8, 16, 1024, 64, 0.08, 0.43, 214.75, 139.83), (2, 32, 8192, 128, 1.7639, 7.6201, 623.34, 505.02)]
    for b, a, s, d, fwd_ms, fb_ms, fwd_tf, fb_tf in rows:
        f = c.attention_core_flops(b, s, a, d, 0.5)
        assert f / (fwd_ms * 1e-3) / 1e12 == pytest.approx(fwd_tf, rel=2e-3)
        total = f * (1 + c.ATTENTION_BACKWARD_FACTOR["flash"])
        assert total / (fb_ms * 1e-3) / 1e12 == pytest.approx(fb_tf, rel=2e-3)


def test_attention_pieces_add_up_to_megatron_layer():
    # Narayanan et al. SC'21 Appendix: QKV 6Bsh^2 + scores/AV 4Bs^2h + proj 2Bsh^2 + MLP 16Bsh^2.
    b, s, a, d = 2, 2048, 32, 128
    h = a * d
    total = (c.attention_qkv_flops(b * s, h, a, a, d) + c.attention_core_flops(b, s, a, d, 1)
             + c.linear_forward_flops(b * s, h, h) + c.linear_forward_flops(b * s, h, 4 * h)
             + c.linear_forward_flops(b * s, 4 * h, h))
    assert total == tr.megatron_layer_forward_flops(b, s, h)
    # GQA with 8 KV heads: K and V projections shrink 4x, scores do not change.
    assert c.attention_qkv_flops(b * s, h, a, 8, d) == 2 * b * s * h * (a + 16) * d
    # Chinchilla App. F: softmax 3 x heads x s^2 (per sequence)
    assert c.attention_softmax_flops(1, s, a, 1) == 3 * a * s * s


def test_table_constants():
    # AdamW's per-element count (Loshchilov & Hutter Alg. 2): 3 + 4 + 2 + 2 + 1 + 3 = 15.
    assert c.OPTIMIZERS["adamw"] == {"flops_per_param": 15, "n_moments": 2}
    assert c.ATTENTION_BACKWARD_FACTOR["standard"] == 2.0  # dgrad + wgrad rule
    for row in c.POINTWISE_OPS.values():
        assert set(row) == {"fwd_flops", "fwd_accesses", "fwd_mask_bytes", "bwd_flops", "bwd_accesses",
                            "bwd_mask_bytes"}


# --- numpy broadcasting = loop, for every public function ----------------------------------------

A = np.array([[1.0, 2.0, 3.0]])
B = np.array([[2.0], [5.0]])
NUMPY_CASES = [
    (c.roofline_time, dict(flops=A * 1e12, bytes_moved=B * 1e9, peak_flops_per_s=1e15, efficiency=0.5,
                           memory_bandwidth=np.array([[1e12], [3e12]]))),
    (c.arithmetic_intensity, dict(flops=A, bytes_moved=B)),
    (c.ridge_point, dict(peak_flops_per_s=A * 1e15, memory_bandwidth=B * 1e12)),
    (c.linear_forward_flops, dict(n_tokens=A * 1024, n_in_features=B * 64, n_out_features=256)),
    (c.linear_backward_flops, dict(n_tokens=A * 1024, n_in_features=B * 64, n_out_features=256)),
    (c.conv2d_output_extent, dict(in_extent=A * 56 + 1, kernel_extent=B + 1, stride=2, padding=1, dilation=1)),
    (c.conv2d_forward_flops, dict(batch_size=A, out_height=B * 7, out_width=7, n_in_channels=64,
                                  n_out_channels=A * 32, kernel_height=3, kernel_width=3, n_groups=B)),
    (c.conv2d_backward_flops, dict(batch_size=A, out_height=B * 7, out_width=7, n_in_channels=64,
                                   n_out_channels=A * 32, kernel_height=3, kernel_width=3, n_groups=B)),
    (c.attention_qkv_flops, dict(n_tokens=A * 512, hidden_size=1024, n_heads=16, n_kv_heads=B, head_dim=64)),
    (c.attention_core_flops, dict(batch_size=A, seq_len=B * 512, n_heads=16, head_dim=64,
                                  causal_fraction=np.array([[0.5], [1.0]]))),
    (c.attention_softmax_flops, dict(batch_size=A, seq_len=B * 512, n_heads=16, causal_fraction=0.5)),
    (c.pointwise_flops, dict(n_elements=A * 1e6, flops_per_element=B)),
    (c.pointwise_bytes, dict(n_elements=A * 1e6, n_accesses=B, bytes_per_element=2, mask_bytes_per_element=A)),
    (c.embedding_forward_bytes, dict(n_tokens=A * 1024, hidden_size=B * 512, bytes_per_element=2)),
    (c.lm_head_forward_flops, dict(n_tokens=A * 1024, hidden_size=B * 512, vocab_size=50257)),
    (c.optimizer_update_flops, dict(n_params=A * 1e9, flops_per_param=B)),
    (c.optimizer_update_bytes, dict(n_params=A * 1e9, master_bytes_per_param=4, grad_bytes_per_param=B,
                                    moment_bytes_per_param=4, n_moments=B - 1, weight_bytes_per_param=2)),
]


@pytest.mark.parametrize("func,arrays", NUMPY_CASES, ids=[f.__name__ for f, _ in NUMPY_CASES])
def test_numpy_matches_loop(func, arrays):
    assert_numpy_matches_loop(func, **arrays)


def test_every_public_function_has_a_numpy_case():
    public = {n for n, f in vars(c).items() if callable(f) and getattr(f, "__module__", "") == c.__name__
              and not n.startswith("_")}
    assert public == {f.__name__ for f, _ in NUMPY_CASES}


# --- sympy: the expression typed from the source ---------------------------------------------------

SYMPY_CASES = [
    (c.roofline_time, lambda flops, bytes_moved, peak_flops_per_s, efficiency, memory_bandwidth:
        sp.Max(flops / (peak_flops_per_s * efficiency), bytes_moved / memory_bandwidth)),
    (c.arithmetic_intensity, lambda flops, bytes_moved: flops / bytes_moved),
    (c.ridge_point, lambda peak_flops_per_s, memory_bandwidth: peak_flops_per_s / memory_bandwidth),
    (c.linear_forward_flops, lambda n_tokens, n_in_features, n_out_features: 2 * n_tokens * n_in_features * n_out_features),
    (c.linear_backward_flops, lambda n_tokens, n_in_features, n_out_features: 4 * n_tokens * n_in_features * n_out_features),
    (c.conv2d_output_extent, lambda in_extent, kernel_extent, stride, padding, dilation:
        sp.floor((in_extent + 2 * padding - dilation * (kernel_extent - 1) - 1) / stride) + 1),
    (c.conv2d_forward_flops, lambda batch_size, out_height, out_width, n_in_channels, n_out_channels,
        kernel_height, kernel_width, n_groups: 2 * batch_size * out_height * out_width * n_out_channels
        * (n_in_channels / n_groups) * kernel_height * kernel_width),
    (c.conv2d_backward_flops, lambda batch_size, out_height, out_width, n_in_channels, n_out_channels,
        kernel_height, kernel_width, n_groups: 4 * batch_size * out_height * out_width * n_out_channels
        * (n_in_channels / n_groups) * kernel_height * kernel_width),
    (c.attention_qkv_flops, lambda n_tokens, hidden_size, n_heads, n_kv_heads, head_dim:
        2 * n_tokens * hidden_size * n_heads * head_dim + 2 * 2 * n_tokens * hidden_size * n_kv_heads * head_dim),
    (c.attention_core_flops, lambda batch_size, seq_len, n_heads, head_dim, causal_fraction:
        causal_fraction * 2 * (2 * batch_size * seq_len**2 * (n_heads * head_dim))),
    (c.attention_softmax_flops, lambda batch_size, seq_len, n_heads, causal_fraction:
        3 * n_heads * seq_len * seq_len * batch_size * causal_fraction),
    (c.pointwise_flops, lambda n_elements, flops_per_element: n_elements * flops_per_element),
    (c.pointwise_bytes, lambda n_elements, n_accesses, bytes_per_element, mask_bytes_per_element:
        n_elements * n_accesses * bytes_per_element + n_elements * mask_bytes_per_element),
    (c.embedding_forward_bytes, lambda n_tokens, hidden_size, bytes_per_element: 2 * n_tokens * hidden_size * bytes_per_element),
    (c.lm_head_forward_flops, lambda n_tokens, hidden_size, vocab_size: 2 * n_tokens * hidden_size * vocab_size),
    (c.optimizer_update_flops, lambda n_params, flops_per_param: n_params * flops_per_param),
    (c.optimizer_update_bytes, lambda n_params, master_bytes_per_param, grad_bytes_per_param,
        moment_bytes_per_param, n_moments, weight_bytes_per_param: n_params * (
            master_bytes_per_param + grad_bytes_per_param + n_moments * moment_bytes_per_param  # reads
            + master_bytes_per_param + n_moments * moment_bytes_per_param + weight_bytes_per_param)),  # writes
]


@pytest.mark.parametrize("func,typed", SYMPY_CASES, ids=[f.__name__ for f, _ in SYMPY_CASES])
def test_sympy_equals_typed_expression(func, typed):
    assert_sympy_equals(func, typed)


def test_sympy_substitution_matches_float():
    assert_sympy_matches_float(c.roofline_time, flops=1e12, bytes_moved=1e9, peak_flops_per_s=1e15,
                               efficiency=0.5, memory_bandwidth=2e12)
    assert_sympy_matches_float(c.conv2d_output_extent, in_extent=224, kernel_extent=7, stride=2, padding=3,
                               dilation=1)
