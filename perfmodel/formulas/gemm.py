r"""GEMM, fused-attention and memory-bound kernel times from the shape and the device.

A GEMM C[M, N] = A[M, K] B[K, N] runs as output tiles of ``tile_m x tile_n``, one per thread
block (CTA) on one compute unit (SM, CU, MME, MXU or core), each stepping through K in
``tile_k`` steps. The time model:

* **tile quantization**: ceil(M/t_m) ceil(N/t_n) tiles; a partial tile costs a whole one.
* **wave quantization**: the tiles run in ceil(tiles / U) waves over the U units; a partial last
  wave costs a whole one.
* **k steps and pipeline fill**: a tile takes ceil(K/t_k) k steps plus ``fill_steps`` steps the
  mainloop's software pipeline spends waiting for its first stage of A and B tiles before the
  first multiply (the prologue of a multistage / TMA pipeline).
* **epilogue**: after its mainloop each wave of tiles writes its C tiles to device memory; that
  store is not overlapped with the wave's own multiplies.
* **memory roofline**: a skinny GEMM cannot be faster than reading A and B and writing C once.
* **achievable rate**: a unit multiplies at R / U, where R is the device's unquantized achievable
  rate, derived from the "maximum achievable matmul FLOPS" (MAMF) a tuned library reaches on its
  best shape, so the model reproduces that measurement exactly (:func:`gemm_achievable_rate`).
* a **fixed** per-kernel cost is added (launch; 0 where it is hidden by queueing).
* **power cap**: in a step of back-to-back kernels no GEMM beats the device's sustained rate
  under its power limit (:func:`power_capped_time`).

Sources: NVIDIA, "Matrix Multiplication Background User's Guide" (docs.nvidia.com/deeplearning/
performance/dl-performance-matrix-multiplication), sections "Tile Quantization" and "Wave
Quantization" (tiles of 256x128 on A100's 108 SMs); NVIDIA CUTLASS, media/docs/efficient_gemm.md
(threadblock tiles, the k mainloop, software pipelining: prologue, mainloop, epilogue);
S. Bekman, stas00/ml-engineering compute/accelerator/README.md, "Maximum Achievable Matmul
FLOPS" table (mamf-finder.py); S. Williams et al., "Roofline", CACM 52(4), 2009; T. Dao,
"FlashAttention-2", 2023 (sections 3.1-3.2: one thread block per block of query rows per head,
inputs read and outputs written once).
"""

from __future__ import annotations

from perfmodel.formulas._backend import ceil, floor, maximum, minimum

# Vector width of one aligned load: 16 B (8 bf16/fp16 elements). NVIDIA's Tensor Core requirement
# ("Matrix Multiplication Background User's Guide", Tensor Core Requirements: dimensions multiples
# of 8 for fp16, 16 bytes) exists because operand tiles move in 16 B vectors (unaligned_gemm_rate).
VECTOR_BYTES = 16


def gemm_tile_count(gemm_m, gemm_n, tile_m, tile_n):
    r"""Output tiles of a GEMM (tile quantization).

    .. math:: T = \left\lceil \frac{M}{t_m} \right\rceil \left\lceil \frac{N}{t_n} \right\rceil

    gemm_m M, gemm_n N (1, rows and columns of C), tile_m t_m, tile_n t_n (1, the output tile one
    thread block computes). A partial tile at an edge costs a whole one.
    Source: NVIDIA, "Matrix Multiplication Background User's Guide", Tile Quantization.

    >>> gemm_tile_count(gemm_m=1792, gemm_n=1792, tile_m=256, tile_n=128)
    98
    """
    return ceil(gemm_m / tile_m) * ceil(gemm_n / tile_n)


