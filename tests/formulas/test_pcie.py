"""pcie: spec values, numpy broadcasting, sympy forms, and validation against one measured H100 host
(with the copy time of pcie_copies).

Run with ``pytest -s`` to see the measured-vs-predicted tables.
"""

from __future__ import annotations

import csv
import math
import pathlib

import numpy as np
import pytest

import perfmodel
from perfmodel.formulas import pcie, pcie_copies
from tests.formulas.backends import (
    assert_numpy_matches_loop,
    assert_sympy_equals,
    assert_sympy_matches_float,
)

GEN5 = pcie.PCIE_GENERATIONS[5]

# --- values from the specification and application notes ------------------------------------------


def test_generation_table_rates_and_encodings():
    # PCIe Base Spec 6.3 Table 4-1: 2.5/5 GT/s 8b/10b, 8/16/32 GT/s 128b/130b, 64 GT/s 1b/1b Flit Mode.
    rates = [pcie.PCIE_GENERATIONS[g]["line_rate_bits_per_s"] for g in range(1, 7)]
    assert rates == [2.5e9, 5e9, 8e9, 16e9, 32e9, 64e9]
    assert [pcie.PCIE_GENERATIONS[g]["encoding_efficiency"] for g in (1, 2)] == [0.8, 0.8]
    assert all(pcie.PCIE_GENERATIONS[g]["encoding_efficiency"] == 128 / 130 for g in (3, 4, 5))
    # Section 4.2.3.3: a 256-B flit carries 236 B of TLPs.
    assert pcie.PCIE_GENERATIONS[6]["flit_efficiency"] == 236 / 256
    # Non-Flit framing per TLP: gen 1-2 STP 1 + seq 2 + LCRC 4 + END 1; gen 3-5 STP token 4 (holds the
    # 12-bit sequence number, Table 4-4) + LCRC 4. Both 8 B. Flit Mode: none per TLP.
    assert [pcie.PCIE_GENERATIONS[g]["tlp_framing_bytes"] for g in range(1, 7)] == [8, 8, 8, 8, 8, 0]


def test_raw_and_encoded_bandwidth():
    # Gen 5 x16: 32 GT/s x 16 / 8 = 64 GB/s raw; x 128/130 = 63.0 GB/s (the "63 GB/s" of datasheets).
    assert pcie.pcie_raw_bandwidth(32e9, 16) == 64e9
    no_skp = pcie.pcie_link_bandwidth(32e9, 16, 128 / 130, 1.0, 0.0)
    assert no_skp == pytest.approx(63.0154e9, rel=1e-5)
    # Gen 1 x1: 2.5 GT/s with 8b/10b = 250 MB/s (PCIe 1.x per-lane figure).
    assert pcie.pcie_link_bandwidth(2.5e9, 1, 0.8, 1.0, 0.0) == pytest.approx(250e6, rel=1e-12)
    # SKP ordered sets cost 1 Block in 376 at 128b/130b (Section 4.2.8.4, 370-375 Block interval).
    assert pcie.pcie_link_bandwidth(**pcie._link_params(5), n_lanes=16) == pytest.approx(63.0154e9 * 375 / 376, rel=1e-5)


def test_tlp_efficiency_intel_read_example():
    # Intel 683504 "Throughput for Reads": a 512-B read answered by two 256-B completions with 3-DW
    # headers costs 2 x 20 B of overhead: 512 / (512 + 40) = 92.75 %.
    eff = pcie.pcie_tlp_efficiency(payload_bytes=256, tlp_header_bytes=12, tlp_framing_bytes=8)
    assert eff == pytest.approx(512 / 552, rel=1e-12)
    # Intel 683390: per-TLP overhead 5-7 DW = 20-28 B (framing + sequence + 3/4-DW header + LCRC [+ ECRC]).
    for header in (12, 16, 16 + pcie.TLP_HEADER_BYTES["ecrc"]):
        overhead = header + GEN5["tlp_framing_bytes"]
        assert 20 <= overhead <= 28


