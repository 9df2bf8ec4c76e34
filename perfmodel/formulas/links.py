r"""Links: point-to-point transfer time and the bandwidth a link really carries.

Covers the Hockney alpha-beta time of one message, its cut-through, store-and-forward and
pipelined (packetised) forms over several hops, and the chain that turns a datasheet signalling
rate into payload bandwidth: line encoding (8b/10b, 64b/66b, ...), lanes and parallel links,
per-direction versus bidirectional figures, and the per-frame protocol overhead of Ethernet,
RoCEv2 and InfiniBand packets.

Conventions: ``beta`` is always bytes/s **per direction**. A full-duplex link quoted as a
"bidirectional" figure (NVLink's 900 GB/s on H100) carries half of it each way.

Sources: R. W. Hockney, "The communication challenge for MPP: Intel Paragon and Meiko CS-2",
Parallel Computing 20(3), 1994 (the t = t_0 + n/r_inf model); R. Thakur, R. Rabenseifner,
W. Gropp, "Optimization of Collective Communication Operations in MPICH", IJHPCA 19(1), 2005,
Section 2 (alpha + n beta cost model); W. J. Dally & B. Towles, "Principles and Practices of
Interconnection Networks", 2004, ch. 13 (store-and-forward, virtual cut-through latency);
IEEE Std 802.3 (clause 3 MAC frame, clause 4 inter-packet gap, clause 82 64b/66b PCS);
InfiniBand Architecture Specification Vol. 1 (LRH and VCRC: ch. 7, ICRC section 7.8.1,
VCRC section 7.8.2; BTH: ch. 9) and Annex A17 (RoCEv2: IB transport over UDP/IPv4).
"""

from __future__ import annotations

# Payload fraction of the common line codes (bits of data per bit on the wire).
# 8b/10b: PCIe 1-2, InfiniBand SDR/DDR/QDR, 1/10GBASE-X (IEEE 802.3 clause 36).
# 64b/66b: 10/25/40/100GBASE-R (IEEE 802.3 clauses 49, 82), InfiniBand FDR/EDR/HDR/NDR.
# 128b/130b: PCIe 3-5.  128b/132b: USB 3.1 Gen 2 (listed for completeness).
# 1b/1b: PCIe 6 (PAM4, protected by flit FEC instead of a line code; see pcie.py).
ENCODING_EFFICIENCY: dict[str, float] = {
    "8b/10b": 8 / 10,
    "64b/66b": 64 / 66,
    "128b/130b": 128 / 130,
    "128b/132b": 128 / 132,
    "1b/1b": 1.0,
}

# Per-frame (per-packet) bytes on the wire besides the payload, for frame_efficiency().
# Ethernet: preamble 7 + SFD 1 + MAC destination 6 + source 6 + EtherType 2 + FCS 4 + minimum
#   inter-packet gap 12 (96 bit times) = 38 B (IEEE 802.3 clauses 3.1.1 and 4.4.2); +4 with a
#   802.1Q VLAN tag.
# RoCEv2 over IPv4: Ethernet 38 + IPv4 header 20 + UDP 8 + IB BTH 12 + ICRC 4 = 82 B
#   (IBTA Annex A17); an RDMA WRITE's first packet also carries a 16-B RETH (ignored here).
# InfiniBand (local subnet, no GRH): LRH 8 + BTH 12 + ICRC 4 + VCRC 2 = 26 B (IBA Vol. 1
#   ch. 7 and 9); a GRH adds 40 B. Link-level start/end delimiters are not counted.
FRAME_OVERHEAD_BYTES: dict[str, int] = {
    "ethernet": 38,
    "ethernet_vlan": 42,
    "rocev2_ipv4": 82,
    "infiniband": 26,
    "infiniband_grh": 66,
}


