r"""The communication-bound crossover: the devices, bandwidth or micro-batch at which a scheme's
communication equals the compute it competes with.

``find_crossover(model, system, scheme, solve_for, plan)`` takes one equation per scheme, written
with the formulas (:mod:`perfmodel.crossover_equations`), with the numbers of the operating point
(the plan, resolved against model and system) for every symbol but the unknown:

* **dp** -- the whole gradient synchronisation of one step (ring, two-level ring, parameter server
  or delta-W broadcast over the dp ranks, with each level's alpha / beta as
  :mod:`perfmodel.predict.hardware` gives them; plus the ZeRO-3 gathers) against the backward
  compute of the step on one device. Adding devices is *strong* scaling: the global batch stays
  fixed, so a device's backward is :math:`W/N`. Overlap hides the sync only while it is shorter
  than the backward, so past the crossover the excess is exposed.
* **tp** -- one layer's tensor-parallel all-reduces for one micro-batch (4, or 6 with full
  recompute; Megatron-LM) against the layer's compute on one device, :math:`k\,b/t`.
* **pp** -- the point-to-point transfers of one step plus the pipeline bubble against the stage
  compute of the step.

The numeric root: a log-spaced scan of the real function (hardware levels re-evaluated at every
point, so a group leaving a node or sharing a PCIe switch is seen), then bisection of the bracket.
The closed form: sympy solves the same equation with every number a symbol and the hardware levels
of the segment that holds the root; it exists when no parameter varies with the unknown inside
that segment. The two must agree to ``AGREEMENT``. Where the communication jumps (tensor
parallelism leaving an NVSwitch node), the crossover is the jump, with t_comm > t_compute there
and no closed form.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from types import MappingProxyType
from typing import Mapping

from perfmodel.crossover_equations import PARAMS, Equation, Point, equation, point
from perfmodel.errors import PerfModelError, PlanError, UnknownNameError, did_you_mean

__all__ = ["Crossover", "NoCrossoverError", "find_crossover", "sensitivity", "SCHEMES", "SOLVE_FOR"]

SCHEMES = ("dp", "tp", "pp")
SOLVE_FOR = ("devices", "bandwidth", "micro-batch")
AGREEMENT = 1e-6  # numeric vs symbolic root, relative (issue 4)
_GRID = 481  # points of the bracketing scan (log-spaced)


class NoCrossoverError(PerfModelError, ValueError):
    """The scheme does not turn communication-bound (or is already) anywhere in the range."""


@dataclass(frozen=True)
class Crossover:
    """Where a scheme turns communication-bound, and what surrounds that point.

    ``value`` is the crossover (devices; link bandwidth per direction in B/s; micro-batch in
    sequences or samples), where ``t_comm_s`` equals ``t_compute_s`` (both over ``scope``).
    ``closed_form`` is the sympy root over the symbols of ``parameters``, ``symbolic_value`` its
    value; ``integer_value`` the first valid integer (devices, micro-batch) at which the full
    prediction is communication-bound; ``sensitivity`` the elasticities of the predicted step
    time to the bandwidth and the latency of the scheme's level at the operating point.
    """

    model: str
    system: str
    scheme: str
    solve_for: str
    value: float
    unit: str
    direction: str
    t_compute_s: float
    t_comm_s: float
    scope: str
    numeric_value: float
    symbolic_value: float | None
    closed_form_latex: str | None
    equation_latex: str | None
    integer_value: int | None
    at_discontinuity: bool
    sensitivity: Mapping[str, object]
    operating_point: Mapping[str, object]
    parameters: Mapping[str, Mapping[str, object]]
    notes: tuple[str, ...] = ()
    closed_form: object = field(default=None, compare=False, repr=False)
    equation: Equation | None = field(default=None, compare=False, repr=False)
    point: Point | None = field(default=None, compare=False, repr=False)

    def curve(self, xs) -> tuple[list[float], list[float]]:
        """(t_comm, t_compute) of the crossover equation at each x of ``xs`` (same scope)."""
        pairs = [self.equation.evaluate(float(x)) for x in xs]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    def sweep(self, n_bandwidths: int = 25) -> list[dict]:
        """The full prediction as the unknown varies around the operating point and the crossover:
        at the valid integers (devices, micro-batch) within 16x of them, or on a log grid of link
        bandwidths (one row per value: ``x``, ``step_time_s``, the step's parts, ``bound``)."""
        from perfmodel.predict import predict

        pt, eq = self.point, self.equation
        lo, hi = min(self.value, eq.x0), max(self.value, eq.x0)
        rows = []
        if self.solve_for == "bandwidth":
            for x in _geomspace(lo / 16, hi * 16, n_bandwidths):
                system = scaled_system(pt.system, eq.level, bandwidth=x / eq.x0)
                rows.append((x, predict(pt.model, system, pt.plan)))
        else:
            for x in valid_values(pt, self.scheme, self.solve_for, eq.hi):
                plan = _plan_at(pt, self.scheme, self.solve_for, x) if lo / 16 <= x <= hi * 16 else None
                if plan is not None:
                    rows.append((float(x), predict(pt.model, pt.system, plan)))
        out = []
        for x, r in rows:
            b = r.breakdown_s
            out.append({"x": x, "step_time_s": r.step_time_s, "compute_s": b["compute"] + b["recompute"],
                        "communication_s": b["tp_comm"] + b["pp_comm"] + b["dp_comm"],
                        "communication_total_s": r.comm_total_s,
                        "pipeline_bubble_s": b["pipeline_bubble"], "optimizer_s": b["optimizer"] + b["other"],
                        "bound": r.bound})
        return out

    def to_dict(self) -> dict:
        """The JSON object of ``perfmodel crossover``: the contract keys first, then context."""
        op = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in self.operating_point.items()}
        return {
            "solve_for": self.solve_for, "value": self.value, "t_compute_s": self.t_compute_s,
            "t_comm_s": self.t_comm_s, "closed_form_latex": self.closed_form_latex,
            "model": self.model, "system": self.system, "scheme": self.scheme, "unit": self.unit,
            "direction": self.direction, "scope": self.scope, "numeric_value": self.numeric_value,
            "symbolic_value": self.symbolic_value,
            "closed_form": None if self.closed_form is None else str(self.closed_form),
            "equation_latex": self.equation_latex, "integer_value": self.integer_value,
            "at_discontinuity": self.at_discontinuity, "sensitivity": dict(self.sensitivity),
            "operating_point": op, "parameters": {k: dict(v) for k, v in self.parameters.items()},
            "notes": list(self.notes),
        }

    def _value_text(self, x: float) -> str:
        from perfmodel.units import format_quantity

        return format_quantity(x, "bandwidth") if self.unit == "B/s" else f"{x:.4g} {self.unit}"

    def summary_rows(self, symbolic: bool = False) -> list[tuple[str, str]]:
        from perfmodel.units import format_quantity

        sens = self.sensitivity
        rows = [
            ("crossover", f"{self._value_text(self.value)} ({self.solve_for}; {self.direction})"),
            ("t_comm = t_compute",
             f"{format_quantity(self.t_comm_s, 'time')} = {format_quantity(self.t_compute_s, 'time')}"),
            ("over", self.scope),
            ("integer check", "-" if self.solve_for == "bandwidth" else "none in range" if self.integer_value is None
             else f"{self.integer_value} {self.unit}: the full prediction is communication-bound"),
            ("operating point", f"{self._value_text(self.operating_point['x'])}: step "
             f"{format_quantity(self.operating_point['step_time_s'], 'time')}, {self.operating_point['bound']}-bound"),
            ("step-time elasticity", f"{sens['bandwidth']:+.3g} to {sens['level']} bandwidth, "
             f"{sens['latency']:+.3g} to its latency"),
        ]
        if symbolic:
            rows.append(("numeric / symbolic", f"{self.numeric_value:.10g} / "
                         + ("-" if self.symbolic_value is None else f"{self.symbolic_value:.10g}")))
            rows.append(("equation (LaTeX)", self.equation_latex or "-"))
            rows.append(("closed form (LaTeX)", self.closed_form_latex or "none"))
            rows.append(("closed form (sympy)", "none" if self.closed_form is None else str(self.closed_form)))
        rows.extend(("note", n) for n in self.notes)
        return rows

    def parameter_rows(self) -> list[dict]:
        return [{"parameter": k, "symbol": v["symbol"], "value": f"{v['value']:.6g}", "unit": v["unit"],
                 "meaning": v["meaning"]} for k, v in self.parameters.items()]

    def render(self, symbolic: bool = False):
        """A rich renderable: the summary, and with ``symbolic`` the parameters' table."""
        from rich.console import Group
        from rich.table import Table

        head = Table(title=f"{self.scheme} crossover: {self.model} on {self.system}", show_header=False)
        head.add_column("", style="bold")
        head.add_column("", overflow="fold")
        for k, v in self.summary_rows(symbolic):
            head.add_row(k, v)
        if not symbolic:
            return head
        params = Table(title="parameters at the crossover")
        for col in ("parameter", "symbol", "value", "unit", "meaning"):
            params.add_column(col, overflow="fold")
        for row in self.parameter_rows():
            params.add_row(*row.values())
        return Group(head, params)

    def __rich__(self):
        return self.render(False)


