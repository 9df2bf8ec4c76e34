r"""Static properties of switched networks: diameter, average hops, bisection, link counts.

Covered: n nodes on a single crossbar switch (a star, with an optional blocking backplane), a
complete k-ary tree of switches, the two-level leaf-spine fat tree with oversubscription (and
the uplink bandwidth of one leaf), and the two-level hierarchical system (``n_nodes`` x
``n_devices_per_node``: node fabric + network). Direct networks (ring, torus, mesh, hypercube,
fully connected) are in :mod:`perfmodel.formulas.topology`.

Conventions are those of :mod:`perfmodel.formulas.topology`: a hop is one traversal of a link,
so a path through one switch is 2 hops (node -> switch -> node) and switches are not counted as
nodes; average hops are over ordered pairs of distinct nodes; bisection bandwidth is the
bandwidth in one direction across the minimum cut into two halves; ``beta`` is the bandwidth of
one full-duplex link per direction.

Sources: W. J. Dally and B. Towles, *Principles and Practices of Interconnection Networks*,
Morgan Kaufmann 2004, Ch. 3 (hops and bisection of indirect networks) and Ch. 6 (crossbars,
blocking and non-blocking switches, folded Clos); F. T. Leighton, *Introduction to Parallel
Algorithms and Architectures: Arrays, Trees, Hypercubes*, 1992 (trees); A. Grama et al.,
*Introduction to Parallel Computing*, 2nd ed., 2003, Table 2.1 (tree bisection width);
C. E. Leiserson, "Fat-trees", IEEE Trans. Computers C-34(10), 1985.
"""

from __future__ import annotations

from perfmodel.formulas._backend import floor, log2, minimum, where
from perfmodel.formulas.topology import _const

__all__ = [
    "switch_diameter", "switch_average_hops", "switch_bisection_bandwidth",
    "blocking_switch_bisection_bandwidth", "switch_links_per_node", "switch_total_links",
    "kary_tree_diameter", "kary_tree_average_hops", "kary_tree_bisection_bandwidth",
    "kary_tree_links_per_node", "kary_tree_total_links",
    "fat_tree_diameter", "fat_tree_average_hops", "fat_tree_bisection_bandwidth",
    "fat_tree_links_per_node", "fat_tree_total_links", "fat_tree_leaf_uplink_bandwidth",
    "hierarchical_diameter", "hierarchical_average_hops", "hierarchical_bisection_bandwidth",
    "hierarchical_links_per_node", "hierarchical_total_links",
]


# --- single crossbar switch (star) -------------------------------------------------------------

def switch_diameter(n):
    r"""Diameter of n nodes on one crossbar switch: node -> switch -> node.

    .. math:: D = 2

    n: nodes (1), n >= 2. Source: Dally & Towles (2004) Ch. 3 (indirect network, hops = links).

    >>> switch_diameter(n=8)
    2
    """
    return _const(2, n)


def switch_average_hops(n):
    r"""Average hops between distinct nodes on one crossbar switch.

    .. math:: \bar H = 2

    n: nodes (1), n >= 2. Source: Dally & Towles (2004) Ch. 3.

    >>> switch_average_hops(n=8)
    2
    """
    return _const(2, n)


def switch_bisection_bandwidth(n, beta):
    r"""One-direction bisection bandwidth of a non-blocking crossbar switch.

    .. math:: B = \lfloor n/2 \rfloor\, \beta

    The smaller half's node links limit it. n: nodes (1); beta: node link bandwidth per
    direction (B/s). Source: Dally & Towles (2004) Ch. 3 and Ch. 6 (crossbar is non-blocking).

    >>> switch_bisection_bandwidth(n=8, beta=1e9)
    4000000000.0
    """
    return floor(n / 2) * beta


