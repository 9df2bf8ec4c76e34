"""``perfmodel hardware list | show | check``."""

from __future__ import annotations

from typing import Optional

import typer

from perfmodel.cli.render import Format, emit_rows

app = typer.Typer(help="Bundled and user hardware spec files (cpu, gpu, xpu, link, system).", no_args_is_help=True)

KINDS = ("cpu", "gpu", "xpu", "link", "system")
FORMAT = typer.Option(Format.table, "--format", help="table, json or csv")


@app.command("list")
def list_(kind: Optional[str] = typer.Option(None, "--kind", help="cpu, gpu, xpu, link or system"),
          format: Format = FORMAT) -> None:
    """List bundled hardware specs."""
    from perfmodel.errors import UnknownNameError, did_you_mean
    from perfmodel.specs import registry
    from perfmodel.specs.describe import summary_row

    if kind is not None and kind not in KINDS:
        raise UnknownNameError(f"unknown kind '{kind}'{did_you_mean(kind, KINDS)} (expected one of {', '.join(KINDS)})")
    rows = []
    for name, (folder, _) in registry.bundled_names().items():
        if kind is None or folder == kind:
            rows.append(summary_row(registry.load_spec(name)))
    emit_rows(rows, format, title="hardware", columns=["name", "kind", "description"])


@app.command("show")
def show(name: str = typer.Argument(..., help="a bundled name or a path to a TOML file"), format: Format = FORMAT) -> None:
    """Show one spec: every value with its unit and source."""
    from perfmodel.specs import registry
    from perfmodel.specs.describe import describe

    spec = registry.load_spec(name)
    rows = describe(spec)
    obj = {"name": spec.name, "kind": spec.kind, "fields": rows}
    emit_rows(rows, format, title=f"{spec.name} ({spec.kind})", columns=["field", "value", "source"], json_obj=obj)


@app.command("check")
def check(files: list[str] = typer.Argument(..., help="spec files to check")) -> None:
    """Load spec files as the library does; print the first problem of each bad file."""
    import sys

    from perfmodel.cli import one_line
    from perfmodel.errors import PerfModelError
    from perfmodel.specs import registry

    bad = 0
    for path in files:
        try:
            spec = registry.check_file(path)
        except PerfModelError as exc:
            print(f"error: {one_line(str(exc))}", file=sys.stderr)
            bad += 1
        except OSError as exc:  # e.g. a file name longer than the OS allows
            print(f"error: {one_line(f'cannot read {path!r}: {exc.strerror or exc}')}", file=sys.stderr)
            bad += 1
        else:
            print(one_line(f"ok {path}: {spec.kind} '{spec.name}'"))
    if bad:
        raise SystemExit(2)