def gemm_wave_count(n_tiles, n_units):
    r"""Waves of tiles over the device's compute units (wave quantization).

    .. math:: W = \left\lceil \frac{T}{U} \right\rceil

    n_tiles T (1, from :func:`gemm_tile_count`), n_units U (1, SMs, CUs, MMEs, MXUs or cores that
    each run one tile at a time). Source: NVIDIA, "Matrix Multiplication Background User's
    Guide", Wave Quantization (A100: 108 SMs; 109 tiles take two waves).

    >>> gemm_wave_count(n_tiles=109, n_units=108)
    2
    """
    return ceil(n_tiles / n_units)


def gemm_split_k(gemm_m, gemm_n, gemm_k, tile_m, tile_n, tile_k, n_units):
    r"""Slices of K a GEMM with fewer output tiles than compute units is split into (split-K).

    .. math:: s = \max\left(1,\ \min\left(\left\lfloor \frac{U}{T} \right\rfloor,
              \left\lceil \frac{K}{t_k} \right\rceil\right)\right)

    gemm_m M, gemm_n N, gemm_k K (1), tile_m t_m, tile_n t_n, tile_k t_k (1), n_units U (1); T the
    tiles (:func:`gemm_tile_count`). A GEMM whose output has too few tiles to fill the device (a
    weight gradient dW = X^T dY: M, N the layer's widths, K the tokens or pixels) is split along K
    so that each unit computes a slice. Assumes the library takes the largest split that the units
    allow (cuBLAS heuristics, CUTLASS split-K / stream-K) and reduces the slices' partial sums in
    the kernel (stream-K's fix-up; the M x N partials are small next to the K it splits): the
    reduction is not charged. Source: CUTLASS media/docs/efficient_gemm.md, "Parallelized Reductions" (split-K).

    >>> gemm_split_k(gemm_m=64, gemm_n=147, gemm_k=3211264, tile_m=256, tile_n=128, tile_k=64, n_units=108)
    54
    >>> gemm_split_k(gemm_m=8192, gemm_n=8192, gemm_k=8192, tile_m=256, tile_n=128, tile_k=64, n_units=108)
    1
    """
    tiles = gemm_tile_count(gemm_m, gemm_n, tile_m, tile_n)
    return maximum(minimum(floor(n_units / tiles), ceil(gemm_k / tile_k)), 1)


def gemm_compute_time(gemm_m, gemm_n, gemm_k, tile_m, tile_n, tile_k, n_units, fill_steps,
                      achievable_flops_per_s):
    r"""Multiply time of a GEMM with tile, wave and k-step quantization and pipeline fill.

    .. math:: T_{comp} = W\,\left(\left\lceil \frac{\lceil K/t_k \rceil}{s} \right\rceil + f_{fill}\right)
              \frac{2\,t_m t_n t_k}{R / U}, \quad
              W = \left\lceil \frac{s \lceil M/t_m \rceil \lceil N/t_n \rceil}{U} \right\rceil

    gemm_m M, gemm_n N, gemm_k K (1), tile_m t_m, tile_n t_n, tile_k t_k (1, output tile and k
    step), n_units U (1), fill_steps f_fill (1, k steps the mainloop pipeline waits for its first
    operand stage), achievable_flops_per_s R (FLOP/s, the whole device's unquantized achievable
    rate, from :func:`gemm_achievable_rate`); s the split-K slices (:func:`gemm_split_k`, 1 for a
    GEMM with enough tiles). Assumes every unit runs one tile (or slice) at a time at R/U and all
    tiles of a wave finish together. Source: NVIDIA, "Matrix Multiplication Background
    User's Guide" (tile and wave quantization); CUTLASS media/docs/efficient_gemm.md (k mainloop,
    software pipelining).

    >>> gemm_compute_time(gemm_m=8192, gemm_n=8192, gemm_k=8192, tile_m=128, tile_n=256, tile_k=64,
    ...                   n_units=132, fill_steps=1, achievable_flops_per_s=800e12)  # doctest: +ELLIPSIS
    0.001428...
    """
    split = gemm_split_k(gemm_m, gemm_n, gemm_k, tile_m, tile_n, tile_k, n_units)
    waves = gemm_wave_count(gemm_tile_count(gemm_m, gemm_n, tile_m, tile_n) * split, n_units)
    steps = ceil(ceil(gemm_k / tile_k) / split) + fill_steps
    return waves * steps * 2 * tile_m * tile_n * tile_k * n_units / achievable_flops_per_s


