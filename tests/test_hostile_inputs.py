r"""Hostile inputs of issue 13 part B (items 2, 5, 6, 7, 8, 9, 11): refused in one line, in bounded time and memory.

Each CLI case runs ``python -m perfmodel`` in a real process under an address-space limit of
:data:`MEMORY_LIMIT` bytes and a wall-clock limit of :data:`TIME_LIMIT_S` seconds, and must exit 2
with exactly one line ``error: ...`` on stderr holding every fragment (and none of ``absent``),
nothing on stdout, and leave its folder as it found it. The processes run a few at a time from
one fixture (the corpus of ``tests/test_bad_inputs.py`` runs in-process, where a FIFO, /dev/zero or
a memory blow-up would take the test run down with it). ``{tmp}`` is the case's own folder; files
are written there first: text, bytes, :class:`Symlink`, :data:`FIFO`, :data:`DIR` or :class:`Sparse`.

``LIMITED_RUNS`` are inputs that must succeed within the same limits (huge global batch, 20,000-task
chains, 1,000 tasks on 10^7 devices), and ``test_library_entry_points`` the API cases of item 11.
"""

from __future__ import annotations

import os
import resource
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.test_bad_inputs import (
    DEVICE_TOML,
    DIR,
    GEMM_CSV,
    GEMM_HEADER,
    LINK_TOML,
    MODEL_TOML,
    P5,
    SYSTEM_TOML,
    TASKS_TOML,
    Symlink,
    bundled_stack_text,
    hf_json,
    listing,
    sub,
)

REPO = Path(__file__).resolve().parents[1]
MEMORY_LIMIT = 2**30  # 1 GiB of address space
TIME_LIMIT_S = 10.0
FIFO = object()  # a named pipe where a file is expected (reading it would block forever)
BIG = "1" * 5000  # an integer of 5000 digits (Python refuses to parse over 4300)


@dataclass(frozen=True)
class Sparse:
    """A sparse file of ``size`` bytes (larger than the input limit, costs no disk)."""

    size: int


@dataclass(frozen=True)
class Case:
    id: str
    argv: str
    expect: tuple[str, ...]
    files: dict = field(default_factory=dict)
    absent: tuple[str, ...] = ()


def case(id: str, argv: str, *expect: str, files: dict | None = None, absent: tuple[str, ...] = ()) -> Case:
    return Case(id, argv, expect, files or {}, absent)


def stack(old: str = "", new: str = "", name: str = "st") -> str:
    text = sub(bundled_stack_text(), 'name = "pytorch-eager"', f'name = "{name}"')
    return sub(text, old, new) if old else text


def system(name: str, device: str = "h100-sxm5-80gb", link: str = "nvlink4") -> str:
    text = sub(sub(SYSTEM_TOML, 'name = "sys"', f'name = "{name}"'), 'device = "h100-sxm5-80gb"', f'device = "{device}"')
    return sub(text, 'link = "nvlink4"', f'link = "{link}"')


def device(old: str, new: str) -> str:
    return sub(DEVICE_TOML, old, new)


PRED = "predict --model gpt2-124m --system dgx-a100"
SWEEP = "sweep --model gpt2-124m --system dgx-h100 --grid"
NCCL = "calibrate nccl {tmp}/n.txt --system dgx-h100 --out {tmp}/cal.toml"
GEMM = "calibrate gemm {tmp}/g.csv --device h100-sxm5-80gb --out {tmp}/cal.toml"
ZERO = Symlink("/dev/zero")
HUGE = Sparse(17 * 2**20)

