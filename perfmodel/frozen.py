"""A read-only mapping that pickles and deep-copies (``types.MappingProxyType`` does neither).

Specs and results are frozen dataclasses; their mapping fields (peaks by dtype, sources, the
breakdown) use :class:`FrozenDict` so they cannot be changed in place, yet travel to Dask workers
and through ``copy.deepcopy`` like any other value.
"""

from __future__ import annotations

__all__ = ["FrozenDict"]


class FrozenDict(dict):
    """A ``dict`` whose mutating methods raise ``TypeError``."""

    __slots__ = ()

    def _read_only(self, *args, **kwargs):
        raise TypeError(f"{type(self).__name__} is read-only; build a new one (e.g. with dataclasses.replace)")

    __setitem__ = __delitem__ = __ior__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only

    def __reduce__(self):
        return (type(self), (dict(self),))

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        import copy

        return type(self)({copy.deepcopy(k, memo): copy.deepcopy(v, memo) for k, v in self.items()})

    def __repr__(self) -> str:
        return f"FrozenDict({dict.__repr__(self)})"