def p2p_time(size, alpha, beta):
    r"""Time of one point-to-point message: startup latency plus size over bandwidth (Hockney).

    .. math:: T = \alpha + \frac{S}{\beta}

    size S (B), alpha (s, per-message latency), beta (B/s, per direction). Assumes the message
    is not contended and the link is the bottleneck.
    Source: Hockney, Parallel Computing 20(3), 1994 (t = t_0 + n / r_inf); Thakur, Rabenseifner
    & Gropp, IJHPCA 19(1), 2005, Section 2.

    >>> p2p_time(size=1e6, alpha=2e-6, beta=12.5e9)  # 1 MB over 100 Gb/s
    8.2e-05
    """
    return alpha + size / beta


def multi_hop_time(size, alpha, beta, n_hops, hop_latency):
    r"""Cut-through time over several hops: each hop adds only its latency, data pays once.

    .. math:: T = \alpha + h\,\delta + \frac{S}{\beta}

    size S (B), alpha (s), beta (B/s, bottleneck link per direction), n_hops h (links
    traversed), hop_latency delta (s, switch + wire latency per hop). Assumes virtual
    cut-through or wormhole switching: a switch forwards a packet's head before its tail arrives.
    Source: Dally & Towles, "Principles and Practices of Interconnection Networks", 2004,
    Section 13.1 (zero-load latency T = H t_r + L / b).

    >>> multi_hop_time(size=1e6, alpha=2e-6, beta=12.5e9, n_hops=3, hop_latency=3e-7)  # doctest: +ELLIPSIS
    8.29...e-05
    """
    return alpha + n_hops * hop_latency + size / beta


def store_and_forward_time(size, alpha, beta, n_hops, hop_latency):
    r"""Store-and-forward time over several hops: every hop receives the whole message first.

    .. math:: T = \alpha + h\left(\delta + \frac{S}{\beta}\right)

    size S (B), alpha (s), beta (B/s, per direction, same on every hop), n_hops h, hop_latency
    delta (s). The message is not split into packets (see pipelined_store_and_forward_time).
    Source: Dally & Towles 2004, Section 13.1 (store-and-forward latency H (t_r + L / b)).

    >>> store_and_forward_time(size=1e6, alpha=2e-6, beta=12.5e9, n_hops=3, hop_latency=3e-7)
    0.0002429
    """
    return alpha + n_hops * (hop_latency + size / beta)


def pipelined_store_and_forward_time(size, alpha, beta, n_hops, hop_latency, packet_bytes):
    r"""Store-and-forward of a message split into packets: the packets pipeline over the hops.

    .. math:: T = \alpha + h\,\delta + \frac{S + (h - 1)\,P}{\beta}

    size S (B, a multiple of the packet size), alpha (s), beta (B/s), n_hops h, hop_latency
    delta (s), packet_bytes P (B). The first packet needs h serialisations, each later one adds
    one: (S/P + h - 1) P / beta. P = S gives store_and_forward_time, P -> 0 gives
    multi_hop_time (cut-through). Per-packet headers are not counted (see payload_bandwidth).
    Source: Dally & Towles 2004, Section 13.1; the (n + h - 1) pipeline argument of
    Hockney 1994.

    >>> pipelined_store_and_forward_time(size=1e6, alpha=2e-6, beta=12.5e9, n_hops=3,
    ...                                  hop_latency=3e-7, packet_bytes=4096)  # doctest: +ELLIPSIS
    8.3555...e-05
    """
    return alpha + n_hops * hop_latency + (size + (n_hops - 1) * packet_bytes) / beta


def encoded_bandwidth(line_rate_bits_per_s, encoding_efficiency, n_lanes):
    r"""Data bandwidth per direction of a link of several lanes after line encoding.

    .. math:: \beta = n_{\mathrm{lanes}}\,\frac{r_{\mathrm{line}}\,\eta_{\mathrm{enc}}}{8}

    line_rate_bits_per_s r_line (bit/s signalling rate of one lane, e.g. 25.78125e9 for one
    100GBASE-R4 lane), encoding_efficiency eta_enc (1, e.g. 64/66; see ENCODING_EFFICIENCY),
    n_lanes (1). Result in B/s per direction. FEC that is transcoded into the line code (e.g.
    RS(528,514) with 256b/257b in 100GBASE-R) keeps the MAC rate; FEC added on top must be
    folded into encoding_efficiency by the caller.
    Source: IEEE Std 802.3 clause 82 (100GBASE-R PCS: 4 lanes x 25.78125 Gb/s, 64b/66b).

    >>> encoded_bandwidth(line_rate_bits_per_s=25.78125e9, encoding_efficiency=64 / 66, n_lanes=4)
    12500000000.0
    """
    return n_lanes * line_rate_bits_per_s * encoding_efficiency / 8


