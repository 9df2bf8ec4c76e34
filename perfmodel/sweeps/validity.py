r"""The rules of :func:`perfmodel.plan.resolve` (the table :data:`perfmodel.plan.RULES`) on the arrays
of one block of a sweep.

Each rule gives an array of reason codes (-1 where the configuration passes), computed over the
keys it depends on only; :func:`first_of` keeps, elementwise, the first failure in
``plan.RULES``'s order, so a refused row gets the message that ``plan.resolve`` would raise.
numpy is imported when a check runs.
"""

from __future__ import annotations

from perfmodel.plan import RULES, RuleContext

__all__ = ["Reasons", "first_of", "check_stage", "derive", "choice_checks", "zero_check", "stack_check", "fixed_refusal"]


class Reasons:
    """Messages of failed checks, numbered in order of first appearance within one block."""

    def __init__(self):
        self.messages: dict[str, int] = {}

    def flag(self, mask, fmt, *params):
        """Codes (-1 where ``mask`` is False) of the messages ``fmt(*params)`` where it is True."""
        import numpy as np

        mask = np.asarray(mask)
        if not mask.any():
            return None
        if not params:
            return np.full(mask.shape, -1, dtype=np.int32) + np.where(mask, self.code(fmt()) + 1, 0)
        # at least 1-d: with no numeric grid key every value is a 0-d array, and np.nonzero
        # refuses those; the result is reshaped back to the broadcast shape
        shape = np.broadcast_shapes(mask.shape, *[np.shape(p) for p in params])
        arrays = [np.atleast_1d(a) for a in np.broadcast_arrays(mask, *[np.asarray(p) for p in params])]
        where = np.nonzero(arrays[0])
        codes = np.full(arrays[0].shape, -1, dtype=np.int32)
        vals = np.stack([a[where] for a in arrays[1:]], axis=1)
        uniq, inverse = np.unique(vals, axis=0, return_inverse=True)
        lut = np.array([self.code(fmt(*(int(x) for x in row))) for row in uniq], dtype=np.int32)
        codes[where] = lut[inverse.reshape(-1)]
        return codes.reshape(shape)

    def code(self, message: str) -> int:
        return self.messages.setdefault(message, len(self.messages))


def first_of(a, b):
    """Elementwise the first failure: a's code where a failed, else b's."""
    import numpy as np

    if a is None:
        return b
    if b is None:
        return a
    return np.where(a >= 0, a, b)


def _context(model, system, choice: dict, num: dict) -> RuleContext:
    given = frozenset(k for k in ("devices", "dp", "global_batch") if num[k] is not None)
    return RuleContext(model, system, choice.get("schedule", "1f1b"), choice.get("sequence_parallel", False),
                       choice.get("zero", 0), choice.get("grad_sync", "allreduce"), given, choice.get("shard_group"))


def check_stage(stage: str, ctx: RuleContext, n: dict, reasons: Reasons):
    """Reason codes of the first failing rule of ``stage`` (plan.RULES, in order) per row, or None.

    A NaN number (a dp or a micro-batch count that is not whole, refused by an earlier rule) is 0
    in the arithmetic and never fails a rule that names it, so no message is made of a NaN."""
    import numpy as np

    out = None
    for rule in RULES:
        if rule.stage != stage or not rule.applies(ctx):
            continue
        ok = [np.isfinite(n[a]) for a in rule.args]
        values = {k: (np.where(np.isfinite(v), v, 0) if isinstance(v, np.ndarray) else v) for k, v in n.items()}
        mask = rule.fails(ctx, values)
        for finite in ok:
            mask = mask & finite
        params = [np.where(finite, values[a], 0) for a, finite in zip(rule.args, ok)]
        out = first_of(out, reasons.flag(mask, lambda *xs, r=rule: r.message(ctx, *xs), *params))
    return out


def derive(num: dict, model, system, reasons: Reasons):
    """Devices, dp, global batch, micro-batches (NaN where not whole) and the failures of
    plan.RULES that numbers alone decide (stage ``numbers``, then ``model``)."""
    import numpy as np

    tp, cp, pp, mb = num["tp"], num["cp"], num["pp"], num["micro_batch"]
    devices, dp, gb = num["devices"], num["dp"], num["global_batch"]
    if dp is None and devices is None:
        dp = np.float64(1.0)
    elif dp is None:
        dp = np.where(np.mod(devices, tp * cp * pp) != 0, np.nan, devices / (tp * cp * pp))
    if devices is None:
        devices = tp * cp * pp * dp
    ok_dp = np.isfinite(dp)
    mbdp = mb * dp
    if gb is None:
        gb = mbdp
        m = np.where(ok_dp, 1.0, np.nan) + 0 * mb
    else:
        m = np.where((np.mod(gb, mbdp) != 0) & ok_dp, np.nan, gb / mbdp)
    seq = num["seq"] if num["seq"] is not None else np.float64(getattr(model, "seq_len", 1))
    n = {"tp": tp, "cp": cp, "pp": pp, "dp": dp, "ep": num["ep"], "devices": devices, "micro_batch": mb, "global_batch": gb,
         "n_microbatches": m, "virtual_stages": num["virtual_stages"], "seq": seq}
    ctx = _context(model, system, {}, num)
    pre, post = check_stage("numbers", ctx, n, reasons), check_stage("model", ctx, n, reasons)
    return {"devices": devices, "dp": dp, "global_batch": gb, "n_microbatches": m, "numbers": n}, pre, post


