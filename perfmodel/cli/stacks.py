"""``perfmodel stacks list | show NAME``: the bundled software-stack profiles."""

from __future__ import annotations

import typer

from perfmodel.cli.options import FormatOpt
from perfmodel.cli.render import Format, emit_rows

app = typer.Typer(help="Software-stack profiles (what a framework fuses and overlaps; --stack NAME).",
                  no_args_is_help=True)


@app.command("list")
def list_(format: FormatOpt = Format.table) -> None:
    """List the bundled stacks, the devices each is the default for, and what each models."""
    from perfmodel.specs.stack_listing import list_stacks

    emit_rows(list_stacks(), format, title="stacks", columns=["name", "default_for", "description"])


@app.command("show")
def show(name: str = typer.Argument(..., help="a bundled stack name or a stack TOML file"),
         format: FormatOpt = Format.table) -> None:
    """Show every field of a stack profile."""
    from perfmodel.specs.stack_listing import stack_summary

    rows = [{"field": k, "value": v if isinstance(v, (str, int, float, bool)) else str(v)}
            for k, v in stack_summary(name)]
    obj = dict(stack_summary(name))
    emit_rows(rows, format, title=name, columns=["field", "value"], json_obj=obj)
