r"""Every bad input is refused cleanly, and no user text is ever evaluated (issue 7, items 1 and 4).

The contract (docs/interface.md "CLI contract"; docs/conventions.md item 8): for any bad input a command exits
with code 2 and prints exactly one line on stderr, ``error: ...``, naming the thing, the value and
what was expected (with a did-you-mean for unknown names); it prints nothing on stdout, shows no
traceback and writes nothing -- no ``--out`` file, no plot, no calibrated spec, no partial file.

* ``CASES`` is the corpus: one line per bad input, ``case(id, argv, *fragments, files=..., defect=...)``.
  ``argv`` is split like a shell line; ``{tmp}`` is the case's own empty folder (also the working
  directory), ``{p5}`` a real nccl-tests output, ``{gemm}`` a valid GEMM sweep CSV. ``files`` are
  written into ``{tmp}`` first (each a one-change mutation of a template that loads cleanly, see
  ``test_templates_are_valid``). Every fragment must appear in the one stderr line; afterwards the
  folder must hold exactly what the case put there. To extend the corpus, add a line.
* ``defect=...`` marks a known bug as ``xfail(strict=True)``: the reason is the defect as observed.
  When the code is fixed the case XPASSes, which fails the run, so the mark has to go.
* Cases run in-process through ``perfmodel.cli.main(argv)`` (milliseconds instead of ~0.5 s per
  subprocess); ``SUBPROCESS_CASES`` re-run some through ``python -m perfmodel`` to keep the
  in-process harness honest.
* ``test_hostile_text`` feeds injection-style strings through every path that takes text (names,
  unit strings, grid expressions, file contents, ``--format``) with eval/exec spied on, and
  ``test_no_evaluation_of_strings_in_the_source`` checks the package source for eval-like calls.

Only the CLI and the top-level ``perfmodel`` API are used, so the tests survive module moves.
"""

from __future__ import annotations

import ast
import builtins
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import perfmodel as pm
from perfmodel.cli import main

REPO = Path(__file__).resolve().parents[1]
PACKAGE = Path(pm.__file__).resolve().parent
P5 = REPO / "tests" / "data" / "nccl" / "aws-p5-2x8-h100-efa.txt"
HF_GPT2 = REPO / "tests" / "data" / "hf" / "gpt2.json"

# --- templates: each loads cleanly; a case changes exactly one thing ----------------------------

MODEL_TOML = """\
type = "transformer"
layers = 4
hidden = 256
heads = 4
vocab = 1000
seq = 128
"""

LINK_TOML = """\
kind = "link"
name = "lnk"
description = "a test link"
family = "infiniband"
bandwidth = { value = "200 Gb/s", direction = "per-direction", source = "test" }
latency = { value = "5 us", source = "test" }
"""

DEVICE_TOML = """\
kind = "gpu"
name = "dev"
description = "a test GPU"

[peak.dense]
bf16 = { value = "989 TFLOP/s", source = "test" }

[memory]
capacity = { value = "80 GB", source = "test" }
bandwidth = { value = "3.35 TB/s", direction = "aggregate", source = "test" }
"""

SYSTEM_TOML = """\
kind = "system"
name = "sys"
description = "a test system"
device = "h100-sxm5-80gb"
devices_per_node = 8

[fabric]
kind = "nvswitch"
link = "nvlink4"
links_per_device = 18
source = "test"

[network]
topology = "fat-tree"
link = "ib-ndr"
nics_per_node = 8
oversubscription = 1.0
source = "test"
"""

TASKS_TOML = """\
name = "tg"
dtype = "bf16"

[[task]]
name = "a"
flops = "1 TFLOP"
bytes = "1 GiB"
devices = ["gpu"]

[[task]]
name = "b"
flops = "1 TFLOP"
bytes = "1 GiB"

[[edge]]
from = "a"
to = "b"
bytes = "1 MiB"
"""

# the row format of tests/test_calibrate.py: 2 m n k / ms_median = tflops_median within 5 %
GEMM_HEADER = "dtype,m,n,k,ms_median,ms_min,tflops_median\n"
GEMM_CSV = GEMM_HEADER + "bf16,8192,8192,8192,1.44902,1.44554,758.79\nbf16,4096,4096,4096,0.19,0.188,723.4\n"


def sub(text: str, old: str, new: str) -> str:
    """``text`` with ``old`` replaced once; ``old`` must be there, so a mutation never silently misses."""
    assert old in text, f"template has no {old!r}"
    return text.replace(old, new, 1)


def model_toml(old: str = "", new: str = "") -> str:
    return sub(MODEL_TOML, old, new) if old else MODEL_TOML


def link_toml(old: str, new: str) -> str:
    return sub(LINK_TOML, old, new)


def device_toml(old: str, new: str) -> str:
    return sub(DEVICE_TOML, old, new)


def system_toml(old: str, new: str) -> str:
    return sub(SYSTEM_TOML, old, new)


def tasks_toml(old: str, new: str) -> str:
    return sub(TASKS_TOML, old, new)


def hf_json(**changes) -> str:
    """The real GPT-2 config.json with keys changed (``None`` deletes a key)."""
    data = json.loads(HF_GPT2.read_text())
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return json.dumps(data)


def bundled_stack_text() -> str:
    found = sorted(PACKAGE.rglob("pytorch-eager.toml"))
    assert found, "the bundled pytorch-eager stack profile is not in the package"
    return found[0].read_text()


def stack_toml(old: str, new: str) -> Callable[[], str]:
    """A copy of the bundled pytorch-eager stack named after its file (``st.toml``), one value changed."""
    return lambda: sub(sub(bundled_stack_text(), 'name = "pytorch-eager"', 'name = "st"'), old, new)


def nccl_text(old: str, new: str) -> Callable[[], str]:
    return lambda: sub(P5.read_text(), old, new)


DIR = object()  # a folder where a file is expected


@dataclass(frozen=True)
class Symlink:
    target: str


# --- the corpus ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    argv: str
    expect: tuple[str, ...]
    files: Mapping[str, object] = field(default_factory=dict)


def case(id: str, argv: str, *expect: str, files: Mapping[str, object] | None = None, defect: str | None = None):
    marks = [pytest.mark.xfail(strict=True, reason=defect)] if defect else []
    return pytest.param(Case(argv, expect, dict(files or {})), id=id, marks=marks)


PRED = "predict --model gpt2-124m --system dgx-a100"
SWEEP = "sweep --model gpt2-124m --system dgx-a100"
XOVER = "crossover --model gpt2-1.5b --system dgx-h100 --scheme dp --solve-for devices"
CMPDEV = "compare devices --model resnet50 --devices-list h100-sxm5-80gb --link eth-100g --workers 1,2"
TOPO = "compare topologies --collective allreduce --nodes 64 --link ib-hdr"
NCCL = "calibrate nccl {p5} --system dgx-h100 --out {tmp}/cal.toml"
GEMM = "calibrate gemm {tmp}/g.csv --device h100-sxm5-80gb --out {tmp}/cal.toml"