# --- solving --------------------------------------------------------------------------------------


def _geomspace(lo: float, hi: float, n: int) -> list[float]:
    r = math.log(hi / lo)
    return [lo * math.exp(r * i / (n - 1)) for i in range(n)]


def _fmt_x(eq: Equation):
    from perfmodel.units import format_quantity

    symbol = PARAMS[eq.unknown][0].replace("\\", "")
    if eq.unit == "B/s":
        return lambda x: f"{symbol} = {format_quantity(x, 'bandwidth')}"
    return lambda x: f"{symbol} = {x:.6g}"


def _bracket(eq: Equation, what: str) -> tuple[float, float]:
    """The scan's bracket of the crossover; the first one from below (comm-bound above it) or
    the last one (comm-bound below it)."""
    xs = _geomspace(eq.lo, eq.hi, _GRID) if eq.hi > eq.lo else [eq.lo]
    gs = [eq.gap(x) for x in xs]
    pairs = list(zip(xs, xs[1:], gs, gs[1:]))
    if eq.direction > 0:
        found = [(a, b) for a, b, ga, gb in pairs if ga <= 0 < gb]
        if found:
            return found[0]
    else:
        found = [(a, b) for a, b, ga, gb in pairs if ga > 0 >= gb]
        if found:
            return found[-1]
    fmt = _fmt_x(eq)
    if all(g > 0 for g in gs):
        comm, comp = eq.evaluate(xs[0] if eq.direction > 0 else xs[-1])
        end = fmt(xs[0] if eq.direction > 0 else xs[-1])
        why = (f"communication exceeds compute everywhere from {fmt(xs[0])} to {fmt(xs[-1])} "
               f"(at {end}: {comm:.3g} s vs {comp:.3g} s): communication-bound throughout")
    else:
        side = xs[-1] if eq.direction > 0 else xs[0]
        comm, comp = eq.evaluate(side)
        why = (f"communication stays below compute everywhere from {fmt(xs[0])} to {fmt(xs[-1])} "
               f"(at {fmt(side)}: {comm:.3g} s vs {comp:.3g} s): compute-bound throughout")
    raise NoCrossoverError(f"no crossover for {what}: {why}")