def blocking_switch_bisection_bandwidth(n, beta, backplane_bandwidth):
    r"""One-direction bisection bandwidth of a switch whose backplane is slower than its ports.

    .. math:: B = \min\left(\lfloor n/2 \rfloor\, \beta,\; B_{bp}/2\right)

    Assumption: the backplane bandwidth :math:`B_{bp}` is the total switching capacity shared by
    all flows, and bisection traffic loads both directions equally, so each direction gets half.
    The switch is blocking when :math:`B_{bp} < n\beta`.
    n: nodes (1); beta: node link bandwidth per direction (B/s); backplane_bandwidth (B/s).
    Source: Dally & Towles (2004) Ch. 3 (bisection) and Ch. 6 (blocking vs non-blocking).

    >>> blocking_switch_bisection_bandwidth(n=8, beta=1e9, backplane_bandwidth=4e9)
    2000000000.0
    """
    return minimum(floor(n / 2) * beta, backplane_bandwidth / 2)


def switch_links_per_node(n):
    r"""Links per node on a single switch (its one port).

    .. math:: \delta = 1

    n: nodes (1). Source: Dally & Towles (2004) Ch. 3.

    >>> switch_links_per_node(n=8)
    1
    """
    return _const(1, n)


def switch_total_links(n):
    r"""Number of node-to-switch links of a single switch.

    .. math:: L = n

    n: nodes (1). Source: Dally & Towles (2004) Ch. 3.

    >>> switch_total_links(n=8)
    8
    """
    return _const(0, n) + n


# --- k-ary tree of switches --------------------------------------------------------------------

def _tree_levels(n, arity):
    # levels h of a complete k-ary tree with n = k^h leaves
    return log2(n) / log2(arity)


def kary_tree_diameter(n, arity):
    r"""Diameter of a complete k-ary tree of switches with the n nodes at the leaves.

    .. math:: D = 2 h, \qquad h = \log_k n

    Up to the root and down again. n: nodes (leaves) (1), assumed :math:`n = k^h`;
    arity: children per switch k (1). Source: Leighton (1992) Ch. 1 (trees); Leiserson (1985).

    >>> kary_tree_diameter(n=64, arity=4)
    6.0
    """
    return 2 * _tree_levels(n, arity)


def kary_tree_average_hops(n, arity):
    r"""Average hops between distinct leaves of a complete k-ary tree of switches.

    .. math:: \bar H = \frac{2 h n}{n-1} - \frac{2}{k-1}, \qquad h = \log_k n

    Derivation: from a leaf, :math:`k^j - k^{j-1}` leaves have their lowest common ancestor j
    levels up, at distance 2j; :math:`\sum_{j=1}^{h} 2j(k^j - k^{j-1}) = 2hk^h - 2(k^h-1)/(k-1)`.
    n: nodes (1), :math:`n = k^h`; arity: k (1). Source: definition of Dally & Towles (2004) Ch. 3.

    >>> kary_tree_average_hops(n=8, arity=2)  # 6*8/7 - 2  # doctest: +ELLIPSIS
    4.85714285714...
    """
    h = _tree_levels(n, arity)
    return 2 * h * n / (n - 1) - 2 / (arity - 1)


def kary_tree_bisection_bandwidth(n, arity, beta):
    r"""One-direction bisection bandwidth of a k-ary tree: half the root's links.

    .. math:: B = \lfloor k/2 \rfloor\, \beta

    Exact for even k (k/2 root subtrees on each side) and for one level (k = n, a switch);
    a lower bound for odd k with several levels. A binary tree's bisection is one link.
    n: nodes (1); arity: k (1); beta: link bandwidth per direction (B/s).
    Source: Leighton (1992) (binary tree bisection width 1); Grama et al. (2003) Table 2.1.

    >>> kary_tree_bisection_bandwidth(n=64, arity=4, beta=1e9)
    2000000000.0
    """
    return _const(0, n) + floor(arity / 2) * beta


def kary_tree_links_per_node(n, arity):
    r"""Links per node (leaf) of a k-ary tree of switches; each switch has k + 1 ports.

    .. math:: \delta = 1

    n: nodes (1); arity: k (1). Source: Dally & Towles (2004) Ch. 3 (indirect networks).

    >>> kary_tree_links_per_node(n=64, arity=4)
    1
    """
    return _const(1, n + arity)