CASES = [
    # --- hardware list / show / check ------------------------------------------------------------
    case("hw-list-unknown-kind", "hardware list --kind gpx", "'gpx'", "did you mean 'gpu'", "cpu, gpu, xpu"),
    case("hw-list-empty-kind", "hardware list --kind ''", "unknown kind ''", "expected one of"),
    case("hw-list-bad-format", "hardware list --format xml", "--format", "'xml'", "table"),
    case("hw-show-unknown", "hardware show dgx-a10", "'dgx-a10'", "did you mean 'dgx-a100'"),
    case("hw-show-missing-arg", "hardware show", "Missing argument"),
    case("hw-show-missing-file", "hardware show {tmp}/nope.toml", "nope.toml", "no such file"),
    case("hw-show-dir", "hardware show {tmp}/d.toml", "d.toml", "directory", files={"d.toml": DIR}),
    case("hw-check-dangling-symlink", "hardware check {tmp}/s.toml", "s.toml", "no such file",
         files={"s.toml": Symlink("/nonexistent/target.toml")}),
    case("hw-check-unreadable", "hardware check /proc/self/mem", "/proc/self/mem", "cannot read"),
    case("hw-check-unknown-subcommand", "hardware frobnicate", "frobnicate"),
    case("hw-check-malformed-toml", "hardware check {tmp}/lnk.toml", "lnk.toml", "malformed TOML",
         files={"lnk.toml": 'kind = "link"\nname = [\n'}),
    case("hw-check-empty-file", "hardware check {tmp}/lnk.toml", "lnk.toml", "kind", "missing",
         files={"lnk.toml": ""}),
    case("hw-check-size-for-bandwidth", "hardware check {tmp}/lnk.toml", "bandwidth", "'25 GB' (a size)",
         "like '3.35 TB/s'", files={"lnk.toml": link_toml('"200 Gb/s"', '"25 GB"')}),
    case("hw-check-bandwidth-for-time", "hardware check {tmp}/lnk.toml", "latency", "'5 GB/s' (a bandwidth)",
         "a time", files={"lnk.toml": link_toml('"5 us"', '"5 GB/s"')}),
    case("hw-check-negative", "hardware check {tmp}/lnk.toml", "bandwidth", "'-200 Gb/s'", "non-negative",
         files={"lnk.toml": link_toml('"200 Gb/s"', '"-200 Gb/s"')}),
    case("hw-check-zero", "hardware check {tmp}/lnk.toml", "bandwidth", "'0 Gb/s'", "positive",
         files={"lnk.toml": link_toml('"200 Gb/s"', '"0 Gb/s"')}),
    case("hw-check-nan", "hardware check {tmp}/lnk.toml", "bandwidth", "'nan Gb/s'",
         files={"lnk.toml": link_toml('"200 Gb/s"', '"nan Gb/s"')}),
    case("hw-check-inf", "hardware check {tmp}/lnk.toml", "bandwidth", "'1e400 Gb/s'", "finite",
         files={"lnk.toml": link_toml('"200 Gb/s"', '"1e400 Gb/s"')}),
    case("hw-check-no-unit", "hardware check {tmp}/lnk.toml", "bandwidth", "'200'", "no unit",
         files={"lnk.toml": link_toml('"200 Gb/s"', '"200"')}),
    case("hw-check-bare-number", "hardware check {tmp}/lnk.toml", "bandwidth", "200", "a string with a unit",
         files={"lnk.toml": link_toml('"200 Gb/s"', "200")}),
    case("hw-check-capital-K", "hardware check {tmp}/lnk.toml", "'200 KB/s'", "write 'k' (1e3) or 'Ki'",
         files={"lnk.toml": link_toml('"200 Gb/s"', '"200 KB/s"')}),
    case("hw-check-unknown-key", "hardware check {tmp}/lnk.toml", "latencyy", "did you mean 'latency'",
         files={"lnk.toml": LINK_TOML + 'latencyy = { value = "1 us", source = "x" }\n'}),
    case("hw-check-missing-key", "hardware check {tmp}/lnk.toml", "latency", "missing",
         files={"lnk.toml": link_toml('latency = { value = "5 us", source = "test" }\n', "")}),
    case("hw-check-missing-source", "hardware check {tmp}/lnk.toml", "[latency] source", "missing",
         files={"lnk.toml": link_toml('{ value = "5 us", source = "test" }', '{ value = "5 us" }')}),
    case("hw-check-bad-direction", "hardware check {tmp}/lnk.toml", "direction", "'one-way'", "per-direction",
         files={"lnk.toml": link_toml("per-direction", "one-way")}),
    case("hw-check-family-typo", "hardware check {tmp}/lnk.toml", "'infinband'", "did you mean 'infiniband'",
         files={"lnk.toml": link_toml('"infiniband"', '"infinband"')}),
    case("hw-check-name-not-stem", "hardware check {tmp}/lnk.toml", "name", "'lnk'", "'other'",
         files={"lnk.toml": link_toml('name = "lnk"', 'name = "other"')}),
    case("hw-check-flops-unit", "hardware check {tmp}/dev.toml", "bf16", "'989 TB/s' (a bandwidth)", "FLOP rate",
         files={"dev.toml": device_toml('"989 TFLOP/s"', '"989 TB/s"')}),
    case("hw-check-unknown-dtype", "hardware check {tmp}/dev.toml", "bf61", "fp64, fp32",
         files={"dev.toml": device_toml("bf16 =", "bf61 =")}),
    case("hw-check-zero-devices", "hardware check {tmp}/sys.toml", "devices_per_node", "got 0", "[1, ",
         files={"sys.toml": system_toml("devices_per_node = 8", "devices_per_node = 0")}),
    case("hw-check-oversubscription-below-1", "hardware check {tmp}/sys.toml", "oversubscription", "0.5", "[1, ",
         files={"sys.toml": system_toml("oversubscription = 1.0", "oversubscription = 0.5")}),
    case("hw-check-oversubscription-nan", "hardware check {tmp}/sys.toml", "oversubscription", "nan", "finite",
         files={"sys.toml": system_toml("oversubscription = 1.0", "oversubscription = nan")}),
    case("hw-check-topology-typo", "hardware check {tmp}/sys.toml", "'fattree'", "did you mean 'fat-tree'",
         files={"sys.toml": system_toml('"fat-tree"', '"fattree"')}),
    case("hw-check-absurd-nics", "hardware check {tmp}/sys.toml", "nics_per_node", "1000000000",
         files={"sys.toml": system_toml("nics_per_node = 8", "nics_per_node = 1e9")}),
    case("hw-check-unknown-device-ref", "hardware check {tmp}/sys.toml", "'h100-sxm5'",
         "did you mean 'h100-sxm5-80gb'", "sys.toml",
         files={"sys.toml": system_toml('"h100-sxm5-80gb"', '"h100-sxm5"')}),
    case("hw-check-link-of-wrong-kind", "hardware check {tmp}/sys.toml", "'h100-sxm5-80gb'", "expected a link",
         "sys.toml", files={"sys.toml": system_toml('link = "ib-ndr"', 'link = "h100-sxm5-80gb"')}),
    case("hw-check-deeply-nested", "hardware check {tmp}/lnk.toml", "lnk.toml", "nested too deeply",
         files={"lnk.toml": "a = " + "[" * 100_000 + "]" * 100_000 + "\n"}),

    # --- formula / models / validate -------------------------------------------------------------
    case("formula-list-bad-format", "formula list --format yaml", "--format", "'yaml'"),
    case("formula-show-unknown", "formula show ring_allreduce", "'ring_allreduce'",
         "did you mean 'ring_allreduce_time'"),
    case("formula-show-empty", "formula show ''", "unknown formula ''"),
    case("models-list-bad-format", "models list --format xml", "--format", "'xml'"),
    case("models-show-unknown", "models show gpt3-175", "'gpt3-175'", "did you mean 'gpt3-175b'"),
    case("models-show-missing-file", "models show {tmp}/nope.json", "nope.json", "no such file"),
    case("models-show-suffixless-file", "models show /proc/self/mem", "/proc/self/mem", ".json", ".toml"),
    case("validate-unknown-dataset", "validate --dataset narayanan2021-table-1", "'narayanan2021-table-1'",
         "did you mean 'narayanan2021-table1'"),
    case("validate-empty-dataset", "validate --dataset ''", "unknown dataset ''", "bundled:"),
    case("validate-bad-format", "validate --format tsv", "--format", "'tsv'"),

    # --- predict: names ---------------------------------------------------------------------------
    case("predict-unknown-model", "predict --model gpt3-175 --system dgx-a100", "'gpt3-175'",
         "did you mean 'gpt3-175b'"),
    case("predict-unknown-system", "predict --model gpt2-124m --system dgx-a10", "'dgx-a10'",
         "did you mean 'dgx-a100'"),
    case("predict-link-as-system", "predict --model gpt2-124m --system ib-hdr", "'ib-hdr'", "link",
         "expected a system or a device"),
    case("predict-unknown-stack", PRED + " --stack megatrn", "'megatrn'", "did you mean 'megatron'"),
    case("predict-no-model", "predict --system dgx-a100", "--model", "required"),
    case("predict-no-system", "predict --model gpt2-124m", "--system"),
    case("predict-unknown-option", PRED + " --frobnicate 2", "--frobnicate"),
    case("predict-bad-format", PRED + " --format xml", "--format", "'xml'"),
    # --- predict: every plan flag -----------------------------------------------------------------
    case("predict-devices-zero", PRED + " --devices 0", "--devices"),
    case("predict-devices-negative", PRED + " --devices -8", "--devices", "-8"),
    case("predict-devices-nan", PRED + " --devices nan", "--devices", "'nan'"),
    case("predict-devices-absurd", PRED + " --devices 99999999999999999999999", "--devices", "10000000"),
    case("predict-tp-not-dividing-devices", PRED + " --devices 8 --tp 3", "devices 8", "tp", "3"),
    case("predict-product-mismatch", PRED + " --devices 8 --tp 2 --pp 2 --dp 3", "2 x 2 x 3 = 12", "devices is 8"),
    case("predict-tp-not-dividing-heads", PRED + " --devices 8 --tp 8 --heads 6", "tensor parallelism 8",
         "6 attention heads"),
    case("predict-pp-above-layers", PRED + " --devices 8 --pp 8 --layers 6", "6 layers", "pp = 8"),
    case("predict-batch-not-divisible", PRED + " --devices 8 --global-batch 12", "global batch 12",
         "micro-batch x dp"),
    case("predict-micro-batch-not-dividing", PRED + " --devices 8 --global-batch 8 --micro-batch 3",
         "global batch 8", "3 x 8 = 24"),
    case("predict-more-devices-than-a-device", "predict --model gpt2-124m --system h100-sxm5-80gb --devices 2",
         "h100-sxm5-80gb", "no network", "2"),
    case("predict-micro-batch-zero", PRED + " --micro-batch 0", "--micro-batch"),
    case("predict-global-batch-absurd", PRED + " --global-batch 12345678901", "--global-batch", "12345678901"),
    case("predict-seq-negative", PRED + " --seq -2048", "--seq", "-2048"),
    case("predict-dtype", PRED + " --dtype fp64", "--dtype", "'fp64'", "bf16"),
    case("predict-recompute", PRED + " --recompute partial", "--recompute", "'partial'", "selective"),
    case("predict-schedule", PRED + " --schedule zb", "--schedule", "'zb'", "1f1b"),
    case("predict-zero-stage", PRED + " --zero 4", "--zero", "3"),
    case("predict-grad-sync", PRED + " --grad-sync ring", "--grad-sync", "'ring'", "allreduce"),
    case("predict-optimizer", PRED + " --optimizer adam", "--optimizer", "'adam'", "adamw"),
    case("predict-sequence-parallel-without-tp", PRED + " --sequence-parallel", "sequence parallelism", "tp > 1"),
    case("predict-virtual-stages-without-interleaved", PRED + " --virtual-stages 2", "virtual stages 2",
         "interleaved"),
    case("predict-interleaved-microbatches", PRED + " --devices 8 --pp 2 --schedule interleaved --virtual-stages 2",
         "interleaved", "micro-batches", "pp (2)"),
    case("predict-overlap-bad-value", PRED + " --overlap=yes", "--overlap"),
    # --- predict: model overrides -----------------------------------------------------------------
    case("predict-hidden-not-divisible-by-heads", PRED + " --hidden 770", "--heads", "--hidden=770", "12"),
    case("predict-kv-heads", PRED + " --kv-heads 5", "--kv-heads", "--heads=12", "5"),
    case("predict-vocab-zero", PRED + " --vocab 0", "--vocab"),
    case("predict-override-on-convnet", "predict --model resnet50 --system dgx-a100 --layers 10", "--layers",
         "transformer", "resnet50"),
    case("predict-tp-on-convnet", "predict --model resnet50 --system dgx-a100 --tp 2 --devices 2", "resnet50",
         "not a transformer", "tp = pp = 1"),
    # --- predict: Hugging Face config.json ----------------------------------------------------------
    case("hf-malformed-json", "predict --model {tmp}/c.json --system dgx-a100", "c.json", "malformed JSON",
         "line 1", files={"c.json": '{"model_type": "gpt2", "n_layer": 12, '}),
    case("hf-empty-json", "models show {tmp}/c.json", "c.json", "malformed JSON", files={"c.json": ""}),
    case("hf-not-utf8", "models show {tmp}/c.json", "c.json", "cannot read", files={"c.json": b"\xff\xfe\x00x"}),
    case("hf-top-level-list", "models show {tmp}/c.json", "c.json", "expected a table", files={"c.json": "[1, 2]"}),
    case("hf-model-type-typo", "predict --model {tmp}/c.json --system dgx-a100", "model_type", '"gtp2"',
         "did you mean 'gpt2'", files={"c.json": hf_json(model_type="gtp2")}),
    case("hf-missing-key", "models show {tmp}/c.json", "c.json", "'n_head'", "missing",
         files={"c.json": hf_json(n_head=None)}),
    case("hf-heads-not-dividing", "predict --model {tmp}/c.json --system dgx-a100", "n_head", "n_embd=768", "7",
         files={"c.json": hf_json(n_head=7)}),
    case("hf-negative", "models show {tmp}/c.json", "n_layer", "-3", "positive integer",
         files={"c.json": hf_json(n_layer=-3)}),
    case("hf-string-number", "models show {tmp}/c.json", "n_embd", '"768"', "integer",
         files={"c.json": hf_json(n_embd="768")}),
    case("hf-bool-number", "models show {tmp}/c.json", "n_layer", "true", "integer",
         files={"c.json": hf_json(n_layer=True)}),
    case("hf-nan", "models show {tmp}/c.json", "n_layer", "NaN",
         files={"c.json": sub(hf_json(), '"n_layer": 12', '"n_layer": NaN')}),
    case("hf-infinity", "models show {tmp}/c.json", "n_layer", "Infinity",
         files={"c.json": sub(hf_json(), '"n_layer": 12', '"n_layer": Infinity')}),
    case("hf-absurd-layers", "predict --model {tmp}/c.json --system dgx-a100", "n_layer",
         "1000000000000000000000000000000", files={"c.json": hf_json(n_layer=10**30)}),
    case("hf-deeply-nested", "models show {tmp}/c.json", "c.json", "nested too deeply",
         files={"c.json": "[" * 100_000 + "]" * 100_000}),
    # --- predict: TOML model files ------------------------------------------------------------------
    case("toml-model-malformed", "predict --model {tmp}/m.toml --system dgx-a100", "m.toml", "malformed TOML",
         "line 7", files={"m.toml": MODEL_TOML + "hidden = \n"}),
    case("toml-model-duplicate-key", "models show {tmp}/m.toml", "m.toml", "malformed TOML",
         files={"m.toml": MODEL_TOML + "hidden = 512\n"}),
    case("toml-model-unknown-key", "models show {tmp}/m.toml", "'hiden'", "did you mean 'hidden'",
         files={"m.toml": MODEL_TOML + "hiden = 512\n"}),
    case("toml-model-missing-key", "models show {tmp}/m.toml", "'heads'", "missing",
         files={"m.toml": model_toml("heads = 4\n", "")}),
    case("toml-model-type-typo", "models show {tmp}/m.toml", '"transfomer"', "did you mean 'transformer'",
         files={"m.toml": model_toml('"transformer"', '"transfomer"')}),
    case("toml-model-nan", "models show {tmp}/m.toml", "layers", "NaN", "positive integer",
         files={"m.toml": model_toml("layers = 4", "layers = nan")}),
    case("toml-model-inf", "models show {tmp}/m.toml", "hidden", "Infinity",
         files={"m.toml": model_toml("hidden = 256", "hidden = inf")}),
    case("toml-model-unit-string", "models show {tmp}/m.toml", "seq", '"128 GB"', "positive integer",
         files={"m.toml": model_toml("seq = 128", 'seq = "128 GB"')}),
    case("toml-model-heads", "predict --model {tmp}/m.toml --system dgx-a100", "heads", "hidden=256", "5",
         files={"m.toml": model_toml("heads = 4", "heads = 5")}),
    case("toml-model-seq-over-positions", "models show {tmp}/m.toml", "seq", "max_positions=64", "128",
         files={"m.toml": MODEL_TOML + "max_positions = 64\n"}),
    case("toml-model-choice", "models show {tmp}/m.toml", "mlp", '"swigloo"', "did you mean 'swiglu'",
         files={"m.toml": MODEL_TOML + 'mlp = "swigloo"\n'}),
    case("toml-model-resnet-blocks", "models show {tmp}/m.toml", "blocks", "4 positive integers", "[3, 4, 6]",
         files={"m.toml": 'type = "resnet"\nblock = "bottleneck"\nblocks = [3, 4, 6]\n'}),
    case("toml-model-convnet-channels", "predict --model {tmp}/m.toml --system dgx-a100", "in_channels",
         "expected 3", "4", files={"m.toml": 'type = "convnet"\ninput = [3, 32, 32]\n[[layers]]\ntype = "conv2d"\n'
                                             'in_channels = 4\nout_channels = 8\nkernel = 3\n'}),
    case("toml-model-mlp-empty", "models show {tmp}/m.toml", "widths", "[]",
         files={"m.toml": 'type = "mlp"\nwidths = []\n'}),
    case("toml-model-convnet-no-layers", "predict --model {tmp}/m.toml --system dgx-h100 --devices 8", "layers",
         "at least one layer", files={"m.toml": 'type = "convnet"\ninput = [1, 8, 8]\nlayers = []\n'}),
    case("toml-model-convnet-no-parameters", "optimize --model {tmp}/m.toml --system dgx-a100 --devices 8 --global-batch 16",
         "no layer has parameters", "nothing to train",
         files={"m.toml": 'type = "convnet"\ninput = [1, 8, 8]\n[[layers]]\ntype = "relu"\n'}),
    case("predict-tasks-with-plan-flags", "predict --tasks {tmp}/t.toml --system dgx-h100 --model gpt2-124m --tp 2",
         "--tasks FILE", "--tp", "--model", "cannot be applied", files={"t.toml": "irrelevant"}),
    # --- predict: system, stack and task-graph files -----------------------------------------------
    case("system-file-missing", "predict --model gpt2-124m --system {tmp}/sys.toml", "sys.toml", "no such file"),
    case("system-file-is-dir", "predict --model gpt2-124m --system {tmp}/sys.toml", "sys.toml", "directory",
         files={"sys.toml": DIR}),
    case("system-file-bad-value", "predict --model gpt2-124m --system {tmp}/sys.toml", "sys.toml", "nvswich",
         "did you mean 'nvswitch'", files={"sys.toml": system_toml('kind = "nvswitch"', 'kind = "nvswich"')}),
    case("system-file-is-a-link", "predict --model gpt2-124m --system {tmp}/lnk.toml", "lnk.toml", "link",
         "expected a system or a device", files={"lnk.toml": LINK_TOML}),
    case("stack-file-missing", PRED + " --stack {tmp}/st.toml", "st.toml", "no such file"),
    case("stack-file-unreadable", PRED + " --stack /proc/self/mem", "/proc/self/mem", "cannot read"),
    case("stack-attention", PRED + " --stack {tmp}/st.toml", "attention", "'flsh'", "did you mean 'flash'",
         files={"st.toml": stack_toml('attention = "flash"', 'attention = "flsh"')}),
    case("stack-scale-over-1", PRED + " --stack {tmp}/st.toml", "gemm_rate_scale", "'150 %'", "(0, 1]",
         files={"st.toml": stack_toml('"100 %"', '"150 %"')}),
    case("stack-launch-overhead-unit", PRED + " --stack {tmp}/st.toml", "launch_overhead", "'6.76 GB' (a size)",
         "a time", files={"st.toml": stack_toml('"6.76 us"', '"6.76 GB"')}),
    case("stack-bytes-per-param-inf", PRED + " --stack {tmp}/st.toml", "bytes_per_param", "inf",
         files={"st.toml": stack_toml('value = "32.6"', 'value = "1e400"')}),
    case("stack-unknown-key", PRED + " --stack {tmp}/st.toml", "tp_comm_overlapp", "did you mean 'tp_comm_overlap'",
         files={"st.toml": stack_toml("tp_comm_overlap = false", "tp_comm_overlap = false\ntp_comm_overlapp = 1")}),
    case("stack-name-not-stem", PRED + " --stack {tmp}/other.toml", "other.toml", "'other'", "'st'",
         files={"other.toml": stack_toml("attention", "attention")}),
    case("tasks-unknown-name", "predict --tasks recsys-stp --system dgx-a100", "'recsys-stp'",
         "did you mean 'recsys-step'"),
    case("tasks-missing-file", "predict --tasks {tmp}/tg.toml --system dgx-a100", "tg.toml", "not found"),
    case("tasks-dir", "predict --tasks {tmp}/tg.toml --system dgx-a100", "tg.toml", "directory",
         files={"tg.toml": DIR}),
    case("tasks-malformed", "predict --tasks {tmp}/tg.toml --system dgx-a100", "tg.toml", "TOML",
         files={"tg.toml": "[[task]\n"}),
    case("tasks-empty", "predict --tasks {tmp}/tg.toml --system dgx-a100", "tg.toml", "no tasks",
         files={"tg.toml": ""}),
    case("tasks-wrong-unit", "predict --tasks {tmp}/tg.toml --system dgx-a100", "flops", "'1 TB/s' (a bandwidth)",
         "FLOP count", files={"tg.toml": tasks_toml('flops = "1 TFLOP"', 'flops = "1 TB/s"')}),
    case("tasks-negative", "predict --tasks {tmp}/tg.toml --system dgx-a100", "flops", "-1 TFLOP", "non-negative",
         files={"tg.toml": tasks_toml('flops = "1 TFLOP"', 'flops = "-1 TFLOP"')}),
    case("tasks-inf", "predict --tasks {tmp}/tg.toml --system dgx-a100", "flops", "inf", "finite",
         files={"tg.toml": tasks_toml('flops = "1 TFLOP"', "flops = inf")}),
    case("tasks-device-kind", "predict --tasks {tmp}/tg.toml --system dgx-a100", "'gpux'", "did you mean 'gpu'",
         files={"tg.toml": tasks_toml('["gpu"]', '["gpux"]')}),
    case("tasks-unknown-edge-end", "predict --tasks {tmp}/tg.toml --system dgx-a100", "[[edge]]", "'c'",
         files={"tg.toml": tasks_toml('to = "b"', 'to = "c"')}),
    case("tasks-cycle", "predict --tasks {tmp}/tg.toml --system dgx-a100", "cycle", "a -> b -> a",
         files={"tg.toml": TASKS_TOML + '[[edge]]\nfrom = "b"\nto = "a"\n'}),
    case("tasks-duplicate", "predict --tasks {tmp}/tg.toml --system dgx-a100", "duplicate", "'a'",
         files={"tg.toml": TASKS_TOML + '[[task]]\nname = "a"\nflops = 1\nbytes = 1\n'}),
    case("tasks-unknown-key", "predict --tasks {tmp}/tg.toml --system dgx-a100", "'flopz'", "did you mean 'flops'",
         files={"tg.toml": tasks_toml('flops = "1 TFLOP"', 'flopz = "1 TFLOP"')}),
    case("tasks-no-worker", "predict --tasks recsys-step --system cpu-cluster", "'user-tower-fwd'", "no worker",
         "cpu-cluster"),

    # --- crossover --------------------------------------------------------------------------------
    case("crossover-scheme", "crossover --model gpt2-1.5b --system dgx-h100 --scheme ep --solve-for devices",
         "--scheme", "'ep'", "dp"),
    case("crossover-solve-for", "crossover --model gpt2-1.5b --system dgx-h100 --scheme dp --solve-for workers",
         "--solve-for", "'workers'", "micro-batch"),
    case("crossover-unknown-system", "crossover --model gpt2-1.5b --system dgx-h10 --scheme dp --solve-for devices "
         "--plot {tmp}/x.png", "'dgx-h10'", "did you mean 'dgx-h100'"),
    case("crossover-plot-suffix", XOVER + " --plot {tmp}/x.pdf", "x.pdf", ".png or .svg"),
    case("crossover-plot-missing-folder", XOVER + " --plot {tmp}/no/x.png", "no/x.png"),
    case("crossover-plot-is-dir", XOVER + " --plot {tmp}/x.png", "x.png", files={"x.png": DIR}),
    case("crossover-plot-folder-is-a-file", XOVER + " --plot {tmp}/f/x.png", "--plot", "f/x.png", "not a folder",
         files={"f": "a file"}),
    case("crossover-plot-name-too-long", XOVER + " --plot {tmp}/" + "x" * 300 + ".png", "--plot", "304 bytes",
         "255"),
    case("crossover-tp-on-convnet", "crossover --model resnet50 --system dgx-h100 --scheme tp --solve-for devices",
         "resnet50", "not a transformer"),
    case("crossover-inconsistent-plan", "crossover --model gpt2-1.5b --system dgx-h100 --scheme tp --solve-for "
         "devices --tp 3 --devices 8", "devices 8", "3"),
    case("crossover-no-crossover", "crossover --model gpt2-1.5b --system h100-sxm5-80gb --scheme dp --solve-for "
         "bandwidth", "no crossover", "dp = 1 at this operating point", "nothing to communicate"),

    # --- compare devices | topologies | pcie -------------------------------------------------------
    case("cmpdev-unknown-device", "compare devices --model resnet50 --devices-list xeon-8480p,h100-sxm5 --link "
         "eth-100g --workers 1,2", "'h100-sxm5'", "did you mean 'h100-sxm5-80gb'"),
    case("cmpdev-unknown-link", "compare devices --model resnet50 --devices-list h100-sxm5-80gb --link eth-100 "
         "--workers 1,2", "'eth-100'", "did you mean 'eth-100g'"),
    case("cmpdev-unknown-topology", CMPDEV + " --topology torusx", "'torusx'", "did you mean 'torus'"),
    case("cmpdev-system-as-device", "compare devices --model resnet50 --devices-list dgx-a100 --link eth-100g "
         "--workers 1,2", "'dgx-a100'", "expected a device"),
    case("cmpdev-empty-devices", "compare devices --model resnet50 --devices-list ,,, --link eth-100g --workers 1,2",
         "at least one device"),
    case("cmpdev-workers-text", CMPDEV + " --workers 1,two,4", "--workers", "'1,two,4'", "integers"),
    case("cmpdev-workers-zero", CMPDEV + " --workers 0,2", "--workers", "'0,2'", "[1, "),
    case("cmpdev-workers-empty", CMPDEV + " --workers ''", "--workers", "''"),
    case("cmpdev-workers-absurd", CMPDEV + " --workers 1,2,99999999", "--workers", "99999999"),
    case("cmpdev-batch-not-divisible", CMPDEV + " --global-batch 3", "global batch 3", "2 workers"),
    case("cmpdev-scheme", CMPDEV + " --scheme pp", "--scheme", "'pp'"),
    case("cmpdev-tp-heads", "compare devices --model gpt2-124m --devices-list h100-sxm5-80gb --link eth-100g "
         "--workers 1,5 --scheme tp", "tensor parallelism 5", "12 attention heads"),
    case("cmpdev-plot-suffix", CMPDEV + " --plot {tmp}/x.gif", "x.gif", ".png or .svg"),
    case("cmpdev-plot-missing-folder", CMPDEV + " --plot {tmp}/no/x.svg", "no/x.svg"),
    case("cmpdev-plot-is-dir", CMPDEV + " --plot {tmp}/x.svg", "--plot", "x.svg", "directory",
         files={"x.svg": DIR}),
    case("topo-collective", "compare topologies --collective allreduc --size '1 GiB' --nodes 64 --link ib-hdr",
         "--collective", "'allreduc'", "allreduce"),
    case("topo-size-wrong-dimension", TOPO + " --size '1 GiB/s'", "--size", "'1 GiB/s' (a bandwidth)", "a size"),
    case("topo-size-zero", TOPO + " --size '0 B'", "--size", "'0 B'", "positive"),
    case("topo-size-negative", TOPO + " --size '-1 GiB'", "--size", "'-1 GiB'", "non-negative"),
    case("topo-size-no-unit", TOPO + " --size 1024", "--size", "'1024'", "no unit"),
    case("topo-size-inf", TOPO + " --size '1e999 B'", "--size", "'1e999 B'", "finite"),
    case("topo-size-nan", TOPO + " --size 'nan GiB'", "--size", "'nan GiB'"),
    case("topo-hop-latency-wrong-dimension", TOPO + " --size '1 GiB' --hop-latency '1 GB'", "--hop-latency",
         "'1 GB' (a size)"),
    case("topo-hop-latency-negative", TOPO + " --size '1 GiB' --hop-latency '-1 us'", "--hop-latency", "'-1 us'"),
    case("topo-nodes-one", "compare topologies --collective allreduce --size '1 GiB' --nodes 1 --link ib-hdr",
         "--nodes"),
    case("topo-unknown-link", "compare topologies --collective allreduce --size '1 GiB' --nodes 64 --link ib-hd",
         "'ib-hd'", "did you mean 'ib-hdr'"),
    case("topo-system-as-link", "compare topologies --collective allreduce --size '1 GiB' --nodes 64 --link "
         "dgx-a100", "'dgx-a100'", "expected a link"),
    case("topo-unknown-intra-link", TOPO + " --size '1 GiB' --intra-link nvlnk4", "'nvlnk4'",
         "did you mean 'nvlink4'"),
    case("topo-plot-missing-folder", TOPO + " --size '1 GiB' --plot {tmp}/no/x.png", "no/x.png"),
    case("topo-plot-is-dir", TOPO + " --size '1 GiB' --plot {tmp}/x.png", "--plot", "x.png", "directory",
         files={"x.png": DIR}),
    case("pcie-unknown-model", "compare pcie --model megatron-1.7 --system pcie-8gpu", "'megatron-1.7'",
         "did you mean 'megatron-1.7b'"),
    case("pcie-not-a-pcie-tree", "compare pcie --model megatron-1.7b --system dgx-a100", "dgx-a100", "nvswitch",
         "PCIe tree"),
    case("pcie-micro-batch-zero", "compare pcie --model megatron-1.7b --micro-batch 0", "--micro-batch"),
    case("pcie-batch-not-divisible", "compare pcie --model megatron-1.7b --global-batch 3 --micro-batch 2",
         "global batch 3", "micro-batch"),

    # --- optimize ---------------------------------------------------------------------------------
    case("optimize-missing-batch", "optimize --model gpt2-124m --system dgx-a100 --devices 8", "--global-batch"),
    case("optimize-top-zero", "optimize --model gpt2-124m --system dgx-a100 --devices 8 --global-batch 8 --top 0",
         "--top"),
    case("optimize-unknown-stack", "optimize --model gpt2-124m --system dgx-a100 --devices 8 --global-batch 8 "
         "--stack megatorn", "'megatorn'", "did you mean 'megatron'"),
    case("optimize-does-not-fit", "optimize --model gpt3-175b --system h100-sxm5-80gb --devices 1 --global-batch 1",
         "gpt3-175b", "fits in device memory"),
    case("optimize-tp-not-dividing", "optimize --model gpt2-124m --system dgx-a100 --devices 8 --global-batch 8 "
         "--tp 3", "no valid plan", "tp"),
    case("optimize-tp-above-devices", "optimize --model gpt2-124m --system dgx-a100 --devices 8 --global-batch 8 "
         "--tp 16", "no valid plan", "16"),
    case("optimize-device-as-system", "optimize --model gpt2-124m --system h100-sxm5-80gb --devices 8 "
         "--global-batch 8", "h100-sxm5-80gb", "8"),
    case("optimize-prime-device-count", "optimize --model gpt2-124m --system dgx-a100 --devices 1019 --global-batch 8",
         "no valid plan", "1019 = 1019", "960 devices split many more ways"),
    case("optimize-one-device-no-plan", "optimize --model gpt2-124m --system dgx-a100 --devices 1 --global-batch 8 --tp 2",
         "no valid plan", "tp"),
    case("optimize-virtual-stages-1f1b", "optimize --model gpt2-124m --system dgx-a100 --devices 8 --global-batch 8 "
         "--virtual-stages 2 --schedule 1f1b", "no valid plan", "interleaved"),

    # --- sweep ------------------------------------------------------------------------------------
    case("sweep-empty-grid", SWEEP + " --grid '' --out {tmp}/o.csv", "empty grid", "tp=1,2"),
    case("sweep-empty-entry", SWEEP + " --grid ';'", "empty entry"),
    case("sweep-no-values", SWEEP + " --grid 'tp='", "'tp'", "no values"),
    case("sweep-no-equals", SWEEP + " --grid tp", "'tp'", "key=v1,v2"),
    case("sweep-empty-value", SWEEP + " --grid 'tp=1,,2'", "'tp'", "empty value"),
    case("sweep-key-twice", SWEEP + " --grid 'tp=1,2;tp=4'", "'tp'", "twice"),
    case("sweep-value-twice", SWEEP + " --grid 'tp=1,2,2'", "'tp'", "2 twice"),
    case("sweep-unknown-key", SWEEP + " --grid 'tpp=1,2' --out {tmp}/o.csv", "'tpp'", "did you mean 'tp'"),
    case("sweep-unknown-hw-key", SWEEP + " --grid 'network.link.bandwith=100 Gb/s'", "'network.link.bandwith'",
         "did you mean 'network.link.bandwidth'"),
    case("sweep-zero", SWEEP + " --grid 'tp=0,2'", "'tp'", "got 0", "[1, "),
    case("sweep-fraction", SWEEP + " --grid tp=1.5", "'tp'", "'1.5'", "integer"),
    case("sweep-nan", SWEEP + " --grid tp=nan", "'tp'", "'nan'"),
    case("sweep-inf", SWEEP + " --grid tp=inf", "'tp'", "'inf'"),
    case("sweep-absurd", SWEEP + " --grid tp=99999999999999999999", "'tp'", "99999999999999999999"),
    case("sweep-choice", SWEEP + " --grid 'recompute=none,partial'", "'recompute'", "'partial'", "selective"),
    case("sweep-bool", SWEEP + " --grid sequence_parallel=maybe", "'sequence_parallel'", "'maybe'", "true or false"),
    case("sweep-hw-wrong-dimension", SWEEP + " --grid 'network.link.bandwidth=100 GB'", "'100 GB' (a size)",
         "a bandwidth"),
    case("sweep-hw-negative", SWEEP + " --grid 'network.link.bandwidth=-100 Gb/s'", "'-100 Gb/s'", "non-negative"),
    case("sweep-hw-zero", SWEEP + " --grid 'network.link.bandwidth=0 Gb/s'", "'0 Gb/s'", "positive"),
    case("sweep-hw-inf", SWEEP + " --grid 'network.link.bandwidth=1e999 Gb/s'", "'1e999 Gb/s'", "finite"),
    case("sweep-hw-no-unit", SWEEP + " --grid network.link.latency=5", "'5'", "no unit"),
    case("sweep-hw-key-without-network", "sweep --model gpt2-124m --system h100-sxm5-80gb --grid "
         "'network.link.bandwidth=100 Gb/s'", "h100-sxm5-80gb", "no network"),
    case("sweep-hw-key-on-convnet", "sweep --model resnet50 --system dgx-a100 --grid 'network.link.bandwidth=100 "
         "Gb/s' --out {tmp}/o.csv", "resnet50", "transformer"),
    case("sweep-grid-and-fixed", SWEEP + " --grid tp=1,2 --tp 2", "'tp'", "both"),
    case("sweep-unknown-system-with-out", "sweep --model gpt2-124m --system dgx-a10 --grid tp=1,2 --out {tmp}/o.csv",
         "'dgx-a10'", "did you mean 'dgx-a100'"),
    case("sweep-engine", SWEEP + " --grid tp=1,2 --engine spark", "--engine", "'spark'", "dask"),
    case("sweep-out-suffix", SWEEP + " --grid tp=1,2 --out {tmp}/o.txt", "--out", "o.txt", ".csv or .parquet"),
    case("sweep-out-missing-folder", SWEEP + " --grid tp=1,2 --out {tmp}/no/o.csv", "--out", "does not exist"),
    case("sweep-out-is-dir", SWEEP + " --grid tp=1,2 --out {tmp}/o.csv", "--out", "o.csv", files={"o.csv": DIR}),
    case("sweep-out-name-too-long", SWEEP + " --grid tp=1,2 --out {tmp}/" + "o" * 300 + ".csv", "--out"),
    case("sweep-out-folder-is-a-file", SWEEP + " --grid tp=1,2 --out {tmp}/f/o.csv", "--out", "not a folder",
         files={"f": "a file"}),

    # --- calibrate nccl | gemm ----------------------------------------------------------------------
    case("nccl-missing-file", "calibrate nccl {tmp}/n.txt --system dgx-h100 --out {tmp}/cal.toml", "n.txt",
         "no such file"),
    case("nccl-dir", "calibrate nccl {tmp}/n.txt --system dgx-h100 --out {tmp}/cal.toml", "n.txt", "directory",
         files={"n.txt": DIR}),
    case("nccl-unreadable", "calibrate nccl /proc/self/mem --system dgx-h100 --out {tmp}/cal.toml",
         "/proc/self/mem", "cannot read"),
    case("nccl-garbage", "calibrate nccl {tmp}/n.txt --system dgx-h100 --out {tmp}/cal.toml", "n.txt:1:",
         "expected 12 or 13 fields", "'hello world'", files={"n.txt": "hello world\n"}),
    case("nccl-only-comments", "calibrate nccl {tmp}/n.txt --system dgx-h100 --out {tmp}/cal.toml", "n.txt",
         "no data rows", files={"n.txt": "# nccl-tests\n#\n"}),
    case("nccl-truncated", "calibrate nccl {tmp}/n.txt --system dgx-h100 --out {tmp}/cal.toml", "n.txt:", "fields",
         files={"n.txt": lambda: P5.read_text()[:3000]}),
    case("nccl-nan-time", "calibrate nccl {tmp}/n.txt --system dgx-h100 --out {tmp}/cal.toml", "n.txt:",
         "not finite", "'nan'", "67108864", files={"n.txt": nccl_text("   601.5  111.57", "     nan  111.57")}),
    case("nccl-bad-count", "calibrate nccl {tmp}/n.txt --system dgx-h100 --out {tmp}/cal.toml", "count",
         "'1677721x'", files={"n.txt": nccl_text("      16777216     float", "      1677721x     float")}),
    case("nccl-time-contradicts-algbw", "calibrate nccl {tmp}/n.txt --system dgx-h100 --out {tmp}/cal.toml",
         "n.txt:", "67108864", "1e308", "111.57", files={"n.txt": nccl_text("   601.5  111.57", "   1e308  111.57")}),
    case("nccl-unknown-system", NCCL.replace("dgx-h100", "dgx-h10"), "'dgx-h10'", "did you mean 'dgx-h100'"),
    case("nccl-device-as-system", NCCL.replace("dgx-h100", "h100-sxm5-80gb"), "h100-sxm5-80gb", "expected a system"),
    case("nccl-gpus-one", NCCL + " --gpus 1", "--gpus"),
    case("nccl-min-size-wrong-dimension", NCCL + " --min-size '64 MiB/s'", "--min-size", "a size"),
    case("nccl-min-size-negative", NCCL + " --min-size -5MiB", "--min-size", "'-5MiB'"),
    case("nccl-min-size-nan", NCCL + " --min-size nan", "--min-size", "'nan'"),
    case("nccl-max-below-min", NCCL + " --max-size 1MiB", "--max-size 1MiB", "--min-size 16MiB"),
    case("nccl-out-not-toml", "calibrate nccl {p5} --system dgx-h100 --out {tmp}/cal.json", "--out", ".toml"),
    case("nccl-out-missing-folder", "calibrate nccl {p5} --system dgx-h100 --out {tmp}/no/cal.toml", "--out",
         "does not exist"),
    case("gemm-missing-file", GEMM, "g.csv", "no such file"),
    case("gemm-dir", GEMM, "g.csv", "directory", files={"g.csv": DIR}),
    case("gemm-empty", GEMM, "g.csv", "empty", files={"g.csv": ""}),
    case("gemm-not-utf8", GEMM, "g.csv", "UTF-8", files={"g.csv": b"\xff\xfe\x00\x00"}),
    case("gemm-wrong-separator", GEMM, "g.csv:1:", "missing column", files={"g.csv": "dtype;m;n;k\n"}),
    case("gemm-nan", GEMM, "g.csv:2:", "'nan'", "positive number",
         files={"g.csv": GEMM_HEADER + "bf16,8192,8192,8192,nan,nan,nan\n"}),
    case("gemm-zero-m", GEMM, "g.csv:2:", "'m'", "'0'", "positive integer",
         files={"g.csv": GEMM_HEADER + "bf16,0,8192,8192,1,1,1\n"}),
    case("gemm-unknown-dtype", GEMM, "g.csv:2:", "'bf17'", files={"g.csv": sub(GEMM_CSV, "\nbf16,", "\nbf17,")}),
    case("gemm-time-contradicts-rate", GEMM, "g.csv:2:", "disagrees",
         files={"g.csv": sub(GEMM_CSV, "1.44902", "144.902")}),
    case("gemm-above-peak", "calibrate gemm {tmp}/g.csv --device a100-sxm4-80gb --out {tmp}/cal.toml", "g.csv:2:",
         "758.79 TFLOP/s", "above the dense peak", "a100-sxm4-80gb", files={"g.csv": GEMM_CSV}),
    case("gemm-system-as-device", "calibrate gemm {tmp}/g.csv --device dgx-h100 --out {tmp}/cal.toml", "'dgx-h100'",
         "system", files={"g.csv": GEMM_CSV}),
    case("gemm-out-not-toml", "calibrate gemm {tmp}/g.csv --device h100-sxm5-80gb --out {tmp}/cal.json", "--out",
         ".toml", files={"g.csv": GEMM_CSV}),
    case("calibrate-unknown-subcommand", "calibrate frob x", "'frob'"),
    # --- results that would not be finite, rates above the peak (a fuzz run of 2026-12-05) ----------
    case("optimize-every-plan-not-finite", "optimize --model gpt2-124m --system {tmp}/sys.toml --devices 8 "
         "--global-batch 64", "'1e-300 B/s' is not a plausible value",
         files={"dev.toml": device_toml('"3.35 TB/s"', '"1e-300 B/s"'),
                "sys.toml": system_toml('device = "h100-sxm5-80gb"', 'device = "dev.toml"')}),
    case("tasks-makespan-not-finite", "predict --tasks {tmp}/t.toml --system {tmp}/sys.toml", "dev.toml",
         "'1e-300 B/s' is not a plausible value", files={"t.toml": TASKS_TOML, "dev.toml": device_toml('"3.35 TB/s"', '"1e-300 B/s"'),
                                       "sys.toml": system_toml('device = "h100-sxm5-80gb"', 'device = "dev.toml"')}),
    case("hw-check-gemm-above-peak", "hardware check {tmp}/dev.toml", "[gemm.bf16] points[0]", "5000 TFLOP/s",
         "above the dense peak", files={"dev.toml": DEVICE_TOML + '\n[gemm.bf16]\nsource = "test"\n'
                                                                  'points = [[8192, 8192, 8192, "5000 TFLOP/s"]]\n'}),
    case("hw-check-attention-above-peak", "hardware check {tmp}/dev.toml", "[attention.bf16] points[0]",
         "above the dense peak", files={"dev.toml": DEVICE_TOML + '\n[attention.bf16]\nsource = "test"\ncausal = true\n'
                                                                  'points = [[1, 8, 4096, 128, "2000 TFLOP/s", '
                                                                  '"500 TFLOP/s"]]\n'}),
    case("hw-check-achievable-above-peak", "hardware check {tmp}/dev.toml", "[matmul.achievable.bf16] rate",
         "above the dense bf16 peak", files={"dev.toml": DEVICE_TOML + '\n[matmul]\nunits = 132\nunits_source = "t"\n'
                                                                       'tile = [128, 128, 64]\ntile_source = "t"\n'
                                                                       '[matmul.achievable.bf16]\n'
                                                                       'rate = { value = "5000 TFLOP/s", source = "t" }\n'}),
    case("hw-check-in-network-reduction-range", "hardware check {tmp}/sys.toml", "[fabric] in_network_reduction",
         "'200 %'", files={"sys.toml": system_toml('source = "test"\n\n[network]',
                                                   'in_network_reduction = { value = "200 %", source = "t" }\n'
                                                   'source = "test"\n\n[network]')}),
]

