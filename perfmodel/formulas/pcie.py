r"""PCIe: the bandwidth a PCI Express link delivers to DMA writes and reads, one way and both ways.

The chain from datasheet to data rate, per direction: lanes x transfer rate (raw) -> line code
(8b/10b, 128b/130b) or Flit packing (PCIe 6) -> minus SKP ordered sets (link bandwidth) -> minus
DLLPs (Ack, UpdateFC) -> per-TLP framing and header overhead (TLP efficiency). Posted writes
(device -> host DMA, D2H) carry data in MWr TLPs; reads (a device pulling host memory, H2D by a
GPU copy engine) send MRd requests one way and receive data in completions (CplD) the other way.
Both directions at once share each direction with the other flow's Acks, UpdateFCs and read
requests. The time of a copy (latency alpha) and the sharing of links by several copies (switch
uplinks, root complex, concurrent copies) are in :mod:`perfmodel.formulas.pcie_copies`.

Generation numbers live in PCIE_GENERATIONS; formulas take them as arguments, e.g.
``pcie_effective_bandwidth(**PCIE_GENERATIONS[5], n_lanes=16, max_payload_bytes=256,
tlp_header_bytes=16, dllp_fraction=0)``.

The overheads here are the ones the specification mandates, so every bandwidth is an upper bound:
root complex, IOMMU and DMA-engine limits come on top. Framing has two compliant forms at 8 GT/s
and up (Non-Flit Mode): packed, each TLP right after the last (pcie_tlp_efficiency, the bound for
any link), and Lane-0, each TLP in a new Symbol Time (pcie_aligned_tlp_efficiency: 256/288 at x16
for writes and completions alike). One H100 host (tests/formulas/test_pcie.py) measures H2D and
D2H 0.7-1.3 % below the Lane-0 form and 3.7-5.5 % below the packed one.

Sources: PCI Express Base Specification Rev. 6.3 (PCI-SIG 2024): Table 4-1 (encodings per data
rate), Section 4.2.2.3.1 Table 4-4 (the 4-Symbol STP token carries the 12-bit TLP sequence number),
4.2.2.3.1 TLP Length example (STP 1 DW + header + payload + LCRC 1 DW), 4.2.3.3 (256-B flit: 236 B
TLP, 6 B DLP, 8 B CRC, 6 B ECC), 4.2.8.4 (SKP scheduling: 1180-1538 Symbol Times for 8b/10b, 370-375
Blocks for 128b/130b), 3.6.3.1 Tables 3-10..3-12 (Ack latency limits), 3.6.2.1 Fig. 3-18 / 3.6.2
(sequence number, 32-bit LCRC); R. Neugebauer et al., "Understanding PCIe performance for end host
networking", SIGCOMM 2018, Section 3 (bandwidth model with Ack/FC DLLP and SKP overheads; reads as
MRd + CplD), and its model pcie-bench/pcie-model (model/pcie.py, model/mem_bw.py); Intel "PCI
Express Throughput" application notes (683390, 683504: TLP overhead 5-7 DW, root-complex RCB 64 or
128 B; 683554 AN 829: whole 256-bit beats per TLP); J. Lawley, Xilinx WP350 "Understanding
Performance of PCI Express Systems", 2014. Framing placement: PCIe Base 6.3 Section 4.2.2.3.2.
"""

from __future__ import annotations

from perfmodel.formulas._backend import ceil

