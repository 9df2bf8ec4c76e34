"""``perfmodel hardware list | show | check``."""

from __future__ import annotations

from typing import Optional

import typer

from perfmodel.cli.options import FormatOpt
from perfmodel.cli.render import Format, emit_rows

app = typer.Typer(help="Bundled and user hardware spec files (cpu, gpu, xpu, link, system).", no_args_is_help=True)

KINDS = ("cpu", "gpu", "xpu", "link", "system")


@app.command("list")
def list_(kind: Optional[str] = typer.Option(None, "--kind", help="cpu, gpu, xpu, link or system"),
          format: FormatOpt = Format.table) -> None:
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
def show(name: str = typer.Argument(..., help="a bundled name or a path to a TOML file"), format: FormatOpt = Format.table) -> None:
    """Show one spec: every value with its unit and source."""
    from perfmodel.specs import registry
    from perfmodel.specs.describe import describe

    spec = registry.load_spec(name)
    rows = describe(spec)
    obj = {"name": spec.name, "kind": spec.kind, "fields": rows}
    emit_rows(rows, format, title=f"{spec.name} ({spec.kind})", columns=["field", "value", "source"], json_obj=obj)


@app.command("check")
def check(files: list[str] = typer.Argument(..., help="spec files to check"),
          format: FormatOpt = Format.table) -> None:
    """Load spec files as the library does; report the first problem of each bad file (exit 2 if any).

    Formats: table (one line per file: ok on stdout, or the error on stderr); json ([{file, ok, kind, name,
    error}]); csv (the same rows).
    """
    import sys

    from perfmodel.cli.text import one_line
    from perfmodel.errors import PerfModelError
    from perfmodel.specs import registry

    rows = []
    for path in files:
        row = {"file": path, "ok": False, "kind": None, "name": None, "error": None}
        try:
            spec = registry.check_file(path)
        except PerfModelError as exc:
            row["error"] = one_line(str(exc))
        except OSError as exc:  # e.g. a file name longer than the OS allows
            row["error"] = one_line(f"cannot read {path!r}: {exc.strerror or exc}")
        else:
            row.update(ok=True, kind=spec.kind, name=spec.name)
        rows.append(row)
        if format == Format.table:
            if row["ok"]:
                print(one_line(f"ok {path}: {spec.kind} '{spec.name}'"))
            else:
                print(f"error: {row['error']}", file=sys.stderr)
    if format != Format.table:
        emit_rows(rows, format, columns=list(rows[0]) if rows else None)
    if any(not row["ok"] for row in rows):
        raise SystemExit(2)