def test_dllp_fraction_from_ack_latency_table():
    # Table 3-12 (8 GT/s and up), MPS 256, x16: Ack latency limit 168 Symbol Times; one Ack and one
    # UpdateFC of 8 B each per 168 x 16 byte-times.
    limit = pcie.PCIE_ACK_LATENCY_LIMIT_SYMBOLS[8.0e9][256][16]
    assert limit == 168
    frac = pcie.pcie_dllp_fraction(n_dllp_types=2, dllp_bytes=pcie.DLLP_BYTES, n_lanes=16, n_symbols_per_dllp=limit)
    assert frac == pytest.approx(16 / 2688, rel=1e-12)
    # x1 at 2.5 GT/s, MPS 128 (Table 3-10: 237): one Ack per 237 byte-times.
    assert pcie.pcie_dllp_fraction(1, 8, 1, pcie.PCIE_ACK_LATENCY_LIMIT_SYMBOLS[2.5e9][128][1]) == pytest.approx(8 / 237)


def test_write_read_and_effective_bandwidth_gen5_x16():
    link = pcie.pcie_link_bandwidth(**pcie._link_params(5), n_lanes=16)
    write = pcie.pcie_write_bandwidth(link, 0, 256, 16, 8)
    assert write == pytest.approx(link * 256 / 280, rel=1e-12)
    one_call = pcie.pcie_effective_bandwidth(**GEN5, n_lanes=16, max_payload_bytes=256, tlp_header_bytes=16, dllp_fraction=0)
    assert one_call == pytest.approx(write, rel=1e-12)
    read = pcie.pcie_read_bandwidth(link, 0, 256, 12, 8)
    assert read == pytest.approx(link * 256 / 276, rel=1e-12)
    # 64-B completions (Intel root complexes with RCB-sized completions, pcie-model rcb_chunks) cost 18 %.
    assert pcie.pcie_read_bandwidth(link, 0, 64, 12, 8) / read == pytest.approx((64 / 84) / (256 / 276), rel=1e-12)


def test_lane0_framing_quantises_tlps_to_symbol_times():
    # PCIe Base 6.3 Section 4.2.2.3.2: a TLP started in Lane 0 fills whole Symbol Times (n_lanes B each).
    aligned = pcie.pcie_aligned_tlp_efficiency
    # x16: a 256-B MWr (16 + 8 + 256 = 280 B, 17.5 Symbol Times) and a 256-B CplD (276 B, 17.25) both take 18.
    assert aligned(256, 16, 8, 16) == 256 / 288
    assert aligned(256, 12, 8, 16) == 256 / 288
    # 128-B completions at x16: 148 B -> 160 B.
    assert aligned(128, 12, 8, 16) == 0.8
    # Intel AN 829 (683554) "Throughput for Posted Writes": 256-B payload, 3-DW header on a 256-bit (32-B)
    # interface takes 9 beats, "8 cycles/9 cycles = 88.88 %".
    assert aligned(256, 12, 8, 32) == pytest.approx(8 / 9, rel=1e-12)
    # Up to x4 every TLP (whole DWs) ends at a Symbol Time boundary: Lane-0 framing costs nothing.
    for lanes in (1, 2, 4):
        for p, h in ((128, 12), (256, 16), (512, 12)):
            assert aligned(p, h, 8, lanes) == pytest.approx(pcie.pcie_tlp_efficiency(p, h, 8), rel=1e-12)
    # x8: a 276-B completion rounds to 280 B (35 Symbol Times), the 280-B write does not move.
    assert aligned(256, 12, 8, 8) == 256 / 280 == aligned(256, 16, 8, 8)
    # The stream bandwidth with packed framing is the write formula.
    link = pcie.pcie_link_bandwidth(**pcie._link_params(5), n_lanes=16)
    packed = pcie.pcie_stream_bandwidth(link, 0.0, pcie.pcie_tlp_efficiency(256, 16, 8))
    assert packed == pytest.approx(pcie.pcie_write_bandwidth(link, 0.0, 256, 16, 8), rel=1e-12)
    assert pcie.pcie_stream_bandwidth(link, 0.0, aligned(256, 16, 8, 16)) == pytest.approx(55.86e9, rel=1e-3)


