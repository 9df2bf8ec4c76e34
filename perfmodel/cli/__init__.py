"""The command-line interface: ``perfmodel`` (thin typer layer over the library).

:func:`main` runs one command and turns whatever stops it into an exit code and at most one line on
stderr (:data:`OUTCOMES`): bad input of any kind is exit 2 with ``error: ...`` (never a traceback),
Ctrl-C is 130 and SIGTERM 143 with one line (``finally`` blocks run, so temporary files go), a closed
or full stdout is exit 2, a bug is exit 1 (``PERFMODEL_DEBUG=1`` shows its traceback). typer and rich
are imported only here, never by ``import perfmodel``.
"""

from __future__ import annotations

import os
import signal
import sys

from perfmodel.cli.text import one_line

__all__ = ["main", "one_line"]

SIGNAL_EXIT = {signal.SIGINT: (130, "error: interrupted (Ctrl-C)"), signal.SIGTERM: (143, "error: terminated (SIGTERM)")}
INTERRUPTED = 130  # what typer returns when a command is interrupted


class _Stopped(KeyboardInterrupt):
    """A SIGTERM, raised in the main thread like Ctrl-C so that ``finally`` blocks clean up."""


def main(argv: list[str] | None = None) -> int:
    """Run ``perfmodel ARGS``: 0 on success, otherwise ``SystemExit`` with the code of :data:`OUTCOMES`."""
    args = sys.argv[1:] if argv is None else argv
    signals: list[int] = []
    previous = _catch_sigterm(signals)
    try:
        if sys.stdout is None:
            raise _NoStdout("standard output is closed: nothing could be printed (redirect it to a file or "
                            "/dev/null instead)")
        code = _run(args)
        if code == INTERRUPTED:
            raise KeyboardInterrupt
        if code:
            raise SystemExit(code)
        _flush()
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - every outcome is mapped in OUTCOMES
        code, line = _outcome(exc, args, signals)
        if line is not None:
            _say(line)
        raise SystemExit(code) from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0


def _run(args: list[str]) -> int | None:
    import typer

    from perfmodel.cli.app import build_app

    command = typer.main.get_command(build_app())
    from perfmodel.cli.app import polish

    polish(command)
    rv = command.main(args=args, prog_name="perfmodel", standalone_mode=False)
    return rv if isinstance(rv, int) else None


class _NoStdout(Exception):
    pass


# --- what stops a command -> (exit code, the line for stderr or None) ----------------------------------------
def _interrupted(exc, args, signals):
    return SIGNAL_EXIT[signals[-1] if signals else signal.SIGINT]


def _usage(exc, args, signals):
    from perfmodel.cli.failures import bad_value

    ctx = getattr(exc, "ctx", None)
    hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    return 2, "error: " + one_line((bad_value(exc) or exc.format_message().replace("\n", " ")) + hint)


def _help(exc, args, signals):  # a group called without a command: its help, on stderr
    ctx = getattr(exc, "ctx", None)
    return 2, ctx.get_help() if ctx is not None else str(exc)


def _os(exc, args, signals):
    from perfmodel.cli.failures import os_error

    return 2, "error: " + one_line(os_error(exc, args))


def _error(exc, args, signals):
    return 2, "error: " + one_line(str(exc))


def _closed_pipe(exc, args, signals):  # `perfmodel ... | head`: the reader left; not an error
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
    except (OSError, ValueError, AttributeError):
        pass
    return 0, None


OUTCOMES = (  # the first matching class (or class name: typer's own exceptions) decides
    ("PerfModelError", _error),
    (_NoStdout, _error),
    (KeyboardInterrupt, _interrupted),
    (BrokenPipeError, _closed_pipe),
    (OSError, _os),  # a user path the library could not open, a full disk, a closed stdout
    ("NoArgsIsHelpError", _help),
    ("Abort", lambda exc, args, signals: (2, "error: aborted")),
    ("ClickException", _usage),
)


def _outcome(exc: BaseException, args: list[str], signals: list[int]) -> tuple[int, str | None]:
    names = {cls.__name__ for cls in type(exc).__mro__}
    for kind, handle in OUTCOMES:
        if (kind in names) if isinstance(kind, str) else isinstance(exc, kind):
            return handle(exc, args, signals)
    if os.environ.get("PERFMODEL_DEBUG"):
        raise exc
    return 1, one_line(f"internal error (a bug in perfmodel, please report it): {type(exc).__name__}: {exc}")


def _catch_sigterm(signals: list[int]):
    """Turn SIGTERM into :class:`_Stopped` (recorded in ``signals``); Ctrl-C is Python's KeyboardInterrupt.
    Returns the handler to restore, or None when this is not the main thread."""
    def stop(signum, frame):
        signals.append(signum)
        raise _Stopped

    try:
        return signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread: leave signals alone
        return None


def _flush() -> None:
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:  # /dev/full, a closed descriptor: the output is lost, say so
        raise _NoStdout(f"cannot write to standard output: {exc.strerror or exc}") from None


def _say(line: str) -> None:
    try:
        print(line, file=sys.stderr)
    except (OSError, AttributeError, ValueError):  # stderr closed too: the exit code still says it
        pass
