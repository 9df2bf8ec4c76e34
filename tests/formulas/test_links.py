"""links: values from standards and datasheets, numpy broadcasting, sympy forms typed from the sources."""

from __future__ import annotations

import numpy as np
import pytest

from perfmodel.formulas import links
from tests.formulas.backends import (
    assert_numpy_matches_loop,
    assert_sympy_equals,
    assert_sympy_matches_float,
)

# --- values -------------------------------------------------------------------------------------


def test_p2p_time_hockney_worked_example():
    # 1 MB over a 100 Gb/s (12.5 GB/s) link with 2 us startup: 2 us + 80 us.
    assert links.p2p_time(size=1e6, alpha=2e-6, beta=12.5e9) == pytest.approx(82e-6, rel=1e-12)


def test_hop_forms_order_and_limits():
    kw = dict(size=1e6, alpha=2e-6, beta=12.5e9, n_hops=3, hop_latency=3e-7)
    cut = links.multi_hop_time(**kw)
    saf = links.store_and_forward_time(**kw)
    assert cut == pytest.approx(2e-6 + 3 * 3e-7 + 80e-6, rel=1e-12)
    assert saf == pytest.approx(2e-6 + 3 * (3e-7 + 80e-6), rel=1e-12)
    # Pipelining: one packet = the whole message is store-and-forward; tiny packets -> cut-through.
    assert links.pipelined_store_and_forward_time(**kw, packet_bytes=1e6) == pytest.approx(saf, rel=1e-12)
    assert links.pipelined_store_and_forward_time(**kw, packet_bytes=1e-9) == pytest.approx(cut, rel=1e-9)
    assert cut < links.pipelined_store_and_forward_time(**kw, packet_bytes=4096) < saf


def test_100gbe_lane_rate_gives_100_gbit():
    # IEEE 802.3 clause 82: 100GBASE-R4 = 4 lanes x 25.78125 Gb/s with 64b/66b -> 100 Gb/s MAC rate.
    beta = links.encoded_bandwidth(25.78125e9, links.ENCODING_EFFICIENCY["64b/66b"], 4)
    assert beta == pytest.approx(100e9 / 8, rel=1e-12)


def test_pcie3_lane_after_128b130b():
    # PCIe 3.0: 8 GT/s x 128/130 = 7.877 Gb/s per lane = 0.985 GB/s (PCIe Base Spec Table 4-1).
    assert links.encoded_bandwidth(8e9, links.ENCODING_EFFICIENCY["128b/130b"], 1) == pytest.approx(0.98462e9, rel=1e-4)


def test_infiniband_qdr_8b10b():
    # InfiniBand QDR 4x: 4 lanes x 10 Gb/s signalling, 8b/10b -> 32 Gb/s data = 4 GB/s.
    assert links.encoded_bandwidth(10e9, links.ENCODING_EFFICIENCY["8b/10b"], 4) == pytest.approx(4e9, rel=1e-12)


def test_nvlink4_h100_bidirectional_and_aggregate():
    # NVIDIA H100 SXM datasheet: NVLink 900 GB/s total = 18 links x 50 GB/s bidirectional.
    per_link = links.per_direction_bandwidth(50e9)
    assert per_link == 25e9
    total = links.aggregate_bandwidth(n_links=18, beta=per_link)
    assert total == 450e9
    assert links.bidirectional_bandwidth(total) == 900e9
    assert links.per_direction_bandwidth(links.bidirectional_bandwidth(63e9)) == 63e9


def test_frame_efficiencies():
    # InfiniBand: LRH 8 + BTH 12 + ICRC 4 + VCRC 2 = 26 B per packet; 4096-B MTU (IBA Vol. 1).
    assert links.FRAME_OVERHEAD_BYTES["infiniband"] == 8 + 12 + 4 + 2
    assert links.frame_efficiency(4096, 26) == pytest.approx(4096 / 4122, rel=1e-12)
    # Ethernet, 1500-B payload: 7 + 1 + 14 + 4 + 12 = 38 B on the wire per frame (IEEE 802.3).
    assert links.FRAME_OVERHEAD_BYTES["ethernet"] == 7 + 1 + 6 + 6 + 2 + 4 + 12
    assert links.payload_bandwidth(12.5e9, 1500, 38) == pytest.approx(12.5e9 * 1500 / 1538, rel=1e-12)
    # RoCEv2/IPv4 adds IPv4 20 + UDP 8 + BTH 12 + ICRC 4 to Ethernet's 38 (IBTA Annex A17).
    assert links.FRAME_OVERHEAD_BYTES["rocev2_ipv4"] == 38 + 20 + 8 + 12 + 4
    assert links.frame_efficiency(4096, 82) < links.frame_efficiency(4096, 26) < 1


