r"""Collectives on tori and meshes: dimension-ordered rings and chains.

A k-ary n-cube runs a collective one dimension at a time, every line of the grid at once on its
own links: all-reduce is reduce-scatter along x, then along y on the x-th share, ..., an
all-reduce along the last dimension, then the all-gathers back (the "2D-torus all-reduce" of
Mikami et al., generalised); all-gather and reduce-scatter run the rings of each dimension on
growing (shrinking) buffers; broadcast runs a pipelined chain along x, then along y in every
column, ... A torus line is a ring with links both ways, so each dimension uses two rings in
opposite directions (half the data each). A mesh line has no wraparound: a ring is embedded in
it with dilation 2 (even ranks out, odd ranks back), one ring per line, 2 hops per step; the
chain broadcast needs 1 hop.

Model: :mod:`perfmodel.formulas.mapped` (alpha-beta, ``beta`` per link per direction, one
message per link per step, ``hop_latency`` per link crossed). ``size`` is the full buffer per
rank; ``dim_x``, ``dim_y``, ``dim_z`` are the ring (line) lengths, n = their product. All-to-all
on a grid is :func:`perfmodel.formulas.mapped.direct_alltoall_bisection_time`; static
properties in :mod:`perfmodel.formulas.torus`.

Sources: H. Mikami et al., "Massively Distributed SGD: ImageNet/ResNet-50 Training in a Flash",
arXiv:1811.05233, 2018, Sec. 3.3 (2D-torus all-reduce: reduce-scatter horizontally, all-reduce
vertically, all-gather horizontally); A. Grama et al., *Introduction to Parallel Computing*,
2nd ed., 2003, Sec. 4.1-4.2 (one-to-all and all-to-all broadcast on meshes, dimension by
dimension) and Sec. 2.7 (embedding a ring into a linear array); R. Thakur, R. Rabenseifner,
W. Gropp, IJHPCA 19(1), 2005, Sec. 4 (ring costs); P. Sanders, J. Speck, J. L. Träff, Parallel
Computing 35(12), 2009, Sec. 1 (pipelined chain).
"""

from __future__ import annotations

__all__ = [
    "torus2d_ring_allreduce_time", "torus2d_ring_allgather_time", "torus2d_ring_reduce_scatter_time",
    "torus2d_pipelined_broadcast_time",
    "torus3d_ring_allreduce_time", "torus3d_ring_allgather_time", "torus3d_ring_reduce_scatter_time",
    "torus3d_pipelined_broadcast_time",
    "mesh2d_ring_allreduce_time", "mesh2d_ring_allgather_time", "mesh2d_ring_reduce_scatter_time",
    "mesh2d_pipelined_broadcast_time",
]


# --- 2D torus ----------------------------------------------------------------------------------

def torus2d_ring_allreduce_time(dim_x, dim_y, size, alpha, beta, hop_latency):
    r"""2D-torus all-reduce: bidirectional rings, reduce-scatter x, all-reduce y, all-gather x.

    .. math:: T = 2(k_x-1)(\alpha+\delta) + \frac{k_x-1}{k_x}\frac{S}{\beta}
              + 2(k_y-1)(\alpha+\delta) + \frac{k_y-1}{k_y}\frac{S}{k_x\beta}

    Each phase runs two rings in opposite directions per line, every line at once; the
    y-phase works on the S/k_x share left by the x reduce-scatter. dim_x, dim_y: ring lengths
    (1); size (B); alpha: per step (s); beta: per link per direction (B/s); hop_latency (s).
    Source: Mikami et al. (2018) Sec. 3.3, with bidirectional rings (ring costs of Thakur et
    al. 2005).

    >>> torus2d_ring_allreduce_time(4, 4, 1e9, 5e-6, 100e9, 1e-7)  # doctest: +ELLIPSIS
    0.009436...
    """
    x = 2 * (dim_x - 1) * (alpha + hop_latency) + (dim_x - 1) / dim_x * size / beta
    y = 2 * (dim_y - 1) * (alpha + hop_latency) + (dim_y - 1) / dim_y * size / (dim_x * beta)
    return x + y


def torus2d_ring_allgather_time(dim_x, dim_y, size, alpha, beta, hop_latency):
    r"""2D-torus all-gather: bidirectional rings along x, then along y on the gathered rows.

    .. math:: T = (k_x + k_y - 2)(\alpha+\delta) + \frac{n-1}{n}\,\frac{S}{2\beta},
              \qquad n = k_x k_y

    The x-phase gathers S/k_y per rank, the y-phase S: :math:`\frac{k_x-1}{n} +
    \frac{k_y-1}{k_y} = \frac{n-1}{n}`. dim_x, dim_y (1); size: full output buffer (B);
    alpha (s); beta (B/s); hop_latency (s). Source: Grama et al. (2003) Sec. 4.2 (all-to-all
    broadcast on a mesh, row then column), with bidirectional rings.

    >>> torus2d_ring_allgather_time(4, 4, 1e9, 5e-6, 100e9, 1e-7)  # doctest: +ELLIPSIS
    0.004718...
    """
    n = dim_x * dim_y
    return (dim_x + dim_y - 2) * (alpha + hop_latency) + (n - 1) / n * size / (2 * beta)