def test_read_requests_and_outstanding_reads():
    # A 4-DW MRd (16 B + 8 B framing) per 512 B read.
    assert pcie.pcie_read_request_fraction(512, 16, 8) == 24 / 512
    # 256 tags x 512 B in flight over 1 us round trip = 131 GB/s.
    assert pcie.pcie_outstanding_read_bandwidth(256, 512, 1e-6) == pytest.approx(131.072e9, rel=1e-12)


def test_duplex_is_below_twice_one_way():
    link = pcie.pcie_link_bandwidth(**pcie._link_params(5), n_lanes=16)
    w, r, q = 256 / 280, 256 / 276, 24 / 512
    f = pcie.pcie_dllp_fraction(2, 8, 16, 168)
    both = pcie.pcie_duplex_bandwidth(link, f, w, r, q)
    assert both == pytest.approx(link * (1 - f) * r + (link * (1 - f) - link * (1 - f) * r * q) * w, rel=1e-12)
    assert both < link * w + link * r


# --- numpy broadcasting == loop -------------------------------------------------------------------

LINK = np.array([[15.7e9], [31.5e9], [62.8e9]])


@pytest.mark.parametrize(
    "func, kwargs",
    [
        (pcie.pcie_raw_bandwidth, dict(line_rate_bits_per_s=np.array([[8e9], [32e9]]), n_lanes=np.array([1, 4, 16]))),
        (pcie.pcie_link_bandwidth, dict(line_rate_bits_per_s=np.array([[2.5e9], [32e9]]), n_lanes=16,
                                        encoding_efficiency=np.array([0.8, 128 / 130]), flit_efficiency=1.0,
                                        skp_fraction=1 / 376)),
        (pcie.pcie_tlp_efficiency, dict(payload_bytes=np.array([[128], [256], [512]]), tlp_header_bytes=np.array([12, 16]),
                                        tlp_framing_bytes=8)),
        (pcie.pcie_aligned_tlp_efficiency, dict(payload_bytes=np.array([[128], [256], [512]]), tlp_header_bytes=np.array([12, 16]),
                                                tlp_framing_bytes=8, n_lanes=np.array([[[4]], [[16]]]))),
        (pcie.pcie_stream_bandwidth, dict(link_bandwidth=LINK, dllp_fraction=np.array([0, 0.006]), tlp_efficiency=256 / 288)),
        (pcie.pcie_dllp_fraction, dict(n_dllp_types=2, dllp_bytes=8, n_lanes=np.array([[1], [16]]),
                                       n_symbols_per_dllp=np.array([168, 512]))),
        (pcie.pcie_write_bandwidth, dict(link_bandwidth=LINK, dllp_fraction=np.array([0, 0.006]), max_payload_bytes=256,
                                         tlp_header_bytes=16, tlp_framing_bytes=8)),
        (pcie.pcie_read_bandwidth, dict(link_bandwidth=LINK, dllp_fraction=0.006, completion_payload_bytes=np.array([64, 128, 256]),
                                        tlp_header_bytes=12, tlp_framing_bytes=8)),
        (pcie.pcie_read_request_fraction, dict(max_read_request_bytes=np.array([256, 512, 4096]), tlp_header_bytes=16,
                                               tlp_framing_bytes=8)),
        (pcie.pcie_outstanding_read_bandwidth, dict(n_outstanding_reads=np.array([[256], [768]]), max_read_request_bytes=512,
                                                    read_latency_time=np.array([0.5e-6, 1e-6, 2e-6]))),
        (pcie.pcie_duplex_bandwidth, dict(link_bandwidth=LINK, dllp_fraction=0.006, write_efficiency=np.array([0.84, 0.914]),
                                          read_efficiency=0.927, read_request_fraction=24 / 512)),
        (pcie.pcie_effective_bandwidth, dict(line_rate_bits_per_s=np.array([[8e9], [32e9]]), n_lanes=16,
                                             encoding_efficiency=128 / 130, flit_efficiency=1.0, skp_fraction=1 / 376,
                                             tlp_framing_bytes=8, max_payload_bytes=np.array([128, 256, 512]),
                                             tlp_header_bytes=16, dllp_fraction=0)),
    ],
    ids=lambda x: getattr(x, "__name__", ""),
)
def test_numpy_matches_loop(func, kwargs):
    assert_numpy_matches_loop(func, **kwargs)