# Per generation: the arguments of pcie_effective_bandwidth that depend on the generation only.
#   line_rate_bits_per_s  transfer rate per lane (1 bit per transfer): PCIe Base 6.3 Table 4-1.
#   encoding_efficiency   8b/10b (gen 1-2), 128b/130b (gen 3-5), 1b/1b PAM4 (gen 6): Table 4-1.
#   flit_efficiency       Non-Flit Mode 1; gen 6 Flit Mode 236 TLP bytes per 256-B flit (4.2.3.3);
#                         the 6 DLP bytes carry Acks and UpdateFCs, so no DLLP share on top.
#   skp_fraction          8b/10b: a 4-Symbol SKP OS every <= 1538 Symbol Times -> 4 / 1542;
#                         128b/130b: one SKP OS Block every <= 375 Blocks -> 1 / 376 (4.2.8.4,
#                         common clock or SRNS; SRIS needs one every < 38 Blocks, ~2.6 %).
#                         Gen 6 reuses 1/376: an approximation, its Flit-Mode table (4-30) was not
#                         consulted.
#   tlp_framing_bytes     bytes per TLP below the transaction layer. Gen 1-2: STP 1 + sequence 2
#                         + LCRC 4 + END 1 = 8. Gen 3-5: STP token 4 (it carries the sequence
#                         number, Table 4-4) + LCRC 4 = 8. Gen 6 Flit Mode: 0 (no STP, CRC per flit).
#                         Intel 683390 gives the same 5-7 DW per TLP with a 3-4 DW header.
PCIE_GENERATIONS: dict[int, dict[str, float]] = {
    1: dict(line_rate_bits_per_s=2.5e9, encoding_efficiency=8 / 10, flit_efficiency=1.0, skp_fraction=4 / 1542, tlp_framing_bytes=8),
    2: dict(line_rate_bits_per_s=5.0e9, encoding_efficiency=8 / 10, flit_efficiency=1.0, skp_fraction=4 / 1542, tlp_framing_bytes=8),
    3: dict(line_rate_bits_per_s=8.0e9, encoding_efficiency=128 / 130, flit_efficiency=1.0, skp_fraction=1 / 376, tlp_framing_bytes=8),
    4: dict(line_rate_bits_per_s=16.0e9, encoding_efficiency=128 / 130, flit_efficiency=1.0, skp_fraction=1 / 376, tlp_framing_bytes=8),
    5: dict(line_rate_bits_per_s=32.0e9, encoding_efficiency=128 / 130, flit_efficiency=1.0, skp_fraction=1 / 376, tlp_framing_bytes=8),
    6: dict(line_rate_bits_per_s=64.0e9, encoding_efficiency=1.0, flit_efficiency=236 / 256, skp_fraction=1 / 376, tlp_framing_bytes=0),
}  # fmt: skip

# TLP header bytes (PCIe Base 6.3 Section 2.2): memory requests with 32-bit addresses 3 DW,
# with 64-bit addresses 4 DW (host memory above 4 GiB); completions 3 DW. ECRC (TLP digest)
# adds 4 B when enabled.
TLP_HEADER_BYTES: dict[str, int] = {"mem_32bit": 12, "mem_64bit": 16, "completion": 12, "ecrc": 4}

# One DLLP on the wire: 6 B + framing (SDP+END in 8b/10b, 2-B SDP token in 128b/130b) = 8 B.
DLLP_BYTES = 8

# Maximum Ack latency limits in Symbol Times, PCIe Base 6.3 Tables 3-10 (2.5 GT/s), 3-11 (5.0 GT/s)
# and 3-12 (8.0 GT/s and higher), by Rx max payload size and link width (x1, x2, x4, x8, x16).
# Neugebauer et al. (pcie-model, model/pcie.py) use the same values for the UpdateFC guidelines.
# Keyed by the table's data rate (use 8.0e9 for 16 and 32 GT/s), then MPS, then lane count.
_W = (1, 2, 4, 8, 16)
PCIE_ACK_LATENCY_LIMIT_SYMBOLS: dict[float, dict[int, dict[int, int]]] = {
    2.5e9: {128: dict(zip(_W, (237, 128, 73, 67, 48))), 256: dict(zip(_W, (416, 217, 118, 107, 72))),
            512: dict(zip(_W, (559, 289, 154, 86, 86))), 1024: dict(zip(_W, (1071, 545, 282, 150, 150)))},
    5.0e9: {128: dict(zip(_W, (288, 179, 124, 118, 99))), 256: dict(zip(_W, (467, 268, 169, 158, 123))),
            512: dict(zip(_W, (610, 340, 205, 137, 137))), 1024: dict(zip(_W, (1122, 596, 333, 201, 201)))},
    8.0e9: {128: dict(zip(_W, (333, 224, 169, 163, 144))), 256: dict(zip(_W, (512, 313, 214, 203, 168))),
            512: dict(zip(_W, (655, 385, 250, 182, 182))), 1024: dict(zip(_W, (1167, 641, 378, 246, 246)))},
}  # fmt: skip

_LINK_KEYS = ("line_rate_bits_per_s", "encoding_efficiency", "flit_efficiency", "skp_fraction")


def _link_params(generation: int) -> dict[str, float]:
    """The arguments of pcie_link_bandwidth that PCIE_GENERATIONS holds for ``generation``."""
    return {k: PCIE_GENERATIONS[generation][k] for k in _LINK_KEYS}


