r"""Static properties of direct networks: diameter, average hops, bisection, link counts.

Covered: fully connected, unidirectional and bidirectional ring, and hypercube -- networks whose
nodes are joined by links, with no switch in between. The other direct networks, 2D and 3D torus
and 2D mesh, are in :mod:`perfmodel.formulas.torus`; networks built from switches (a single
crossbar, a k-ary tree, a leaf-spine fat tree, the two-level node fabric + network system) in
:mod:`perfmodel.formulas.switched`. All three modules follow the conventions below.

Conventions used by every function here and in :mod:`perfmodel.formulas.torus` and
:mod:`perfmodel.formulas.switched`:

* A *hop* is one traversal of a link. A path through one switch is 2 hops (node -> switch ->
  node); switches are not counted as nodes.
* *Average hops* is the mean shortest-path length over **ordered pairs of distinct nodes**
  (a node never sends to itself). Dally & Towles' :math:`H_{min}` averages over all
  :math:`N^2` pairs including self; the two are related by
  :math:`\bar H = H_{min} \cdot N/(N-1)`.
* *Bisection bandwidth* is the bandwidth in **one direction** across the minimum cut that splits
  the nodes into two halves (links cut x ``beta``). Dally & Towles count unidirectional channels
  in both directions, i.e. twice this number for full-duplex links.
* ``beta`` is the bandwidth of one link per direction; links are full duplex.
* ``k/2`` terms use ``floor`` so that odd and even ring lengths are both exact.

Sources: W. J. Dally and B. Towles, *Principles and Practices of Interconnection Networks*,
Morgan Kaufmann 2004, Ch. 3 (diameter, :math:`H_{min}`, bisection) and Ch. 5 (the ring as a
k-ary 1-cube); F. T. Leighton, *Introduction to Parallel Algorithms and Architectures: Arrays,
Trees, Hypercubes*, 1992 (hypercube); A. Grama et al., *Introduction to Parallel Computing*,
2nd ed., 2003, Table 2.1 (diameter, bisection width, number of links of static networks).
"""

from __future__ import annotations

from perfmodel.formulas._backend import const as _const, floor, log2

__all__ = [
    "fully_connected_diameter", "fully_connected_average_hops", "fully_connected_bisection_bandwidth",
    "fully_connected_links_per_node", "fully_connected_total_links",
    "unidirectional_ring_diameter", "unidirectional_ring_average_hops",
    "unidirectional_ring_bisection_bandwidth", "unidirectional_ring_links_per_node",
    "unidirectional_ring_total_links",
    "ring_diameter", "ring_average_hops", "ring_bisection_bandwidth", "ring_links_per_node",
    "ring_total_links",
    "hypercube_diameter", "hypercube_average_hops", "hypercube_bisection_bandwidth",
    "hypercube_links_per_node", "hypercube_total_links",
]


def _ring_sum_of_distances(k):
    # sum over d = 0..k-1 of min(d, k-d) on a bidirectional ring of k nodes = floor(k/2)*ceil(k/2)
    half = floor(k / 2)
    return half * (k - half)


# --- fully connected ---------------------------------------------------------------------------

def fully_connected_diameter(n):
    r"""Diameter of a fully connected network: every node is one hop from every other.

    .. math:: D = 1

    n: nodes (1), n >= 2. Source: Grama et al. (2003) Table 2.1.

    >>> fully_connected_diameter(n=8)
    1
    """
    return _const(1, n)


def fully_connected_average_hops(n):
    r"""Average hops between distinct nodes of a fully connected network.

    .. math:: \bar H = 1

    n: nodes (1), n >= 2. Source: Dally & Towles (2004) Ch. 3 (definition of hop count).

    >>> fully_connected_average_hops(n=8)
    1
    """
    return _const(1, n)