# --- sympy: expression typed from the source ----------------------------------------------------------


def test_sympy_forms():
    import sympy as sp

    assert_sympy_equals(pcie.pcie_raw_bandwidth, lambda line_rate_bits_per_s, n_lanes: line_rate_bits_per_s * n_lanes / 8)
    assert_sympy_equals(pcie.pcie_link_bandwidth, lambda line_rate_bits_per_s, n_lanes, encoding_efficiency, flit_efficiency,
                        skp_fraction: line_rate_bits_per_s * n_lanes * encoding_efficiency * flit_efficiency
                        * (1 - skp_fraction) / 8)
    assert_sympy_equals(pcie.pcie_tlp_efficiency, lambda payload_bytes, tlp_header_bytes, tlp_framing_bytes:
                        1 - (tlp_header_bytes + tlp_framing_bytes) / (payload_bytes + tlp_header_bytes + tlp_framing_bytes))
    assert_sympy_equals(pcie.pcie_aligned_tlp_efficiency, lambda payload_bytes, tlp_header_bytes, tlp_framing_bytes, n_lanes:
                        payload_bytes / n_lanes
                        / sp.ceiling((payload_bytes + tlp_header_bytes + tlp_framing_bytes) / n_lanes))
    assert_sympy_equals(pcie.pcie_stream_bandwidth, lambda link_bandwidth, dllp_fraction, tlp_efficiency:
                        link_bandwidth * tlp_efficiency - link_bandwidth * dllp_fraction * tlp_efficiency)
    assert_sympy_equals(pcie.pcie_dllp_fraction, lambda n_dllp_types, dllp_bytes, n_lanes, n_symbols_per_dllp:
                        n_dllp_types * dllp_bytes / n_lanes / n_symbols_per_dllp)
    assert_sympy_equals(pcie.pcie_write_bandwidth, lambda link_bandwidth, dllp_fraction, max_payload_bytes, tlp_header_bytes,
                        tlp_framing_bytes: (link_bandwidth - dllp_fraction * link_bandwidth) * max_payload_bytes
                        / (max_payload_bytes + tlp_header_bytes + tlp_framing_bytes))
    assert_sympy_equals(pcie.pcie_read_bandwidth, lambda link_bandwidth, dllp_fraction, completion_payload_bytes,
                        tlp_header_bytes, tlp_framing_bytes: (link_bandwidth - dllp_fraction * link_bandwidth)
                        * completion_payload_bytes / (completion_payload_bytes + tlp_header_bytes + tlp_framing_bytes))
    assert_sympy_equals(pcie.pcie_read_request_fraction, lambda max_read_request_bytes, tlp_header_bytes, tlp_framing_bytes:
                        tlp_header_bytes / max_read_request_bytes + tlp_framing_bytes / max_read_request_bytes)
    assert_sympy_equals(pcie.pcie_outstanding_read_bandwidth, lambda n_outstanding_reads, max_read_request_bytes,
                        read_latency_time: n_outstanding_reads * max_read_request_bytes / read_latency_time)

    # Duplex, written as the two directions of the derivation: x = L(1-f) r, y = (L(1-f) - q x) w.
    def duplex(link_bandwidth, dllp_fraction, write_efficiency, read_efficiency, read_request_fraction):
        x = link_bandwidth * (1 - dllp_fraction) * read_efficiency
        return x + (link_bandwidth * (1 - dllp_fraction) - read_request_fraction * x) * write_efficiency

    assert_sympy_equals(pcie.pcie_duplex_bandwidth, duplex)
    assert_sympy_equals(pcie.pcie_effective_bandwidth, lambda line_rate_bits_per_s, n_lanes, encoding_efficiency,
                        flit_efficiency, skp_fraction, tlp_framing_bytes, max_payload_bytes, tlp_header_bytes, dllp_fraction:
                        line_rate_bits_per_s * n_lanes / 8 * encoding_efficiency * flit_efficiency * (1 - skp_fraction)
                        * (1 - dllp_fraction) * max_payload_bytes / (max_payload_bytes + tlp_header_bytes + tlp_framing_bytes))


