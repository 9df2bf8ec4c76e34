r"""PCIe copies: the time of one host<->device copy, and the share of a link, a switch uplink or
the root complex that each of several copies at once gets.

A copy costs a fixed setup (alpha: launch, driver, DMA setup) plus its size over the data bandwidth
beta that :mod:`perfmodel.formulas.pcie` derives from the link (writes, reads, framing, DLLPs).
Copies at once share bottlenecks fairly: one device's link among its own copies, a switch uplink
among the devices behind it, and the root complex among all switches.

Sources: R. W. Hockney, "The communication challenge for MPP: Intel Paragon and Meiko CS-2",
Parallel Computing 20(3), 1994 (alpha-beta time); D. Bertsekas and R. Gallager, "Data Networks",
2nd ed., 1992, Section 6.5.2 (max-min fair shares of bottleneck links); measured on one H100 host
(tests/formulas/test_pcie.py).
"""

from __future__ import annotations

from perfmodel.formulas import links
from perfmodel.formulas._backend import minimum


def pcie_copy_time(size, alpha, beta):
    r"""Time of one host<->device copy: fixed driver/DMA-setup cost plus size over bandwidth.

    .. math:: T = \alpha + \frac{S}{\beta}

    size S (B), alpha (s: launch, driver and DMA setup, ~10 us for pinned CUDA copies on the
    measured H100 host), beta (B/s, e.g. pcie_write_bandwidth). Additive: it over-states copies
    of ~0.1-1 MiB whose transfer overlaps the setup (measured: flat ~10.8 us up to 256 KiB).
    Source: Hockney 1994 (links.p2p_time).

    >>> pcie_copy_time(size=4096, alpha=10.8e-6, beta=55e9)  # doctest: +ELLIPSIS
    1.0874...e-05
    """
    return links.p2p_time(size, alpha, beta)


def pcie_copy_bandwidth(size, alpha, beta):
    r"""Bandwidth a benchmark reports for one copy: size over the whole copy time.

    .. math:: B_{\mathrm{copy}} = \frac{S}{\alpha + S/\beta}

    size S (B), alpha (s), beta (B/s). Source: Hockney 1994 (r = n / t, half-performance
    length n_1/2 = alpha beta).

    >>> pcie_copy_bandwidth(size=2**28, alpha=10.8e-6, beta=57.46e9)  # doctest: +ELLIPSIS
    5732...
    """
    return size / links.p2p_time(size, alpha, beta)


def pcie_concurrent_copy_bandwidth(n, beta):
    r"""Per-copy bandwidth of n concurrent same-direction copies sharing one device's link.

    .. math:: B_{\mathrm{copy}} = \frac{\beta}{n}

    n (1, concurrent copies), beta (B/s, the link's one-way bandwidth). Assumes fair sharing and
    that one copy alone can saturate the link (it can for large pinned copies).
    Source: processor sharing (fair share of one server); measured on H100: 1-8 copies on 1-8
    streams total 54.2-54.7 GB/s (tests/formulas/test_pcie.py).

    >>> pcie_concurrent_copy_bandwidth(n=4, beta=55e9)
    13750000000.0
    """
    return beta / n


def pcie_switch_share_bandwidth(n, beta, uplink_bandwidth):
    r"""Per-device bandwidth of n devices transferring at once through one PCIe switch uplink.

    .. math:: B_{\mathrm{dev}} = \min\left(\beta,\ \frac{B_{\mathrm{up}}}{n}\right)

    n (1, active devices behind the switch), beta (B/s, each device's own link), uplink_bandwidth
    (B/s, the switch's upstream link, same direction). Switch latency is not a bandwidth cost
    (cut-through). Source: fair share of a bottleneck link (max-min fairness, Bertsekas &
    Gallager, "Data Networks", 1992, Section 6.5.2).

    >>> pcie_switch_share_bandwidth(n=2, beta=25e9, uplink_bandwidth=25e9)  # pcie-8gpu: 2 per switch
    12500000000.0
    """
    return minimum(beta, uplink_bandwidth / n)


def pcie_root_share_bandwidth(n, n_switches, beta, uplink_bandwidth, root_bandwidth):
    r"""Per-device bandwidth with n active devices on each of n_switches switches under one root.

    .. math:: B_{\mathrm{dev}} = \min\left(\beta,\ \frac{B_{\mathrm{up}}}{n},\
              \frac{B_{\mathrm{root}}}{n\,n_{\mathrm{sw}}}\right)

    n (1, active devices per switch), n_switches (1, switches behind the root complex, all
    busy), beta (B/s, device link), uplink_bandwidth (B/s, each switch's upstream link),
    root_bandwidth (B/s, what the root complex / CPU socket sustains to memory in this direction).
    Source: max-min fair share of the tightest of three nested bottlenecks (Bertsekas & Gallager
    1992, Section 6.5.2).

    >>> pcie_root_share_bandwidth(n=2, n_switches=4, beta=25e9, uplink_bandwidth=25e9,
    ...                           root_bandwidth=80e9)
    10000000000.0
    """
    return minimum(minimum(beta, uplink_bandwidth / n), root_bandwidth / (n * n_switches))