# --- numpy broadcasting == loop -------------------------------------------------------------------

SIZES = np.array([[1e3], [1e6], [1e9]])
BETAS = np.array([12.5e9, 25e9, 50e9])


@pytest.mark.parametrize(
    "func, kwargs",
    [
        (links.p2p_time, dict(size=SIZES, alpha=2e-6, beta=BETAS)),
        (links.multi_hop_time, dict(size=SIZES, alpha=2e-6, beta=BETAS, n_hops=np.array([1, 2, 5]), hop_latency=3e-7)),
        (links.store_and_forward_time, dict(size=SIZES, alpha=2e-6, beta=BETAS, n_hops=3, hop_latency=3e-7)),
        (links.pipelined_store_and_forward_time,
         dict(size=SIZES, alpha=2e-6, beta=BETAS, n_hops=3, hop_latency=3e-7, packet_bytes=np.array([256, 4096, 8192]))),
        (links.encoded_bandwidth, dict(line_rate_bits_per_s=np.array([[2.5e9], [25.78125e9]]),
                                       encoding_efficiency=np.array([0.8, 64 / 66]), n_lanes=4)),
        (links.per_direction_bandwidth, dict(bidirectional_bandwidth=BETAS)),
        (links.bidirectional_bandwidth, dict(beta=BETAS)),
        (links.aggregate_bandwidth, dict(n_links=np.array([[1], [4], [18]]), beta=BETAS)),
        (links.frame_efficiency, dict(payload_bytes=np.array([[256], [1500], [4096]]), overhead_bytes=np.array([26, 38, 82]))),
        (links.payload_bandwidth, dict(beta=BETAS, payload_bytes=np.array([[1500], [4096]]), overhead_bytes=38)),
    ],
    ids=lambda x: getattr(x, "__name__", ""),
)
def test_numpy_matches_loop(func, kwargs):
    assert_numpy_matches_loop(func, **kwargs)


# --- sympy: expression typed from the source --------------------------------------------------------


def test_sympy_forms():
    assert_sympy_equals(links.p2p_time, lambda size, alpha, beta: alpha + size / beta)
    assert_sympy_equals(links.multi_hop_time, lambda size, alpha, beta, n_hops, hop_latency:
                        alpha + n_hops * hop_latency + size / beta)
    assert_sympy_equals(links.store_and_forward_time, lambda size, alpha, beta, n_hops, hop_latency:
                        alpha + n_hops * hop_latency + n_hops * size / beta)
    # Pipelined: (S/P + h - 1) packets' serialisation times of P/beta each, plus hop latencies.
    assert_sympy_equals(links.pipelined_store_and_forward_time,
                        lambda size, alpha, beta, n_hops, hop_latency, packet_bytes:
                        alpha + n_hops * hop_latency + (size / packet_bytes + n_hops - 1) * packet_bytes / beta)
    assert_sympy_equals(links.encoded_bandwidth, lambda line_rate_bits_per_s, encoding_efficiency, n_lanes:
                        n_lanes * line_rate_bits_per_s * encoding_efficiency / 8)
    assert_sympy_equals(links.per_direction_bandwidth, lambda bidirectional_bandwidth: bidirectional_bandwidth / 2)
    assert_sympy_equals(links.bidirectional_bandwidth, lambda beta: 2 * beta)
    assert_sympy_equals(links.aggregate_bandwidth, lambda n_links, beta: n_links * beta)
    assert_sympy_equals(links.frame_efficiency, lambda payload_bytes, overhead_bytes:
                        1 / (1 + overhead_bytes / payload_bytes))
    assert_sympy_equals(links.payload_bandwidth, lambda beta, payload_bytes, overhead_bytes:
                        beta - beta * overhead_bytes / (payload_bytes + overhead_bytes))


def test_sympy_substituted_equals_float():
    assert_sympy_matches_float(links.pipelined_store_and_forward_time, size=1e6, alpha=2e-6, beta=12.5e9,
                               n_hops=3, hop_latency=3e-7, packet_bytes=4096)
    assert_sympy_matches_float(links.payload_bandwidth, beta=12.5e9, payload_bytes=1500, overhead_bytes=38)