def _bisect(eq: Equation, a: float, b: float) -> tuple[float, float]:
    ga = eq.gap(a)
    for _ in range(200):
        mid = math.sqrt(a * b)
        if b / a - 1 < 1e-15 or mid in (a, b):
            break
        gm = eq.gap(mid)
        if (gm > 0) == (ga > 0):
            a, ga = mid, gm
        else:
            b = mid
    return a, b


# --- the closed form ------------------------------------------------------------------------------


def _symbols(eq: Equation, numbers: dict):
    """One positive Symbol per finite, non-zero number (0 and infinity stay numbers; so do the
    derived keys, rebuilt from symbols), with symbol -> number and symbol -> LaTeX maps."""
    import sympy

    syms, subs, names = {}, {}, {}
    for key, value in numbers.items():
        v = float(value)
        if key in eq.derived:
            continue
        if v == 0 or not math.isfinite(v):
            syms[key] = sympy.oo if v == math.inf else sympy.Integer(0)
            continue
        sym = sympy.Symbol(key, positive=True)
        syms[key], subs[sym], names[sym] = sym, v, PARAMS.get(key, (key,))[0]
    for key, build in eq.derived.items():
        syms[key] = build(syms)
    return syms, subs, names


def _freeze(expr, point: dict):
    """``expr`` on the segment that holds ``point``: every Max / Min / Piecewise replaced by its
    branch there, every ceiling / floor by its integer (so the rest is a rational function)."""
    import sympy

    if expr.is_Atom:
        return expr
    if isinstance(expr, (sympy.Max, sympy.Min)):
        values = [float(a.subs(point)) for a in expr.args]
        pick = max if isinstance(expr, sympy.Max) else min
        return _freeze(expr.args[values.index(pick(values))], point)
    if isinstance(expr, sympy.Piecewise):
        for branch, cond in expr.args:
            if bool(cond.subs(point)):
                return _freeze(branch, point)
    if isinstance(expr, (sympy.ceiling, sympy.floor)):
        return sympy.Integer(int(expr.subs(point)))
    return expr.func(*[_freeze(a, point) for a in expr.args])