def gemm_epilogue_time(gemm_m, gemm_n, tile_m, tile_n, n_units, c_bytes_per_element, memory_bandwidth):
    r"""Store time of the C tiles, wave by wave (the epilogue after each wave's mainloop).

    .. math:: T_{epi} = W\,U\,\frac{t_m t_n\,w_C}{B_{mem}}

    gemm_m M, gemm_n N (1), tile_m t_m, tile_n t_n (1), n_units U (1), c_bytes_per_element w_C
    (B, the output dtype), memory_bandwidth B_mem (B/s). Every unit of a wave writes one whole
    tile at once, so a wave's stores take U t_m t_n w_C / B_mem, not overlapped with that wave's
    multiplies. Source: CUTLASS media/docs/efficient_gemm.md (the epilogue follows the mainloop
    of a thread block).

    >>> gemm_epilogue_time(gemm_m=8192, gemm_n=8192, tile_m=128, tile_n=256, n_units=132,
    ...                    c_bytes_per_element=2, memory_bandwidth=3e12)  # doctest: +ELLIPSIS
    4.61...e-05
    """
    waves = gemm_wave_count(gemm_tile_count(gemm_m, gemm_n, tile_m, tile_n), n_units)
    return waves * n_units * tile_m * tile_n * c_bytes_per_element / memory_bandwidth


def gemm_memory_time(gemm_m, gemm_n, gemm_k, a_bytes_per_element, b_bytes_per_element,
                     c_bytes_per_element, memory_bandwidth):
    r"""Memory roofline of a GEMM: read A and B, write C, each once.

    .. math:: T_{mem} = \frac{M K\,w_A + K N\,w_B + M N\,w_C}{B_{mem}}

    gemm_m M, gemm_n N, gemm_k K (1), a/b/c_bytes_per_element w_A, w_B, w_C (B, each operand's
    dtype), memory_bandwidth B_mem (B/s, achievable). Assumes caches (L2) hold every reused tile,
    so no operand is read twice from device memory: a lower bound.
    Source: Williams, Waterman, Patterson, "Roofline", CACM 52(4), 2009.

    >>> gemm_memory_time(gemm_m=16, gemm_n=8192, gemm_k=8192, a_bytes_per_element=2,
    ...                  b_bytes_per_element=2, c_bytes_per_element=2, memory_bandwidth=3e12)  # doctest: +ELLIPSIS
    4.49...e-05
    """
    return (gemm_m * gemm_k * a_bytes_per_element + gemm_k * gemm_n * b_bytes_per_element
            + gemm_m * gemm_n * c_bytes_per_element) / memory_bandwidth


def gemm_time(gemm_m, gemm_n, gemm_k, tile_m, tile_n, tile_k, n_units, fill_steps, achievable_flops_per_s,
              a_bytes_per_element, b_bytes_per_element, c_bytes_per_element, memory_bandwidth, fixed_time):
    r"""Time of one GEMM from its shape: quantized compute plus epilogue, or memory, plus a fixed cost.

    .. math:: T = \max\left(T_{comp} + T_{epi},\ T_{mem}\right) + t_{fix}

    with T_comp from :func:`gemm_compute_time`, T_epi from :func:`gemm_epilogue_time` and T_mem
    from :func:`gemm_memory_time` (parameters as there); fixed_time t_fix (s, per-kernel cost
    not overlapped with other work, e.g. a launch; 0 when queued kernels hide it).
    Assumes one kernel with one tile size for the whole GEMM; split-K where the output has fewer
    tiles than the device has units.
    Source: as the three terms; NVIDIA "Matrix Multiplication Background User's Guide".

    >>> gemm_time(gemm_m=8192, gemm_n=8192, gemm_k=8192, tile_m=128, tile_n=256, tile_k=64,
    ...           n_units=132, fill_steps=1, achievable_flops_per_s=800e12, a_bytes_per_element=2,
    ...           b_bytes_per_element=2, c_bytes_per_element=2, memory_bandwidth=3e12,
    ...           fixed_time=0.0)  # doctest: +ELLIPSIS
    0.00147...
    """
    compute = (gemm_compute_time(gemm_m, gemm_n, gemm_k, tile_m, tile_n, tile_k, n_units, fill_steps,
                                 achievable_flops_per_s)
               + gemm_epilogue_time(gemm_m, gemm_n, tile_m, tile_n, n_units, c_bytes_per_element,
                                    memory_bandwidth))
    memory = gemm_memory_time(gemm_m, gemm_n, gemm_k, a_bytes_per_element, b_bytes_per_element,
                              c_bytes_per_element, memory_bandwidth)
    return maximum(compute, memory) + fixed_time