def pcie_raw_bandwidth(line_rate_bits_per_s, n_lanes):
    r"""Raw PCIe bandwidth per direction: lanes times transfer rate, before any encoding.

    .. math:: B_{\mathrm{raw}} = \frac{r_{\mathrm{line}}\,n_{\mathrm{lanes}}}{8}

    line_rate_bits_per_s (bit/s per lane: 32e9 for 32 GT/s), n_lanes (1). Result B/s per
    direction. Source: PCIe Base Spec 6.3 Table 4-1 (data rates).

    >>> pcie_raw_bandwidth(line_rate_bits_per_s=32e9, n_lanes=16)  # gen 5 x16
    64000000000.0
    """
    return line_rate_bits_per_s * n_lanes / 8


def pcie_link_bandwidth(line_rate_bits_per_s, n_lanes, encoding_efficiency, flit_efficiency,
                        skp_fraction):
    r"""PCIe bytes/s per direction left for TLPs (and DLLPs) after line code, flit packing and SKPs.

    .. math:: B_{\mathrm{link}} = \frac{r_{\mathrm{line}}\,n_{\mathrm{lanes}}}{8}\,
              \eta_{\mathrm{enc}}\,\eta_{\mathrm{flit}}\,(1 - f_{\mathrm{SKP}})

    line_rate_bits_per_s (bit/s per lane), n_lanes (1), encoding_efficiency (1),
    flit_efficiency (1; 236/256 in Flit Mode), skp_fraction (1). Take the last three from
    PCIE_GENERATIONS. Source: PCIe Base Spec 6.3 Table 4-1, Sections 4.2.3.3 and 4.2.8.4;
    Neugebauer et al. SIGCOMM 2018 Section 3.

    >>> pcie_link_bandwidth(line_rate_bits_per_s=32e9, n_lanes=16, encoding_efficiency=128 / 130,
    ...                     flit_efficiency=1.0, skp_fraction=1 / 376)  # doctest: +ELLIPSIS
    62847...
    """
    return line_rate_bits_per_s * n_lanes / 8 * encoding_efficiency * flit_efficiency * (1 - skp_fraction)


def pcie_tlp_efficiency(payload_bytes, tlp_header_bytes, tlp_framing_bytes):
    r"""Fraction of TLP bytes on the link that are data, for TLPs carrying payload_bytes each.

    .. math:: \eta_{\mathrm{TLP}} = \frac{p}{p + h_{\mathrm{TLP}} + f_{\mathrm{TLP}}}

    payload_bytes p (B per TLP: the max payload size for writes, the completion size for reads),
    tlp_header_bytes (B: 12 or 16, +4 with ECRC; see TLP_HEADER_BYTES), tlp_framing_bytes
    (B per TLP below the transaction layer: 8 in Non-Flit Mode, 0 in Flit Mode).
    Assumes every TLP is full (transfers much larger than the payload size, aligned).
    Source: PCIe Base Spec 6.3 Section 4.2.2.3.1; Intel 683504 "Throughput for Posted Writes"
    (e.g. 256 / (256 + 20) with a 3-DW header).

    >>> pcie_tlp_efficiency(payload_bytes=256, tlp_header_bytes=16, tlp_framing_bytes=8)
    ... # doctest: +ELLIPSIS
    0.9142857...
    """
    return payload_bytes / (payload_bytes + tlp_header_bytes + tlp_framing_bytes)