def test_sympy_substituted_equals_float():
    assert_sympy_matches_float(pcie.pcie_aligned_tlp_efficiency, payload_bytes=256, tlp_header_bytes=12, tlp_framing_bytes=8,
                               n_lanes=16)
    assert_sympy_matches_float(pcie.pcie_duplex_bandwidth, link_bandwidth=62.8e9, dllp_fraction=0.006,
                               write_efficiency=256 / 280, read_efficiency=256 / 276, read_request_fraction=24 / 512)


# --- validation: one H100 80GB HBM3 SXM, PCIe gen 5 x16 to the host, pinned memory --------------------
#
# Data: the project's copy perfmodel/data/validation/h100_pcie.csv (from perfmodel/data/validation/h100/pcie.csv,
# medians of CUDA events; GB/s decimal = bytes / median time, so the fixed cost is inside).
# Assumptions, stated rather than fitted:
#   * gen 5 x16 (nvidia-smi in device.json: pcie.link.gen.current 5, width.current 16);
#   * max payload size 256 B. Evidence: with MPS 128 the posted-write bound would be 52.9 GB/s, below
#     the measured 55.1 GB/s D2H, so MPS >= 256; 256 is what GPUs and Intel root ports typically allow;
#   * D2H is posted memory writes by the GPU copy engine, 4-DW headers (host addresses above 4 GiB);
#   * H2D is DMA reads by the GPU: 512-B read requests (MRRS), data in 256-B (MPS-sized) completions
#     with 3-DW headers. Evidence: 128-B completions would bound H2D at 54.3 GB/s, below the measured
#     ~55 GB/s, so most completions are larger than 128 B;
#   * one-way: the data direction carries no DLLPs of its own flow (its Acks/UpdateFCs go the other
#     way); for reads it does carry the root port's Acks and UpdateFC-NPs for the read requests,
#     at the spec's Ack latency limit (Table 3-12: 168 Symbol Times at x16, MPS 256);
#   * common clock (SKP every <= 375 Blocks); the SRIS rate (< 38 Blocks) would cost 2.6 % more;
#   * Lane-0 framing (PCIe Base 6.3 Section 4.2.2.3.2; pcie_aligned_tlp_efficiency): every TLP starts in
#     Lane 0 of a new Symbol Time, so a 280-B write and a 276-B completion both occupy 288 B at x16.
#     No datasheet of the H100 or of the Xeon root port says which of the two compliant framings they
#     use; the measurement picks it (test_h2d_d2h_ratio_identifies_lane0_framing): packed framing
#     predicts H2D 0.85 % *faster* than D2H (completion header 4 B shorter than the write header), Lane-0
#     framing 0-0.6 % slower, and every pair of measured rows has H2D 0.5-1.1 % slower. Not universal:
#     RTX PRO 6000 Blackwell P2P writes through AMD Turin measure 56.6 GB/s (p2pBandwidthLatencyTest,
#     github.com/voipmonitor/rtx6kpro hardware/pcie-bandwidth.md), above the Lane-0 bound of 55.9 (so
#     those ports pack), and the packed bound stays the hard limit checked here;
#   * alpha = 10.8 us: the latency floor of the measurement (H2D copies of 4 KiB-256 KiB all take
#     10.7-10.8 us); it changes the >= 64 MB predictions by < 1 %.
# What was checked and does not explain the 3.7-5.5 % gap to the packed bound (numbers at 256 MiB):
#   * RCB-sized completions: 64 B bounds H2D at 47.6-47.9 GB/s and 128 B at 54.0-54.4 GB/s, both below
#     the measured 54.8, so completions are MPS-sized (and completions cannot touch D2H);
#   * MRRS 512 (e.g. A100 lspci DevCtl: MaxReadReq 512 bytes) only sizes the request stream, 4.7 % of
#     the *other* direction; tags: 256 x 512 B in flight cap reads only if the read latency exceeds
#     2.4 us (10-bit tags: 7.2 us), and tags cannot slow the D2H writes;
#   * ECRC (+4 B per TLP) would leave D2H +2.6 %, H2D +4.0 % and keep H2D faster than D2H; SRIS
#     (SKP every 38 Blocks, -2.4 %) gives D2H +1.6 %, H2D +3.0 % and likewise keeps H2D faster;
#     neither is reported for this host;
#   * more DLLPs than the spec's minimum (an Ack and an UpdateFC-NP per 512-B read: 2.9 %) would bring
#     H2D to +3.1 % but cannot touch D2H, whose DLLPs travel the other way;
#   * pcie-model's DLLP accounting (Ack + UpdateFC per 168 Symbol Times without the lane count, 9.5 %)
#     predicts 52.0 GB/s writes, which the measured 55.1 GB/s beats: ruled out;
#   * IOMMU (a KVM guest: DMA remapped by the host) is not quantified by any source for this host.