def gemm_achievable_rate(mamf_flops_per_s, mamf_m, mamf_n, mamf_k, tile_m, tile_n, tile_k, n_units,
                         fill_steps, peak_flops_per_s):
    r"""The device's unquantized achievable GEMM rate R, from its measured MAMF and that shape.

    .. math:: R = \min\left(P_{peak},\ R_{MAMF}\,\frac{W^* U (\lceil K^*/t_k \rceil + f_{fill})\,2 t_m t_n t_k}
              {2 M^* N^* K^*}\right)

    mamf_flops_per_s R_MAMF (FLOP/s, the maximum achievable matmul rate measured), mamf_m M*,
    mamf_n N*, mamf_k K* (1, the shape it was reached at; W* its waves), tile and unit parameters
    as in :func:`gemm_compute_time`, peak_flops_per_s P_peak (FLOP/s, the datasheet bound).
    R is the rate at which :func:`gemm_compute_time` of the MAMF shape equals the measured time:
    the measurement is divided by that shape's own quantization efficiency, so nothing else is
    fitted. The epilogue is left out here so that R depends on the multiply units alone (a
    different memory bandwidth does not change it); :func:`gemm_time` of the MAMF shape is then
    slower than the measurement by its epilogue (3 % for the H100 bf16 shape).
    Source: stas00/ml-engineering compute/accelerator/README.md, "Maximum Achievable Matmul
    FLOPS" (mamf-finder.py searches shapes for the fastest).

    >>> gemm_achievable_rate(mamf_flops_per_s=794.5e12, mamf_m=2048, mamf_n=2048, mamf_k=13312,
    ...                      tile_m=128, tile_n=256, tile_k=64, n_units=132, fill_steps=1,
    ...                      peak_flops_per_s=989e12)  # doctest: +ELLIPSIS
    8232...
    """
    waves = gemm_wave_count(gemm_tile_count(mamf_m, mamf_n, tile_m, tile_n), n_units)
    work = waves * n_units * (ceil(mamf_k / tile_k) + fill_steps) * 2 * tile_m * tile_n * tile_k
    return minimum(peak_flops_per_s, mamf_flops_per_s * work / (2 * mamf_m * mamf_n * mamf_k))


