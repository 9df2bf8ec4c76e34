"""The CLI contract of docs/interface.md: formats, exit codes, one-line errors."""

import json
import subprocess
import sys

import pytest

from tests.test_specs import BUNDLED


def run(*args):
    return subprocess.run([sys.executable, "-m", "perfmodel", *args], capture_output=True, text=True)


@pytest.mark.parametrize("kind", list(BUNDLED))
def test_hardware_list_json_names_every_bundled(kind):
    r = run("hardware", "list", "--kind", kind, "--format", "json")
    assert r.returncode == 0, r.stderr
    names = {row["name"] for row in json.loads(r.stdout)}
    assert set(BUNDLED[kind]) <= names
    assert all(row["kind"] == kind for row in json.loads(r.stdout))


def test_hardware_show_table_and_csv():
    r = run("hardware", "show", "dgx-h100")
    assert r.returncode == 0 and "nvswitch" in r.stdout and "h100-sxm5-80gb" in r.stdout
    r = run("hardware", "show", "h100-sxm5-80gb", "--format", "csv")
    assert r.returncode == 0
    assert r.stdout.splitlines()[0] == "field,value,source"
    assert any(line.startswith("peak.dense.bf16,989 TFLOP/s,") for line in r.stdout.splitlines())


def test_hardware_show_json_has_sources():
    obj = json.loads(run("hardware", "show", "dgx-h100", "--format", "json").stdout)
    assert obj["name"] == "dgx-h100" and obj["kind"] == "system"
    assert any(f["field"] == "fabric.kind" and f["value"] == "nvswitch" for f in obj["fields"])


def test_hardware_check(tmp_path):
    good = run("hardware", "check", "hardware/system/dgx-h100.toml")
    assert good.returncode == 0 and "ok" in good.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('kind = "link"\nname = "bad"\ndescription = "x"\nfamily = "nvlink"\n'
                   'bandwidth = { value = "25 GB", direction = "per-direction", source = "x" }\n'
                   'latency = { value = "1 us", source = "x" }\n')
    r = run("hardware", "check", str(bad))
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "bandwidth" in r.stderr and "'25 GB' (a size)" in r.stderr


def test_formula_show_latex():
    r = run("formula", "show", "ring_allreduce_time", "--latex")
    assert r.returncode == 0, r.stderr
    assert r"\alpha" in r.stdout and r"\beta" in r.stdout and "=" in r.stdout


def test_formula_list_json():
    rows = json.loads(run("formula", "list", "--format", "json").stdout)
    names = {r["name"] for r in rows}
    assert "ring_allreduce_time" in names and len(names) > 30


@pytest.mark.parametrize("args,fragment", [
    (["hardware", "show", "dgx-a10"], "did you mean 'dgx-a100'"),
    (["hardware", "list", "--kind", "gpx"], "did you mean 'gpu'"),
    (["hardware", "list", "--format", "xml"], "--format"),
    (["hardware", "check", "/nonexistent/x.toml"], "no such file"),
    (["formula", "show", "ring_allreduce"], "unknown formula"),
    (["hardware", "frobnicate"], "frobnicate"),
    (["hardware", "show"], "Missing argument"),
])
def test_bad_input_is_one_line_and_exit_2(args, fragment):
    r = run(*args)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert r.stderr.count("\n") == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert fragment in r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize("group", ["hardware", "formula"])
def test_help(group):
    r = run(group, "--help")
    assert r.returncode == 0 and "Usage" in r.stdout
