r"""The rules of :func:`perfmodel.plan.resolve` on the arrays of one block of a sweep.

Each check gives an array of reason codes (-1 where the configuration passes), computed over the
keys it depends on only; :func:`first_of` keeps, elementwise, the first failure in
``plan.resolve``'s order, so a refused row gets the message that ``plan.resolve`` would raise.
numpy is imported when a check runs.
"""

from __future__ import annotations

__all__ = ["Reasons", "first_of", "derive", "choice_checks", "zero_check"]


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


def derive(num: dict, model, system, reasons: Reasons):
    """Devices, dp, global batch, micro-batches (NaN where not whole) and the failures of
    plan.resolve's checks that numbers alone decide, before and after the categorical ones."""
    import numpy as np

    tp, pp, mb, v = num["tp"], num["pp"], num["micro_batch"], num["virtual_stages"]
    devices, dp, gb = num["devices"], num["dp"], num["global_batch"]
    pre = None
    if dp is None and devices is None:
        dp = np.float64(1.0)
    elif dp is None:
        bad = np.mod(devices, tp * pp) != 0
        pre = reasons.flag(bad, lambda d, t, p: f"devices {d} is not divisible by tp x pp = {t} x {p} = {t * p}",
                           devices, tp, pp)
        dp = np.where(bad, np.nan, devices / (tp * pp))
    elif devices is not None:
        pre = reasons.flag(tp * pp * dp != devices,
                           lambda t, p, d, n: f"tp x pp x dp = {t} x {p} x {d} = {t * p * d}, but devices is {n}",
                           tp, pp, dp, devices)
    if devices is None:
        devices = tp * pp * dp
    ok_dp = np.isfinite(dp)
    # perfmodel.plan._check_system
    per_node = system.devices_per_node
    if system.network is None:
        s = "s" if per_node > 1 else ""
        pre = first_of(pre, reasons.flag(devices > per_node, lambda n: f"{system.name} has {per_node} device{s} and "
                                         f"no network; the plan needs {n}", devices))
    max_nodes = system.network.max_nodes if system.network is not None else 1
    if max_nodes is not None:
        cap = per_node * max_nodes
        pre = first_of(pre, reasons.flag(devices > cap, lambda n: f"{system.name} has at most {cap} devices; the plan "
                                         f"needs {n}", devices))
    pre = first_of(pre, reasons.flag((devices > per_node) & (np.mod(devices, per_node) != 0) & (tp > 1),
                                     lambda n: f"devices {n} is not a whole number of {per_node}-device nodes of "
                                     f"{system.name}", devices))
    mbdp = mb * dp
    if gb is None:
        gb = mbdp
        m = np.where(ok_dp, 1.0, np.nan) + 0 * mb
    else:
        bad = (np.mod(gb, mbdp) != 0) & ok_dp
        pre = first_of(pre, reasons.flag(bad, lambda g, b, d: f"global batch {g} is not divisible by micro-batch x dp "
                                         f"= {b} x {d} = {b * d}", gb, mb, np.where(ok_dp, dp, 0)))
        m = np.where(bad, np.nan, gb / mbdp)
    # perfmodel.plan._check_model
    post = None
    heads = getattr(model, "n_heads", None)
    if heads is not None:
        post = reasons.flag(np.mod(heads, tp) != 0, lambda t: f"tensor parallelism {t} does not divide the "
                            f"{heads} attention heads of {model.name}", tp)
        kv = model.n_kv_heads or heads
        post = first_of(post, reasons.flag(np.mod(kv, tp) != 0, lambda t: f"tensor parallelism {t} does not divide "
                                           f"the {kv} key/value heads of {model.name}", tp))
        layers = model.n_layers

        def layers_msg(p, w):
            what = f"pp x virtual stages = {p} x {w} = {p * w}" if w > 1 else f"pp = {p}"
            return f"{model.name} has {layers} layers, not divisible by {what}"

        post = first_of(post, reasons.flag(np.mod(layers, pp * v) != 0, layers_msg, pp, v))
        seq = num["seq"] if num["seq"] is not None else np.float64(getattr(model, "seq_len", 1))
        max_pos = getattr(model, "max_positions", None)
        if model.positions == "learned" and max_pos:
            post = first_of(post, reasons.flag(seq > max_pos, lambda q: f"seq {q} exceeds {model.name}'s {max_pos} "
                                               f"learned positions", seq))
    else:
        post = reasons.flag((tp > 1) | (pp > 1), lambda: f"{model.name} is not a transformer: only data "
                            f"parallelism is modelled for it (tp = pp = 1)")
    return {"devices": devices, "dp": dp, "global_batch": gb, "n_microbatches": m}, pre, post


def choice_checks(choice: dict, num: dict, derived: dict, reasons: Reasons, cache: dict):
    """plan.resolve's checks that depend on the categorical fields, in its order."""
    import numpy as np

    out = None
    schedule = choice["schedule"]
    if schedule != "interleaved":
        key = ("v", schedule)
        if key not in cache:
            cache[key] = reasons.flag(num["virtual_stages"] > 1, lambda w: f"virtual stages {w} need --schedule "
                                      f"interleaved (got {schedule})", num["virtual_stages"])
        out = cache[key]
    else:
        if "interleaved" not in cache:
            pp, m = num["pp"], derived["n_microbatches"]
            a = reasons.flag(pp < 2, lambda: "the interleaved schedule needs pp >= 2")
            ok = np.isfinite(m)
            mi = np.where(ok, m, 0)
            b = reasons.flag(ok & (np.mod(mi, pp) != 0), lambda k, p: f"the interleaved schedule needs the number "
                             f"of micro-batches ({k}) to be a multiple of pp ({p}) (Megatron-LM's constraint)", mi, pp)
            cache["interleaved"] = first_of(a, b)
        out = cache["interleaved"]
    if choice["sequence_parallel"]:
        if "sp" not in cache:
            cache["sp"] = reasons.flag(num["tp"] < 2, lambda: "sequence parallelism needs tp > 1")
        out = first_of(out, cache["sp"])
    return out


def zero_check(choice, reasons):
    if choice["zero"] and choice["grad_sync"] != "allreduce":
        return reasons.flag(True, lambda: f"ZeRO stage {choice['zero']} shards over data-parallel ranks and needs "
                            f"--grad-sync allreduce")
    return None