def power_capped_time(kernel_time, flops, sustained_flops_per_s):
    r"""A compute-bound kernel's time in a training step, where the board's power cap holds the clock.

    .. math:: t_{step} = \max\left(t,\ \frac{F}{R_{sust}}\right)

    kernel_time t (s, the kernel's time from a short measurement or the shape model, both at the
    boost clock), flops F (FLOP), sustained_flops_per_s R_sust (FLOP/s, what large GEMMs of the
    dtype keep once the clock has settled at the power limit).
    A GPU boosts its clock until the board draws its power limit; a loop of GEMMs reaches the
    limit within about 0.1 s and the clock falls (an H200 at 700 W: 1980 -> 1485 MHz, bf16
    8192^3 GEMMs 793 -> 671 TFLOP/s; FP8 1447 -> 1217), so a step of back-to-back kernels runs
    at the settled clock while a microbenchmark of a few milliseconds, and a MAMF sweep, time the
    boost. A kernel already slower than R_sust (a small or skinny GEMM) is left as it is; the
    bound is on the rate, so it holds whether a measured curve was timed at the boost clock or
    partly throttled. Memory-bound kernels are not bound (a copy and an add on the H200 held their
    4.2-4.4 TB/s at the power limit).
    Source: perfmodel/data/validation/h200/ (sustained.csv, power.csv: 15-40 s loops on one H200,
    NVML clock, power and the SW-power-cap throttle reason); the effect on other parts:
    flashinfer-ai/flashinfer pull request 2899 (B200: SM clock 1965 -> ~1580 MHz and up to 15 %
    fewer TFLOP/s under back-to-back attention kernels).

    >>> power_capped_time(kernel_time=1.37e-3, flops=2 * 8192**3, sustained_flops_per_s=674e12)  # doctest: +ELLIPSIS
    0.001631...
    >>> power_capped_time(kernel_time=2.0e-3, flops=2 * 8192**3, sustained_flops_per_s=674e12)
    0.002
    """
    return maximum(kernel_time, flops / sustained_flops_per_s)


def unaligned_gemm_rate(peak_flops_per_s, bytes_per_element, alignment_elements=1):
    r"""Rate bound of a GEMM whose leading dimensions are not 16-byte multiples (e.g. vocab 50257).

    .. math:: R_{unaligned} = P_{peak}\,\min\left(1,\ \frac{w\,a}{16\ \mathrm{B}}\right)

    peak_flops_per_s P_peak (FLOP/s), bytes_per_element w (B), alignment_elements a (1: the
    element count of the dimensions is merely an integer; 2, 4, ...: the power of two every one of
    them is a multiple of). With a row stride that is not a multiple of 16 B the library cannot
    move operand tiles as 16-byte vectors (nor with TMA, whose strides must be 16-byte multiples)
    and falls back to the widest access the stride allows, a elements of w bytes: operand delivery,
    and so the multiply rate, drops to that vector's share of 16 bytes. Measured on one H200
    (perfmodel/data/validation/h200/, kernel tables of eager steps, bf16): GPT-2's LM head over
    vocab 50257 (odd, a = 1) runs cuBLAS/CUTLASS 'align1' kernels at 95-147 TFLOP/s (bound 123.6);
    BERT's over vocab 30522 (a multiple of 2) 'align2' kernels at 245-262 (bound 247).
    Source: NVIDIA, "Matrix Multiplication Background User's Guide", Tensor Core Requirements
    (multiples of 8 elements = 16 bytes for fp16); CUDA C++ Programming Guide, TMA (16-byte
    aligned strides).

    >>> unaligned_gemm_rate(peak_flops_per_s=989e12, bytes_per_element=2)
    123625000000000.0
    >>> unaligned_gemm_rate(peak_flops_per_s=989e12, bytes_per_element=2, alignment_elements=2)
    247250000000000.0
    """
    return peak_flops_per_s * minimum(1.0, bytes_per_element * alignment_elements / VECTOR_BYTES)


def flash_attention_forward_bytes(batch_size, seq_len, n_heads, n_kv_heads, head_dim, bytes_per_element):
    r"""Device-memory traffic of a fused (flash) attention forward: Q, K, V read, O and LSE written.

    .. math:: Q = b\,s\,d\,(2a + 2a_{kv})\,w + 4\,b\,a\,s

    batch_size b, seq_len s, n_heads a, n_kv_heads a_kv, head_dim d (1), bytes_per_element w (B).
    The score matrix never leaves on-chip memory; the fp32 log-sum-exp per query row (4 B) is
    kept for the backward. Source: Dao, "FlashAttention-2", 2023, Algorithm 1 (reads Q, K, V once
    per query block from HBM, writes O and L).

    >>> flash_attention_forward_bytes(batch_size=1, seq_len=4096, n_heads=32, n_kv_heads=8,
    ...                               head_dim=128, bytes_per_element=2)
    84410368
    """
    return batch_size * seq_len * head_dim * (2 * n_heads + 2 * n_kv_heads) * bytes_per_element \
        + 4 * batch_size * n_heads * seq_len