def _collected(coeff, order):
    import sympy

    return sympy.collect(sympy.expand(coeff), order, func=sympy.factor)


def _closed_form(eq: Equation, x_star: float):
    """(root, root LaTeX, equation LaTeX, root value, why there is none) on the root's segment."""
    import sympy

    numbers = eq.params_at(x_star)
    near = eq.params_at(x_star * (1 + 1e-7))
    for key, value in numbers.items():
        if key != eq.unknown and key not in eq.derived and not math.isclose(
                float(value), float(near[key]), rel_tol=1e-10, abs_tol=0.0):
            return None, None, None, None, (f"{key} varies with the unknown at the "
                                            f"crossover (links shared by the group): numeric root only")
    syms, subs, names = _symbols(eq, numbers)
    x = syms[eq.unknown]
    comm, comp = (_freeze(e if isinstance(e, sympy.Basic) else sympy.Float(e), subs)
                  for e in eq.terms(syms, eq.segment_at(x_star)))
    equation_latex = sympy.latex(sympy.Eq(comm, comp), symbol_names=names)
    gap = comm - comp
    poly = None
    for power in range(4):  # clear the unknown from the denominators
        expanded = sympy.expand(gap * x**power)
        if expanded.is_polynomial(x):
            poly = sympy.Poly(expanded, x)
            break
    if poly is None or not 1 <= poly.degree() <= 2:
        return None, None, equation_latex, None, "the equation is not a polynomial of degree 1 or 2 in the unknown"
    coeffs = poly.all_coeffs()  # highest power first
    order = sorted((s for s in subs if s != x), key=lambda s: (PARAMS.get(str(s), ("", "1"))[1] != "B", str(s)))
    xl = names[x]
    if poly.degree() == 1:
        a1, a0 = coeffs
        roots = [(-a0 / a1, None)]
    else:
        a2, a1, a0 = coeffs
        disc = sympy.sqrt(a1**2 - 4 * a2 * a0)
        roots = [((-a1 + disc) / (2 * a2), "+"), ((-a1 - disc) / (2 * a2), "-")]
    best = None
    for root, sign in roots:
        value = complex(sympy.N(root.subs(subs), 30))
        if abs(value.imag) > 1e-9 * abs(value) or value.real <= 0:
            continue
        if best is None or abs(value.real - x_star) < abs(best[2] - x_star):
            best = (root, sign, value.real)
    if best is None:
        return None, None, equation_latex, None, "the closed form has no positive real root"
    root, sign, value = best
    if sign is None:
        latex = f"{xl}^{{*}} = {sympy.latex(sympy.factor(root), symbol_names=names)}"
    else:
        parts = ", \\quad ".join(f"a_{2 - i} = {sympy.latex(_collected(c, order), symbol_names=names)}"
                                 for i, c in enumerate(coeffs))
        latex = (f"{xl}^{{*}} = \\frac{{-a_1 {sign} \\sqrt{{a_1^2 - 4 a_2 a_0}}}}{{2 a_2}}, \\quad {parts}")
    return root, latex, equation_latex, value, None


