"""Assemble the typer application from one module per command group."""

from __future__ import annotations

import typer


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
