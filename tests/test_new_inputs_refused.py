"""Inputs of this phase's features that used to be accepted and silently ignored (found by a
hostile-input review): each is now one line naming the problem, exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from perfmodel.specs.registry import bundled_dir

MOE_TOML = """type = "transformer"
name = "{name}"
layers = 8
hidden = 1024
heads = 16
kv_heads = 4
ffn_hidden = 2816
vocab = 32000
seq = 2048
positions = "rotary"
mlp = "swiglu"
norm = "rmsnorm"
bias = false
tied_embeddings = false
{extra}
"""


def _run(*args):
    return subprocess.run([sys.executable, "-m", "perfmodel", *args], capture_output=True, text=True)


def _refused(result, *words):
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize("extra, words", [
    ("experts = 8\ntop_k = 2\nmoe_layer_freq = 9", ("moe_layer_freq", "no MoE layer")),
    ("capacity_factor = 1.25", ("capacity_factor", "routed experts")),
])
def test_moe_keys_that_would_do_nothing_are_refused(tmp_path, extra, words):
    path = tmp_path / "m.toml"
    path.write_text(MOE_TOML.format(name="m", extra=extra))
    _refused(_run("models", "show", str(path)), *words)


def _system(tmp_path: Path, name: str, edit) -> Path:
    text = edit((bundled_dir() / "system" / f"{name}.toml").read_text().replace(f'name = "{name}"',
                                                                                   f'name = "{name}-x"'))
    path = tmp_path / f"{name}-x.toml"
    path.write_text(text)
    return path


def test_host_switches_on_a_pcie_tree_are_refused(tmp_path):
    path = _system(tmp_path, "pcie-8gpu", lambda t: t + '\n[host]\ncpus = 2\ndevices_per_switch = 4\n'
                                                         'switch_uplink = "pcie3-x16"\nsource = "x"\n')
    _refused(_run("hardware", "check", str(path)), "devices_per_switch", "pcie-tree")


def test_a_pod_larger_than_the_network_is_refused(tmp_path):
    path = _system(tmp_path, "dgx-a100", lambda t: t.replace("oversubscription = 1.0",
                                                             "oversubscription = 4.0\nmax_nodes = 10\n"
                                                             "full_bisection_nodes = 20"))
    _refused(_run("hardware", "check", str(path)), "full_bisection_nodes", "max_nodes=10")


def test_optimizer_offload_without_zero_is_refused():
    _refused(_run("predict", "--model", "gpt2-1.5b", "--system", "dgx-a100", "--devices", "8", "--stack",
                  "deepspeed", "--zero", "0", "--offload", "optimizer"), "--offload optimizer", "--zero 1")


def test_a_host_switch_uplink_must_be_pcie(tmp_path):
    path = _system(tmp_path, "dgx-a100", lambda t: t.replace('switch_uplink = "pcie4-x16"', 'switch_uplink = "nvlink3"'))
    assert 'switch_uplink = "nvlink3"' in path.read_text()
    _refused(_run("hardware", "check", str(path)), "switch_uplink", "PCIe")