def pcie_aligned_tlp_efficiency(payload_bytes, tlp_header_bytes, tlp_framing_bytes, n_lanes):
    r"""Data fraction of the link bytes when every TLP starts in Lane 0 of a new Symbol Time.

    .. math:: \eta_{\mathrm{al}} = \frac{p}{n_{\mathrm{lanes}}\left\lceil\frac{p + h_{\mathrm{TLP}}
              + f_{\mathrm{TLP}}}{n_{\mathrm{lanes}}}\right\rceil}

    A Symbol Time carries one byte per lane. In Non-Flit Mode (8-32 GT/s) a transmitter *may*
    start a TLP in any Lane 4N right after the previous one (packed: pcie_tlp_efficiency), and
    *must* start it in Lane 0 of a new Symbol Time after any IDL Token; starting every TLP in
    Lane 0 is compliant too. Then each TLP fills whole Symbol Times, the rest of its last one IDL:
    at x16 a 256-B write (280 B) and a 256-B completion (276 B) both take 18 Symbol Times, 288 B.
    Up to x4 nothing is lost (TLPs are whole DWs). A datapath that starts one TLP per beat
    quantises the same way (Intel AN 829: 9 beats of 256 bit per 256-B TLP, 8/9; n_lanes = 32).
    payload_bytes p (B per TLP), tlp_header_bytes (B), tlp_framing_bytes (B, 8), n_lanes (1;
    bytes per Symbol Time). Which form a device uses is not in its datasheet.
    Source: PCIe Base Spec 6.3 Section 4.2.2.3.2 (Transmitter Framing Requirements: Tokens in
    Lane 4N, at most one STP per Symbol Time, Lane 0 after IDL); Intel 683554 "Throughput for
    Posted Writes" (88.88 % for 256-B payloads).

    >>> pcie_aligned_tlp_efficiency(payload_bytes=256, tlp_header_bytes=12, tlp_framing_bytes=8,
    ...                             n_lanes=16)  # doctest: +ELLIPSIS
    0.8888...
    """
    return payload_bytes / (n_lanes * ceil((payload_bytes + tlp_header_bytes + tlp_framing_bytes) / n_lanes))


def pcie_stream_bandwidth(link_bandwidth, dllp_fraction, tlp_efficiency):
    r"""Data bandwidth of a saturated one-way TLP stream (writes or read completions).

    .. math:: B = B_{\mathrm{link}}\,(1 - f_{\mathrm{DLLP}})\,\eta_{\mathrm{TLP}}

    link_bandwidth (B/s, pcie_link_bandwidth), dllp_fraction (1: DLLPs sharing this direction,
    pcie_dllp_fraction; 0 for posted writes), tlp_efficiency (1: pcie_tlp_efficiency for packed
    framing, pcie_aligned_tlp_efficiency for Lane-0 framing). pcie_write_bandwidth and
    pcie_read_bandwidth are this with packed framing.
    Source: Neugebauer et al. SIGCOMM 2018 Section 3; PCIe Base 6.3 Section 4.2.2.3.2.

    >>> pcie_stream_bandwidth(link_bandwidth=62.8e9, dllp_fraction=0, tlp_efficiency=256 / 288)
    ... # doctest: +ELLIPSIS
    5582222222...
    """
    return link_bandwidth * (1 - dllp_fraction) * tlp_efficiency


def pcie_dllp_fraction(n_dllp_types, dllp_bytes, n_lanes, n_symbols_per_dllp):
    r"""Share of one link direction taken by DLLPs sent at a fixed interval (Acks, UpdateFCs).

    .. math:: f_{\mathrm{DLLP}} = \frac{n_{\mathrm{types}}\,d}{n_{\mathrm{lanes}}\,N_{\mathrm{sym}}}

    n_dllp_types (1: e.g. 2 for one Ack stream plus one UpdateFC stream), dllp_bytes d (B on
    the wire, DLLP_BYTES = 8), n_lanes (1), n_symbols_per_dllp (Symbol Times between two DLLPs of
    one type; one Symbol Time moves one byte per lane). With the spec's Ack latency limit
    (PCIE_ACK_LATENCY_LIMIT_SYMBOLS) this is the least overhead the spec allows; receivers may
    Ack more often. The DLLPs for a TLP stream travel the *opposite* direction, so they cost a
    one-way transfer nothing and matter when both directions carry data.
    Note: pcie-model (model/pcie.py) divides by the Symbol-Time limit without the lane count,
    which overstates the share n_lanes-fold on wide links (9.5 % instead of 0.6 % for x16).
    Source: PCIe Base Spec 6.3 Section 3.6.3.1, Tables 3-10..3-12; Neugebauer et al. 2018 Sec. 3.

    >>> pcie_dllp_fraction(n_dllp_types=2, dllp_bytes=8, n_lanes=16, n_symbols_per_dllp=168)
    ... # doctest: +ELLIPSIS
    0.00595...
    """
    return n_dllp_types * dllp_bytes / (n_lanes * n_symbols_per_dllp)


