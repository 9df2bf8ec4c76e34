"""Runs the selected SimGrid scenarios once per session (two child processes at a time) and
prints their table: closed form vs simulated, in the terminal summary (and on stdout with -s)."""

from __future__ import annotations

import os

import pytest

from tests.simgrid import sgrun
from tests.simgrid.scenarios import fmt_bytes

REQUIRE_ENV = "PERFMODEL_REQUIRE_SIMGRID"
_ROWS = pytest.StashKey[list]()
_SKIPPED = pytest.StashKey[str]()


@pytest.fixture(scope="session")
def simgrid_ready(request):
    """Skip loudly if simgrid cannot be imported -- or fail when PERFMODEL_REQUIRE_SIMGRID is set."""
    reason = sgrun.probe()
    if reason is None:
        return True
    message = (f"SimGrid oracle NOT RUN: {reason}. The network formulas are unchecked; "
               f"set {REQUIRE_ENV}=1 to make this an error (CI does).")
    if os.environ.get(REQUIRE_ENV) is not None:
        pytest.fail(f"{REQUIRE_ENV} is set but {message}", pytrace=False)
    request.config.stash[_SKIPPED] = message
    pytest.skip(message)


@pytest.fixture(scope="session")
def oracle(request, simgrid_ready):
    """{scenario id: SimGrid result} for every scenario selected in this session."""
    wanted = {}
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "scenario" in callspec.params and "oracle" in item.fixturenames:
            scn = callspec.params["scenario"]
            wanted[scn.id] = scn
    results = sgrun.simulate_many({key: scn.job() for key, scn in wanted.items()})
    return results


@pytest.fixture
def record_row(request):
    rows = request.config.stash.setdefault(_ROWS, [])
    return rows.append


def format_table(rows):
    head = ("scenario", "n", "size", "closed form", "simulated", "ratio", "sim/alpha-beta", "wall")
    body = [(r["name"], str(r["n"]), fmt_bytes(r["size"]), f"{r['closed_s'] * 1e3:.6g} ms",
             f"{r['sim_s'] * 1e3:.6g} ms", f"{r['closed_s'] / r['sim_s']:.6f}",
             "" if r["textbook_s"] is None else f"{r['sim_s'] / r['textbook_s']:.2f}x",
             f"{r['wall_s']:.1f}s") for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, body)])


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    skipped = config.stash.get(_SKIPPED, None)
    if skipped:
        terminalreporter.section("SimGrid oracle", sep="!", red=True, bold=True)
        terminalreporter.write_line(skipped, red=True, bold=True)
    rows = config.stash.get(_ROWS, [])
    if rows:
        terminalreporter.section("SimGrid oracle: closed form vs simulated (ratio = closed / simulated)")
        terminalreporter.write_line(format_table(rows))