CASES = [
    # --- B2: every input path is a regular file of bounded size (perfmodel._io) ---------------------
    case("hw-check-dev-zero", "hardware check /dev/zero", "/dev/zero", "character device", "not a regular file"),
    case("hw-check-symlink-dev-zero", "hardware check {tmp}/x.toml", "x.toml", "character device", files={"x.toml": ZERO}),
    case("hw-check-fifo", "hardware check {tmp}/x.toml", "x.toml", "FIFO", files={"x.toml": FIFO}),
    case("hw-check-symlink-fifo", "hardware check {tmp}/x.toml", "x.toml", "FIFO",
         files={"p": FIFO, "x.toml": Symlink("p")}),
    case("hw-show-directory", "hardware show {tmp}/d.toml", "d.toml", "is a directory", files={"d.toml": DIR}),
    case("hw-check-over-size-limit", "hardware check {tmp}/x.toml", "x.toml", "larger than", files={"x.toml": HUGE}),
    case("model-toml-dev-zero", "predict --model {tmp}/m.toml --system dgx-a100", "m.toml", "character device",
         files={"m.toml": ZERO}),
    case("model-toml-fifo", "predict --model {tmp}/m.toml --system dgx-a100", "m.toml", "FIFO", files={"m.toml": FIFO}),
    case("model-json-dev-zero", "models show {tmp}/config.json", "config.json", "character device",
         files={"config.json": ZERO}),
    case("model-json-fifo", "predict --model {tmp}/c.json --system dgx-a100", "c.json", "FIFO", files={"c.json": FIFO}),
    case("model-json-over-size-limit", "models show {tmp}/c.json", "c.json", "larger than", files={"c.json": HUGE}),
    case("system-fifo", "predict --model gpt2-124m --system {tmp}/sys.toml", "sys.toml", "FIFO",
         files={"sys.toml": FIFO}),
    case("system-dev-zero", "predict --model gpt2-124m --system {tmp}/sys.toml", "sys.toml", "character device",
         files={"sys.toml": ZERO}),
    case("stack-dev-zero", PRED + " --stack {tmp}/st.toml", "st.toml", "character device", files={"st.toml": ZERO}),
    case("stack-fifo", PRED + " --stack {tmp}/st.toml", "st.toml", "FIFO", files={"st.toml": FIFO}),
    case("tasks-fifo", "predict --tasks {tmp}/tg.toml --system dgx-a100", "tg.toml", "FIFO", files={"tg.toml": FIFO},
         absent=("not found",)),
    case("tasks-dev-zero", "predict --tasks /dev/zero --system dgx-a100", "/dev/zero", "character device",
         absent=("not found",)),
    case("tasks-symlink-dev-zero", "predict --tasks {tmp}/tg.toml --system dgx-a100", "tg.toml", "character device",
         files={"tg.toml": ZERO}, absent=("not found",)),
    case("tasks-over-size-limit", "predict --tasks {tmp}/tg.toml --system dgx-a100", "tg.toml", "larger than",
         files={"tg.toml": HUGE}),
    case("nccl-fifo", NCCL, "n.txt", "FIFO", files={"n.txt": FIFO}),
    case("nccl-dev-zero", NCCL, "n.txt", "character device", files={"n.txt": ZERO}),
    case("gemm-fifo", GEMM, "g.csv", "FIFO", files={"g.csv": FIFO}),
    case("gemm-dev-zero", GEMM, "g.csv", "character device", files={"g.csv": ZERO}),
    case("gemm-over-size-limit", GEMM, "g.csv", "larger than", files={"g.csv": HUGE}),
    case("grid-stack-dev-zero", SWEEP + " 'stack=megatron,{tmp}/st.toml'", "st.toml", "character device",
         files={"st.toml": ZERO}),
    case("grid-stack-fifo", SWEEP + " 'stack={tmp}/st.toml'", "st.toml", "FIFO", files={"st.toml": FIFO}),
    case("model-toml-not-utf8", "models show {tmp}/m.toml", "m.toml", "not UTF-8", files={"m.toml": b"type = \xff\n"}),
    case("stack-not-utf8", PRED + " --stack {tmp}/st.toml", "st.toml", "not UTF-8", files={"st.toml": b"\xfe\xff"}),
    # --- B7/B8: integers over 4300 digits, duplicate JSON keys, duplicate CSV columns ---------------
    case("hf-json-duplicate-key", "models show {tmp}/c.json", "c.json", "duplicate key 'n_layer'",
         files={"c.json": hf_json().replace('"n_layer": 12', '"n_layer": 12, "n_layer": 2')}),
    case("hf-json-huge-int", "models show {tmp}/c.json", "c.json", "4300 digits",
         files={"c.json": hf_json().replace('"n_layer": 12', f'"n_layer": {BIG}')}),
    case("hw-toml-huge-int", "hardware check {tmp}/lnk.toml", "lnk.toml", "4300 digits",
         files={"lnk.toml": LINK_TOML + f"x = {BIG}\n"}),
    case("stack-toml-huge-int", PRED + " --stack {tmp}/st.toml", "st.toml", "4300 digits",
         files={"st.toml": stack("grad_reduce_bytes = 4", f"grad_reduce_bytes = {BIG}")}),
    case("tasks-toml-huge-int", "predict --tasks {tmp}/tg.toml --system dgx-a100", "tg.toml", "4300 digits",
         files={"tg.toml": sub(TASKS_TOML, 'flops = "1 TFLOP"', f"flops = {BIG}")}),
    case("model-toml-huge-int", "models show {tmp}/m.toml", "m.toml", "4300 digits",
         files={"m.toml": sub(MODEL_TOML, "layers = 4", f"layers = {BIG}")}, absent=("cannot open",)),
    case("gemm-huge-dimension", GEMM, "g.csv", "'m' must be a positive integer up to",
         files={"g.csv": GEMM_HEADER + f"bf16,{BIG},8192,8192,1.44902,1.44554,758.79\n"}),
    case("gemm-duplicate-column", GEMM, "g.csv", "tflops_median given twice",
         files={"g.csv": GEMM_CSV.replace("tflops_median\n", "tflops_median,tflops_median\n")
                .replace("758.79\n", "758.79,1\n").replace("723.4\n", "723.4,1\n")}),
    # --- B5: grid hardware values keep the bounds of a spec file ------------------------------------
    case("grid-network-efficiency-2", SWEEP + " network.efficiency=0.9,2", "network.efficiency", "(0, 1]", "got 2"),
    case("grid-fabric-efficiency-150pct", SWEEP + " 'fabric.efficiency=150 %'", "fabric.efficiency", "(0, 1]"),
    case("grid-in-network-reduction-1.5", SWEEP + " fabric.in_network_reduction=1.5", "fabric.in_network_reduction",
         "(0, 1]"),
    case("grid-oversubscription-0.25", SWEEP + " network.oversubscription=0.25", "network.oversubscription",
         "[1, 1000]", "got 0.25"),
    case("grid-nics-0.5", SWEEP + " network.nics_per_node=0.5", "network.nics_per_node", "[1, 64]", "got 0.5"),
    case("grid-nics-2.5", SWEEP + " network.nics_per_node=2.5", "network.nics_per_node", "an integer", "got 2.5"),
    case("grid-nics-1e9", SWEEP + " network.nics_per_node=1e9", "network.nics_per_node", "[1, 64]", "got 1e+09"),
    case("grid-fabric-links-0.3", SWEEP + " fabric.links=0.3", "fabric.links", "[1, 64]", "got 0.3"),
    # --- B6: reference cycles between spec files ------------------------------------------------------
    case("cycle-system-device-itself", "hardware check {tmp}/a.toml", "cycle", "a.toml -> a.toml",
         files={"a.toml": system("a", device="a.toml")}),
    case("cycle-two-systems", "predict --model gpt2-124m --system {tmp}/a.toml", "cycle", "a.toml -> b.toml -> a.toml",
         files={"a.toml": system("a", device="b.toml"), "b.toml": system("b", device="a.toml")}),
    case("cycle-three-files", "hardware check {tmp}/a.toml", "cycle", "b.toml -> c.toml -> b.toml",
         files={"a.toml": system("a", device="b.toml"), "b.toml": system("b", device="c.toml"),
                "c.toml": system("c", device="./b.toml")}),
    case("cycle-fabric-link-itself", "hardware check {tmp}/a.toml", "cycle",
         files={"a.toml": system("a", link="a.toml")}),
    # --- B7: results are finite or refused ------------------------------------------------------------
    # (a value outside a dimension's plausible range is refused where the file is read: specs/bounds.py)
    case("finite-bandwidth-1e-320", "predict --model gpt2-124m --system {tmp}/dev.toml", "dev.toml",
         "'1e-320 B/s' is not a plausible value",
         files={"dev.toml": device('"3.35 TB/s"', '"1e-320 B/s"')}),
    case("finite-peak-1e-300", "predict --model gpt2-124m --system {tmp}/dev.toml", "dev.toml",
         "'1e-300 FLOP/s' is not a plausible value", files={"dev.toml": device('"989 TFLOP/s"', '"1e-300 FLOP/s"')}),
    case("finite-dense-model", "predict --model resnet50 --system {tmp}/dev.toml", "dev.toml",
         "'1e-320 B/s' is not a plausible value", files={"dev.toml": device('"3.35 TB/s"', '"1e-320 B/s"')}),
    case("finite-launch-overhead-1e307", PRED + " --stack {tmp}/st.toml", "'1e307 s' is not a plausible value",
         files={"st.toml": stack('"6.76 us"', '"1e307 s"')}),
    case("finite-topologies-size-1e308", "compare topologies --collective allreduce --size '1e308 B' --nodes 64 "
         "--link ib-hdr", "1e+308 B", "not a finite number"),
    case("finite-topologies-link-1e-320", "compare topologies --collective allreduce --size '1 GiB' --nodes 8 "
         "--link {tmp}/lnk.toml", "lnk", "'1e-320 B/s' is not a plausible value",
         files={"lnk.toml": sub(LINK_TOML, '"200 Gb/s"', '"1e-320 B/s"')}),
    # --- B8: calibrate writes every output or none ----------------------------------------------------
    case("nccl-companion-is-directory", NCCL, "cal-ib-ndr.toml", "is a directory", "none was written",
         files={"n.txt": P5.read_text(), "cal-ib-ndr.toml": DIR}),
]