def per_direction_bandwidth(bidirectional_bandwidth):
    r"""Per-direction bandwidth of a full-duplex link quoted as a bidirectional (total) figure.

    .. math:: \beta = \frac{\beta_{\leftrightarrow}}{2}

    bidirectional_bandwidth (B/s, both directions added, as NVIDIA quotes NVLink). Assumes a
    symmetric full-duplex link: each direction has its own wires and the same rate.
    Source: NVIDIA H100 Tensor Core GPU datasheet (NVLink 900 GB/s = 18 links x 50 GB/s
    bidirectional); IEEE 802.3 clause 1.4 (full duplex).

    >>> per_direction_bandwidth(bidirectional_bandwidth=900e9)
    450000000000.0
    """
    return bidirectional_bandwidth / 2


def bidirectional_bandwidth(beta):
    r"""Bidirectional (both directions added) figure of a full-duplex link; inverse of
    per_direction_bandwidth.

    .. math:: \beta_{\leftrightarrow} = 2\,\beta

    beta (B/s per direction). Only meaningful when traffic flows both ways at once; a one-way
    transfer never gets more than beta.
    Source: see per_direction_bandwidth.

    >>> bidirectional_bandwidth(beta=63e9)
    126000000000.0
    """
    return 2 * beta


def aggregate_bandwidth(n_links, beta):
    r"""Bandwidth of several parallel links used together (e.g. the NVLinks of one GPU).

    .. math:: \beta_{\mathrm{agg}} = n_{\mathrm{links}}\,\beta

    n_links (1), beta (B/s per direction of one link). Assumes traffic is spread evenly over
    the links (NVLink striping, or a collective that uses all links).
    Source: NVIDIA H100 datasheet: 18 NVLink4 links x 25 GB/s per direction = 450 GB/s per
    direction (900 GB/s bidirectional).

    >>> aggregate_bandwidth(n_links=18, beta=25e9)
    450000000000.0
    """
    return n_links * beta


def frame_efficiency(payload_bytes, overhead_bytes):
    r"""Fraction of the wire bytes that are payload when every frame carries a fixed overhead.

    .. math:: \eta_{\mathrm{frame}} = \frac{p}{p + o}

    payload_bytes p (B per frame, at most the MTU), overhead_bytes o (B per frame: headers,
    CRCs, preamble and gap; see FRAME_OVERHEAD_BYTES). Assumes full frames (large messages).
    Source: IEEE Std 802.3 clauses 3 and 4; IBA Vol. 1 ch. 7 and 9; IBTA Annex A17.

    >>> frame_efficiency(payload_bytes=4096, overhead_bytes=26)  # doctest: +ELLIPSIS
    0.9936...
    """
    return payload_bytes / (payload_bytes + overhead_bytes)


def payload_bandwidth(beta, payload_bytes, overhead_bytes):
    r"""Payload bandwidth of a link whose frames each carry a fixed header/trailer overhead.

    .. math:: \beta_{\mathrm{payload}} = \beta\,\frac{p}{p + o}

    beta (B/s per direction after line encoding), payload_bytes p (B per frame),
    overhead_bytes o (B per frame). E.g. 100GbE with 1500-B frames: 12.5 GB/s x 1500/1538.
    Source: see frame_efficiency.

    >>> payload_bandwidth(beta=12.5e9, payload_bytes=1500, overhead_bytes=38)  # doctest: +ELLIPSIS
    12191157347.2...
    """
    return beta * payload_bytes / (payload_bytes + overhead_bytes)