ISSUE_BOUND = 0.05  # "a test states the error, which must be <= 5% one way" (the PCIe issue)
ALPHA = 10.8e-6
MPS, MRRS, N_LANES = 256, 512, 16
DATA = pathlib.Path(perfmodel.__file__).resolve().parent / "data" / "validation" / "h100_pcie.csv"


def _rows():
    with DATA.open() as f:
        return [
            dict(test=r["test"], streams=int(r["streams"]), size=int(r["bytes"]), t=float(r["ms_median"]) * 1e-3,
                 t_min=float(r["ms_min"]) * 1e-3, rate=float(r["gbps_median"]) * 1e9, source=r["source"])
            for r in csv.DictReader(f)
        ]


def _model():
    link = pcie.pcie_link_bandwidth(**pcie._link_params(5), n_lanes=N_LANES)
    reverse_dllps = pcie.pcie_dllp_fraction(2, pcie.DLLP_BYTES, N_LANES, pcie.PCIE_ACK_LATENCY_LIMIT_SYMBOLS[8.0e9][MPS][N_LANES])
    wr_hdr, cpl_hdr, frame = pcie.TLP_HEADER_BYTES["mem_64bit"], pcie.TLP_HEADER_BYTES["completion"], GEN5["tlp_framing_bytes"]
    w_eff = pcie.pcie_aligned_tlp_efficiency(MPS, wr_hdr, frame, N_LANES)
    r_eff = pcie.pcie_aligned_tlp_efficiency(MPS, cpl_hdr, frame, N_LANES)
    return dict(
        link=link,
        dllp=reverse_dllps,
        # The prediction: Lane-0 framing.
        d2h=pcie.pcie_stream_bandwidth(link, 0.0, w_eff),
        h2d=pcie.pcie_stream_bandwidth(link, reverse_dllps, r_eff),
        w_eff=w_eff,
        r_eff=r_eff,
        # A 24-B MRd (4-DW header + framing) also fills whole Symbol Times: 32 B per 512 B read.
        q=N_LANES * math.ceil((wr_hdr + frame) / N_LANES) / MRRS,
        # The hard bound: packed framing, the least overhead the spec allows.
        d2h_packed=pcie.pcie_write_bandwidth(link, 0.0, MPS, wr_hdr, frame),
        h2d_packed=pcie.pcie_read_bandwidth(link, reverse_dllps, MPS, cpl_hdr, frame),
    )


def _disturbed(row):
    # A median more than 10 % above the minimum: every other pinned row is within 3 %.
    return row["t"] > 1.10 * row["t_min"]


def _one_way_cases(direction, framing=""):
    m = _model()
    out = []
    for r in _rows():
        if r["test"] == direction and r["size"] >= 64 * 2**20:
            pred = pcie_copies.pcie_copy_bandwidth(r["size"], ALPHA, m[direction + framing])
            out.append((r, pred, pred / r["rate"] - 1))
    return out


def _report(title, cases):
    print(f"\n{title}")
    for r, pred, err in cases:
        flag = "  (excluded: disturbed median)" if _disturbed(r) else ""
        print(f"  {r['test']:>16} k={r['streams']} {r['size'] / 2**20:7.0f} MiB  measured {r['rate'] / 1e9:6.2f}"
              f"  predicted {pred / 1e9:6.2f} GB/s  error {err:+.1%}{flag}")


def test_validation_data_is_the_projects_copy_with_sources():
    rows = _rows()
    assert len(rows) == 31
    assert all(r["source"].startswith("shared/validation/h100/pcie.csv") for r in rows)