def pcie_write_bandwidth(link_bandwidth, dllp_fraction, max_payload_bytes, tlp_header_bytes,
                         tlp_framing_bytes):
    r"""Data bandwidth of posted memory writes (DMA device -> host, D2H) in one direction.

    .. math:: B_{\mathrm{wr}} = B_{\mathrm{link}}\,(1 - f_{\mathrm{DLLP}})\,
              \frac{\mathrm{MPS}}{\mathrm{MPS} + h_{\mathrm{TLP}} + f_{\mathrm{TLP}}}

    link_bandwidth (B/s, pcie_link_bandwidth), dllp_fraction (1: 0 for a one-way transfer, whose
    Acks and UpdateFCs go the other way; pcie_dllp_fraction when the other direction is busy),
    max_payload_bytes MPS (B), tlp_header_bytes (16 for 64-bit host addresses), tlp_framing_bytes
    (B). Writes need no reverse traffic besides DLLPs.
    Source: Neugebauer et al. SIGCOMM 2018 Section 3 (pcie-model mem_bw.write); PCIe Base 6.3.

    >>> pcie_write_bandwidth(link_bandwidth=62.8e9, dllp_fraction=0, max_payload_bytes=256,
    ...                      tlp_header_bytes=16, tlp_framing_bytes=8)  # doctest: +ELLIPSIS
    57417142857.1...
    """
    tlp_bytes = max_payload_bytes + tlp_header_bytes + tlp_framing_bytes
    return link_bandwidth * (1 - dllp_fraction) * max_payload_bytes / tlp_bytes


def pcie_read_bandwidth(link_bandwidth, dllp_fraction, completion_payload_bytes, tlp_header_bytes,
                        tlp_framing_bytes):
    r"""Data bandwidth of DMA reads (a device pulling host memory, e.g. H2D by a GPU copy engine).

    .. math:: B_{\mathrm{rd}} = B_{\mathrm{link}}\,(1 - f_{\mathrm{DLLP}})\,
              \frac{c}{c + h_{\mathrm{Cpl}} + f_{\mathrm{TLP}}}

    The data come back as completions (CplD, 3-DW header) of completion_payload_bytes c each:
    at most the max payload size, split at the completer's read completion boundary (RCB, 64 or
    128 B for a root complex). link_bandwidth (B/s, completion direction), dllp_fraction (1:
    the Acks/UpdateFC-NP the root port returns for the read requests, ~0.6 % at x16),
    completion_payload_bytes c (B), tlp_header_bytes (12 for completions), tlp_framing_bytes
    (B). The read requests travel the other direction (pcie_read_request_fraction) and cost a
    one-way read nothing there; the number of reads in flight can cap the rate as well
    (pcie_outstanding_read_bandwidth: take the minimum).
    Source: Neugebauer et al. SIGCOMM 2018 Section 3 (pcie-model mem_bw.read, rcb_chunks);
    Intel 683504 "Throughput for Reads" (512 / (512 + 2 x 20) for two 256-B completions).

    >>> pcie_read_bandwidth(link_bandwidth=62.8e9, dllp_fraction=0, completion_payload_bytes=256,
    ...                     tlp_header_bytes=12, tlp_framing_bytes=8)  # doctest: +ELLIPSIS
    58249275362.3...
    """
    tlp_bytes = completion_payload_bytes + tlp_header_bytes + tlp_framing_bytes
    return link_bandwidth * (1 - dllp_fraction) * completion_payload_bytes / tlp_bytes


def pcie_read_request_fraction(max_read_request_bytes, tlp_header_bytes, tlp_framing_bytes):
    r"""Bytes of read-request traffic per byte read, carried opposite to the data.

    .. math:: q = \frac{h_{\mathrm{MRd}} + f_{\mathrm{TLP}}}{\mathrm{MRRS}}

    max_read_request_bytes MRRS (B per MRd TLP), tlp_header_bytes (16 for a 64-bit MRd),
    tlp_framing_bytes (B). Source: Neugebauer et al. 2018 Section 3 (pcie-model mem_bw.read).

    >>> pcie_read_request_fraction(max_read_request_bytes=512, tlp_header_bytes=16,
    ...                            tlp_framing_bytes=8)
    0.046875
    """
    return (tlp_header_bytes + tlp_framing_bytes) / max_read_request_bytes