# --- the full prediction around the crossover ------------------------------------------------------


def _plan_at(pt: Point, scheme: str, solve_for: str, x: int):
    """The operating plan with the unknown set to the integer ``x`` (None when x is not valid)."""
    from perfmodel.plan import resolve

    plan = pt.plan
    if solve_for == "devices":
        if scheme == "dp":  # strong scaling: the plan's micro-batch while a rank's share allows it
            dp = x // (plan.tp * plan.pp)
            if dp * plan.tp * plan.pp != x or plan.global_batch % dp:
                return None
            new = plan.replace(devices=x, dp=dp, micro_batch=min(plan.micro_batch, plan.global_batch // dp))
        elif scheme == "tp":
            new = plan.replace(tp=x, devices=x * plan.dp * plan.pp)
        else:
            new = plan.replace(pp=x, devices=plan.tp * plan.dp * x)
    else:  # micro-batch: dp and tp keep the micro-batches per step, pp keeps the global batch
        gb = plan.global_batch if scheme == "pp" else x * plan.dp * plan.n_microbatches
        new = plan.replace(micro_batch=x, global_batch=gb)
    try:
        return resolve(new, pt.model, pt.system)
    except PlanError:
        return None


def _divisors(n: int) -> list[int]:
    small = [d for d in range(1, int(math.isqrt(n)) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def valid_values(pt: Point, scheme: str, solve_for: str, hi: float) -> list[int]:
    """Integer values of the unknown to try with the full prediction (each still checked by
    ``plan.resolve``)."""
    plan = pt.plan
    if solve_for == "devices":
        if scheme == "dp":
            q = plan.tp * plan.pp
            return [q * d for d in _divisors(plan.global_batch) if q * d <= hi]
        if scheme == "tp":
            return [d for d in _divisors(pt.model.n_heads) if d <= hi]
        return _divisors(pt.model.n_layers)
    if scheme == "pp":
        return _divisors(plan.global_batch // plan.dp)
    return list(range(1, 129)) + [2**i for i in range(8, 21)]


def communication_bound(prediction, scheme: str) -> bool:
    """The full prediction's verdict for ``scheme``: its bound, or for pp whether the
    point-to-point time and the bubble exceed the compute (the bubble is idle time, not
    communication, so ``bound`` never names it)."""
    if scheme != "pp":
        return prediction.bound == "communication"
    b = prediction.breakdown_s
    return b["pp_comm"] + b["pipeline_bubble"] > b["compute"] + b["recompute"]


def _integer_value(pt: Point, scheme: str, solve_for: str, eq: Equation) -> int | None:
    from perfmodel.predict import predict

    if solve_for == "bandwidth":
        return None
    hits = []
    for x in valid_values(pt, scheme, solve_for, eq.hi):
        plan = _plan_at(pt, scheme, solve_for, x)
        if plan is not None and communication_bound(predict(pt.model, pt.system, plan), scheme):
            hits.append(x)
    if not hits:
        return None
    return hits[0] if eq.direction > 0 else hits[-1]


# --- sensitivity ------------------------------------------------------------------------------------


def scaled_system(system, level: str, bandwidth: float = 1.0, latency: float = 1.0):
    """``system`` with the links of ``level`` (``"fabric"`` or ``"network"``) ``bandwidth`` times
    as fast and ``latency`` times as slow (a PCIe tree's uplinks and root complex too)."""
    def link(lk):
        return replace(lk, bandwidth=lk.bandwidth * bandwidth, latency=lk.latency * latency)

    if level == "network":
        if system.network is None:
            return system
        return replace(system, network=replace(system.network, link=link(system.network.link)))
    fab = system.fabric
    if fab.link is None:
        return system
    changes = {"link": link(fab.link)}
    if fab.kind == "pcie-tree":
        changes.update(switch_uplink=link(fab.switch_uplink), root_bandwidth=fab.root_bandwidth * bandwidth)
    return replace(system, fabric=replace(fab, **changes))


def sensitivity(model, system, plan, level: str, h: float = 1e-3) -> dict:
    """Elasticities of the predicted step time T to the bandwidth and to the latency of
    ``level``'s links at ``plan``: d ln T / d ln beta (<= 0) and d ln T / d ln alpha (>= 0), by
    central differences of ``predict``."""
    from perfmodel.predict import predict

    base = predict(model, system, plan).step_time_s

    def elasticity(name):
        up = predict(model, scaled_system(system, level, **{name: 1 + h}), plan).step_time_s
        down = predict(model, scaled_system(system, level, **{name: 1 - h}), plan).step_time_s
        return (up - down) / (2 * h * base)

    return {"level": level, "bandwidth": elasticity("bandwidth"), "latency": elasticity("latency")}


# --- the public function ----------------------------------------------------------------------------


def _normalise(scheme: str, solve_for: str) -> tuple[str, str]:
    solve_for = str(solve_for).replace("_", "-")
    if scheme not in SCHEMES:
        raise UnknownNameError(f"unknown scheme '{scheme}'{did_you_mean(str(scheme), SCHEMES)} "
                               f"(expected one of {', '.join(SCHEMES)})")
    if solve_for not in SOLVE_FOR:
        raise UnknownNameError(f"unknown solve-for '{solve_for}'{did_you_mean(solve_for, SOLVE_FOR)} "
                               f"(expected one of {', '.join(SOLVE_FOR)})")
    return scheme, solve_for


def _jump_note(eq: Equation, a: float, b: float, at: float) -> str:
    before, after = eq.params_at(a), eq.params_at(b)
    changed = [k for k in after if k != eq.unknown and k in before
               and not math.isclose(float(before[k]), float(after[k]), rel_tol=1e-9)]
    what = ", ".join(changed) if changed else "a hardware level"
    return (f"communication jumps at {_fmt_x(eq)(at)} ({what} change there): the crossover is that jump, "
            f"and t_comm > t_compute on its far side; no closed form")


class _Recorder(dict):
    """A dict that remembers which keys were read."""

    def __init__(self, *args):
        super().__init__(*args)
        self.read: set[str] = set()

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)


def _used(eq: Equation, x: float) -> dict:
    """The parameters the equation reads at ``x`` (and the numbers they have there)."""
    numbers = _Recorder(eq.params_at(x))
    eq.terms(numbers, eq.segment_at(x))
    keys = numbers.read | ({"B", "eta"} if eq.derived else set())
    return {k: v for k, v in dict(numbers).items() if k in keys and k not in eq.derived}


def find_crossover(model, system, scheme: str, solve_for: str, plan=None, **plan_fields) -> Crossover:
    """Where ``scheme`` (dp | tp | pp) turns communication-bound as ``solve_for`` (devices |
    bandwidth | micro-batch) varies around ``plan`` (resolved against model and system; keywords
    replace plan fields; a plan without a global batch gets the model family's published one).
    Raises :class:`NoCrossoverError` when there is none in range.

    >>> c = find_crossover("gpt2-1.5b", "dgx-h100", "dp", "devices")
    >>> c.unit, c.direction, abs(c.t_comm_s / c.t_compute_s - 1) < 1e-3
    ('devices', 'communication-bound above', True)
    """
    from perfmodel.plan import Plan
    from perfmodel.predict import predict
    from perfmodel.specs.registry import load_system
    from perfmodel.workloads import load_model

    scheme, solve_for = _normalise(scheme, solve_for)
    if not hasattr(model, "n_params"):
        model = load_model(model)
    if isinstance(system, str):
        system = load_system(system)
    plan = (plan or Plan()).replace(**plan_fields) if plan_fields else (plan or Plan())
    if scheme != "dp" and not hasattr(model, "n_heads"):
        raise PlanError(f"{model.name} is not a transformer: only the dp crossover is modelled for it")
    pt = point(model, system, plan)
    eq = equation(pt, scheme, solve_for)
    a, b = _bracket(eq, f"{scheme} in {solve_for} for {model.name} on {system.name}")
    a, b = _bisect(eq, a, b)
    notes = []
    value = math.sqrt(a * b)
    comm, comp = eq.evaluate(value)
    jump = abs(comm - comp) > 1e-6 * max(comm, comp)
    root = latex = equation_latex = symbolic = None
    if jump:
        value = b if eq.direction > 0 else a  # the communication-bound side
        if eq.unit == "devices" and abs(value - round(value)) < 1e-6 * value:
            value = float(round(value))
        comm, comp = eq.evaluate(value * (1 + 1e-12) if eq.direction > 0 else value)
        notes.append(_jump_note(eq, a, b, value))
    else:
        root, latex, equation_latex, symbolic, why = _closed_form(eq, value)
        if why:
            notes.append(why)
        if symbolic is not None and abs(symbolic - value) > AGREEMENT * value:
            notes.append(f"numeric root {value:.9g} and closed form {symbolic:.9g} disagree")
    integer = _integer_value(pt, scheme, solve_for, eq)
    if integer is None and solve_for != "bandwidth":
        notes.append(f"no valid integer {solve_for} in range makes the full prediction communication-bound")
    if scheme == "dp" and solve_for == "devices":
        most = pt.plan.global_batch * pt.plan.tp * pt.plan.pp
        if value > most:
            notes.append(f"beyond {most} devices, the most a global batch of {pt.plan.global_batch} allows "
                         f"(one sample per data-parallel rank): every realisable count is compute-bound")
    op = predict(model, system, pt.plan)
    op_comm, op_comp = eq.evaluate(eq.x0)
    operating = {"x": eq.x0, "plan": MappingProxyType(asdict(pt.plan)), "step_time_s": op.step_time_s,
                 "bound": op.bound, "t_comm_s": op_comm, "t_compute_s": op_comp,
                 "breakdown_s": MappingProxyType(dict(op.breakdown_s))}
    parameters = {}
    for key, number in _used(eq, value).items():
        symbol, unit, meaning = PARAMS.get(key, (key, "", ""))
        parameters[key] = MappingProxyType({"symbol": symbol, "value": float(number), "unit": unit,
                                            "meaning": meaning})
    return Crossover(
        model=model.name, system=system.name, scheme=scheme, solve_for=solve_for, value=float(value),
        unit=eq.unit, direction="communication-bound " + ("above" if eq.direction > 0 else "below"),
        t_compute_s=comp, t_comm_s=comm, scope=eq.scope, numeric_value=float(value), symbolic_value=symbolic,
        closed_form_latex=latex, equation_latex=equation_latex, integer_value=integer, at_discontinuity=jump,
        sensitivity=MappingProxyType(sensitivity(model, system, pt.plan, eq.level)),
        operating_point=MappingProxyType(operating), parameters=MappingProxyType(parameters),
        notes=tuple(notes), closed_form=root, equation=eq, point=pt)