def torus2d_ring_reduce_scatter_time(dim_x, dim_y, size, alpha, beta, hop_latency):
    r"""2D-torus reduce-scatter: the all-gather's steps in reverse (y first, then x).

    .. math:: T = (k_x + k_y - 2)(\alpha+\delta) + \frac{n-1}{n}\,\frac{S}{2\beta}

    Add the reduction compute. Units as :func:`torus2d_ring_allgather_time`. Source: as there.

    >>> torus2d_ring_reduce_scatter_time(4, 4, 1e9, 5e-6, 100e9, 1e-7)  # doctest: +ELLIPSIS
    0.004718...
    """
    return torus2d_ring_allgather_time(dim_x, dim_y, size, alpha, beta, hop_latency)


def torus2d_pipelined_broadcast_time(dim_x, dim_y, size, alpha, beta, hop_latency, n_chunks):
    r"""2D-torus broadcast: two pipelined chains (S/2 each, opposite ways) along x, then along y.

    .. math:: T = (k_x + k_y + 2c - 4)\left(\alpha + \delta + \frac{S}{2c\beta}\right)

    Dimension phases in sequence (an upper bound: they could overlap). dim_x, dim_y (1);
    size (B); alpha (s); beta (B/s); hop_latency (s); n_chunks: c (1). Source: Grama et al.
    (2003) Sec. 4.1 (one-to-all broadcast on a mesh, row then columns) with the pipelined chain
    of Sanders, Speck & Träff (2009).

    >>> torus2d_pipelined_broadcast_time(4, 4, 1e9, 5e-6, 100e9, 1e-7, 64)  # doctest: +ELLIPSIS
    0.01098...
    """
    return (dim_x + dim_y + 2 * n_chunks - 4) * (alpha + hop_latency + size / (2 * n_chunks * beta))


# --- 3D torus ----------------------------------------------------------------------------------

def torus3d_ring_allreduce_time(dim_x, dim_y, dim_z, size, alpha, beta, hop_latency):
    r"""3D-torus all-reduce: bidirectional rings, reduce-scatter x and y, all-reduce z, all-gather back.

    .. math:: T = 2(k_x+k_y+k_z-3)(\alpha+\delta) + \left(\frac{k_x-1}{k_x}
              + \frac{k_y-1}{k_x k_y} + \frac{k_z-1}{k_x k_y k_z}\right)\frac{S}{\beta}

    Each dimension's phase works on the share the previous reduce-scatters left.
    dim_x, dim_y, dim_z: ring lengths (1); size (B); alpha (s); beta (B/s); hop_latency (s).
    Source: Mikami et al. (2018) Sec. 3.3, one more dimension.

    >>> torus3d_ring_allreduce_time(4, 4, 4, 1e9, 5e-6, 100e9, 1e-7)  # doctest: +ELLIPSIS
    0.00993...
    """
    steps = 2 * (dim_x + dim_y + dim_z - 3) * (alpha + hop_latency)
    share = ((dim_x - 1) / dim_x + (dim_y - 1) / (dim_x * dim_y)
             + (dim_z - 1) / (dim_x * dim_y * dim_z))
    return steps + share * size / beta


def torus3d_ring_allgather_time(dim_x, dim_y, dim_z, size, alpha, beta, hop_latency):
    r"""3D-torus all-gather: bidirectional rings along x, y, then z.

    .. math:: T = (k_x + k_y + k_z - 3)(\alpha+\delta) + \frac{n-1}{n}\,\frac{S}{2\beta},
              \qquad n = k_x k_y k_z

    dim_x, dim_y, dim_z (1); size: full output buffer (B); alpha (s); beta (B/s);
    hop_latency (s). Source: Grama et al. (2003) Sec. 4.2, dimension by dimension.

    >>> torus3d_ring_allgather_time(4, 4, 4, 1e9, 5e-6, 100e9, 1e-7)  # doctest: +ELLIPSIS
    0.00496...
    """
    n = dim_x * dim_y * dim_z
    return (dim_x + dim_y + dim_z - 3) * (alpha + hop_latency) + (n - 1) / n * size / (2 * beta)


def torus3d_ring_reduce_scatter_time(dim_x, dim_y, dim_z, size, alpha, beta, hop_latency):
    r"""3D-torus reduce-scatter: the all-gather's steps in reverse.

    .. math:: T = (k_x + k_y + k_z - 3)(\alpha+\delta) + \frac{n-1}{n}\,\frac{S}{2\beta}

    Units as :func:`torus3d_ring_allgather_time`. Source: as there.

    >>> torus3d_ring_reduce_scatter_time(4, 4, 4, 1e9, 5e-6, 100e9, 1e-7)  # doctest: +ELLIPSIS
    0.00496...
    """
    return torus3d_ring_allgather_time(dim_x, dim_y, dim_z, size, alpha, beta, hop_latency)


