"""Assemble the typer application from one module per command group."""

from __future__ import annotations

import typer


def build_app() -> typer.Typer:
    from perfmodel.cli import formula, hardware

    app = typer.Typer(
        name="perfmodel",
        help="Analytical performance model for distributed deep-learning training.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    app.add_typer(hardware.app, name="hardware")
    app.add_typer(formula.app, name="formula")
    return app
