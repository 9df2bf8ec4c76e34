"""The CLI on a real terminal (issue 13 A4, A7, A10, B3, B10; issue 12 item 3).

Truth: what a person reads. Tables are rendered with the console the CLI prints on
(:func:`perfmodel.cli.text.console`) at 80 and 100 columns; a header must be whole (it may wrap at a
space or after a dot, never end in '…'), and every number with its unit must stand on one line.
Interrupts and closed outputs run in a subprocess, bounded in time.
"""

from __future__ import annotations

import io
import json
import re
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from perfmodel.cli import main
from perfmodel.cli.text import console

ROOT = Path(__file__).resolve().parents[1]
WIDTHS = (80, 100)
# a number and its unit as the tables print them: "20.3 s", "51.5 %", "50 GB/s", "312 TFLOP/s"
QUANTITY = re.compile(r"[-+]?\d[\d,.]*(?: ?(?:[kMGTPE]i?)?(?:B/s|B|FLOP/s|s|ms|us|ns|%))")


def run(capsys, *args):
    capsys.readouterr()
    try:
        code = main(list(args))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def render(result, width: int) -> str:
    buf = io.StringIO()
    console(width=width, file=buf, color_system=None).print(result)
    return buf.getvalue()


def assert_readable(text: str, width: int, headers=(), quantities=()) -> None:
    lines = text.splitlines()
    assert all(len(line) <= width for line in lines), max(lines, key=len)
    assert "…" not in text, text
    for header in headers:  # every word of a header is whole somewhere
        for word in re.split(r"[ .]", header):
            assert word in text, (header, word, text)
    for q in quantities:  # a number is never split from its unit or across lines
        assert any(q in line for line in lines), (q, text)


# --- A4: tables at 80 and 100 columns -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def optimum():
    from perfmodel.sweeps.search import optimize

    return optimize("gpt3-175b", "dgx-a100", 1024, 1536, 5)


@pytest.mark.parametrize("width", WIDTHS)
def test_optimize_table(optimum, width):
    from perfmodel.units import format_quantity

    text = render(optimum, width)
    steps = [format_quantity(r["step_time_s"], "time") for r in optimum.rows]
    assert_readable(text, width, ("micro batch", "schedule", "recompute", "seq. par.", "overlap", "step time",
                                  "memory", "bound"), steps)


WIDE_GRID = ("tp=4,8;pp=4,8;micro_batch=1,2;recompute=none,selective;network.link.bandwidth=200 Gb/s,400 Gb/s;"
             "fabric.link.bandwidth=300 GB/s;device.peak=312 TFLOP/s;network.link.latency=5 us;zero=0,1;"
             "overlap=true;schedule=1f1b,interleaved;virtual_stages=1,2")


@pytest.mark.parametrize("width", WIDTHS)
def test_sweep_table_with_eleven_keys_and_hardware_units(width):
    from perfmodel.sweeps import evaluate
    from perfmodel.sweeps.summary import SweepSummary

    ev = evaluate("gpt3-175b", "dgx-a100", WIDE_GRID, devices=1024, global_batch=1536)
    summary = SweepSummary(ev.to_frame(), tuple(ev.spec.keys))
    text = render(summary, width)
    assert_readable(text, width, ev.spec.keys, ("50 GB/s", "300 GB/s", "312 TFLOP/s", "5 us"))
    assert "50000000000" not in text and "3.12e+14" not in text


@pytest.mark.parametrize("width", WIDTHS)
def test_compare_topologies_table(width):
    from perfmodel.topologies.compare import compare_topologies

    result = compare_topologies("allreduce", 2**30, 64, "ib-hdr")
    text = render(result, width)
    assert_readable(text, width, ("topology", "algorithm", "latency", "bandwidth", "bisection", "links/node"),
                    ("1.35 ms", "25.6 TB/s", "85.2 ms", "10.2 us"))


@pytest.mark.parametrize("width", WIDTHS)
def test_compare_pcie_table(width):
    from perfmodel.compare.pcie import pcie_contention_story

    text = render(pcie_contention_story("pcie-8gpu", "megatron-1.7b"), width)
    assert_readable(text, width, ("TP ring / GPU", "host copies / GPU", "compute", "tp comm", "GPUs/switch"),
                    ("28.7 GB/s", "14.4 GB/s", "3.59 GB/s"))