def torus3d_pipelined_broadcast_time(dim_x, dim_y, dim_z, size, alpha, beta, hop_latency, n_chunks):
    r"""3D-torus broadcast: two opposite pipelined chains per dimension, x then y then z.

    .. math:: T = (k_x + k_y + k_z + 3c - 6)\left(\alpha + \delta + \frac{S}{2c\beta}\right)

    dim_x, dim_y, dim_z (1); size (B); alpha (s); beta (B/s); hop_latency (s); n_chunks: c (1).
    Source: as :func:`torus2d_pipelined_broadcast_time`.

    >>> torus3d_pipelined_broadcast_time(4, 4, 4, 1e9, 5e-6, 100e9, 1e-7, 64)  # doctest: +ELLIPSIS
    0.01647...
    """
    return (dim_x + dim_y + dim_z + 3 * n_chunks - 6) * (alpha + hop_latency + size / (2 * n_chunks * beta))


# --- 2D mesh -----------------------------------------------------------------------------------

def mesh2d_ring_allreduce_time(dim_x, dim_y, size, alpha, beta, hop_latency):
    r"""2D-mesh all-reduce: one ring per line (embedded with dilation 2), x then y then x.

    .. math:: T = 2(k_x-1)(\alpha+2\delta) + 2\frac{k_x-1}{k_x}\frac{S}{\beta}
              + 2(k_y-1)(\alpha+2\delta) + 2\frac{k_y-1}{k_y}\frac{S}{k_x\beta}

    Without wraparound a line holds one ring that uses each link once per direction (ranks
    0, 2, 4, ... outwards, odd ranks back), so a ring edge spans 2 hops (1 at the ends: an
    upper bound). dim_x, dim_y: line lengths (1); size (B); alpha (s); beta (B/s);
    hop_latency (s). Source: ring embedding in a linear array, Grama et al. (2003) Sec. 2.7;
    phases as Mikami et al. (2018) Sec. 3.3.

    >>> mesh2d_ring_allreduce_time(4, 4, 1e9, 5e-6, 100e9, 1e-7)  # doctest: +ELLIPSIS
    0.01881...
    """
    x = 2 * (dim_x - 1) * (alpha + 2 * hop_latency) + 2 * (dim_x - 1) / dim_x * size / beta
    y = 2 * (dim_y - 1) * (alpha + 2 * hop_latency) + 2 * (dim_y - 1) / dim_y * size / (dim_x * beta)
    return x + y


def mesh2d_ring_allgather_time(dim_x, dim_y, size, alpha, beta, hop_latency):
    r"""2D-mesh all-gather: one embedded ring per line, along x then along y.

    .. math:: T = (k_x + k_y - 2)(\alpha+2\delta) + \frac{n-1}{n}\,\frac{S}{\beta},
              \qquad n = k_x k_y

    dim_x, dim_y (1); size: full output buffer (B); alpha (s); beta (B/s); hop_latency (s).
    Source: Grama et al. (2003) Sec. 4.2 (all-to-all broadcast on a mesh), ring embedded with
    dilation 2 (Sec. 2.7).

    >>> mesh2d_ring_allgather_time(4, 4, 1e9, 5e-6, 100e9, 1e-7)  # doctest: +ELLIPSIS
    0.00940...
    """
    n = dim_x * dim_y
    return (dim_x + dim_y - 2) * (alpha + 2 * hop_latency) + (n - 1) / n * size / beta


def mesh2d_ring_reduce_scatter_time(dim_x, dim_y, size, alpha, beta, hop_latency):
    r"""2D-mesh reduce-scatter: the all-gather's steps in reverse.

    .. math:: T = (k_x + k_y - 2)(\alpha+2\delta) + \frac{n-1}{n}\,\frac{S}{\beta}

    Units as :func:`mesh2d_ring_allgather_time`. Source: as there.

    >>> mesh2d_ring_reduce_scatter_time(4, 4, 1e9, 5e-6, 100e9, 1e-7)  # doctest: +ELLIPSIS
    0.00940...
    """
    return mesh2d_ring_allgather_time(dim_x, dim_y, size, alpha, beta, hop_latency)


def mesh2d_pipelined_broadcast_time(dim_x, dim_y, size, alpha, beta, hop_latency, n_chunks):
    r"""2D-mesh broadcast from a corner: a pipelined chain along x, then along every column.

    .. math:: T = (k_x + k_y + 2c - 4)\left(\alpha + \delta + \frac{S}{c\beta}\right)

    dim_x, dim_y (1); size (B); alpha (s); beta (B/s); hop_latency (s); n_chunks: c (1).
    Source: Grama et al. (2003) Sec. 4.1 (one-to-all broadcast on a mesh) with the pipelined
    chain of Sanders, Speck & Träff (2009).

    >>> mesh2d_pipelined_broadcast_time(4, 4, 1e9, 5e-6, 100e9, 1e-7, 64)  # doctest: +ELLIPSIS
    0.02129...
    """
    return (dim_x + dim_y + 2 * n_chunks - 4) * (alpha + hop_latency + size / (n_chunks * beta))