def fully_connected_bisection_bandwidth(n, beta):
    r"""One-direction bisection bandwidth of a fully connected network.

    .. math:: B = \lfloor n/2 \rfloor \, (n - \lfloor n/2 \rfloor)\, \beta

    Every node of one half has a link to every node of the other half (:math:`n^2/4` links for
    even n). n: nodes (1); beta: link bandwidth per direction (B/s).
    Source: Grama et al. (2003) Table 2.1 (bisection width :math:`p^2/4`).

    >>> fully_connected_bisection_bandwidth(n=8, beta=1e9)
    16000000000.0
    """
    half = floor(n / 2)
    return half * (n - half) * beta


def fully_connected_links_per_node(n):
    r"""Links per node (degree) of a fully connected network.

    .. math:: \delta = n - 1

    n: nodes (1). Source: Grama et al. (2003) Table 2.1.

    >>> fully_connected_links_per_node(n=8)
    7
    """
    return n - 1


def fully_connected_total_links(n):
    r"""Number of (full-duplex) links of a fully connected network.

    .. math:: L = \frac{n(n-1)}{2}

    n: nodes (1). Source: Grama et al. (2003) Table 2.1.

    >>> fully_connected_total_links(n=8)
    28.0
    """
    return n * (n - 1) / 2


# --- unidirectional ring -----------------------------------------------------------------------

def unidirectional_ring_diameter(n):
    r"""Diameter of a unidirectional ring (links i -> i+1 only).

    .. math:: D = n - 1

    n: nodes (1). Source: Dally & Towles (2004) Ch. 3 (ring = k-ary 1-cube; one direction only).

    >>> unidirectional_ring_diameter(n=8)
    7
    """
    return n - 1


def unidirectional_ring_average_hops(n):
    r"""Average hops between distinct nodes of a unidirectional ring.

    .. math:: \bar H = \frac{1}{n-1}\sum_{d=1}^{n-1} d = \frac{n}{2}

    n: nodes (1), n >= 2. Source: derived from the definition in Dally & Towles (2004) Ch. 3.

    >>> unidirectional_ring_average_hops(n=8)
    4.0
    """
    return n / 2


def unidirectional_ring_bisection_bandwidth(n, beta):
    r"""One-direction bisection bandwidth of a unidirectional ring: one link crosses each way.

    .. math:: B = \beta

    Cutting the ring into two arcs cuts two links, one per direction. n: nodes (1), n >= 2;
    beta: link bandwidth (B/s). Source: Dally & Towles (2004) Ch. 3.

    >>> unidirectional_ring_bisection_bandwidth(n=8, beta=1e9)
    1000000000.0
    """
    return _const(beta, n)


def unidirectional_ring_links_per_node(n):
    r"""Outgoing links per node of a unidirectional ring.

    .. math:: \delta = 1

    n: nodes (1). Source: Dally & Towles (2004) Ch. 3.

    >>> unidirectional_ring_links_per_node(n=8)
    1
    """
    return _const(1, n)


def unidirectional_ring_total_links(n):
    r"""Number of (one-way) links of a unidirectional ring.

    .. math:: L = n

    n: nodes (1), n >= 2. Source: Dally & Towles (2004) Ch. 3.

    >>> unidirectional_ring_total_links(n=8)
    8
    """
    return _const(0, n) + n


# --- bidirectional ring ------------------------------------------------------------------------

def ring_diameter(n):
    r"""Diameter of a bidirectional ring (k-ary 1-cube).

    .. math:: D = \lfloor n/2 \rfloor

    n: nodes (1); exact for odd and even n. Source: Dally & Towles (2004) Ch. 5
    (:math:`D = n\lfloor k/2 \rfloor` for a k-ary n-cube, here one dimension).

    >>> ring_diameter(n=9)
    4
    """
    return floor(n / 2)


