r"""Static properties of tori and meshes: diameter, average hops, bisection, link counts.

Covered: 2D and 3D torus (k-ary n-cubes: rings of length ``dim_x``, ``dim_y``, ``dim_z`` in each
dimension, with wraparound) and 2D mesh (the same grid without wraparound). The one-dimensional
ring, the hypercube and the fully connected network are in :mod:`perfmodel.formulas.topology`;
switched networks in :mod:`perfmodel.formulas.switched`.

Conventions are those of :mod:`perfmodel.formulas.topology`: a hop is one traversal of a link;
average hops are over ordered pairs of distinct nodes (Dally & Towles' :math:`H_{min}` times
:math:`N/(N-1)`); bisection bandwidth is the bandwidth in one direction across the minimum cut
into two halves (half of Dally & Towles' channel count for full-duplex links); ``beta`` is the
bandwidth of one full-duplex link per direction; ``k/2`` terms use ``floor`` so that odd and
even lengths are both exact.

Sources: W. J. Dally and B. Towles, *Principles and Practices of Interconnection Networks*,
Morgan Kaufmann 2004, Ch. 5 (torus networks: diameter, :math:`H_{min}`, channel bisection; the
mesh as a torus without wraparound); A. Grama et al., *Introduction to Parallel Computing*, 2nd
ed., 2003, Table 2.1 and Sec. 2.4 (diameter, bisection width, number of links of meshes and
wraparound meshes).
"""

from __future__ import annotations

from perfmodel.formulas._backend import floor, maximum, minimum
from perfmodel.formulas.topology import _const, _ring_sum_of_distances

__all__ = [
    "torus2d_diameter", "torus2d_average_hops", "torus2d_bisection_bandwidth",
    "torus2d_links_per_node", "torus2d_total_links",
    "torus3d_diameter", "torus3d_average_hops", "torus3d_bisection_bandwidth",
    "torus3d_links_per_node", "torus3d_total_links",
    "mesh2d_diameter", "mesh2d_average_hops", "mesh2d_bisection_bandwidth",
    "mesh2d_links_per_node", "mesh2d_total_links",
]


# --- 2D and 3D torus ---------------------------------------------------------------------------

def torus2d_diameter(dim_x, dim_y):
    r"""Diameter of a 2D torus (wraparound in both dimensions).

    .. math:: D = \lfloor k_x/2 \rfloor + \lfloor k_y/2 \rfloor

    dim_x, dim_y: ring lengths (1); exact for odd and even lengths.
    Source: Dally & Towles (2004) Ch. 5 (:math:`n\lfloor k/2 \rfloor`).

    >>> torus2d_diameter(dim_x=8, dim_y=5)
    6
    """
    return floor(dim_x / 2) + floor(dim_y / 2)


def torus2d_average_hops(dim_x, dim_y):
    r"""Average shortest-path hops between distinct nodes of a 2D torus.

    .. math:: \bar H = \frac{N}{N-1}\sum_{i\in\{x,y\}} \frac{\lfloor k_i/2\rfloor (k_i -
              \lfloor k_i/2\rfloor)}{k_i}, \qquad N = k_x k_y

    Per dimension the ring term is Dally & Towles' :math:`H_{min}`: :math:`k/4` for even k,
    :math:`k/4 - 1/(4k)` for odd k; the factor :math:`N/(N-1)` excludes self pairs.
    dim_x, dim_y: ring lengths (1). Source: Dally & Towles (2004) Ch. 5.

    >>> torus2d_average_hops(dim_x=4, dim_y=4)  # 2 * 16/15
    2.1333333333333333
    """
    total = dim_x * dim_y
    per_dim = _ring_sum_of_distances(dim_x) / dim_x + _ring_sum_of_distances(dim_y) / dim_y
    return per_dim * total / (total - 1)


