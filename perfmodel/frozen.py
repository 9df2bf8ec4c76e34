"""A read-only mapping that pickles and deep-copies (``types.MappingProxyType`` does neither).

Specs and results are frozen dataclasses; their mapping fields (peaks by dtype, sources, the
breakdown) use :class:`FrozenDict` so they cannot be changed in place, yet travel to Dask workers
and through ``copy.deepcopy`` like any other value.
"""

from __future__ import annotations

import dataclasses

__all__ = ["FrozenDict", "IdentityMemo", "remember", "replaced"]


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


class IdentityMemo:
    """Values computed from a frozen object (a spec, a model, a stack), remembered per object.

    A key holds the object's id and the entry holds the object itself, so the id cannot be reused
    while its entry lives; a hit also checks identity. At ``limit`` entries the memo starts over.
    For hot paths (one predict asks for the same derived numbers many times).

    >>> memo = IdentityMemo(limit=8)
    >>> spec = ("a", "frozen", "spec")
    >>> memo.get(spec, "length", lambda: len(spec))
    3
    """

    __slots__ = ("_entries", "_limit")

    def __init__(self, limit: int) -> None:
        self._entries: dict = {}
        self._limit = limit

    def get(self, obj, key, compute):
        """``compute()`` for ``obj`` and ``key``, computed once while the entry lives."""
        k = (id(obj), key)
        hit = self._entries.get(k)
        if hit is not None and hit[0] is obj:
            return hit[1]
        value = compute()
        if len(self._entries) >= self._limit:
            self._entries.clear()
        self._entries[k] = (obj, value)
        return value


MEMO_LIMIT = 4096  # entries a per-object memo of float results holds before it starts over


def remember(memo: dict, key, compute, *args):
    """``memo[key]``, computed once as ``compute(*args)`` (``memo`` emptied past
    :data:`MEMO_LIMIT` entries): the float results a frozen object keeps for the hot path.

    >>> memo = {}
    >>> remember(memo, 3, pow, 2, 3), remember(memo, 3, pow, 9, 9)
    (8, 8)
    """
    value = memo.get(key)
    if value is None:
        if len(memo) > MEMO_LIMIT:
            memo.clear()
        value = memo[key] = compute(*args)
    return value


_INIT_FIELDS: dict = {}  # class -> (names of its init fields, has __post_init__)


def replaced(obj, **changes):
    """A copy of the frozen dataclass ``obj`` with ``changes``: ``dataclasses.replace`` for a class
    without ``__post_init__``, without running ``__init__`` again (a hot path: each predict
    resolves its plan and annotates its result). A name that is not an init field raises
    ``TypeError``.

    >>> from perfmodel.plan import Plan
    >>> replaced(Plan(tp=2), pp=4).pp
    4
    """
    cls = type(obj)
    known = _INIT_FIELDS.get(cls)
    if known is None:
        # init=False fields cannot be replaced (dataclasses.replace refuses them too); an InitVar
        # only means something to a __post_init__, which is refused
        known = _INIT_FIELDS[cls] = (frozenset(f.name for f in dataclasses.fields(cls) if f.init),
                                     hasattr(cls, "__post_init__"))
    settable, post_init = known
    unknown = sorted(k for k in changes if k not in settable)
    if unknown or post_init:
        raise TypeError(f"replaced: {cls.__name__} {f'has no init field {unknown}' if unknown else 'has __post_init__'}")
    new = object.__new__(cls)
    new.__dict__.update(obj.__dict__)  # frozen stops setattr, not the instance dict
    new.__dict__.update(changes)
    return new
