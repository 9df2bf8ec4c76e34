r"""The fastest parallel plans of a model on N devices: every valid plan, swept at once.

    >>> import perfmodel as pm
    >>> best = pm.optimize("gpt2-124m", "dgx-a100", devices=8, global_batch=64, top=3)
    >>> len(best.plans), best.evaluated > 1000, best.best.devices
    (3, True, 8)

The search space is the cartesian product of

* tensor parallelism: the divisors of gcd(devices, heads, kv-heads) — a TP degree must divide both;
* pipeline stages: the divisors of gcd(devices, layers);
* data parallelism: derived, devices / (tp x pp);
* micro-batch: the divisors of the global batch;
* schedule: GPipe and 1F1B with one model chunk per device, and the interleaved schedule with
  every virtual-stage count v >= 2 that divides the layers (with one pipeline stage GPipe and 1F1B
  are the same plan, listed once, as 1F1B);
* recompute (none, selective, full), sequence parallelism (off, on), ZeRO stage (0-3) and
  overlap of the gradient sync with the backward pass (on, off).

Any of these given as a keyword (``recompute="selective"``) is fixed instead of searched, and
other plan fields (dtype, stack, optimizer, grad_sync, seq) may be fixed the same way. The
whole space goes through :func:`perfmodel.sweeps.evaluate` (numpy, one call per categorical
combination); configurations ``plan.resolve`` refuses are counted in ``evaluated`` and dropped,
and so are those that do not fit in device memory. The rest are ranked by step time, then by
memory per device (on a tie the plan that needs less memory wins, then the simpler one: the
order of the lists above).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

from perfmodel.errors import PlanError
from perfmodel.plan import RECOMPUTE, Plan
from perfmodel.prediction.result import BREAKDOWN_KEYS, MEMORY_KEYS

__all__ = ["optimize", "Optimum", "search_space"]

SEARCHED = ("tp", "pp", "micro_batch", "schedule", "virtual_stages", "recompute", "sequence_parallel", "zero",
            "overlap", "ep")


def _divisors(n: int) -> list[int]:
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def search_space(model, devices: int, global_batch: int, fixed: dict | None = None) -> list[dict]:
    """The grids (one per schedule family) whose union is every plan :func:`optimize` considers."""
    from perfmodel.workloads.transformer import TransformerModel

    fixed = fixed or {}
    if isinstance(model, TransformerModel):
        # tp divides the heads and is a divisor or a multiple of the key/value heads (plan.RULES)
        g = model.n_kv_heads or model.n_heads
        tp = [t for t in _divisors(math.gcd(devices, model.n_heads)) if g % t == 0 or t % g == 0]
        pp = _divisors(math.gcd(devices, model.n_layers))
        chunks = [v for v in _divisors(model.n_layers) if v >= 2]
        base = {"tp": tp, "pp": pp, "micro_batch": _divisors(global_batch), "recompute": list(RECOMPUTE),
                "sequence_parallel": [False, True], "zero": [0, 1, 2, 3], "overlap": [True, False]}
        if getattr(model, "is_moe", False):  # expert parallelism: divisors of the experts (rules: of dp too)
            base["ep"] = _divisors(math.gcd(devices, model.n_experts))
        families = [(["gpipe", "1f1b"], [1]), (["interleaved"], chunks)]
        if "schedule" in fixed:
            families = [([s], v) for schedules, v in families for s in schedules if s == fixed["schedule"]]
        if "virtual_stages" in fixed:  # one grid: every remaining schedule with that chunk count
            families = [([s for schedules, _ in families for s in schedules], [fixed["virtual_stages"]])]
        grids = [dict(base, schedule=schedules, virtual_stages=v) for schedules, v in families]
    else:  # data parallelism only (perfmodel.plan: tp = pp = 1 for non-transformers)
        grids = [{"micro_batch": _divisors(global_batch), "zero": [0, 1, 2, 3], "overlap": [True, False]}]
    return [{k: v for k, v in grid.items() if k not in fixed} for grid in grids if grid]


@dataclass(frozen=True)
class Optimum:
    """The top plans of a search, best first, and how many configurations were evaluated."""

    model: str
    system: str
    devices: int
    global_batch: int
    evaluated: int  # configurations of the search space (valid or not)
    n_valid: int  # ... that plan.resolve accepts
    n_fit: int  # ... that also fit in device memory
    rows: tuple[dict, ...]  # the top plans as flat rows (plan fields and sweep columns)
    elapsed_s: float
    notes: tuple[str, ...] = ()  # caveats of the whole search (GEMM rates at a datasheet peak)

    @property
    def plans(self) -> tuple[Plan, ...]:
        fields = Plan.__dataclass_fields__
        return tuple(Plan(**{k: r[k] for k in fields}) for r in self.rows)

    @property
    def best(self) -> Plan | None:
        return self.plans[0] if self.rows else None

    @property
    def best_step_time_s(self) -> float | None:
        return self.rows[0]["step_time_s"] if self.rows else None

    def to_dict(self) -> dict:
        """``{"plans": [...], "evaluated": N, ...}``: each plan as ``predict --format json`` shows it."""
        plans = []
        for rank, (row, plan) in enumerate(zip(self.rows, self.plans), 1):
            plans.append({
                "rank": rank, "plan": asdict(plan), "step_time_s": row["step_time_s"],
                "breakdown_s": {k: row[f"breakdown_{k}_s"] for k in BREAKDOWN_KEYS},
                "comm_total_s": row["comm_total_s"], "bound": row["bound"],
                "memory_bytes_per_device": {k: row[f"memory_{k}_bytes"] for k in MEMORY_KEYS},
                "fits_in_memory": row["fits_in_memory"], "mfu": row["mfu"],
                **{k: row[k] for k in ("tokens_per_s", "samples_per_s") if k in row}})
        for i, plan in enumerate(plans):
            plan["explanation"] = self.explanation(i)
        return {"model": self.model, "system": self.system, "devices": self.devices,
                "global_batch": self.global_batch, "plans": plans, "evaluated": self.evaluated,
                "valid": self.n_valid, "fit": self.n_fit, "elapsed_s": self.elapsed_s, "notes": list(self.notes)}

    def to_rows(self) -> list[dict]:
        """One flat CSV row per plan: rank, the plan's fields, the results, ``breakdown_<part>_s``,
        ``memory_<part>_bytes`` and ``notes`` (the search's, "; "-joined, as predict's CSV has them)."""
        rows = []
        for plan in self.to_dict()["plans"]:
            nested = ("rank", "plan", "breakdown_s", "memory_bytes_per_device")
            row = {"rank": plan["rank"], **plan["plan"], **{k: v for k, v in plan.items() if k not in nested}}
            row.update({f"breakdown_{k}_s": v for k, v in plan["breakdown_s"].items()})
            row.update({f"memory_{k}_bytes": v for k, v in plan["memory_bytes_per_device"].items()})
            row["notes"] = "; ".join(self.notes)
            rows.append(row)
        return rows

    def explanation(self, i: int) -> str:
        """What limits plan ``i`` (0 = the best): where its step goes beyond compute, its memory, and
        for a runner-up what costs it more than the best plan."""
        from perfmodel.units import format_quantity as q

        row = self.rows[i]
        step = row["step_time_s"]
        parts = {k: row[f"breakdown_{k}_s"] for k in BREAKDOWN_KEYS if k != "compute"}
        top = sorted(((v, k) for k, v in parts.items() if v > 0), reverse=True)[:2]
        costs = ", ".join(f"{k} {v / step * 100:.1f} %" for v, k in top) or "nothing"
        text = (f"#{i + 1}: {q(step, 'time')}; compute {row['breakdown_compute_s'] / step * 100:.1f} %, then "
                f"{costs}; {q(row['memory_total_bytes'], 'bytes')} per device; {row['bound']}-bound")
        if i > 0:
            best = self.rows[0]
            more = max(BREAKDOWN_KEYS, key=lambda k: row[f"breakdown_{k}_s"] - best[f"breakdown_{k}_s"])
            text += (f"; {q(step - best['step_time_s'], 'time')} slower than #1, most of it "
                     f"{more} (+{q(row[f'breakdown_{more}_s'] - best[f'breakdown_{more}_s'], 'time')})")
        return text

    def to_frame(self):
        """The top plans as a pandas DataFrame (one row each, sweep columns)."""
        import pandas as pd

        return pd.DataFrame(list(self.rows), index=pd.RangeIndex(1, len(self.rows) + 1, name="rank"))

    def __rich_console__(self, console, options):
        from perfmodel.tables import Column, packed
        from perfmodel.units import format_quantity

        plans, rows = self.plans, self.rows
        yes = ("no", "yes")
        cells = {"#": [str(i) for i in range(1, len(rows) + 1)], "tp": [str(p.tp) for p in plans],
                 "pp": [str(p.pp) for p in plans], "dp": [str(p.dp) for p in plans],
                 **({"ep": [str(p.ep) for p in plans]} if any(p.ep > 1 for p in plans) else {}),
                 "micro batch": [str(p.micro_batch) for p in plans], "schedule": [p.schedule for p in plans],
                 "v": [str(p.virtual_stages) for p in plans], "recompute": [p.recompute for p in plans],
                 "seq. par.": [yes[p.sequence_parallel] for p in plans], "ZeRO": [str(p.zero) for p in plans],
                 "overlap": [yes[p.overlap] for p in plans],
                 "step time": [format_quantity(r["step_time_s"], "time") for r in rows],
                 "MFU": [f"{r['mfu'] * 100:.1f} %" for r in rows],
                 "memory": [format_quantity(r["memory_total_bytes"], "bytes") for r in rows],
                 "bound": [r["bound"] for r in rows]}
        left = ("schedule", "recompute", "bound")
        columns = [Column(h, tuple(v), "left" if h in left else "right") for h, v in cells.items()]
        yield packed(columns, options.max_width,
                     title=f"fastest plans: {self.model} on {self.system}, {self.devices} devices, global batch "
                           f"{self.global_batch}",
                     caption=f"{self.evaluated:,} configurations evaluated, {self.n_valid:,} valid, {self.n_fit:,} "
                             f"fit in memory ({self.elapsed_s:.2f} s); stack "
                             f"{self.rows[0]['stack'] if self.rows else '-'}, {self.rows[0]['dtype'] if self.rows else '-'}")
        from rich.text import Text

        for i in range(min(2, len(rows))):  # what limits the best plan and its runner-up
            yield Text(self.explanation(i))
        for note in self.notes:
            yield Text(f"note: {note}")


def _why_rejected(rejected: dict[str, int], shown: int = 3) -> str:
    """``"; every one: <reason>"`` or ``"; most often: <reason> (N); ..."``: why no plan was valid."""
    if not rejected:
        return ""
    if len(rejected) == 1:
        return f"; every one: {next(iter(rejected))}"
    top = sorted(rejected.items(), key=lambda item: (-item[1], item[0]))
    more = f"; and {len(top) - shown} other reason{'s' if len(top) - shown > 1 else ''}" if len(top) > shown else ""
    return "; most often: " + "; ".join(f"{text} ({n:,})" for text, n in top[:shown]) + more


def _device_count_hint(devices: int) -> str:
    """``"; 5128 = 2^3 x 641, ..."``: where a large prime factor leaves tp x pp x dp few splits, the
    factorization and the nearest count below it with a large power of two (within 10 %); else ""."""
    n, factors, p = devices, {}, 2
    while p * p <= n:
        while n % p == 0:
            factors[p] = factors.get(p, 0) + 1
            n //= p
        p += 1
    if n > 1:
        factors[n] = factors.get(n, 0) + 1
    if not factors or max(factors) <= 16:  # 1 device has no prime factor
        return ""
    text = " x ".join(f"{q}^{e}" if e > 1 else str(q) for q, e in sorted(factors.items()))
    nearer = next((devices // 2**k * 2**k for k in range(12, 2, -1) if devices // 2**k * 2**k >= 0.9 * devices), None)
    also = f"; {nearer} devices split many more ways" if nearer and nearer != devices else ""
    return f"; {devices} = {text}: tp x pp x dp must multiply to it{also}"


def _capacity(system) -> str:
    from perfmodel.units import format_quantity

    capacity = getattr(getattr(system, "device", None), "memory_bytes", None)
    return f" (capacity {format_quantity(capacity, 'bytes')})" if isinstance(capacity, (int, float)) else ""


def _distinct(ev, rows):
    """``rows`` without the GPipe plans of one pipeline stage: with pp = 1 there is no pipeline, so
    GPipe and 1F1B are the same plan (same numbers); the 1F1B row (the Plan default) stands for both."""
    import numpy as np

    keys = ev.spec.keys
    if "schedule" not in keys or rows.size == 0:
        return rows
    pp = ev.key_column("pp", rows) if "pp" in keys else np.full(rows.size, dict(ev.spec.fixed).get("pp", 1))
    same = (ev.key_column("schedule", rows) == "gpipe") & (pp == 1)
    if "1f1b" not in ev.spec.values[keys.index("schedule")]:
        return rows
    return rows[~same]


def optimize(model, system, devices: int, global_batch: int, top: int = 5, *, engine: str = "local",
             scheduler=None, progress=False, **fixed) -> Optimum:
    """The ``top`` fastest plans of ``model`` on ``devices`` devices of ``system`` that fit in memory.

    ``fixed`` holds plan fields that are not searched (``dtype="fp16"``, ``recompute="selective"``,
    ``stack="pytorch-eager"``, ...). Raises PlanError when no plan is valid and fits. ``progress``: a
    progress bar on stderr (True or a :class:`~perfmodel.sweeps.progress.ProgressBar`), one line per grid.

    Long on purpose: the search space, the sweep, the filtering and the ranking are one pipeline whose counts the Optimum reports.
    """
    import numpy as np

    from perfmodel.sweeps.engines import evaluate, load_model_and_system
    from perfmodel.sweeps.progress import as_bar

    start = time.perf_counter()
    for name, value, hi in (("devices", devices, 10**7), ("global_batch", global_batch, 10**9), ("top", top, 10**4)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= hi:
            raise PlanError(f"{name}: expected an integer in [1, {hi}], got {value!r}")
    for name in ("devices", "global_batch", "dp"):
        if name in fixed:
            raise PlanError(f"'{name}' is set by optimize itself" + (" (devices / (tp x pp))" if name == "dp" else ""))
    model, system = load_model_and_system(model, system)
    grids = search_space(model, devices, global_batch, fixed)
    evaluated = n_valid = n_fit = 0
    candidates = []  # (step, memory, order, evaluation, row)
    rejected: dict[str, int] = {}  # why configurations were refused -> how many
    least = math.inf  # the least memory per device of a valid plan (B)
    with as_bar(progress) as bar:
        evs = [evaluate(model, system, grid, engine=engine, scheduler=scheduler, devices=devices,
                        global_batch=global_batch, progress=bar, **fixed) for grid in grids]
    for g, ev in enumerate(evs):
        a = ev.arrays
        valid = a["reason"] < 0
        ok = valid & a["fits_in_memory"]
        evaluated += ev.n_rows
        n_valid += int(valid.sum())
        n_fit += int(ok.sum())
        if not candidates:  # why nothing is left so far, for the error when nothing is left at the end
            if valid.any():
                least = min(least, float(a["memory_total_bytes"][valid].min()))
            for code, count in enumerate(np.bincount(a["reason"][~valid]).tolist()):
                if count:
                    rejected[ev.messages[code]] = rejected.get(ev.messages[code], 0) + count
        rows = _distinct(ev, np.flatnonzero(ok))
        if rows.size == 0:
            continue
        step, mem = a["step_time_s"][rows], a["memory_total_bytes"][rows]
        keep = rows[np.lexsort((rows, mem, step))[:top]]
        candidates += [(a["step_time_s"][i], a["memory_total_bytes"][i], g, int(i), ev) for i in keep]
    if not candidates:
        if n_valid == 0:
            from perfmodel.sweeps.validity import fixed_refusal

            fixed_why = fixed_refusal(model, system, fixed)
            why = "no valid plan"
            detail = f"; every one: {fixed_why}" if fixed_why else _why_rejected(rejected) + _device_count_hint(devices)
        else:
            from perfmodel.units import format_quantity

            why = "no valid plan fits in device memory"
            detail = (f"; {n_valid:,} valid, the smallest needs {format_quantity(least, 'bytes')} per device"
                      f"{_capacity(system)}")
        raise PlanError(f"{why} for {model.name} on {devices} devices of {system.name} with global batch "
                        f"{global_batch} ({evaluated:,} configurations evaluated{detail})")
    candidates.sort(key=lambda c: c[:4])
    rows = []
    for *_, i, ev in candidates[:top]:
        row = ev.row(i)
        row.update(devices=devices, global_batch=global_batch)
        for k, v in fixed.items():
            row.setdefault(k, v)
        row.setdefault("seq", getattr(model, "seq_len", None))
        row.setdefault("stack", ev.default_stack)  # the stack the rows ran: pytorch-eager for a CNN
        for k, f in Plan.__dataclass_fields__.items():
            row.setdefault(k, f.default)
        rows.append(row)
    return Optimum(model.name, system.name, devices, global_batch, evaluated, n_valid, n_fit, tuple(rows),
                   time.perf_counter() - start, _upper_bound_notes(system, rows))


def _upper_bound_notes(system, rows) -> tuple[str, ...]:
    """A note when the top plans' GEMMs run at the device's datasheet peak (no measured rate to
    derive them from), so their step times and MFU are upper bounds on speed, as ``predict`` says."""
    from perfmodel.prediction.kernels import gemm_model

    dtypes = sorted({str(r["dtype"]) for r in rows if r.get("dtype")})
    sources = [gemm_model(system.device, d).source for d in dtypes]
    return tuple(f"GEMM rates ({d}): {src}: the step times of these plans are lower bounds and their MFU upper bounds"
                 for d, src in zip(dtypes, sources) if "upper bound" in src)
