r"""The communication-bound crossover: the devices, bandwidth or micro-batch at which a scheme's
communication equals the compute it competes with.

``find_crossover(model, system, scheme, solve_for, plan)`` takes one equation per scheme, written
with the formulas (:mod:`perfmodel.crossover.equations`), with the numbers of the operating point
(the plan, resolved against model and system) for every symbol but the unknown:

* **dp** -- the whole gradient synchronisation of one step (ring, two-level ring, parameter server
  or delta-W broadcast over the dp ranks, with each level's alpha / beta as
  :mod:`perfmodel.prediction.hardware` gives them; plus the ZeRO-3 gathers) against the backward
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

The scan, the bisection and the closed form are in :mod:`perfmodel.crossover.solver`; the integer
check and the sensitivity, which run the full prediction, in :mod:`perfmodel.crossover.checks`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Mapping

from perfmodel.crossover.checks import (
    first_bound_integer,
    plan_at,
    scaled_system,
    sensitivity,
    something_to_communicate,
    valid_values,
)
from perfmodel.crossover.equations import PARAMS, Equation, Point, equation, point
from perfmodel.crossover.solver import (
    bisect_bracket,
    closed_form_root,
    geomspace,
    scan_bracket,
    unknown_formatter,
)
from perfmodel.errors import NoCrossoverError, PlanError, UnknownNameError, did_you_mean
from perfmodel.frozen import FrozenDict

__all__ = ["Crossover", "NoCrossoverError", "find_crossover", "sensitivity", "scaled_system", "SCHEMES", "SOLVE_FOR"]

SCHEMES = ("dp", "tp", "pp")
SOLVE_FOR = ("devices", "bandwidth", "micro-batch")
AGREEMENT = 1e-6  # numeric vs symbolic root, relative (issue 4)


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
    # the most the unknown can reach with this plan (devices: one sample per data-parallel rank; None:
    # no such bound) and what sets it; ``reachable`` False when the crossover lies beyond it
    reach_limit: float | None = None
    reach_why: str | None = None
    closed_form: object = field(default=None, compare=False, repr=False)
    equation: Equation | None = field(default=None, compare=False, repr=False)
    point: Point | None = field(default=None, compare=False, repr=False)

    @property
    def reachable(self) -> bool:
        """False when the crossover lies beyond what the plan can reach (``reach_limit``)."""
        return self.reach_limit is None or self.value <= self.reach_limit

    def curve(self, xs) -> tuple[list[float], list[float]]:
        """(t_comm, t_compute) of the crossover equation at each x of ``xs`` (same scope)."""
        pairs = [self.equation.evaluate(float(x)) for x in xs]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    def sweep(self, n_bandwidths: int = 25) -> list[dict]:
        """The full prediction as the unknown varies around the operating point and the crossover:
        at the valid integers (devices, micro-batch) within 16x of them, or on a log grid of link
        bandwidths (one row per value: ``x``, ``step_time_s``, the step's parts, ``bound``)."""
        from perfmodel.prediction import predict

        pt, eq = self.point, self.equation
        lo, hi = min(self.value, eq.x0), max(self.value, eq.x0)
        rows = []
        if self.solve_for == "bandwidth":
            for x in geomspace(lo / 16, hi * 16, n_bandwidths):
                system = scaled_system(pt.system, eq.level, bandwidth=x / eq.x0)
                rows.append((x, predict(pt.model, system, pt.plan)))
        else:
            for x in valid_values(pt, self.scheme, self.solve_for, eq.hi):
                plan = plan_at(pt, self.scheme, self.solve_for, x) if lo / 16 <= x <= hi * 16 else None
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

    CSV_COLUMNS = ("model", "system", "scheme", "solve_for", "value", "unit", "t_compute_s", "t_comm_s",
                   "numeric_value", "symbolic_value", "integer_value", "at_discontinuity", "sensitivity_level",
                   "sensitivity_bandwidth", "sensitivity_latency", "closed_form_latex")

    def to_row(self) -> dict:
        """The flat CSV row of ``perfmodel crossover --format csv`` (:attr:`CSV_COLUMNS`)."""
        d = self.to_dict()
        row = {k: d.get(k) for k in self.CSV_COLUMNS}
        row.update({f"sensitivity_{k}": v for k, v in d["sensitivity"].items()})
        return row

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
            "notes": list(self.notes), "reachable": self.reachable, "reach_limit": self.reach_limit,
        }

    def _value_text(self, x: float) -> str:
        from perfmodel.units import format_quantity

        return format_quantity(x, "bandwidth") if self.unit == "B/s" else f"{x:.4g} {self.unit}"

    def summary_rows(self, symbolic: bool = False) -> list[tuple[str, str]]:
        from perfmodel.units import format_quantity

        sens = self.sensitivity
        headline = f"{self._value_text(self.value)} ({self.solve_for}; {self.direction})"
        if not self.reachable:
            headline = (f"not reached: would need {self._value_text(self.value)}; at most "
                        f"{self._value_text(self.reach_limit)} {self.reach_why} ({self.direction})")
        rows = [
            ("crossover", headline),
            ("t_comm = t_compute",
             f"{format_quantity(self.t_comm_s, 'time')} = {format_quantity(self.t_compute_s, 'time')}"),
            ("over", self.scope),
            ("integer check", "-" if self.solve_for == "bandwidth" else "none in range" if self.integer_value is None
             else f"{self.integer_value} {self.unit}: the full prediction is communication-bound"),
            ("operating point", f"{self._value_text(self.operating_point['x'])}: step "
             f"{format_quantity(self.operating_point['step_time_s'], 'time')}, {self.operating_point['bound']}-bound "
             f"(stack {self.operating_point['plan']['stack']})" + (
                 "" if self.operating_point["fits_in_memory"] else
                 f"; does not fit in memory: {format_quantity(self.operating_point['memory_bytes_per_device'], 'bytes')}"
                 f" per device")),
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
    return (f"communication jumps at {unknown_formatter(eq)(at)} ({what} change there): the crossover is that jump, "
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

    Long on purpose: resolve, build the equation, bracket, bisect, the closed form, the integer check and the sensitivities are one sequence whose intermediate results the Crossover keeps.
    """
    from perfmodel.plan import Plan
    from perfmodel.prediction import predict
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
    something_to_communicate(pt, scheme, solve_for)
    eq = equation(pt, scheme, solve_for)
    a, b = scan_bracket(eq, f"{scheme} in {solve_for} for {model.name} on {system.name}")
    a, b = bisect_bracket(eq, a, b)
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
        root, latex, equation_latex, symbolic, why = closed_form_root(eq, value)
        if why:
            notes.append(why)
        if symbolic is not None and abs(symbolic - value) > AGREEMENT * value:
            notes.append(f"numeric root {value:.9g} and closed form {symbolic:.9g} disagree")
    integer = first_bound_integer(pt, scheme, solve_for, eq)
    if integer is None and solve_for != "bandwidth":
        notes.append(f"no valid integer {solve_for} in range makes the full prediction communication-bound")
    limit, why = _reach(pt, scheme, solve_for, eq, value, notes)
    chosen = _default_operating_point(pt, scheme, solve_for, plan, value, limit)
    if chosen is not None:  # no --devices: a meaningful operating point instead of 1 device
        return _at(model, system, scheme, solve_for, plan.replace(devices=chosen, global_batch=pt.plan.global_batch))
    op = predict(model, system, pt.plan)
    op_comm, op_comp = eq.evaluate(eq.x0)
    operating = {"x": eq.x0, "plan": FrozenDict(asdict(pt.plan)), "step_time_s": op.step_time_s,
                 "bound": op.bound, "t_comm_s": op_comm, "t_compute_s": op_comp,
                 "breakdown_s": FrozenDict(dict(op.breakdown_s)), "fits_in_memory": op.fits_in_memory,
                 "memory_bytes_per_device": op.memory_bytes_per_device["total"]}
    parameters = {}
    for key, number in _used(eq, value).items():
        symbol, unit, meaning = PARAMS.get(key, (key, "", ""))
        parameters[key] = FrozenDict({"symbol": symbol, "value": float(number), "unit": unit,
                                            "meaning": meaning})
    return Crossover(
        model=model.name, system=system.name, scheme=scheme, solve_for=solve_for, value=float(value),
        unit=eq.unit, direction="communication-bound " + ("above" if eq.direction > 0 else "below"),
        t_compute_s=comp, t_comm_s=comm, scope=eq.scope, numeric_value=float(value), symbolic_value=symbolic,
        closed_form_latex=latex, equation_latex=equation_latex, integer_value=integer, at_discontinuity=jump,
        sensitivity=FrozenDict(sensitivity(model, system, pt.plan, eq.level)),
        operating_point=FrozenDict(operating), parameters=FrozenDict(parameters),
        notes=tuple(notes), reach_limit=None if limit is None or eq.direction < 0 else float(limit),
        reach_why=why, closed_form=root, equation=eq, point=pt)


def _reach(pt: Point, scheme: str, solve_for: str, eq: Equation, value: float, notes: list):
    """:func:`reach_limit`, with a note appended when the crossover lies beyond it."""
    limit, why = reach_limit(pt, scheme, solve_for)
    if limit is not None and eq.direction > 0 and value > limit:
        notes.append(f"beyond {limit:g} {eq.unit}, the most {why}: every realisable value is on the "
                     f"compute-bound side")
    return limit, why


def _at(model, system, scheme: str, solve_for: str, plan) -> Crossover:
    """The crossover solved again at the chosen operating point, with a note saying it was chosen."""
    again = find_crossover(model, system, scheme, solve_for, plan)
    return replace(again, notes=again.notes + (
        f"operating point {plan.devices} devices, chosen (no --devices given): the largest valid count at or below "
        f"the crossover and the reach of the plan; --devices to set it",))


def reach_limit(pt: Point, scheme: str, solve_for: str) -> tuple[int | None, str | None]:
    """The largest value of the unknown the plan can take, and what sets it (None: unbounded here)."""
    plan, model = pt.plan, pt.model
    if solve_for == "devices":
        if scheme == "dp":
            return plan.global_batch * plan.tp * plan.pp, (f"with global batch {plan.global_batch} (one sample per "
                                                           f"data-parallel rank)")
        if scheme == "tp":
            return model.n_kv_heads, (f"with {model.n_kv_heads} key/value heads (beyond them Megatron-Core "
                                      f"all-gathers the QKV activations, which this equation leaves out)")
        return model.n_layers, f"with {model.n_layers} layers (one per stage)"
    if solve_for == "micro-batch" and scheme == "pp":
        return plan.global_batch // plan.dp, f"with {plan.global_batch // plan.dp} samples per pipeline"
    return None, None


def _default_operating_point(pt: Point, scheme, solve_for, plan, value: float, limit) -> int | None:
    """For a dp crossover in devices asked without a device count: the largest valid count at or below
    both the crossover and the plan's reach (None when the user gave one, or nothing better than 1)."""
    if scheme != "dp" or solve_for != "devices" or plan.devices is not None or plan.dp is not None:
        return None
    top = min(value, limit) if limit is not None else value
    counts = [x for x in valid_values(pt, scheme, solve_for, top) if x <= top and plan_at(pt, scheme, solve_for, x)]
    best = max(counts, default=None)
    return best if best is not None and best > pt.plan.devices else None