def pcie_outstanding_read_bandwidth(n_outstanding_reads, max_read_request_bytes, read_latency_time):
    r"""Read bandwidth allowed by the number of read requests in flight (Little's law).

    .. math:: B_{\mathrm{tags}} = \frac{n_{\mathrm{rd}}\,\mathrm{MRRS}}{t_{\mathrm{rd}}}

    n_outstanding_reads (1: tags or credits the requester may use, 256 with 8-bit tags, 768 with
    10-bit tags), max_read_request_bytes (B), read_latency_time (s, request to last completion).
    Source: Intel 683504 "Throughput for Reads" (outstanding requests bound the read rate);
    Neugebauer et al. 2018 Section 5 (DMA engines need enough reads in flight).

    >>> pcie_outstanding_read_bandwidth(n_outstanding_reads=256, max_read_request_bytes=512,
    ...                                 read_latency_time=1e-6)
    131072000000.0
    """
    return n_outstanding_reads * max_read_request_bytes / read_latency_time


def pcie_duplex_bandwidth(link_bandwidth, dllp_fraction, write_efficiency, read_efficiency,
                          read_request_fraction):
    r"""Sum of both directions when a device reads host memory (H2D) and writes it (D2H) at once.

    .. math:: B_{\leftrightarrow} = B_{\mathrm{link}}(1 - f_{\mathrm{DLLP}})
              \left[\eta_{\mathrm{rd}} + (1 - \eta_{\mathrm{rd}}\,q)\,\eta_{\mathrm{wr}}\right]

    Host -> device carries the read completions: x = B_link (1 - f) eta_rd. Device -> host
    carries the posted writes and the read requests for x: y / eta_wr + q x = B_link (1 - f).
    Each direction also carries the Acks and UpdateFCs of the other (dllp_fraction f).
    link_bandwidth (B/s per direction), dllp_fraction (1, pcie_dllp_fraction), write_efficiency
    and read_efficiency (1, pcie_tlp_efficiency of the MWr and CplD TLPs),
    read_request_fraction q (1, pcie_read_request_fraction). Assumes both flows are saturated
    and the link is the only limit; these protocol costs remove only ~2-3 % from twice the
    one-way rate at gen 5 x16 with 256-B payloads, and host-side limits (memory, root complex,
    IOMMU) are not modelled (tests/formulas/test_pcie.py: one H100 host measures 16-18 % less than
    this with packed and 12-15 % less with Lane-0 efficiencies).
    Source: Neugebauer et al. SIGCOMM 2018 Section 3 (pcie-model mem_bw.read_write); PCIe Base 6.3.

    >>> pcie_duplex_bandwidth(link_bandwidth=62.8e9, dllp_fraction=0.006, write_efficiency=256 / 280,
    ...                       read_efficiency=256 / 276, read_request_fraction=24 / 512)
    ... # doctest: +ELLIPSIS
    112491000579.7...
    """
    usable = link_bandwidth * (1 - dllp_fraction)
    return usable * (read_efficiency + (1 - read_efficiency * read_request_fraction) * write_efficiency)


def pcie_effective_bandwidth(line_rate_bits_per_s, n_lanes, encoding_efficiency, flit_efficiency,
                             skp_fraction, tlp_framing_bytes, max_payload_bytes, tlp_header_bytes,
                             dllp_fraction):
    r"""One-call effective one-way DMA write bandwidth from generation, lanes and payload size.

    .. math:: B = \frac{r_{\mathrm{line}}\,n_{\mathrm{lanes}}}{8}\,\eta_{\mathrm{enc}}\,
              \eta_{\mathrm{flit}}\,(1 - f_{\mathrm{SKP}})(1 - f_{\mathrm{DLLP}})\,
              \frac{\mathrm{MPS}}{\mathrm{MPS} + h_{\mathrm{TLP}} + f_{\mathrm{TLP}}}

    pcie_write_bandwidth of pcie_link_bandwidth; the first five generation-dependent arguments
    (plus tlp_framing_bytes) come from PCIE_GENERATIONS[g]. Units as there.
    Source: see pcie_link_bandwidth and pcie_write_bandwidth.

    >>> pcie_effective_bandwidth(**PCIE_GENERATIONS[5], n_lanes=16, max_payload_bytes=256,
    ...                          tlp_header_bytes=16, dllp_fraction=0)  # doctest: +ELLIPSIS
    57460...
    """
    link = pcie_link_bandwidth(line_rate_bits_per_s, n_lanes, encoding_efficiency, flit_efficiency,
                               skp_fraction)
    return pcie_write_bandwidth(link, dllp_fraction, max_payload_bytes, tlp_header_bytes, tlp_framing_bytes)