def test_d2h_one_way_within_issue_bound():
    cases = _one_way_cases("d2h")
    _report("D2H pinned (posted writes, Lane-0 framing: 256 B per 288), sizes >= 64 MiB", cases)
    _report("  for reference, packed framing (256 B per 280)", _one_way_cases("d2h", "_packed"))
    assert len(cases) == 3 and not any(_disturbed(r) for r, _, _ in cases)
    for r, pred, err in cases:
        assert abs(err) <= ISSUE_BOUND, (r["size"], err)
        assert r["rate"] <= pred  # the spec's overheads are a minimum: measured must not beat the bound


def test_h2d_1gib_row_is_disturbed():
    # The 1 GiB H2D median (25.4 ms, 42.3 GB/s) is 30 % above its own minimum (19.48 ms, i.e.
    # 55.1 GB/s, the same as the 1 GiB D2H median); every other pinned row's median is within 3 % of
    # its minimum. So that median is disturbed (not the link) and is left out of the H2D check.
    (row,) = [r for r in _rows() if r["test"] == "h2d" and r["size"] == 2**30]
    assert _disturbed(row)
    assert row["size"] / row["t_min"] == pytest.approx(55.1e9, rel=0.01)
    assert sum(_disturbed(r) for r in _rows()) == 2  # this row and concurrent_d2h k=1


def test_h2d_one_way_within_issue_bound():
    cases = _one_way_cases("h2d")
    _report("H2D pinned (device reads, 256-B completions, Lane-0 framing), sizes >= 64 MiB", cases)
    _report("  for reference, packed framing (256 B per 276)", _one_way_cases("h2d", "_packed"))
    kept = [(r, p, e) for r, p, e in cases if not _disturbed(r)]
    assert len(kept) == 2
    for r, pred, err in kept:
        assert abs(err) <= ISSUE_BOUND, (r["size"], err)
        assert r["rate"] <= pred


def test_measured_stays_below_the_packed_bound():
    # What every compliant link obeys: no row beats the least-overhead (packed) framing.
    for direction in ("d2h", "h2d"):
        for r, pred, err in _one_way_cases(direction, "_packed"):
            if not _disturbed(r):
                assert r["rate"] <= pred and err > 0


def test_h2d_d2h_ratio_identifies_lane0_framing():
    # Same sizes, same link: the H2D / D2H ratio does not depend on what both directions share (link
    # rate, SKP, alpha, a common host-side loss). Packed framing puts H2D 0.85 % above D2H (276-B
    # completions vs 280-B writes, less the 0.6 % reverse DLLPs); Lane-0 framing makes both TLPs 288 B,
    # so H2D is 0.6 % below D2H with that DLLP share and equal without it.
    m = _model()
    packed = m["h2d_packed"] / m["d2h_packed"]
    lane0 = m["h2d"] / m["d2h"]
    assert packed == pytest.approx(1.0085, abs=1e-4) and lane0 == pytest.approx(0.9940, abs=1e-4)
    rate = {(r["test"], r["streams"], r["size"]): r["rate"] for r in _rows() if not _disturbed(r)}
    pairs = [("h2d", "d2h", 1, 2**26), ("h2d", "d2h", 1, 2**28)]
    pairs += [("concurrent_h2d", "concurrent_d2h", k, 2**28) for k in (2, 4, 8)]
    print(f"\nH2D / D2H rate: packed framing predicts {packed:.4f}, Lane-0 framing {lane0:.4f}-1.0000")
    for h, d, k, size in pairs:
        measured = rate[(h, k, size)] / rate[(d, k, size)]
        print(f"  {h:>14} / {d:<14} k={k} {size / 2**20:4.0f} MiB: measured {measured:.4f}")
        assert measured < 1 < packed  # packed framing gets the sign wrong
        assert abs(measured - lane0) < abs(measured - packed) / 3


