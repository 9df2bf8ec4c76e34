r"""The result of a sweep: block arrays assembled into flat columns, and the DataFrame they become.

See :mod:`perfmodel.sweeps` for the columns.
"""

from __future__ import annotations

from dataclasses import dataclass

from perfmodel.prediction.result import BREAKDOWN_KEYS, MEMORY_KEYS
from perfmodel.sweeps.grid import (
    BOOL_KEYS,
    CHOICE_KEYS,
    DERIVED,
    NUMERIC_KEYS,
    GridSpec,
)

__all__ = ["Evaluation", "Assembler", "result_columns"]


def result_columns(throughput: str = "tokens_per_s") -> tuple[str, ...]:
    """The result columns of a sweep frame, after the grid keys and the derived plan numbers."""
    return ("step_time_s", *(f"breakdown_{k}_s" for k in BREAKDOWN_KEYS), "comm_total_s",
            *(f"memory_{k}_bytes" for k in MEMORY_KEYS), "fits_in_memory", "mfu", throughput, "bound", "reason")


@dataclass
class Evaluation:
    """Flat result arrays of a sweep (row-major over the grid) before they become a DataFrame."""

    spec: GridSpec
    arrays: dict
    messages: list[str]
    default_stack: str = ""  # the stack of rows where the grid names none (the system's default)

    @property
    def n_rows(self) -> int:
        return self.spec.n_rows

    def valid(self):
        return self.arrays["reason"] < 0

    def key_column(self, key: str, rows=None):
        """Values of grid key ``key`` per row (all rows, or the row indices ``rows``)."""
        import numpy as np

        i = self.spec.keys.index(key)
        shape = self.spec.shape
        if rows is None:
            s = [1] * len(shape)
            s[i] = shape[i]
            idx = np.broadcast_to(np.arange(shape[i]).reshape(s), shape).ravel()
        else:
            idx = np.unravel_index(rows, shape)[i]
        return np.asarray(self.spec.values[i], dtype=object if _is_text(key) else None)[idx]

    def row(self, i: int) -> dict:
        """One row as plain Python values (grid keys, derived numbers, results)."""
        import numpy as np

        out = {k: _py(self.key_column(k, np.array([i]))[0]) for k in self.spec.keys}
        for name, arr in self.arrays.items():
            v = arr[i]
            if name == "reason":
                out[name] = self.messages[v] if v >= 0 else None
            elif name == "bound":
                from perfmodel.prediction.step import BOUNDS

                out[name] = BOUNDS[v] if v >= 0 else None
            elif name in DERIVED:
                out[name] = int(v) if np.isfinite(v) and float(v).is_integer() else None
            else:
                out[name] = _py(v)
        return out

    def to_frame(self, rows=None):
        """The sweep as a pandas DataFrame (see the module docstring for its columns); ``rows``: only
        these row indices (an integer array, in that order), e.g. one block of a streamed write."""
        import numpy as np
        import pandas as pd

        from perfmodel.prediction.step import BOUNDS

        cols = {}
        shape = self.spec.shape
        for i, key in enumerate(self.spec.keys):
            n = shape[i]
            if rows is None:
                s = [1] * len(shape)
                s[i] = n
                idx = np.broadcast_to(np.arange(n, dtype=np.int8 if n < 128 else np.int32).reshape(s), shape).ravel()
            else:
                idx = np.unravel_index(rows, shape)[i].astype(np.int8 if n < 128 else np.int32)
            vals = self.spec.values[i]
            if _is_text(key):
                cols[key] = pd.Categorical.from_codes(idx, categories=list(vals))
            elif key == "shard_group":  # an integer, or missing where the whole dp group shards (None)
                ints = np.asarray([0 if v is None else v for v in vals], dtype=np.int64)
                cols[key] = pd.arrays.IntegerArray(ints[idx], np.asarray([v is None for v in vals])[idx])
            else:
                dtype = bool if key in BOOL_KEYS else (np.int64 if key in NUMERIC_KEYS or key == "zero" else float)
                cols[key] = np.asarray(vals, dtype=dtype)[idx]
        a = self.arrays if rows is None else {k: v[rows] for k, v in self.arrays.items()}
        for name in DERIVED:
            if name in a:
                v = a[name]
                bad = ~np.isfinite(v) | (v != np.floor(v))
                cols[name] = pd.arrays.IntegerArray(np.where(bad, 0, v).astype(np.int64), bad)
        throughput = "tokens_per_s" if "tokens_per_s" in a else "samples_per_s"
        for name in result_columns(throughput):
            if name == "bound":
                cols[name] = pd.Categorical.from_codes(a["bound"].astype(np.int8), categories=list(BOUNDS))
            elif name == "reason":
                cols[name] = pd.Categorical.from_codes(a["reason"], categories=self.messages)
            else:
                cols[name] = a[name]
        return pd.DataFrame(cols, copy=False)


def _is_text(key: str) -> bool:
    return key in CHOICE_KEYS or key == "stack"


def _py(v):
    import numpy as np

    return v.item() if isinstance(v, np.generic) else v


class Assembler:
    """Block results into grid-shaped arrays as they arrive (a block's own arrays are then freed);
    reasons numbered by their sorted text, so the result does not depend on the partition."""

    def __init__(self, spec: GridSpec):
        self.spec, self.arrays, self.index = spec, None, {}

    def add(self, block, res: dict) -> None:
        import numpy as np

        whole = block == tuple((0, n) for n in self.spec.shape)
        if self.arrays is None:
            self.arrays = {k: (v if whole else np.empty(self.spec.shape, dtype=v.dtype))
                           for k, v in res.items() if k != "messages"}
        lut = np.array([self.index.setdefault(m, len(self.index)) for m in res["messages"]] or [0], dtype=np.int32)
        sel = tuple(slice(a, b) for a, b in block)
        for k, target in self.arrays.items():
            if k == "reason":
                r = res[k]
                target[sel] = np.where(r >= 0, lut[np.maximum(r, 0)], -1)
            elif not whole:
                target[sel] = res[k]

    def finish(self) -> Evaluation:
        import numpy as np

        arrays, messages = self.arrays, list(self.index)
        if messages:
            order = sorted(range(len(messages)), key=messages.__getitem__)
            rank = np.empty(len(messages), dtype=np.int32)
            rank[order] = np.arange(len(messages), dtype=np.int32)
            reason = arrays["reason"]
            arrays["reason"] = np.where(reason >= 0, rank[np.maximum(reason, 0)], -1).astype(np.int32)
            messages = [messages[i] for i in order]
        return Evaluation(self.spec, {k: v.reshape(-1) for k, v in arrays.items()}, messages)