def torus2d_bisection_bandwidth(dim_x, dim_y, beta):
    r"""One-direction bisection bandwidth of a 2D torus: cut across the longest dimension.

    .. math:: B = \frac{2 N}{\max(k_x, k_y)}\,\beta = 2 \min(k_x, k_y)\, \beta

    The cut crosses :math:`N/k_{max}` rings, each twice (wraparound). Exact when the longest
    dimension is even; for an odd one the straight cut is one plane off balance.
    dim_x, dim_y: ring lengths (1); beta: link bandwidth per direction (B/s).
    Source: Dally & Towles (2004) Ch. 5 (:math:`B_C = 4k^{n-1}` channels, both directions).

    >>> torus2d_bisection_bandwidth(dim_x=8, dim_y=4, beta=1e9)
    8000000000.0
    """
    return 2 * minimum(dim_x, dim_y) * beta


def torus2d_links_per_node(dim_x, dim_y):
    r"""Links per node of a 2D torus.

    .. math:: \delta = 4

    Assumes every ring length >= 3 (for length 2 the two neighbours coincide).
    dim_x, dim_y: ring lengths (1). Source: Dally & Towles (2004) Ch. 5 (degree 2n).

    >>> torus2d_links_per_node(dim_x=4, dim_y=4)
    4
    """
    return _const(4, dim_x * dim_y)


def torus2d_total_links(dim_x, dim_y):
    r"""Number of full-duplex links of a 2D torus.

    .. math:: L = 2 k_x k_y

    Assumes ring lengths >= 3. dim_x, dim_y: ring lengths (1).
    Source: Grama et al. (2003) Table 2.1 (wraparound mesh: 2p links).

    >>> torus2d_total_links(dim_x=4, dim_y=4)
    32
    """
    return 2 * dim_x * dim_y


def torus3d_diameter(dim_x, dim_y, dim_z):
    r"""Diameter of a 3D torus.

    .. math:: D = \lfloor k_x/2 \rfloor + \lfloor k_y/2 \rfloor + \lfloor k_z/2 \rfloor

    dim_x, dim_y, dim_z: ring lengths (1). Source: Dally & Towles (2004) Ch. 5.

    >>> torus3d_diameter(dim_x=4, dim_y=4, dim_z=4)
    6
    """
    return floor(dim_x / 2) + floor(dim_y / 2) + floor(dim_z / 2)


def torus3d_average_hops(dim_x, dim_y, dim_z):
    r"""Average shortest-path hops between distinct nodes of a 3D torus.

    .. math:: \bar H = \frac{N}{N-1}\sum_{i\in\{x,y,z\}} \frac{\lfloor k_i/2\rfloor (k_i -
              \lfloor k_i/2\rfloor)}{k_i}, \qquad N = k_x k_y k_z

    dim_x, dim_y, dim_z: ring lengths (1). Source: Dally & Towles (2004) Ch. 5
    (:math:`H_{min} = nk/4` for even k), times :math:`N/(N-1)`.

    >>> torus3d_average_hops(dim_x=4, dim_y=4, dim_z=4)  # 3 * 64/63
    3.0476190476190474
    """
    total = dim_x * dim_y * dim_z
    per_dim = (_ring_sum_of_distances(dim_x) / dim_x + _ring_sum_of_distances(dim_y) / dim_y
               + _ring_sum_of_distances(dim_z) / dim_z)
    return per_dim * total / (total - 1)


def torus3d_bisection_bandwidth(dim_x, dim_y, dim_z, beta):
    r"""One-direction bisection bandwidth of a 3D torus: cut across the longest dimension.

    .. math:: B = \frac{2 N}{\max(k_x, k_y, k_z)}\,\beta

    Exact when the longest dimension is even. dim_x, dim_y, dim_z: ring lengths (1);
    beta: link bandwidth per direction (B/s). Source: Dally & Towles (2004) Ch. 5.

    >>> torus3d_bisection_bandwidth(dim_x=4, dim_y=4, dim_z=8, beta=1e9)
    32000000000.0
    """
    longest = maximum(maximum(dim_x, dim_y), dim_z)
    return 2 * dim_x * dim_y * dim_z / longest * beta