@pytest.mark.parametrize("width", WIDTHS)
def test_compare_devices_table(width):
    from perfmodel.compare.devices import compare_devices

    result = compare_devices("resnet50", ["xeon-8480p", "h100-sxm5-80gb", "tpu-v4"], "eth-100g", "switch", "dp",
                             [1, 2, 4, 8, 16, 32, 64])
    text = render(result, width)
    assert_readable(text, width, ("device", "workers", "step time", "efficiency", "comm share", "crossover"))
    for name in ("xeon-8480p", "h100-sxm5-80gb", "tpu-v4"):  # device names are never cut
        assert name in text


def test_quantity_pattern_finds_split_numbers():
    # the checker itself: a number split from its unit by a line break is not found on one line
    lines = "20.3\ns".splitlines()
    assert not any("20.3 s" in line for line in lines)
    assert QUANTITY.fullmatch("20.3 s") and QUANTITY.fullmatch("312 TFLOP/s")


# --- A7: markup and control characters ----------------------------------------------------------------------
LINK = ('kind = "link"\nname = "{name}"\ndescription = "{description}"\nfamily = "nvlink"\n'
        'bandwidth = {{ value = "25 GB/s", direction = "per-direction", source = "x" }}\n'
        'latency = {{ value = "1 us", source = "x" }}\n')


def test_brackets_print_and_control_characters_do_not_reach_the_terminal(tmp_path, capsys):
    spec = tmp_path / "odd.toml"
    spec.write_text(LINK.format(name="odd", description=r"(no [network] table) [bold]x[/bold] \u001b[31mred\u0007"))
    for fmt in ("table", "csv"):
        code, out, err = run(capsys, "hardware", "show", str(spec), "--format", fmt)
        assert code == 0, err
        assert "(no [network] table)" in out and "[bold]x[/bold]" in out
        assert "\x1b" not in out and "\x07" not in out and "[31mred" in out
    code, out, _ = run(capsys, "hardware", "show", str(spec), "--format", "json")
    assert code == 0 and "\x1b" not in out  # JSON escapes it (\u001b) and keeps the data


def test_console_strips_controls_from_every_string():
    from rich.table import Table

    t = Table(title="m\x1b]0;title\x07odel [x]")
    t.add_column("[col]")
    t.add_row("a\x1b[2Jb")
    text = render(t, 80)
    assert "[x]" in text and "[col]" in text and "ab" in text.replace("[2J", "")
    assert not any(ch in text for ch in "\x1b\x07")


# --- A10: small CLI faults ----------------------------------------------------------------------------------
def test_flags_show_no_bool_and_take_no_value(capsys):
    code, out, _ = run(capsys, "crossover", "--help")
    assert code == 0 and "--symbolic" in out and "<bool>" not in out
    code, _, err = run(capsys, "crossover", "--model", "gpt2-1.5b", "--system", "dgx-h100", "--scheme", "dp",
                       "--solve-for", "devices", "--symbolic", "true")
    assert code == 2 and err.count("\n") == 1 and "true" in err


def test_help_paragraphs_are_not_broken_mid_sentence():
    r = subprocess.run([sys.executable, "-m", "perfmodel", "predict", "--help"], capture_output=True, text=True,
                       cwd=ROOT, env={"COLUMNS": "250", "PATH": "/usr/bin:/bin"}, timeout=60)
    assert r.returncode == 0
    assert any("memory per device and whether it fits" in line for line in r.stdout.splitlines()), r.stdout


HELPS = [["predict"], ["optimize"], ["sweep"], ["crossover"], ["compare", "devices"], ["compare", "topologies"],
         ["compare", "pcie"], ["calibrate", "nccl"], ["hardware", "check"], ["validate"]]


@pytest.mark.parametrize("command", HELPS, ids=" ".join)
def test_help_at_80_columns_cuts_nothing(command):
    r = subprocess.run([sys.executable, "-m", "perfmodel", *command, "--help"], capture_output=True, text=True,
                       cwd=ROOT, env={"COLUMNS": "80", "PATH": "/usr/bin:/bin"}, timeout=60)
    assert r.returncode == 0 and "…" not in r.stdout and "<bool>" not in r.stdout, r.stdout
    # a list of choices is not folded mid-word in the type column: it is NAME there, the choices in the help
    assert not re.search(r"<[a-z0-9|-]+\|[a-z0-9-]*\s", r.stdout), r.stdout


