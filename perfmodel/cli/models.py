"""``perfmodel models list | show NAME``."""

from __future__ import annotations

import typer

from perfmodel.cli.options import FormatOpt
from perfmodel.cli.render import Format, emit_rows

app = typer.Typer(help="Bundled model presets (transformers, convnets, MLPs) and model files.", no_args_is_help=True)


@app.command("list")
def list_(format: FormatOpt = Format.table) -> None:
    """List the bundled model presets."""
    from perfmodel.workloads import list_models

    rows = [{"name": name, "description": description} for name, description in list_models()]
    emit_rows(rows, format, title="models")


@app.command("show")
def show(name: str = typer.Argument(..., help="a preset name, a Hugging Face config.json or a TOML model file"),
         format: FormatOpt = Format.table) -> None:
    """Show a model's shape and exact parameter counts."""
    from perfmodel.workloads import summary

    rows = [{"field": key, "value": value} for key, value in summary(name)]
    obj = {row["field"]: row["value"] for row in rows}
    emit_rows(rows, format, title=str(obj.get("name", name)), columns=["field", "value"], json_obj=obj)