def kary_tree_total_links(n, arity):
    r"""Number of links of a complete k-ary tree with n leaves (vertices minus one).

    .. math:: L = n + \frac{n - k}{k - 1}

    There are :math:`(n-1)/(k-1)` switches; every vertex but the root has one link up.
    n: nodes (1), :math:`n = k^h`; arity: k (1). Source: Leighton (1992) (complete trees).

    >>> kary_tree_total_links(n=8, arity=2)
    14.0
    """
    return n + (n - arity) / (arity - 1)


# --- two-level fat tree (leaf-spine, folded Clos) ----------------------------------------------

def fat_tree_diameter(n, n_nodes_per_leaf):
    r"""Diameter of a leaf-spine fat tree: node -> leaf -> spine -> leaf -> node.

    .. math:: D = \begin{cases} 4 & n > p \\ 2 & n \le p \end{cases}

    n: nodes (1); n_nodes_per_leaf: nodes on one leaf switch p (1).
    Source: Leiserson (1985); Dally & Towles (2004) Ch. 6 (folded Clos).

    >>> fat_tree_diameter(n=64, n_nodes_per_leaf=16)
    4
    """
    return where(n > n_nodes_per_leaf, 4, 2)


def fat_tree_average_hops(n, n_nodes_per_leaf):
    r"""Average hops between distinct nodes of a leaf-spine fat tree.

    .. math:: \bar H = \frac{2(p - 1) + 4(n - p)}{n - 1}

    From a node, p - 1 others share its leaf (2 hops) and n - p are on other leaves (4 hops).
    n: nodes (1), :math:`n \ge p`; n_nodes_per_leaf: p (1). Source: definition of Dally &
    Towles (2004) Ch. 3 applied to the folded Clos of Ch. 6.

    >>> fat_tree_average_hops(n=64, n_nodes_per_leaf=16)  # (30 + 192)/63
    3.5238095238095237
    """
    p = n_nodes_per_leaf
    return (2 * (p - 1) + 4 * (n - p)) / (n - 1)


def fat_tree_bisection_bandwidth(n, n_nodes_per_leaf, beta, oversubscription):
    r"""One-direction bisection bandwidth of a leaf-spine fat tree with oversubscription.

    .. math:: B = \begin{cases} \frac{n}{2}\,\beta\,\min(1, 1/o) & n > p \\
              \lfloor n/2 \rfloor\,\beta & n \le p \end{cases}

    Whole leaves go to each side; one half's leaf uplinks, :math:`(n/2)\beta/o`, are cut
    (o = downlink / uplink bandwidth of a leaf; o = 1 is full bisection). Assumes an even
    number of leaves and non-blocking spines. n: nodes (1); n_nodes_per_leaf: p (1);
    beta: node link bandwidth per direction (B/s); oversubscription: o (1).
    Source: Leiserson (1985); Dally & Towles (2004) Ch. 6.

    >>> fat_tree_bisection_bandwidth(n=64, n_nodes_per_leaf=16, beta=1e9, oversubscription=2)
    16000000000.0
    """
    across_leaves = n / 2 * beta * minimum(1, 1 / oversubscription)
    return where(n > n_nodes_per_leaf, across_leaves, floor(n / 2) * beta)


def fat_tree_leaf_uplink_bandwidth(n_nodes_per_leaf, beta, oversubscription):
    r"""Total uplink bandwidth of one leaf switch, per direction.

    .. math:: B_{up} = \frac{p\,\beta}{o}

    n_nodes_per_leaf: p (1); beta: node link bandwidth per direction (B/s);
    oversubscription: o = downlink / uplink bandwidth (1). Source: definition of the
    oversubscription ratio, Leiserson (1985).

    >>> fat_tree_leaf_uplink_bandwidth(n_nodes_per_leaf=16, beta=25e9, oversubscription=4)
    100000000000.0
    """
    return n_nodes_per_leaf * beta / oversubscription