def flash_attention_backward_bytes(batch_size, seq_len, n_heads, n_kv_heads, head_dim, bytes_per_element):
    r"""Device-memory traffic of a flash attention backward: Q, K, V, O, dO and LSE read; dQ, dK, dV written.

    .. math:: Q = b\,s\,d\,(4a + 4a_{kv})\,w + 12\,b\,a\,s

    Parameters as in :func:`flash_attention_forward_bytes`. Counts the fp32 LSE read and the fp32
    D = rowsum(dO * O) written and read (12 B per query row); dQ accumulation in fp32 across key
    blocks is left out (FlashAttention-2 keeps it in one pass per query block in its counting).
    Source: Dao, "FlashAttention-2", 2023, Algorithm 2.

    >>> flash_attention_backward_bytes(batch_size=1, seq_len=4096, n_heads=32, n_kv_heads=8,
    ...                                head_dim=128, bytes_per_element=2)
    169345024
    """
    return batch_size * seq_len * head_dim * (4 * n_heads + 4 * n_kv_heads) * bytes_per_element \
        + 12 * batch_size * n_heads * seq_len


# a fused attention kernel against the matmul rate (flash_attention_time), least squares (relative
# errors) on ten measured points of two native kernels, causal, head dim 128: PyTorch 2.11's SDPA
# (flash backend) on an H100 (perfmodel/data/validation/h100/micro.csv, seq 4k and 8k, forward and
# forward+backward) and FlashAttention-2 on an A100 (hardware/gpu/a100-sxm4-80gb.toml [attention]);
# mean |error| 3.3 %, max 9.1 % (H100 forward+backward at 4k, too fast). The forward reaches 0.84 of
# the matmul rate R, the backward (five matmuls, dQ accumulated across key blocks) 0.655; a query
# block pays 3.9 key blocks of fixed work (loading Q, the pipeline's fill, rescaling, writing O).
# A block is 64 keys: FlashAttention-2's forward at head dim 128 on the A100 (csrc/flash_attn/src/
# flash_fwd_launch_template.h run_mha_fwd_hdim128: kernel traits 128 queries x 64 keys).
# tests/test_attention_model.py refits the three numbers
FUSED_ATTENTION_EFFICIENCY = {"fwd": 0.84, "bwd": 0.655}
ATTENTION_ROW_OVERHEAD_BLOCKS = 3.9
ATTENTION_BLOCK = 64


def attention_key_blocks(seq_len, causal_fraction, block_size):
    r"""Key blocks one query block of a fused attention kernel visits, on average.

    .. math:: n_{kb} = \max\left(\frac{c\, s}{B_{blk}} + 1 - c,\ 1\right)

    seq_len s (1), causal_fraction c (1: 0.5 causal, 1 full), block_size B_blk (1, keys per block).
    Full attention: every query block visits all s / B_blk key blocks; causal: query block i of
    n = s / B_blk visits i + 1 (the diagonal block computed whole), (n + 1) / 2 on average.
    Source: Dao, "FlashAttention-2", 2023, Algorithm 1 (the outer loop over query blocks, the inner
    over key blocks; causal: blocks above the diagonal skipped).

    >>> attention_key_blocks(seq_len=2048, causal_fraction=0.5, block_size=64)
    16.5
    """
    return maximum(causal_fraction * seq_len / block_size + (1 - causal_fraction), 1.0)