def test_version(capsys):
    from perfmodel import __version__

    code, out, _ = run(capsys, "--version")
    assert code == 0 and out == f"perfmodel {__version__}\n"


def test_hardware_check_formats(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(LINK.format(name="bad", description="x").replace("bandwidth =", "bandwdith ="))
    good = str(ROOT / "hardware" / "system" / "dgx-h100.toml")
    code, out, err = run(capsys, "hardware", "check", good, str(bad), "--format", "json")
    rows = json.loads(out)
    assert code == 2 and err == "" and [r["ok"] for r in rows] == [True, False]
    assert rows[0]["kind"] == "system" and "did you mean" not in rows[1]["error"]
    assert "'bandwdith': a misspelling of 'bandwidth'?" in rows[1]["error"]  # the did-you-mean of a spec key
    code, out, _ = run(capsys, "hardware", "check", good, "--format", "csv")
    assert code == 0 and out.splitlines()[0] == "file,ok,kind,name,error"


def test_plot_says_where_it_wrote(tmp_path, capsys):
    svg = tmp_path / "t.svg"
    code, out, err = run(capsys, "compare", "topologies", "--collective", "allreduce", "--size", "1 MiB", "--nodes",
                         "8", "--link", "nvlink4", "--plot", str(svg), "--format", "json")
    assert code == 0 and json.loads(out)["nodes"] == 8
    assert err == f"wrote the figure to {svg}\n" and svg.stat().st_size > 0


# --- issue 12 item 3: each shared option declared once ------------------------------------------------------
SHARED = ("--model", "--system", "--format", "--plot", "--link", "--devices", "--tp", "--pp", "--dp", "--micro-batch",
          "--global-batch", "--seq", "--dtype", "--recompute", "--sequence-parallel", "--schedule",
          "--virtual-stages", "--zero", "--grad-sync", "--overlap", "--stack", "--optimizer", "--layers", "--hidden",
          "--heads", "--kv-heads", "--ffn-hidden", "--vocab")


def _commands():
    import typer

    from perfmodel.cli.app import build_app

    stack = [typer.main.get_command(build_app())]
    while stack:
        command = stack.pop()
        yield command
        stack += list(getattr(command, "commands", {}).values())


def test_each_shared_option_is_declared_once():
    # nowhere outside options.py ...
    for path in (ROOT / "perfmodel" / "cli").glob("*.py"):
        if path.name != "options.py":
            for decl in re.findall(r"typer\.Option\((.*?)\)", path.read_text(), re.S):
                assert not any(f'"{flag}"' in decl or f'"{flag}/' in decl for flag in SHARED), (path.name, decl)
    # ... so every command that takes a shared option shows the same help for it
    helps: dict[str, set] = {}
    for command in _commands():
        for param in getattr(command, "params", ()):
            for opt in getattr(param, "opts", ()):
                if opt in SHARED:
                    helps.setdefault(opt, set()).add(param.help)
    assert set(helps) == set(SHARED)
    assert {flag: h for flag, h in helps.items() if len(h) != 1} == {}


def test_stack_help_lists_the_bundled_stacks(capsys):
    from perfmodel.specs.stack import stack_names

    code, out, _ = run(capsys, "predict", "--help")
    assert code == 0 and all(name in out for name in stack_names())


# --- B3: interrupts; B10: closed output, odd --out names ----------------------------------------------------
BIG = ("tp=1,2,4,8;pp=1,2,4,8,16;micro_batch=1,2,4,8,16,32;dp=1,2,4,8,16,32,64,128;global_batch=512,1024,1536,2048,"
       "3072;network.link.bandwidth=100 Gb/s,200 Gb/s,400 Gb/s,800 Gb/s;fabric.link.bandwidth=100 GB/s,300 GB/s,"
       "600 GB/s;recompute=none,selective,full")


@pytest.mark.parametrize("signum, code, word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_interrupt_while_writing_removes_the_partial_file(tmp_path, signum, code, word):
    out = tmp_path / "big.csv"
    p = subprocess.Popen([sys.executable, "-m", "perfmodel", "sweep", "--model", "gpt3-175b", "--system", "dgx-a100",
                          "--grid", BIG, "--out", str(out)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        start = time.monotonic()
        while not list(tmp_path.glob(".big.csv.partial-*")) and p.poll() is None and time.monotonic() - start < 90:
            time.sleep(0.01)
        assert p.poll() is None, "the sweep ended before it could be interrupted"
        p.send_signal(signum)
        stdout, stderr = p.communicate(timeout=60)
    finally:
        p.kill()
    assert p.returncode == code, stderr
    assert stdout == "" and stderr.count("\n") == 1 and word in stderr and "Traceback" not in stderr
    assert list(tmp_path.iterdir()) == []  # neither the partial file nor a half-written big.csv


def test_ctrl_c_during_evaluation(tmp_path):
    p = subprocess.Popen([sys.executable, "-m", "perfmodel", "sweep", "--model", "gpt3-175b", "--system", "dgx-a100",
                          "--grid", BIG, "--format", "csv"], cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2.0)
        p.send_signal(signal.SIGINT)
        stdout, stderr = p.communicate(timeout=60)
    finally:
        p.kill()
    assert p.returncode == 130 and stderr == "error: interrupted (Ctrl-C)\n", stderr


@pytest.mark.parametrize("args", [["predict", "--model", "gpt2-124m", "--system", "dgx-a100", "--format", "json"],
                                  ["sweep", "--model", "gpt2-124m", "--system", "dgx-a100", "--devices", "8",
                                   "--grid", "tp=1,2", "--format", "csv"]])
def test_closed_stdout_is_an_error(args):
    command = " ".join([sys.executable, "-m", "perfmodel", *(f"'{a}'" for a in args)]) + " >&-"
    r = subprocess.run(["sh", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "standard output is closed" in r.stderr, r.stderr


def test_full_stdout_is_an_error():
    with open("/dev/full", "w") as full:
        r = subprocess.run([sys.executable, "-m", "perfmodel", "predict", "--model", "gpt2-124m", "--system",
                            "dgx-a100", "--format", "json"], cwd=ROOT, stdout=full, stderr=subprocess.PIPE,
                           text=True, timeout=60)
    assert r.returncode == 2 and r.stderr == "error: cannot write the output: No space left on device\n", r.stderr


def test_out_name_with_a_newline_keeps_the_csv_summary_valid(tmp_path, capsys):
    import csv

    out = tmp_path / "a\nb.csv"
    code, text, err = run(capsys, "sweep", "--model", "gpt2-124m", "--system", "dgx-a100", "--devices", "8",
                          "--grid", "tp=1,2", "--out", str(out), "--format", "csv")
    assert code == 0, err
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [["evaluated", "valid", "fit", "out"], ["2", "2", "2", str(out)]] and out.exists()


def test_sigterm_while_calibrating_leaves_no_temporary_folder(tmp_path, capsys, monkeypatch):
    # SIGTERM arrives while the calibrated copy is being checked in its temporary folder: the handler main
    # installs turns it into an exception, the folder is removed, the exit is 143 with one line
    import os

    from perfmodel.specs import registry
    from tests.test_bad_inputs import GEMM_CSV

    sweep_csv = tmp_path / "g.csv"
    sweep_csv.write_text(GEMM_CSV)
    monkeypatch.setattr(registry, "check_file", lambda path: os.kill(os.getpid(), signal.SIGTERM) or time.sleep(5))
    previous = signal.getsignal(signal.SIGTERM)
    code, out, err = run(capsys, "calibrate", "gemm", str(sweep_csv), "--device", "h100-sxm5-80gb", "--out",
                         str(tmp_path / "cal.toml"))
    assert code == 143 and out == "" and err == "error: terminated (SIGTERM)\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.csv"]
    assert signal.getsignal(signal.SIGTERM) is previous  # main gives the handler back


@pytest.mark.parametrize("args", [["validate"], ["predict", "--model", "gpt2-124m", "--system", "dgx-h100",
                                                 "--layers-detail"]])
def test_a_reader_that_leaves_early_is_not_an_error(args):
    """`perfmodel validate | head -1`: a rich table larger than the pipe's buffer meets the closed pipe
    inside rich, whose own handler exits 1; perfmodel's console hands it back as the closed pipe it is
    (exit 0, nothing on stderr), as for a plain print."""
    env = {**os.environ, "COLUMNS": "100"}
    p = subprocess.Popen([sys.executable, "-m", "perfmodel", *args], cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    try:
        p.stdout.readline()
        p.stdout.close()
        stderr = p.stderr.read().decode()
        p.wait(timeout=120)
    finally:
        p.kill()
    assert p.returncode == 0 and stderr == "", (p.returncode, stderr)