def fat_tree_links_per_node(n):
    r"""Links per node of a fat tree (one port to its leaf switch).

    .. math:: \delta = 1

    n: nodes (1). Source: Leiserson (1985).

    >>> fat_tree_links_per_node(n=64)
    1
    """
    return _const(1, n)


def fat_tree_total_links(n, oversubscription):
    r"""Number of links of a leaf-spine fat tree (node links plus leaf uplinks).

    .. math:: L = n + \frac{n}{o}

    Assumes uplinks of the same bandwidth as node links, p/o of them per leaf.
    n: nodes (1); oversubscription: o (1). Source: Leiserson (1985).

    >>> fat_tree_total_links(n=64, oversubscription=2)
    96.0
    """
    return n + n / oversubscription


# --- two-level hierarchical system (node fabric + network) -------------------------------------

def hierarchical_diameter(n_nodes, n_devices_per_node):
    r"""Diameter of a two-level system: device -> node fabric -> network -> node fabric -> device.

    .. math:: D = \begin{cases} 4 & N > 1 \\ 2 & N = 1 \end{cases}

    Model: the devices of a node sit on one non-blocking node switch (e.g. NVSwitch); node
    switches hang off one non-blocking network switch. n_nodes: N (1); n_devices_per_node: d (1).
    Source: Dally & Towles (2004) Ch. 3 (hop counting in indirect networks).

    >>> hierarchical_diameter(n_nodes=4, n_devices_per_node=8)
    4
    """
    return where(n_nodes > 1, 4, 2) + _const(0, n_devices_per_node)


def hierarchical_average_hops(n_nodes, n_devices_per_node):
    r"""Average hops between distinct devices of a two-level system.

    .. math:: \bar H = \frac{2(d - 1) + 4(Nd - d)}{Nd - 1}

    d - 1 peers are in the node (2 hops), Nd - d in other nodes (4 hops).
    n_nodes: N (1); n_devices_per_node: d (1). Source: Dally & Towles (2004) Ch. 3.

    >>> hierarchical_average_hops(n_nodes=4, n_devices_per_node=8)  # (14 + 96)/31
    3.5483870967741935
    """
    d = n_devices_per_node
    total = n_nodes * d
    return (2 * (d - 1) + 4 * (total - d)) / (total - 1)


def hierarchical_bisection_bandwidth(n_nodes, n_devices_per_node, beta_inter):
    r"""One-direction bisection bandwidth of a two-level system: half the nodes' network links.

    .. math:: B = \frac{N}{2}\, d\, \beta_{inter}

    Whole nodes go to each side; assumes an even number of nodes, a non-blocking network and
    :math:`\beta_{inter} \le \beta_{intra}`. n_nodes: N (1); n_devices_per_node: d (1);
    beta_inter: network bandwidth per device per direction (B/s). Source: Dally & Towles
    (2004) Ch. 3.

    >>> hierarchical_bisection_bandwidth(n_nodes=4, n_devices_per_node=8, beta_inter=25e9)
    400000000000.0
    """
    return n_nodes / 2 * n_devices_per_node * beta_inter


def hierarchical_links_per_node(n_nodes, n_devices_per_node):
    r"""Links per device of a two-level system (its port into the node fabric).

    .. math:: \delta = 1

    Each node also has d network links (one NIC per device) on its node switch.
    n_nodes: N (1); n_devices_per_node: d (1). Source: Dally & Towles (2004) Ch. 3.

    >>> hierarchical_links_per_node(n_nodes=4, n_devices_per_node=8)
    1
    """
    return _const(1, n_nodes * n_devices_per_node)


def hierarchical_total_links(n_nodes, n_devices_per_node):
    r"""Number of links of a two-level system: device links plus one network link per device.

    .. math:: L = 2 N d

    n_nodes: N (1); n_devices_per_node: d (1). Source: Dally & Towles (2004) Ch. 3.

    >>> hierarchical_total_links(n_nodes=4, n_devices_per_node=8)
    64
    """
    return 2 * n_nodes * n_devices_per_node