# a few cases again through a real `python -m perfmodel` process
SUBPROCESS_CASES = ["hw-show-unknown", "hw-check-size-for-bandwidth", "predict-product-mismatch", "hf-model-type-typo",
                    "sweep-unknown-key", "topo-size-wrong-dimension", "nccl-garbage", "crossover-plot-suffix"]


# --- harness --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


def materialize(files: Mapping[str, object], tmp: Path) -> None:
    for name, content in files.items():
        path = tmp / name
        if content is DIR:
            path.mkdir()
        elif isinstance(content, Symlink):
            path.symlink_to(content.target)
        else:
            content = content() if callable(content) else content
            path.write_bytes(content if isinstance(content, bytes) else content.encode())


def expand(argv: str, tmp: Path) -> list[str]:
    places = {"{tmp}": str(tmp), "{p5}": str(P5), "{gemm}": str(tmp / "g.csv")}
    out = []
    for arg in shlex.split(argv):
        for key, value in places.items():
            arg = arg.replace(key, value)
        out.append(arg)
    return out


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def run_in_process(argv: list[str], capsys) -> Result:
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def run_subprocess(argv: list[str], cwd: Path, timeout: float = 60) -> Result:
    env = {k: v for k, v in os.environ.items() if k != "PERFMODEL_DEBUG"}
    r = subprocess.run([sys.executable, "-m", "perfmodel", *argv], check=False, capture_output=True, text=True,
                       cwd=cwd, env=env, timeout=timeout)
    return Result(r.returncode, r.stdout, r.stderr)