def materialize(files: dict, tmp: Path) -> None:
    for name, content in files.items():
        path = tmp / name
        if content is DIR:
            path.mkdir()
        elif content is FIFO:
            os.mkfifo(path)
        elif isinstance(content, Symlink):
            path.symlink_to(content.target)
        elif isinstance(content, Sparse):
            with open(path, "wb") as fh:
                fh.truncate(content.size)
        else:
            path.write_bytes(content if isinstance(content, bytes) else content.encode())


def _limits() -> None:  # runs in the child before exec
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


@dataclass
class Run:
    code: int
    out: str
    err: str
    seconds: float
    argv: list[str]


def run_limited(argv: list[str], cwd: Path, timeout: float = TIME_LIMIT_S) -> Run:
    """``python -m perfmodel argv`` under the memory limit; a run past ``timeout`` is killed (code -9)."""
    env = {k: v for k, v in os.environ.items() if k != "PERFMODEL_DEBUG"}
    env.update(COLUMNS="200", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=str(REPO))
    start = time.perf_counter()
    try:
        r = subprocess.run([sys.executable, "-m", "perfmodel", *argv], capture_output=True, text=True, cwd=cwd,
                           env=env, timeout=timeout, preexec_fn=_limits, check=False)
        code, out, err = r.returncode, r.stdout, r.stderr
    except subprocess.TimeoutExpired as exc:
        code, out, err = -9, str(exc.stdout or ""), f"(killed after {timeout} s)"
    return Run(code, out, err, time.perf_counter() - start, argv)