def choice_checks(choice: dict, num: dict, derived: dict, reasons: Reasons, cache: dict, model=None):
    """plan.RULES of stage ``choice`` (schedule, sequence parallelism), once per distinct choice (the
    block's ``model`` fixed)."""
    key = (choice["schedule"], choice["sequence_parallel"], choice.get("shard_group"))
    if key not in cache:
        cache[key] = check_stage("choice", _context(model, None, choice, num), derived["numbers"], reasons)
    return cache[key]


def zero_check(choice, reasons):
    """plan.RULES of stage ``zero`` (ZeRO with a gradient sync other than all-reduce)."""
    ctx = _context(None, None, choice, {"devices": None, "dp": None, "global_batch": None})
    return check_stage("zero", ctx, {}, reasons)


def stack_check(choice: dict, system, num: dict, reasons: Reasons, model=None):
    """What the row's software stack cannot run (:func:`perfmodel.specs.stack.refusals`: ZeRO
    stages, ZeRO with pipelining, dtypes, context parallelism), with the message ``predict`` raises."""
    import numpy as np

    from perfmodel.specs.stack import default_stack, load_stack

    name = choice.get("stack") or default_stack(system.device, model)[0]
    out = None
    shape = np.broadcast_shapes(np.shape(num["pp"]), np.shape(num["cp"]), np.shape(num["ep"]))
    for mask, message in refusals_of(load_stack(name), choice, num["pp"], num["cp"], num["ep"]):
        out = first_of(out, reasons.flag(np.asarray(mask) & np.ones(shape, dtype=bool),
                                         lambda m=message: m))
    if choice.get("offload", "none") != "none":  # a host link and host CPU the offload needs
        from perfmodel.prediction.offload import offload_refusal

        why = offload_refusal(choice["offload"], system)
        if why:
            out = first_of(out, reasons.flag(np.ones(np.shape(num["pp"]), dtype=bool), lambda: why))
    return out


def refusals_of(stack, choice: dict, pp, cp=1, ep=1):
    from perfmodel.specs.stack import refusals

    return refusals(stack, choice.get("zero", 0), choice.get("dtype", "bf16"), pp, cp, offload=choice.get("offload", "none"),
                    hybrid=choice.get("shard_group") is not None, ep=ep)


def fixed_refusal(model, system, fixed: dict) -> str | None:
    """The reason every plan of a search is refused for by what the caller fixed alone, in the order
    ``predict`` checks (the model's rules on a fixed ep, cp or seq; then what the stack runs and the
    host an offload needs, as :func:`stack_check` finds them for a sweep's rows), or None:
    ``optimize`` names it instead of the reasons that are merely most frequent over the searched
    fields. A refusal by a stack the caller did not fix says it was the default."""
    from perfmodel.specs.capabilities import with_default_advice
    from perfmodel.specs.stack import default_stack, load_stack

    n = {"ep": fixed.get("ep", 1), "cp": fixed.get("cp", 1), "seq": fixed.get("seq", getattr(model, "seq_len", 1))}
    if not hasattr(model, "n_heads"):  # a search over a CNN / MLP keeps tp = pp = 1 (search_space)
        n.update(tp=fixed.get("tp", 1), pp=fixed.get("pp", 1))
    ctx = RuleContext(model, system, "1f1b", False, 0, "allreduce", frozenset())
    for rule in RULES:
        if rule.stage != "model" or not set(rule.args) <= set(n) or not rule.applies(ctx):
            continue
        try:
            failed = bool(rule.fails(ctx, n))
        except KeyError:  # the rule also reads a searched number (tp, pp, dp, ...)
            continue
        if failed:
            return rule.message(ctx, *(n[a] for a in rule.args))
    stack = load_stack(fixed.get("stack") or default_stack(system.device, model)[0])
    pp, offload = fixed.get("pp", 1), fixed.get("offload", "none")
    if "zero" not in fixed:  # a ZeRO stage the search tries: one the stack runs (>= 1 under offload)
        runs = [z for z in (stack.capabilities.zero_with_pp if pp > 1 else stack.capabilities.zero)
                if z >= 1 or offload == "none"]
        fixed = {**fixed, "zero": runs[0] if runs else 0}
    for mask, reason in refusals_of(stack, fixed, pp, fixed.get("cp", 1), fixed.get("ep", 1)):
        if mask:
            return reason if fixed.get("stack") else with_default_advice(reason, stack.name)
    if offload != "none":  # a host link and host CPU the offload needs
        from perfmodel.prediction.offload import offload_refusal

        return offload_refusal(offload, system)
    return None