def ring_average_hops(n):
    r"""Average shortest-path hops between distinct nodes of a bidirectional ring.

    .. math:: \bar H = \frac{\lfloor n/2 \rfloor\,(n - \lfloor n/2 \rfloor)}{n-1}

    Equals :math:`n^2/(4(n-1))` for even n and :math:`(n+1)/4` for odd n. n: nodes (1), n >= 2.
    Source: Dally & Towles (2004) Ch. 5, :math:`H_{min} = k/4` (k even),
    :math:`k/4 - 1/(4k)` (k odd), times :math:`n/(n-1)` to exclude self pairs.

    >>> ring_average_hops(n=8)  # 64 / 28
    2.2857142857142856
    """
    return _ring_sum_of_distances(n) / (n - 1)


def ring_bisection_bandwidth(n, beta):
    r"""One-direction bisection bandwidth of a bidirectional ring: two links are cut.

    .. math:: B = 2\beta

    n: nodes (1), n >= 3; beta: link bandwidth per direction (B/s).
    Source: Dally & Towles (2004) Ch. 5 (:math:`B_C = 4k^{n-1}` channels for n = 1, both
    directions); Grama et al. (2003) Table 2.1 (ring with wraparound: bisection width 2).

    >>> ring_bisection_bandwidth(n=8, beta=1e9)
    2000000000.0
    """
    return _const(2 * beta, n)


def ring_links_per_node(n):
    r"""Links per node of a bidirectional ring.

    .. math:: \delta = 2

    n: nodes (1), n >= 3. Source: Dally & Towles (2004) Ch. 5.

    >>> ring_links_per_node(n=8)
    2
    """
    return _const(2, n)


def ring_total_links(n):
    r"""Number of full-duplex links of a bidirectional ring.

    .. math:: L = n

    n: nodes (1), n >= 3. Source: Grama et al. (2003) Table 2.1.

    >>> ring_total_links(n=8)
    8
    """
    return _const(0, n) + n


# --- hypercube ---------------------------------------------------------------------------------

def hypercube_diameter(n):
    r"""Diameter of a hypercube of n = 2^d nodes.

    .. math:: D = \log_2 n

    n: nodes (1), a power of two. Source: Leighton (1992) Ch. 3; Grama et al. Table 2.1.

    >>> hypercube_diameter(n=16)
    4.0
    """
    return log2(n)


def hypercube_average_hops(n):
    r"""Average hops between distinct nodes of a hypercube.

    .. math:: \bar H = \frac{n \log_2 n}{2 (n - 1)}

    Hamming distance averaged over all pairs is d/2; excluding self pairs multiplies by
    :math:`n/(n-1)`. n: nodes (1), a power of two. Source: Leighton (1992) Ch. 3;
    Dally & Towles (2004) Ch. 5 (binary n-cube = 2-ary n-cube).

    >>> hypercube_average_hops(n=16)  # 4*16/30
    2.1333333333333333
    """
    return n * log2(n) / (2 * (n - 1))


def hypercube_bisection_bandwidth(n, beta):
    r"""One-direction bisection bandwidth of a hypercube: n/2 links cross.

    .. math:: B = \frac{n}{2}\, \beta

    n: nodes (1), a power of two; beta: link bandwidth per direction (B/s).
    Source: Leighton (1992) Ch. 3; Grama et al. (2003) Table 2.1.

    >>> hypercube_bisection_bandwidth(n=16, beta=1e9)
    8000000000.0
    """
    return n / 2 * beta


def hypercube_links_per_node(n):
    r"""Links per node of a hypercube.

    .. math:: \delta = \log_2 n

    n: nodes (1), a power of two. Source: Grama et al. (2003) Table 2.1.

    >>> hypercube_links_per_node(n=16)
    4.0
    """
    return log2(n)


def hypercube_total_links(n):
    r"""Number of full-duplex links of a hypercube.

    .. math:: L = \frac{n \log_2 n}{2}

    n: nodes (1), a power of two. Source: Grama et al. (2003) Table 2.1.

    >>> hypercube_total_links(n=16)
    32.0
    """
    return n * log2(n) / 2