def flash_attention_time(flops, bytes_moved, achievable_flops_per_s, attention_efficiency, softmax_flops,
                         vector_flops_per_s, memory_bandwidth, key_blocks, row_overhead_blocks):
    r"""Time of a fused attention kernel: matmuls at its share of the matrix rate plus the softmax
    on the vector units, stretched by each query block's fixed work, or its memory traffic.

    .. math:: T = \max\left(\left(\frac{F}{\eta_{att} R} + \frac{F_{sm}}{P_{vec}}\right)
              \left(1 + \frac{c_{row}}{n_{kb}}\right),\ \frac{Q}{B_{mem}}\right)

    flops F (FLOP, the two matmuls, :func:`perfmodel.formulas.compute.attention_core_flops`, x 2.5
    backward), bytes_moved Q (B, :func:`flash_attention_forward_bytes` / backward),
    achievable_flops_per_s R (FLOP/s, the device's achievable matrix rate), attention_efficiency
    eta_att (1, the share of R the kernel's matmuls reach: :data:`FUSED_ATTENTION_EFFICIENCY`),
    softmax_flops F_sm (FLOP, :func:`perfmodel.formulas.compute.attention_softmax_flops`),
    vector_flops_per_s P_vec (FLOP/s, the non-matrix (fp32) rate), memory_bandwidth B_mem (B/s),
    key_blocks n_kb (1, :func:`attention_key_blocks`), row_overhead_blocks c_row (1, a query
    block's fixed work in key blocks: :data:`ATTENTION_ROW_OVERHEAD_BLOCKS`). The softmax adds to
    the matmul time (a dependency of each key block); the head dimension enters through F / F_sm =
    4d/3, the sequence through n_kb (short sequences pay the fixed work more often).
    Source: Dao, "FlashAttention-2", 2023, sections 3.1-3.2; eta_att and c_row: least squares on
    two measured kernels (the comment above :data:`FUSED_ATTENTION_EFFICIENCY`).

    >>> flash_attention_time(flops=1e12, bytes_moved=1e8, achievable_flops_per_s=800e12,
    ...                      attention_efficiency=0.84, softmax_flops=5e9, vector_flops_per_s=67e12,
    ...                      memory_bandwidth=3e12, key_blocks=16.5, row_overhead_blocks=3.9)  # doctest: +ELLIPSIS
    0.00193...
    """
    compute = ((flops / (attention_efficiency * achievable_flops_per_s) + softmax_flops / vector_flops_per_s)
               * (1 + row_overhead_blocks / key_blocks))
    return maximum(compute, bytes_moved / memory_bandwidth)


def attention_dropout_time(score_elements, time_per_element):
    r"""Time dropout adds to a fused attention kernel's forward: one random number per computed
    score (Philox, drawn inside the kernel), at a measured cost per element.

    .. math:: T = N_{scores}\, t_{el}

    score_elements N_scores (1, b a s^2, half of it for a kernel that skips the causal upper
    triangle), time_per_element t_el (s, the device's ``[measured] attention_dropout``). Source:
    Dao et al., "FlashAttention", NeurIPS 2022, Section 3.1 (dropout fused into the kernel, the
    random state regenerated in the backward); the per-element cost is measured (the device file).

    >>> attention_dropout_time(score_elements=8 * 12 * 1024**2 / 2, time_per_element=0.48e-12)  # doctest: +ELLIPSIS
    2.41...e-05
    """
    return score_elements * time_per_element


def memory_kernel_time(bytes_moved, memory_bandwidth, fixed_time):
    r"""Time of a memory-bound kernel: bytes over the achievable device-memory bandwidth plus a launch.

    .. math:: T = \frac{Q}{B_{mem}} + t_{fix}

    bytes_moved Q (B, reads plus writes), memory_bandwidth B_mem (B/s, achievable, e.g. a measured
    device-to-device copy), fixed_time t_fix (s, the kernel's launch cost where nothing hides it).
    Source: Williams, Waterman, Patterson, "Roofline", CACM 52(4), 2009 (memory roof).

    >>> memory_kernel_time(bytes_moved=3.028e9, memory_bandwidth=3.028e12, fixed_time=6.76e-6)
    0.00100676
    """
    return bytes_moved / memory_bandwidth + fixed_time
