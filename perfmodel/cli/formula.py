"""``perfmodel formula list | show NAME [--latex]``."""

from __future__ import annotations

import typer

from perfmodel.cli.options import FormatOpt
from perfmodel.cli.render import Format, emit_rows, emit_text

app = typer.Typer(help="The closed-form equations: list them, show one with its LaTeX.", no_args_is_help=True)


@app.command("list")
def list_(format: FormatOpt = Format.table) -> None:
    """List every formula with its module and summary."""
    from perfmodel.catalog import formulas

    rows = [{"name": f.name, "module": f.module, "summary": f.summary} for f in formulas()]
    emit_rows(rows, format, title="formulas")


@app.command("show")
def show(name: str = typer.Argument(..., help="formula name, e.g. ring_allreduce_time"),
         latex: bool = typer.Option(False, "--latex", help="print only the equation in LaTeX"),
         format: FormatOpt = Format.table) -> None:
    """Show a formula: equation, parameters (symbol, unit, meaning) and its documentation."""
    from perfmodel.catalog import find_formula
    from perfmodel.formulas.notation import NOTATION
    from perfmodel.symbolic import to_latex

    f = find_formula(name)
    equation = to_latex(f.func)
    params = []
    for p in f.parameters:
        note = NOTATION.get(p)
        params.append({"name": p, "symbol": note.latex if note else p, "unit": note.unit if note else "",
                       "meaning": note.meaning if note else ""})
    obj = {"name": f.name, "module": f"perfmodel.formulas.{f.module}", "summary": f.summary,
           "latex": equation, "parameters": params, "doc": f.doc}
    if latex:
        emit_text(equation, format, json_obj=obj)
        return
    if format != Format.table:
        emit_rows(params, format, json_obj=obj)
        return
    from rich.text import Text

    from perfmodel.cli.text import console as text_console

    console = text_console()
    console.print(Text.assemble((f.name, "bold"), f"  (perfmodel.formulas.{f.module})"))
    console.print(f.summary)
    console.print(Text.assemble("\n", ("LaTeX", "bold"), f"  {equation}"), highlight=False)
    emit_rows(params, format, title="parameters")
    console.print(f.doc, highlight=False)
