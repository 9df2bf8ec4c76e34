"""The catalogue of formulas: every public function of the modules in :mod:`perfmodel.formulas`.

Used by ``perfmodel formula list/show`` and by the tests that hold every formula to its
conventions (three backends, notation table, docstring with math and a source).
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass

from perfmodel.errors import UnknownNameError, did_you_mean
from perfmodel.formulas import MODULES

__all__ = ["Formula", "formulas", "find_formula"]


@dataclass(frozen=True)
class Formula:
    name: str
    module: str
    func: object

    @property
    def summary(self) -> str:
        doc = inspect.getdoc(self.func) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""

    @property
    def parameters(self) -> tuple[str, ...]:
        return tuple(inspect.signature(self.func).parameters)

    @property
    def doc(self) -> str:
        return inspect.getdoc(self.func) or ""


def _module_formulas(module_name: str) -> list[Formula]:
    module = importlib.import_module(f"perfmodel.formulas.{module_name}")
    found = []
    for name, obj in vars(module).items():
        if name.startswith("_") or not inspect.isfunction(obj):
            continue
        if obj.__module__ != module.__name__:
            continue  # imported from elsewhere
        found.append(Formula(name=name, module=module_name, func=obj))
    return found


def formulas() -> list[Formula]:
    """All formulas, module by module, in definition order."""
    out: list[Formula] = []
    for module_name in MODULES:
        out.extend(_module_formulas(module_name))
    return out


def find_formula(name: str) -> Formula:
    table = {f.name: f for f in formulas()}
    if name not in table:
        raise UnknownNameError(f"unknown formula '{name}'{did_you_mean(name, table)} (see `perfmodel formula list`)")
    return table[name]