def torus3d_links_per_node(dim_x, dim_y, dim_z):
    r"""Links per node of a 3D torus.

    .. math:: \delta = 6

    Assumes every ring length >= 3. dim_x, dim_y, dim_z: ring lengths (1).
    Source: Dally & Towles (2004) Ch. 5.

    >>> torus3d_links_per_node(dim_x=4, dim_y=4, dim_z=4)
    6
    """
    return _const(6, dim_x * dim_y * dim_z)


def torus3d_total_links(dim_x, dim_y, dim_z):
    r"""Number of full-duplex links of a 3D torus.

    .. math:: L = 3 k_x k_y k_z

    Assumes ring lengths >= 3. dim_x, dim_y, dim_z: ring lengths (1).
    Source: Grama et al. (2003) Table 2.1 (k-ary d-cube: dp links).

    >>> torus3d_total_links(dim_x=4, dim_y=4, dim_z=4)
    192
    """
    return 3 * dim_x * dim_y * dim_z


# --- 2D mesh -----------------------------------------------------------------------------------

def mesh2d_diameter(dim_x, dim_y):
    r"""Diameter of a 2D mesh (no wraparound).

    .. math:: D = (k_x - 1) + (k_y - 1)

    dim_x, dim_y: side lengths (1). Source: Grama et al. (2003) Table 2.1.

    >>> mesh2d_diameter(dim_x=4, dim_y=4)
    6
    """
    return dim_x + dim_y - 2


def mesh2d_average_hops(dim_x, dim_y):
    r"""Average shortest-path hops between distinct nodes of a 2D mesh.

    .. math:: \bar H = \frac{N}{N-1}\left(\frac{k_x^2 - 1}{3k_x} + \frac{k_y^2-1}{3k_y}\right)

    On a line of k nodes :math:`\sum_{i,j}|i-j| = k(k^2-1)/3` (odd and even k).
    dim_x, dim_y: side lengths (1). Source: Dally & Towles (2004) Ch. 5 (mesh
    :math:`H_{min}`), times :math:`N/(N-1)`.

    >>> mesh2d_average_hops(dim_x=4, dim_y=4)  # 2 * 15/12 * 16/15
    2.6666666666666665
    """
    total = dim_x * dim_y
    per_dim = (dim_x**2 - 1) / (3 * dim_x) + (dim_y**2 - 1) / (3 * dim_y)
    return per_dim * total / (total - 1)


def mesh2d_bisection_bandwidth(dim_x, dim_y, beta):
    r"""One-direction bisection bandwidth of a 2D mesh: cut across the longest side.

    .. math:: B = \min(k_x, k_y)\, \beta

    Exact when the longest side is even. dim_x, dim_y: side lengths (1); beta: link bandwidth
    per direction (B/s). Source: Grama et al. (2003) Table 2.1 (:math:`\sqrt p` for a square
    mesh); Dally & Towles (2004) Ch. 5.

    >>> mesh2d_bisection_bandwidth(dim_x=8, dim_y=4, beta=1e9)
    4000000000.0
    """
    return minimum(dim_x, dim_y) * beta


def mesh2d_links_per_node(dim_x, dim_y):
    r"""Links of an interior node of a 2D mesh (maximum degree; edge nodes have 2 or 3).

    .. math:: \delta_{max} = 4

    dim_x, dim_y: side lengths (1), each >= 3. The mean degree is :math:`2L/N`.
    Source: Grama et al. (2003) Sec. 2.4.

    >>> mesh2d_links_per_node(dim_x=4, dim_y=4)
    4
    """
    return _const(4, dim_x * dim_y)


def mesh2d_total_links(dim_x, dim_y):
    r"""Number of full-duplex links of a 2D mesh.

    .. math:: L = k_x(k_y - 1) + k_y(k_x - 1)

    dim_x, dim_y: side lengths (1). Source: Grama et al. (2003) Table 2.1
    (:math:`2(p - \sqrt p)` for a square mesh).

    >>> mesh2d_total_links(dim_x=4, dim_y=4)
    24
    """
    return 2 * dim_x * dim_y - dim_x - dim_y
