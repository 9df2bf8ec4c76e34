"""The command-line interface: ``perfmodel`` (thin typer layer over the library).

``main`` turns every perfmodel error and every usage error into one line on stderr and exit
code 2; typer and rich are imported only here, never by ``import perfmodel``. Set
``PERFMODEL_DEBUG=1`` to see the traceback of an unexpected internal error.
"""

from __future__ import annotations

import os
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    import typer

    from perfmodel.cli.app import build_app
    from perfmodel.errors import PerfModelError

    command = typer.main.get_command(build_app())
    args = sys.argv[1:] if argv is None else argv
    try:
        command.main(args=args, prog_name="perfmodel", standalone_mode=False)
    except PerfModelError as exc:
        _fail(str(exc))
    except BrokenPipeError:
        raise SystemExit(0) from None
    except (SystemExit, KeyboardInterrupt):
        raise
    except Exception as exc:  # click/typer signalling exceptions differ between typer versions
        _handle_framework(exc)
    return 0


def _handle_framework(exc: Exception) -> None:
    name = type(exc).__name__
    if name == "Exit":
        raise SystemExit(getattr(exc, "exit_code", 0)) from None
    if name == "Abort":
        _fail("aborted")
    if name.startswith("NoArgsIsHelp"):
        ctx = getattr(exc, "ctx", None)
        print(ctx.get_help() if ctx is not None else str(exc), file=sys.stderr)
        raise SystemExit(2) from None
    if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        _fail(exc.format_message().replace("\n", " ") + hint)
    if os.environ.get("PERFMODEL_DEBUG"):
        raise exc
    print(f"internal error (a bug in perfmodel, please report it): {name}: {exc}", file=sys.stderr)
    raise SystemExit(1) from None


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)
