"""One collective on every network topology: ``shapes`` (node counts a topology admits),
``layouts`` (the algorithms each topology runs, from the formulas), ``compare``
(:func:`compare_topologies` and its result), ``crossovers`` (message sizes where the best
algorithm changes) and ``plot``."""

from perfmodel.topologies.compare import (
    COLLECTIVES,
    TOPOLOGIES,
    Algorithm,
    Network,
    TopologyComparison,
    TopologyRow,
    compare_topologies,
    topology_algorithms,
)

__all__ = ["COLLECTIVES", "TOPOLOGIES", "Network", "Algorithm", "TopologyRow", "TopologyComparison",
           "compare_topologies", "topology_algorithms"]
