"""Assemble the typer application from one module per command group."""

from __future__ import annotations

import re
import sys
from typing import Annotated, Optional

import typer

_SINGLE_BREAK = re.compile(r"(?<!\n)\n(?!\n)")


def _version(value: bool) -> None:
    if value:  # the package (loaded as this module's parent) holds the version; no component imports it
        print(f"perfmodel {sys.modules['perfmodel'].__version__}")
        raise typer.Exit()


def _root(version: Annotated[Optional[bool], typer.Option(
        "--version", callback=_version, is_eager=True, help="print the version and exit")] = None) -> None:
    """Analytical performance model for distributed deep-learning training."""


def build_app() -> typer.Typer:
    from perfmodel.cli import (
        calibrate,
        compare,
        crossover,
        formula,
        hardware,
        models,
        optimize,
        predict,
        stacks,
        sweep,
        validate,
    )

    app = typer.Typer(
        name="perfmodel",
        help="Analytical performance model for distributed deep-learning training.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    app.callback()(_root)
    app.add_typer(hardware.app, name="hardware")
    app.add_typer(formula.app, name="formula")
    app.add_typer(models.app, name="models")
    app.add_typer(calibrate.app, name="calibrate")
    app.add_typer(stacks.app, name="stacks")
    app.command("predict")(predict.predict)
    app.command("validate")(validate.validate)
    app.command("sweep")(sweep.sweep)
    app.command("optimize")(optimize.optimize)
    app.command("crossover")(crossover.crossover)
    app.add_typer(compare.app, name="compare")
    return app


def polish(command) -> None:
    """Help that reads well at any width, for ``command`` and every command below it: a flag that takes
    no value shows no ``<bool>`` type, and a help paragraph is one line for rich to wrap (the line breaks
    of the docstring's source would otherwise cut sentences at odd places on a wide terminal)."""
    if getattr(command, "help", None):
        command.help = _SINGLE_BREAK.sub(" ", command.help)
    params = list(getattr(command, "params", ()))
    if hasattr(command, "get_help_option"):
        params.append(command.get_help_option(typer.Context(command)))
    for param in params:
        if getattr(param, "is_flag", False) and not getattr(param, "count", False):
            param.metavar = ""
        _short_choices(param)
        _range_in_help(param)
    for sub in getattr(command, "commands", {}).values():
        polish(sub)


def _short_choices(param) -> None:
    """A long list of choices (``<fp32|tf32|bf16|fp16|fp8>``) folds mid-word in the narrow type column of
    an 80-column help: show NAME there and the choices, comma-separated, in the help text."""
    desc = getattr(param, "type_descriptor", None)
    choices = [str(getattr(c, "value", c)) for c in (getattr(desc, "choices", None) or ())]
    if not getattr(desc, "is_choice", False) or len("|".join(choices)) <= len("table|json|csv"):
        return
    param.metavar = "NAME"
    listed = ", ".join(choices[:-1]) + f" or {choices[-1]}"
    param.help = f"{param.help or ''} (one of {listed})".strip() if not all(
        c in (param.help or "") for c in choices) else param.help


def _range_in_help(param) -> None:
    """``<int range> [1<=x<=10000000]`` is the widest type in a help table and squeezes the help text to a
    few words a line on 80 columns: show N there and the range at the end of the help."""
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    if (low is None and high is None) or getattr(param, "metavar", None) == "N":
        return
    param.metavar = "N"
    param._get_number_range_help_str = lambda: None  # typer appends the range to the type column otherwise
    bounds = f"{low}..{high}" if low is not None and high is not None else f">= {low}" if low is not None else \
        f"<= {high}"
    param.help = f"{param.help or ''} [{bounds}]".strip()
