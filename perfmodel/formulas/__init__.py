"""Pure closed-form equations, one module per subject.

Each public function is a pure function of plain numbers that gives the same result for Python
floats, numpy arrays (and pandas Series) and sympy Symbols; see :mod:`._backend`. Importing this
package imports no third-party library.
"""

MODULES = (
    "compute", "gemm", "training", "memory", "links", "pcie", "pcie_copies", "topology", "torus", "switched", "collectives",
    "logtree", "contention", "busbw", "pipeline", "dataparallel", "mapped", "treecoll", "gridcoll",
    "scheduling", "context", "offload", "activations", "moe", "gemm_overlap",
)

__all__ = list(MODULES)


def __getattr__(name):  # lazy: `from perfmodel.formulas import pcie` imports only pcie
    if name in MODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(name)
