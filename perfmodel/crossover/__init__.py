"""Where training turns communication-bound: one equation per scheme built from the step model.

``equations`` builds each scheme's t_comm(x) and t_compute(x) from the step model's terms,
``solver`` finds the root (bracketing scan, bisection, sympy closed form), ``checks`` tests the
root against ``predict`` at integer operating points, ``find`` ties them into
:func:`find_crossover` and the :class:`Crossover` result.
"""

from perfmodel.crossover.find import (
    SCHEMES,
    SOLVE_FOR,
    Crossover,
    NoCrossoverError,
    find_crossover,
    scaled_system,
    sensitivity,
)

__all__ = ["Crossover", "NoCrossoverError", "find_crossover", "sensitivity", "scaled_system", "SCHEMES", "SOLVE_FOR"]