def assert_clean_failure(r: Result, expect=(), show: str = "") -> None:
    """Exit 2, nothing on stdout, exactly one line ``error: ...`` on stderr holding every fragment."""
    context = f"{show}\nexit {r.code}\nstdout: {r.out[:2000]!r}\nstderr: {r.err[:2000]!r}"
    assert r.code == 2, context
    assert "Traceback" not in r.err, context
    assert r.out == "", context
    assert r.err.startswith("error: ") and r.err.endswith("\n") and r.err.count("\n") == 1, context
    for fragment in expect:
        assert fragment in r.err, f"missing {fragment!r}:{context}"


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PERFMODEL_DEBUG", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


# --- the corpus tests -----------------------------------------------------------------------------


@pytest.mark.parametrize("c", CASES)
def test_bad_input(c: Case, workdir, capsys):
    materialize(c.files, workdir)
    before = listing(workdir)
    argv = expand(c.argv, workdir)
    r = run_in_process(argv, capsys)
    assert_clean_failure(r, c.expect, show="perfmodel " + shlex.join(argv))
    assert listing(workdir) == before, "a failed command wrote files"


def test_corpus_size_and_coverage():
    """Issue 7: at least 60 bad inputs, across every command."""
    ids = [p.id for p in CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    assert len(CASES) >= 60
    commands = {" ".join(shlex.split(p.values[0].argv)[:2]) if shlex.split(p.values[0].argv)[0] in
                ("hardware", "formula", "models", "compare", "calibrate") else shlex.split(p.values[0].argv)[0]
                for p in CASES}
    for command in ("hardware list", "hardware show", "hardware check", "formula list", "formula show", "models list",
                    "models show", "predict", "crossover", "compare devices", "compare topologies", "compare pcie",
                    "optimize", "sweep", "validate", "calibrate nccl", "calibrate gemm"):
        assert command in commands, f"no bad-input case for `perfmodel {command}`"


@pytest.mark.parametrize("case_id", SUBPROCESS_CASES)
def test_bad_input_in_a_real_process(case_id, tmp_path):
    c = next(p.values[0] for p in CASES if p.id == case_id)
    materialize(c.files, tmp_path)
    before = listing(tmp_path)
    argv = expand(c.argv, tmp_path)
    r = run_subprocess(argv, tmp_path)
    assert_clean_failure(r, c.expect, show="perfmodel " + shlex.join(argv))
    assert listing(tmp_path) == before


def test_task_graph_on_absurdly_many_devices(tmp_path):
    """--devices 10^7 (the flag's bound) for a 10-task graph: refused at once, or answered fast. It is answered: a
    schedule of n tasks only considers the workers it could ever pick (perfmodel.tasks.schedule, "Many devices"), while the
    bounds and worker counts are those of all 10^7 devices (HEFT over all of them was OOM-killed at 24 GB)."""
    try:
        r = run_subprocess(["predict", "--tasks", "recsys-step", "--system", "dgx-a100", "--devices", "10000000",
                            "--format", "json"], tmp_path, timeout=5)
    except subprocess.TimeoutExpired:
        pytest.fail("did not finish within 5 s")
    if r.code != 0:
        assert_clean_failure(r, ["--devices"])
        return
    obj = json.loads(r.out)
    assert r.err == "" and obj["n_workers"] == 10_000_000 + 1_250_000  # 10^7 GPUs and a host CPU per 8-GPU node
    assert obj["workers"]["a100-sxm4-80gb"] == 10_000_000 and len(obj["schedule"]) == 10
    assert obj["bounds"]["lower_bound_s"] <= obj["makespan_s"]


def test_hardware_check_reports_each_bad_file_on_its_own_line(workdir, capsys):
    """``check`` loads every file: one `ok` line per good file on stdout, one error line per bad file, exit 2."""
    materialize({"lnk.toml": LINK_TOML, "dev.toml": device_toml('"80 GB"', '"80 GB/s"'),
                 "sys.toml": system_toml("devices_per_node = 8", "devices_per_node = -8")}, workdir)
    r = run_in_process(["hardware", "check", "lnk.toml", "dev.toml", "sys.toml"], capsys)
    assert r.code == 2 and "Traceback" not in r.err
    assert r.out == "ok lnk.toml: link 'lnk'\n"
    lines = r.err.splitlines()
    assert len(lines) == 2 and all(line.startswith("error: ") for line in lines)
    assert "dev.toml [memory] capacity" in lines[0] and "'80 GB/s' (a bandwidth)" in lines[0]
    assert "sys.toml devices_per_node" in lines[1] and "-8" in lines[1]


def test_templates_are_valid(workdir, capsys):
    """Every template the corpus mutates loads cleanly, so each bad case is bad for its one change only."""
    materialize({"lnk.toml": LINK_TOML, "dev.toml": DEVICE_TOML, "sys.toml": SYSTEM_TOML, "m.toml": MODEL_TOML,
                 "c.json": hf_json(), "tg.toml": TASKS_TOML, "st.toml": stack_toml("attention", "attention"),
                 "g.csv": GEMM_CSV}, workdir)
    runs = [["hardware", "check", "lnk.toml", "dev.toml", "sys.toml"], ["models", "show", "m.toml"],
            ["models", "show", "c.json"], ["predict", "--tasks", "tg.toml", "--system", "dgx-a100"],
            ["predict", "--model", "gpt2-124m", "--system", "sys.toml", "--devices", "16", "--stack", "st.toml"],
            ["calibrate", "gemm", "g.csv", "--device", "h100-sxm5-80gb", "--out", "ok.toml", "--format", "json"]]
    for argv in runs:
        r = run_in_process(argv, capsys)
        assert r.code == 0 and r.err == "", (argv, r)


# --- a model that does not fit is an answer, not an error ---------------------------------------


def test_a_model_that_does_not_fit_is_not_an_error(workdir, capsys):
    argv = ["predict", "--model", "gpt3-175b", "--system", "h100-sxm5-80gb"]
    r = run_in_process([*argv, "--format", "json"], capsys)
    assert r.code == 0 and r.err == "", r
    obj = json.loads(r.out)
    assert obj["fits_in_memory"] is False
    assert obj["memory_bytes_per_device"]["total"] > obj["memory_capacity_bytes"] == 85017493504  # CUDA total, device.json
    table = run_in_process(argv, capsys)
    assert table.code == 0 and table.err == ""
    fits_line = next(line for line in table.out.splitlines() if "fits in memory" in line)
    assert "NO" in fits_line and "85 GB" in fits_line
    csv = run_in_process([*argv, "--format", "csv"], capsys)
    header, row = csv.out.splitlines()
    assert dict(zip(header.split(","), row.split(",")))["fits_in_memory"] == "False"


# --- the library raises the named errors --------------------------------------------------------

API_CASES = [
    pytest.param(lambda: pm.load_model("gpt3-175"), KeyError, ["'gpt3-175'", "did you mean 'gpt3-175b'"],
                 id="load_model-unknown"),
    pytest.param(lambda: pm.load_system("dgx-a10"), KeyError, ["did you mean 'dgx-a100'"], id="load_system-unknown"),
    pytest.param(lambda: pm.load_device("dgx-a100"), ValueError, ["system", "expected a device"],
                 id="load_device-of-a-system"),
    pytest.param(lambda: pm.load_link("ib-hd"), KeyError, ["did you mean 'ib-hdr'"], id="load_link-unknown"),
    pytest.param(lambda: pm.load_spec("/nonexistent/x.toml"), FileNotFoundError, ["no such file"],
                 id="load_spec-missing"),
    pytest.param(lambda: pm.parse_quantity("25 GB", "bandwidth"), ValueError, ["'25 GB' (a size)"],
                 id="parse_quantity-dimension"),
    pytest.param(lambda: pm.parse_quantity("nan GB/s", "bandwidth"), ValueError, ["'nan GB/s'"],
                 id="parse_quantity-nan"),
    pytest.param(lambda: pm.load_model("gpt2-124m", layers=0), ValueError, ["layers", "0"], id="override-zero"),
    pytest.param(lambda: pm.load_model("gpt2-124m", layers=float("inf")), ValueError, ["layers"], id="override-inf"),
    pytest.param(lambda: pm.load_model("gpt2-124m", hiden=5), ValueError, ["'hiden'", "did you mean 'hidden'"],
                 id="override-unknown"),
    pytest.param(lambda: pm.load_model("gpt2-124m", layers=10**30), ValueError, ["layers", "10000000000"],
                 id="override-absurd"),
    pytest.param(lambda: pm.predict("gpt2-124m", "dgx-a100", pm.Plan(devices=8, tp=3)), ValueError,
                 ["devices 8", "tp"], id="predict-inconsistent-plan"),
    pytest.param(lambda: pm.predict("gpt2-124m", "dgx-a100", pm.Plan(tp=0)), ValueError, ["tp", "0"],
                 id="plan-zero"),
    pytest.param(lambda: pm.predict("gpt2-124m", "dgx-a100", pm.Plan(tp=float("nan"))), ValueError, ["tp", "nan"],
                 id="plan-nan"),
    pytest.param(lambda: pm.predict("gpt2-124m", "dgx-a100", pm.Plan(dtype="fp64")), ValueError,
                 ["'fp64'", "bf16"], id="plan-dtype"),
    pytest.param(lambda: pm.predict("gpt2-124m", "dgx-a100", pm.Plan(devices=8, overlap="no")), ValueError,
                 ["overlap", "'no'"], id="plan-overlap-string"),
    pytest.param(lambda: pm.sweep("gpt2-124m", "dgx-a100", "tpp=1,2"), KeyError, ["'tpp'", "did you mean 'tp'"],
                 id="sweep-unknown-key"),
    pytest.param(lambda: pm.sweep("gpt2-124m", "dgx-a100", {"tp": []}), ValueError, ["'tp'", "no values"],
                 id="sweep-empty-values"),
    pytest.param(lambda: pm.sweep("gpt2-124m", "dgx-a100", {"tp": [float("nan")]}), ValueError, ["'tp'", "nan"],
                 id="sweep-nan-value"),
    pytest.param(lambda: pm.validate("nope"), KeyError, ["'nope'", "narayanan2021-table1"], id="validate-unknown"),
    pytest.param(lambda: pm.find_crossover("gpt2-124m", "dgx-a100", "ep", "devices"), KeyError, ["'ep'"],
                 id="crossover-scheme"),
    pytest.param(lambda: pm.compare_devices("resnet50", ["h100-sxm5"], "eth-100g", "switch", "dp", [1, 2]), KeyError,
                 ["did you mean 'h100-sxm5-80gb'"], id="compare_devices-unknown"),
    pytest.param(lambda: pm.compare_topologies("allreduc", 1e9, 8, "ib-hdr"), KeyError, ["did you mean 'allreduce'"],
                 id="compare_topologies-collective"),
    pytest.param(lambda: pm.compare_topologies("allreduce", float("nan"), 8, "ib-hdr"), ValueError, ["size", "nan"],
                 id="compare_topologies-nan-size"),
    pytest.param(lambda: pm.schedule_tasks("recsys-step", "dgx-a100", 0), ValueError, ["devices", "0"],
                 id="schedule_tasks-zero-devices"),
    pytest.param(lambda: pm.pcie_contention_story("dgx-a100", "megatron-1.7b"), ValueError, ["PCIe tree"],
                 id="pcie-not-a-tree"),
    pytest.param(lambda: pm.optimize("gpt2-124m", "dgx-a100", 8, 8, tp=16), ValueError, ["16"],
                 id="optimize-tp-above-devices"),
    pytest.param(lambda: pm.load_task_graph("nope"), KeyError, ["'nope'", "recsys-step"], id="task-graph-unknown"),
    pytest.param(lambda: pm.calibrate_gemm("/nonexistent.csv", "h100-sxm5-80gb", "/nonexistent/x.toml"),
                 FileNotFoundError, ["no such file"], id="calibrate_gemm-missing"),
]


@pytest.mark.parametrize("call,builtin,fragments", API_CASES)
def test_library_raises_named_errors(call, builtin, fragments):
    with pytest.raises(pm.PerfModelError) as info:
        call()
    assert isinstance(info.value, builtin), f"{type(info.value).__name__} is not a {builtin.__name__}"
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_no_module_raises_the_bare_base_class():
    """Every raise site uses a subclass of PerfModelError that is also a builtin (ValueError, KeyError, ...), so a
    caller catching builtins catches it; the base class itself is never raised."""
    bare = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            exc = node.exc if isinstance(node, ast.Raise) else None
            func = exc.func if isinstance(exc, ast.Call) else exc
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            if name == "PerfModelError":
                bare.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert not bare, f"raise PerfModelError(...) (use a subclass that is also a builtin) at {bare}"
    classes = [c for c in vars(pm.errors).values() if isinstance(c, type) and issubclass(c, pm.PerfModelError)]
    from perfmodel.calibrate._common import MeasurementError

    for cls in [*classes, MeasurementError]:
        if cls is not pm.PerfModelError:
            assert any(b.__module__ == "builtins" and b not in (Exception, BaseException, object)
                       for b in cls.__mro__[1:]), f"{cls.__name__} is not also a builtin such as ValueError"


# --- item 4: hostile text through every path that takes text -----------------------------------

SENTINEL = "pwned"  # created in the working directory if any string below were run
HOSTILE = {
    "py-import": f"__import__('os').system('touch {SENTINEL}')",
    "py-after-number": f"1e3; import os; os.system('touch {SENTINEL}')",
    "py-assign": f"x=1;y=__import__('os').system('touch {SENTINEL}')",
    "py-lambda": f"(lambda: __import__('os').system('touch {SENTINEL}'))()",
    "shell-subst": f"$(touch {SENTINEL})",
    "shell-backtick": f"`touch {SENTINEL}`",
    "shell-var": "${HOME}",
    "sql": "'; DROP TABLE models; --",
    "format-string": "{0.__class__.__mro__}%s%n",
    "path-traversal": "../../../../../etc/passwd",
    "confusable-hyphen": "dgx\u2010a100",       # U+2010 HYPHEN
    "confusable-cyrillic": "dgx-\u0430100",     # U+0430 CYRILLIC SMALL LETTER A
    "fullwidth": "\uff47\uff50\uff54\uff12",    # ｇｐｔ２
    "newline": "gpt2\nerror: forged second line",
    "ansi-escape": "\x1b[2J\x1b[31mred",
    "one-megabyte": "a" * 1_000_000,
}

# every CLI path that takes text; each maps the hostile string to an argv (files are written to the cwd)
T = "compare topologies --collective allreduce --nodes 8 --link ib-hdr"
TEXT_PATHS: dict[str, Callable[[str], list[str]]] = {
    "model-name": lambda h: ["predict", "--model", h, "--system", "dgx-a100"],
    "system-name": lambda h: ["predict", "--model", "gpt2-124m", "--system", h],
    "stack-name": lambda h: ["predict", "--model", "gpt2-124m", "--system", "dgx-a100", "--stack", h],
    "dataset-name": lambda h: ["validate", "--dataset", h],
    "hardware-name": lambda h: ["hardware", "show", h],
    "hardware-check-file": lambda h: ["hardware", "check", h],
    "hardware-kind": lambda h: ["hardware", "list", "--kind", h],
    "formula-name": lambda h: ["formula", "show", h, "--latex"],
    "format-value": lambda h: ["models", "list", "--format", h],
    "models-show-name": lambda h: ["models", "show", h],
    "task-graph-name": lambda h: ["predict", "--tasks", h, "--system", "dgx-a100"],
    "unit-size": lambda h: [*T.split(), "--size", h],
    "unit-hop-latency": lambda h: [*T.split(), "--size", "1 GiB", "--hop-latency", h],
    "link-name": lambda h: ["compare", "topologies", "--collective", "allreduce", "--nodes", "8", "--size", "1 GiB",
                            "--link", h],
    "collective-name": lambda h: ["compare", "topologies", "--collective", h, "--nodes", "8", "--size", "1 GiB",
                                  "--link", "ib-hdr"],
    "grid-expression": lambda h: ["sweep", "--model", "gpt2-124m", "--system", "dgx-a100", "--grid", h],
    "grid-value": lambda h: ["sweep", "--model", "gpt2-124m", "--system", "dgx-a100", "--grid", f"tp=1,{h}"],
    "grid-key": lambda h: ["sweep", "--model", "gpt2-124m", "--system", "dgx-a100", "--grid", f"{h}=1"],
    "grid-unit": lambda h: ["sweep", "--model", "gpt2-124m", "--system", "dgx-a100", "--grid",
                            f"network.link.bandwidth={h}"],
    "devices-list": lambda h: ["compare", "devices", "--model", "resnet50", "--devices-list", h, "--link", "eth-100g",
                               "--workers", "1,2"],
    "workers-list": lambda h: ["compare", "devices", "--model", "resnet50", "--devices-list", "h100-sxm5-80gb",
                               "--link", "eth-100g", "--workers", h],
    "topology-name": lambda h: ["compare", "devices", "--model", "resnet50", "--devices-list", "h100-sxm5-80gb",
                                "--link", "eth-100g", "--workers", "1,2", "--topology", h],
    "crossover-scheme": lambda h: ["crossover", "--model", "gpt2-124m", "--system", "dgx-a100", "--scheme", h,
                                   "--solve-for", "devices"],
    "pcie-model": lambda h: ["compare", "pcie", "--model", h],
    "calibrate-min-size": lambda h: ["calibrate", "nccl", str(P5), "--system", "dgx-h100", "--out", "cal.toml",
                                     "--min-size", h],
    "calibrate-device": lambda h: ["calibrate", "gemm", "g.csv", "--device", h, "--out", "cal.toml"],
}


def toml_str(h: str) -> str:
    return json.dumps(h)  # a JSON string literal is a valid TOML basic string (\uXXXX escapes included)


FILE_PATHS: dict[str, tuple[str, Callable[[str], str], list[str]]] = {
    "model-toml-type": ("m.toml", lambda h: model_toml('"transformer"', toml_str(h)), ["models", "show", "m.toml"]),
    "model-toml-int": ("m.toml", lambda h: model_toml("layers = 4", f"layers = {toml_str(h)}"),
                       ["models", "show", "m.toml"]),
    "model-toml-key": ("m.toml", lambda h: MODEL_TOML + f"{toml_str(h)} = 1\n", ["models", "show", "m.toml"]),
    "hf-json-model-type": ("c.json", lambda h: hf_json(model_type=h), ["models", "show", "c.json"]),
    "hf-json-int": ("c.json", lambda h: hf_json(n_layer=h), ["models", "show", "c.json"]),
    "link-toml-quantity": ("lnk.toml", lambda h: link_toml('"200 Gb/s"', toml_str(h)), ["hardware", "check",
                                                                                         "lnk.toml"]),
    "system-toml-device": ("sys.toml", lambda h: system_toml('"h100-sxm5-80gb"', toml_str(h)),
                           ["hardware", "check", "sys.toml"]),
    "task-toml-flops": ("tg.toml", lambda h: tasks_toml('"1 TFLOP"', toml_str(h)),
                        ["predict", "--tasks", "tg.toml", "--system", "dgx-a100"]),
    "stack-toml-attention": ("st.toml", lambda h: stack_toml('"flash"', toml_str(h))(),
                             ["predict", "--model", "gpt2-124m", "--system", "dgx-a100", "--stack", "st.toml"]),
    "gemm-csv-dtype": ("g.csv", lambda h: sub(GEMM_CSV, "\nbf16,", "\n" + json.dumps(h) + ","),
                       ["calibrate", "gemm", "g.csv", "--device", "h100-sxm5-80gb", "--out", "cal.toml"]),
    "nccl-output-field": ("n.txt", lambda h: nccl_text("   601.5  111.57", "   " + h.replace("\n", " ") + "  111.57")(),
                          ["calibrate", "nccl", "n.txt", "--system", "dgx-h100", "--out", "cal.toml"]),
}

# Known defects of the hostile matrix (path, string) -> what happens. (User text in an error line is
# escaped and cut short centrally, by perfmodel.cli.one_line; an OSError on a user path is one line.)


def hostile_defect(path: str, string: str) -> str | None:
    return None


def _hostile_params():
    for path in [*TEXT_PATHS, *FILE_PATHS]:
        for string in HOSTILE:
            defect = hostile_defect(path, string)
            marks = [pytest.mark.xfail(strict=True, reason=defect)] if defect else []
            yield pytest.param(path, string, id=f"{path}-{string}", marks=marks)


@pytest.fixture
def eval_spy(monkeypatch):
    """Record every source string given to eval/exec (sympify and parse_expr end in eval too)."""
    seen: list[str] = []
    real_eval, real_exec = builtins.eval, builtins.exec

    def spy_eval(source, *args, **kwargs):
        seen.append(source if isinstance(source, str) else repr(source))
        return real_eval(source, *args, **kwargs)

    def spy_exec(source, *args, **kwargs):
        seen.append(source if isinstance(source, str) else repr(source))
        return real_exec(source, *args, **kwargs)

    monkeypatch.setattr(builtins, "eval", spy_eval)
    monkeypatch.setattr(builtins, "exec", spy_exec)
    return seen


@pytest.mark.parametrize("path,string", list(_hostile_params()))
def test_hostile_text(path, string, workdir, capsys, eval_spy):
    """A clean one-line error (never a result built from the text), no side effect, nothing evaluated."""
    h = HOSTILE[string]
    if path in TEXT_PATHS:
        (workdir / "g.csv").write_text(GEMM_CSV)
        argv = TEXT_PATHS[path](h)
    else:
        name, content, argv = FILE_PATHS[path]
        (workdir / name).write_text(content(h))
    before = listing(workdir)
    r = run_in_process(argv, capsys)
    assert not (workdir / SENTINEL).exists() and not Path(SENTINEL).exists(), "a hostile string was executed"
    assert listing(workdir) == before
    assert not [s for s in eval_spy if h in s or SENTINEL in s], "user text reached eval/exec"
    assert_clean_failure(r, show=f"{path} {string}")
    body = r.err[:-1]
    assert not any(ch in body for ch in "\r\x1b\x00"), f"control characters in the error line: {r.err[:300]!r}"
    assert len(body) < 5000, f"an echoed value is not cut short: {len(body)} characters"


def test_hostile_text_in_a_real_process(tmp_path):
    """The same through a real process and a shell-free argv: nothing runs, the error is one line."""
    for argv in (["predict", "--model", HOSTILE["py-import"], "--system", "dgx-a100"],
                 ["sweep", "--model", "gpt2-124m", "--system", "dgx-a100", "--grid", HOSTILE["py-after-number"]],
                 [*T.split(), "--size", HOSTILE["shell-subst"]]):
        r = run_subprocess(argv, tmp_path)
        assert_clean_failure(r, show=shlex.join(argv))
        assert list(tmp_path.iterdir()) == [], "a hostile string had a side effect"


def test_output_file_names_are_not_interpreted(workdir, capsys):
    """A hostile --out name is a plain file name: the file is written under that exact name, nothing runs."""
    out = workdir / f"$(touch {SENTINEL});`touch {SENTINEL}`.csv"
    r = run_in_process(["sweep", "--model", "gpt2-124m", "--system", "dgx-a100", "--grid", "tp=1,2", "--out", str(out),
                        "--format", "json"], capsys)
    assert r.code == 0, r
    assert out.is_file() and not (workdir / SENTINEL).exists()
    assert sorted(p.name for p in workdir.iterdir()) == [out.name]


# --- item 4, static half: no eval-like call in the package source -------------------------------

EVALUATING = {"eval", "exec", "compile", "__import__", "sympify", "parse_expr", "parse_latex", "lambdify", "S",
              "literal_eval", "query", "evaluate", "system", "popen", "Popen", "call", "check_call", "check_output",
              "run", "load", "loads"}
# receivers whose `.run` / `.load` / `.loads` / `.compile` are not evaluation of text
HARMLESS_RECEIVERS = {"re", "json", "tomllib", "asyncio"}
# (path inside the package, enclosing function, callee) -> why the call is safe
ALLOWED = {
    ("symbolic.py", "lambdify", "lambdify"): (
        "sympy.lambdify generates Python source and exec's it, but the expression is to_expr(func): the formula "
        "function called with sympy Symbols named after its own parameters. No user text is involved; formulas "
        "are looked up by exact name in the catalog, never built from a string."),
}


def _calls(tree: ast.AST):
    """(enclosing function name, callee name, receiver name or None) for every call in a module."""
    def walk(node, func):
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else func
            if isinstance(child, ast.Call):
                f = child.func
                if isinstance(f, ast.Name):
                    yield func, f.id, None
                elif isinstance(f, ast.Attribute):
                    receiver = f.value.id if isinstance(f.value, ast.Name) else None
                    yield func, f.attr, receiver
            yield from walk(child, name)
    yield from walk(tree, "<module>")


def test_no_evaluation_of_strings_in_the_source():
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = str(path.relative_to(PACKAGE))
        for func, callee, receiver in _calls(ast.parse(path.read_text(), filename=str(path))):
            if callee not in EVALUATING or receiver in HARMLESS_RECEIVERS:
                continue
            if callee in ("run", "load", "loads", "call", "system", "query", "evaluate") and receiver not in (
                    "subprocess", "os", "pickle", "marshal", "yaml", "shelve", "pd", "pandas", "numexpr", "ne"):
                continue  # a method of ours (e.g. a result's .run) -- only these modules evaluate or execute
            found.setdefault((rel, func, callee), []).append(receiver)
    unexpected = {k: v for k, v in found.items() if k not in ALLOWED}
    assert not unexpected, f"eval-like calls not on the allow-list (say why each is safe, or remove it): {unexpected}"
    stale = [k for k in ALLOWED if k not in found]
    assert not stale, f"allow-list entries that no longer exist: {stale}"