def _expand(argv: str, tmp: Path) -> list[str]:
    return [a.replace("{tmp}", str(tmp)) for a in shlex.split(argv)]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Every case run once, a few processes at a time: id -> (Run, listing before, listing after)."""
    jobs = {}
    for c in CASES:
        tmp = tmp_path_factory.mktemp(c.id)
        materialize(c.files, tmp)
        jobs[c.id] = (tmp, listing(tmp))

    def one(c: Case):
        tmp, before = jobs[c.id]
        return c.id, (run_limited(_expand(c.argv, tmp), tmp), before, listing(tmp))

    with ThreadPoolExecutor(max_workers=max(1, min(8, (os.cpu_count() or 2) // 2))) as pool:
        return dict(pool.map(one, CASES))


def test_the_corpus_is_large_and_ids_are_unique():
    assert len(CASES) >= 50
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_hostile_input_is_refused_in_one_line(c: Case, results):
    r, before, after = results[c.id]
    context = f"perfmodel {shlex.join(r.argv)}\nexit {r.code} after {r.seconds:.1f} s\nstdout: {r.out[:1500]!r}\n" \
              f"stderr: {r.err[:1500]!r}"
    assert r.code == 2, context
    assert r.seconds < TIME_LIMIT_S, context
    assert r.out == "", context
    assert r.err.startswith("error: ") and r.err.count("\n") == 1 and "Traceback" not in r.err, context
    assert len(r.err) < 600, context
    for fragment in c.expect:
        assert fragment in r.err, f"missing {fragment!r}\n{context}"
    for fragment in c.absent:
        assert fragment not in r.err, f"should not say {fragment!r}\n{context}"
    assert after == before, f"the command left files behind\n{context}"


# --- inputs that must work within the limits (B9) ------------------------------------------------------


def chain_toml(n: int) -> str:
    lines = ['name = "chain"', 'dtype = "bf16"']
    lines += [f'[[task]]\nname = "t{i}"\nflops = "1 GFLOP"\nbytes = "1 MiB"' for i in range(n)]
    lines += [f'[[edge]]\nfrom = "t{i}"\nto = "t{i + 1}"\nbytes = "1 MiB"' for i in range(n - 1)]
    return "\n".join(lines) + "\n"


def fan_toml(n: int) -> str:
    lines = ['name = "fan"', 'dtype = "bf16"']
    lines += [f'[[task]]\nname = "t{i}"\nflops = "1 TFLOP"\nbytes = "1 MiB"' for i in range(n)]
    lines += [f'[[edge]]\nfrom = "t0"\nto = "t{i}"\nbytes = "1 MiB"' for i in range(1, n)]
    return "\n".join(lines) + "\n"


LIMITED_RUNS = [
    pytest.param("optimize --model gpt2-124m --system dgx-a100 --devices 1 --global-batch 20000000 --format json",
                 {}, 30, id="optimize-global-batch-2e7"),
    pytest.param("predict --tasks {tmp}/c.toml --system dgx-a100", {"c.toml": chain_toml(20_000)}, 30,
                 id="tasks-chain-20000"),
    pytest.param("predict --tasks {tmp}/c.toml --system dgx-a100 --devices 10000000 --format json",
                 {"c.toml": chain_toml(1_000)}, 30, id="tasks-chain-1000-on-1e7-devices"),
    pytest.param("predict --tasks {tmp}/f.toml --system dgx-a100 --devices 10000000 --format json",
                 {"f.toml": fan_toml(1_000)}, 30, id="tasks-fan-1000-on-1e7-devices"),
]


@pytest.mark.parametrize("argv, files, seconds", LIMITED_RUNS)
def test_large_inputs_run_within_limits(argv, files, seconds, tmp_path):
    materialize(files, tmp_path)
    r = run_limited(_expand(argv, tmp_path), tmp_path, timeout=seconds)
    assert r.code == 0, f"exit {r.code} after {r.seconds:.1f} s: {r.err[-1500:]}"
    assert "micro_batch" not in r.err


# --- B11: the library's entry points raise the project's errors ---------------------------------------


def _api_cases():
    import perfmodel as pm

    system_file = REPO / "hardware" / "system" / "dgx-a100.toml"
    return [
        ("dict-plan", lambda: pm.predict("gpt2-124m", "dgx-a100", {"tp": 2}), pm.PlanError, "got a dict"),
        ("list-plan", lambda: pm.predict("gpt2-124m", "dgx-a100", plan=[2]), pm.PlanError, "expected a perfmodel.Plan"),
        ("unknown-plan-keyword", lambda: pm.predict("gpt2-124m", "dgx-a100", tpp=2), pm.PlanError, "did you mean 'tp'"),
        ("int-system", lambda: pm.predict("gpt2-124m", 5), pm.SpecError, "system"),
        ("int-grid-key", lambda: pm.sweep("gpt2-124m", "dgx-a100", {1: [1, 2]}), pm.PlanError, "grid key 1"),
        ("none-grid-key", lambda: pm.sweep("gpt2-124m", "dgx-a100", {None: [1]}), pm.PlanError, "grid key None"),
        ("int-spec", lambda: pm.load_spec(3), pm.SpecError, "got 3"),
        ("int-task-graph", lambda: pm.load_task_graph(3), pm.InputFileError, "got 3"),
        ("grid-bound", lambda: pm.sweep("gpt2-124m", "dgx-h100", {"network.efficiency": [2]}), pm.PlanError,
         "(0, 1]"),
        ("path-system-is-fine", lambda: pm.load_system(system_file).name == "dgx-a100" and
         pm.predict("gpt2-124m", system_file).step_time_s > 0 and None, None, ""),
    ]


@pytest.mark.parametrize("index", range(10))
def test_library_entry_points(index):
    name, call, error, fragment = _api_cases()[index]
    if error is None:
        assert call() is None, name
        return
    with pytest.raises(error) as info:
        call()
    assert fragment in str(info.value), (name, str(info.value))
    assert "\n" not in str(info.value), name
