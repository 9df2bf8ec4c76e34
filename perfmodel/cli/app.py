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
    for sub in getattr(command, "commands", {}).values():
        polish(sub)