@pytest.mark.parametrize("direction", ["d2h", "h2d"])
def test_k_concurrent_same_direction_copies_share_one_link(direction):
    # k copies of 256 MiB / k on k streams at once (the CSV's bytes are the total). Model: each copy
    # gets beta / k, so the total equals the one-way rate and the k copies finish together.
    m = _model()
    one_way = [r for r in _rows() if r["test"] == direction and r["size"] == 2**28][0]["rate"]
    cases = []
    for r in _rows():
        if r["test"] == f"concurrent_{direction}":
            per_copy_meas = r["rate"] / r["streams"]
            per_copy_pred = pcie_copies.pcie_concurrent_copy_bandwidth(
                r["streams"], pcie_copies.pcie_copy_bandwidth(r["size"], ALPHA, m[direction]))
            cases.append((r, per_copy_pred * r["streams"], per_copy_pred / per_copy_meas - 1))
    _report(f"{direction} k concurrent copies (per-copy error = total error)", cases)
    kept = [c for c in cases if not _disturbed(c[0])]
    assert len(kept) >= 3
    for r, pred, err in kept:
        # Sharing costs nothing extra: the measured total of k copies matches one copy alone.
        assert r["rate"] / one_way - 1 == pytest.approx(0, abs=ISSUE_BOUND)
        assert r["rate"] <= pred
        assert abs(err) <= ISSUE_BOUND, (r["streams"], err)


def test_bidirectional_report_and_what_the_protocol_explains():
    m = _model()
    x = m["link"] * (1 - m["dllp"]) * m["r_eff"]  # H2D completions
    y = m["link"] * (1 - m["dllp"]) * (1 - m["r_eff"] * m["q"]) * m["w_eff"]  # D2H writes + H2D requests
    total_rate = pcie.pcie_duplex_bandwidth(m["link"], m["dllp"], m["w_eff"], m["r_eff"], m["q"])
    assert total_rate == pytest.approx(x + y, rel=1e-12)
    one_way_sum = m["d2h"] + pcie.pcie_stream_bandwidth(m["link"], 0.0, m["r_eff"])
    rows = [r for r in _rows() if r["test"] == "concurrent_bidir"]
    meas_one_way_sum = sum(r["rate"] for r in _rows() if r["test"] in ("h2d", "d2h") and r["size"] == 2**28)
    print(f"\nbidirectional: protocol bound {total_rate / 1e9:.1f} GB/s (H2D {x / 1e9:.1f} + D2H {y / 1e9:.1f}) vs "
          f"2 x one-way bound {one_way_sum / 1e9:.1f}; measured one-way sum {meas_one_way_sum / 1e9:.1f}")
    for r in rows:
        # Half the bytes each way; the slower direction finishes last.
        pred = r["size"] / (ALPHA + (r["size"] / 2) / min(x, y))
        print(f"  k={r['streams']}: measured {r['rate'] / 1e9:5.1f} GB/s, predicted {pred / 1e9:5.1f}, "
              f"error {pred / r['rate'] - 1:+.1%}")
        assert r["rate"] <= pred  # the bound holds ...
    gap_measured = meas_one_way_sum - np.mean([r["rate"] for r in rows])
    gap_explained = one_way_sum - total_rate
    print(f"  duplex loss vs 2 x one-way: measured {gap_measured / 1e9:.1f} GB/s, explained by Acks/UpdateFCs/"
          f"read requests {gap_explained / 1e9:.1f} GB/s ({gap_explained / gap_measured:.0%})")
    # ... and the protocol explains part, not all, of the duplex loss (the rest is not modelled).
    assert 0 < gap_explained < gap_measured


def test_latency_region_and_alpha_beta_curve():
    # The time formula at small sizes: 4 KiB copies take alpha (H2D 10.8 us, D2H 13.2 us measured).
    m = _model()
    print("\ncopy time, alpha-beta model (alpha = 10.8 us) vs measured median")
    for r in _rows():
        if r["test"] in ("h2d", "d2h") and not _disturbed(r):
            pred = pcie_copies.pcie_copy_time(r["size"], ALPHA, m[r["test"]])
            print(f"  {r['test']} {r['size']:>11} B  measured {r['t'] * 1e6:9.2f} us  predicted {pred * 1e6:9.2f} us"
                  f"  error {pred / r['t'] - 1:+.1%}")
            if r["size"] == 4096:
                # Small-copy times spread 10.7-13.2 us between the rows; the model sits at their floor.
                assert pred == pytest.approx(r["t"], rel=0.25)
