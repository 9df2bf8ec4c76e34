"""Task parallelism (issue 4, item 5): the task-graph TOML format and its one-line errors, the closed-form
bounds, and the HEFT list-scheduling estimate with transfers over the system's links.
"""

from __future__ import annotations

import json
import textwrap

import pytest

from perfmodel.cli import main
from perfmodel.errors import InputFileError, PerfModelError, SpecError, UnknownNameError
from perfmodel.formulas import collectives as coll
from perfmodel.formulas import compute as cf
from perfmodel.formulas import scheduling as sch
from perfmodel.prediction.hardware import link_data_bandwidth
from perfmodel.specs.registry import load_system
from perfmodel.tasks.graph import bundled_task_graphs, load_task_graph, parse_task_graph
from perfmodel.tasks.schedule import _Links, schedule_tasks, workers_of


def graph(tasks, edges=(), **top):
    return parse_task_graph({**top, "task": list(tasks), "edge": list(edges)})


def task(name, flops="100 TFLOP", nbytes="1 GiB", devices=("gpu",), **more):
    return {"name": name, "flops": flops, "bytes": nbytes, "devices": list(devices), **more}


# --- the format ------------------------------------------------------------------------------------


def test_a_file_parses_with_units_numbers_and_defaults(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text(textwrap.dedent("""
        dtype = "bf16"
        [[task]]
        name = "b"
        flops = 2e12
        bytes = "1 GiB"
        [[task]]
        name = "a"
        flops = "1 TFLOP"
        bytes = 0
        devices = ["cpu"]
        dtype = "fp32"
        [[edge]]
        from = "a"
        to = "b"
        bytes = "1 MB"
    """))
    g = load_task_graph(path)
    assert g.name == "g" and [t.name for t in g.tasks] == ["a", "b"]  # topological order
    a, b = g.task("a"), g.task("b")
    assert (a.flops, a.bytes_moved, a.device_kinds, a.dtype) == (1e12, 0.0, ("cpu",), "fp32")
    assert (b.flops, b.bytes_moved, b.device_kinds, b.dtype) == (2e12, 2.0**30, ("cpu", "gpu", "xpu"), "bf16")
    assert g.edges[0].transfer_bytes == 1e6


@pytest.mark.parametrize("data, message", [
    ({"task": [{"name": "a", "flops": 1}]}, "missing key 'bytes'"),
    ({"task": [{"name": "a", "flops": 1, "bytes": 1, "device": ["gpu"]}]}, "unknown key 'device'; did you mean 'devices'"),
    ({"task": [{"name": "a", "flops": -1, "bytes": 1}]}, "flops: expected a non-negative value"),
    ({"task": [{"name": "a", "flops": "1 GiB", "bytes": 1}]}, "expected a FLOP count"),
    ({"task": [{"name": "a", "flops": 1, "bytes": 1, "devices": ["tpu"]}]}, "unknown device kind 'tpu'"),
    ({"task": [{"name": "a", "flops": 1, "bytes": 1, "dtype": "fp64"}]}, "dtype: expected one of"),
    ({"task": [{"name": "a", "flops": 1, "bytes": 1}, {"name": "a", "flops": 1, "bytes": 1}]}, "duplicate task name 'a'"),
    ({"task": [{"name": "a", "flops": 1, "bytes": 1}], "edge": [{"from": "a", "to": "c"}]}, "unknown task 'c'"),
    ({"task": [{"name": "a", "flops": 1, "bytes": 1}], "edge": [{"from": "a", "to": "a"}]}, "to itself is a cycle"),
    ({"task": [{"name": "a", "flops": 1, "bytes": 1}, {"name": "b", "flops": 1, "bytes": 1}],
      "edge": [{"from": "a", "to": "b", "bytes": -5}]}, "bytes: expected a non-negative value"),
    ({"task": []}, "no tasks"),
    ({"tasks": []}, "unknown key 'tasks'"),
])
def test_bad_graphs_are_one_line_errors(data, message):
    with pytest.raises(SpecError) as exc:
        parse_task_graph(data, "g.toml")
    assert message in str(exc.value) and "\n" not in str(exc.value) and str(exc.value).startswith("g.toml")


def test_a_cycle_is_named():
    names = ["a", "b", "c", "d"]
    edges = [("a", "b"), ("b", "c"), ("c", "d"), ("d", "b")]
    with pytest.raises(SpecError, match=r"cycle: b -> c -> d -> b"):
        graph([task(n) for n in names], [{"from": s, "to": t} for s, t in edges])


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(InputFileError, match="not found"):
        load_task_graph(tmp_path / "nope.toml")
    with pytest.raises(UnknownNameError, match="did you mean 'recsys-step'"):
        load_task_graph("recsys-stp")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[task]\nname=")
    with pytest.raises(SpecError, match="malformed TOML"):
        load_task_graph(bad)


def test_the_bundled_example_loads():
    assert "recsys-step" in bundled_task_graphs()
    g = load_task_graph("recsys-step")
    assert len(g.tasks) == 10 and len(g.edges) == 11


# --- bounds and the schedule -----------------------------------------------------------------------


def _roofline(system, flops, nbytes, dtype="bf16"):
    dev = load_system(system).device
    return cf.roofline_time(flops, nbytes, dev.peak(dtype), 1.0, dev.measured_memory_bandwidth or dev.memory_bandwidth)


def test_independent_tasks_on_identical_workers_are_within_graham():
    """Eight GPUs, twenty independent tasks of different sizes: HEFT is a list schedule, so Graham's bound
    holds, and no schedule beats max(W/m, longest task)."""
    sizes = [1 + (7 * k) % 11 for k in range(20)]
    g = graph([task(f"t{k}", flops=f"{s * 50} TFLOP") for k, s in enumerate(sizes)], dtype="bf16")
    s = schedule_tasks(g, "dgx-h100")
    times = [_roofline("dgx-h100", x * 50e12, 2.0**30) for x in sizes]
    assert s.work_bound_s == pytest.approx(sum(times) / 8)
    assert s.critical_path_s == pytest.approx(max(times))
    assert s.graham_workers == "8 x h100-sxm5-80gb"
    assert s.graham_bound_s == pytest.approx(sch.graham_list_schedule_time(sum(times), max(times), 8))
    assert s.lower_bound_s - 1e-12 <= s.makespan_s <= s.graham_bound_s + 1e-12
    assert s.transfer_s == 0 and s.speedup == pytest.approx(sum(times) / s.makespan_s)


def test_a_chain_runs_on_one_worker_in_its_critical_path():
    names = [f"s{k}" for k in range(5)]
    g = graph([task(n) for n in names], [{"from": a, "to": b, "bytes": "4 GiB"} for a, b in zip(names, names[1:])])
    s = schedule_tasks(g, "dgx-a100")
    assert len({p.worker for p in s.placements}) == 1 and s.transfer_s == 0
    assert s.makespan_s == pytest.approx(s.critical_path_s) == pytest.approx(s.lower_bound_s)


def test_tasks_run_where_they_are_allowed_and_pay_the_host_link():
    """A CPU-only producer feeds a GPU consumer on dgx-a100: the data cross the GPU's PCIe host link."""
    g = graph([task("load", flops=0, nbytes="8 GiB", devices=["cpu"], dtype="fp32"),
               task("train", flops="500 TFLOP")], [{"from": "load", "to": "train", "bytes": "2 GiB"}], dtype="bf16")
    s = schedule_tasks(g, "dgx-a100")
    load, train = (next(p for p in s.placements if p.task == n) for n in ("load", "train"))
    assert load.worker == "node0/host" and train.worker.startswith("node0/gpu")
    host = load_system("dgx-a100").device.host_link
    hop = coll.point_to_point_time(2.0**30 * 2, host.latency, link_data_bandwidth(host))
    assert train.ready_s == pytest.approx(load.finish_s + hop)
    assert s.transfer_s == pytest.approx(hop)
    # no group of identical workers runs both tasks: no Graham bound, and it says why
    assert s.graham_bound_s is None and "no group" in s.graham_workers


def test_transfers_use_the_fabric_inside_a_node_and_the_network_between_nodes():
    system = load_system("dgx-a100")
    workers = workers_of(system, 16)
    assert len(workers) == 18 and {w.node for w in workers} == {0, 1}  # 16 GPUs + one host per node
    links = _Links(system)
    a, b, c = workers[0], workers[1], workers[8]
    assert links.time(a, a, 1e9) == 0
    assert links.time(a, b, 1e9) == pytest.approx(coll.point_to_point_time(1e9, *links.fabric))
    assert links.time(a, c, 1e9) == pytest.approx(coll.point_to_point_time(1e9, *links.network))
    assert links.time(a, c, 1e9) > 5 * links.time(a, b, 1e9)  # one HDR NIC vs twelve NVLinks


def test_heft_spreads_a_fork_and_pays_for_it_only_when_it_helps():
    """Two heavy independent branches go to two GPUs; the join waits for the farther one's transfer."""
    g = graph([task("src", flops="1 TFLOP"), task("left"), task("right"), task("join", flops="1 TFLOP")],
              [{"from": "src", "to": "left", "bytes": "1 GiB"}, {"from": "src", "to": "right", "bytes": "1 GiB"},
               {"from": "left", "to": "join", "bytes": "1 GiB"}, {"from": "right", "to": "join", "bytes": "1 GiB"}],
              dtype="bf16")
    s = schedule_tasks(g, "dgx-h100")
    where = {p.task: p.worker for p in s.placements}
    assert where["left"] != where["right"]
    assert s.lower_bound_s <= s.makespan_s < s.critical_path_s + _roofline("dgx-h100", 100e12, 2.0**30)


def test_a_task_no_worker_can_run_is_an_error():
    with pytest.raises(PerfModelError, match="'t' .* can run on no worker of pcie-8gpu"):
        schedule_tasks(graph([task("t", devices=["xpu"])]), "pcie-8gpu")
    with pytest.raises(PerfModelError, match="can run on no worker"):  # the host CPU has no bf16 rate
        schedule_tasks(graph([task("t", devices=["cpu"], dtype="bf16")]), "dgx-a100")


# --- CLI -------------------------------------------------------------------------------------------


def test_cli_predict_tasks_json(capsys):
    main(["predict", "--tasks", "recsys-step", "--system", "dgx-a100", "--format", "json"])
    obj = json.loads(capsys.readouterr().out)
    assert obj["makespan_s"] >= obj["bounds"]["lower_bound_s"] > 0
    assert {"work_bound_s", "critical_path_s", "graham_bound_s"} <= set(obj["bounds"])
    assert len(obj["schedule"]) == 10 and obj["n_workers"] == 9


def test_cli_predict_tasks_bad_file_exits_2(capsys, tmp_path):
    bad = tmp_path / "g.toml"
    bad.write_text('[[task]]\nname = "a"\nflops = 1\n')
    with pytest.raises(SystemExit) as exc:
        main(["predict", "--tasks", str(bad), "--system", "dgx-a100"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "missing key 'bytes'" in err and err.count("\n") == 1


# --- many devices: the schedule considers only the workers HEFT could pick ----------------------------


def _fork_join(n_mid: int, devices=("gpu",), src=("cpu",)):
    mids = [task(f"m{k}", flops=f"{50 + 37 * k % 90} TFLOP", devices=devices) for k in range(n_mid)]
    edges = [{"from": "src", "to": m["name"], "bytes": f"{1 + k % 3} GiB"} for k, m in enumerate(mids)]
    edges += [{"from": m["name"], "to": "join", "bytes": "256 MiB"} for m in mids]
    return graph([task("src", flops="1 TFLOP", nbytes="4 GiB", devices=src, dtype="fp32"), *mids,
                  task("join", flops="5 TFLOP")], edges, dtype="bf16")


@pytest.mark.parametrize("system, devices", [("dgx-a100", 8), ("dgx-a100", 40), ("dgx-h100", 129), ("pcie-8gpu", 8)])
def test_the_considered_workers_give_the_schedule_of_all_workers(monkeypatch, system, devices):
    """HEFT on the workers it could ever pick is HEFT on all of them: same placements, times and bounds."""
    import perfmodel.tasks.schedule as tasks_module

    has_host = load_system(system).host_cpu is not None
    g = _fork_join(5, devices=("gpu", "cpu")) if has_host else _fork_join(5, src=("gpu",))
    fast = schedule_tasks(g, system, devices)
    assert len(fast.workers) <= len(workers_of(load_system(system), devices))
    monkeypatch.setattr(tasks_module, "_considered", lambda s, d, nodes, n: workers_of(s, d))
    full = schedule_tasks(g, system, devices)
    assert len(full.workers) == full.n_workers == fast.n_workers
    assert [(p.task, p.worker) for p in fast.placements] == [(p.task, p.worker) for p in full.placements]
    for a, b in zip(fast.placements, full.placements):
        assert (a.start_s, a.finish_s, a.ready_s) == pytest.approx((b.start_s, b.finish_s, b.ready_s), rel=1e-12)
    for key in ("lower_bound_s", "work_bound_s", "critical_path_s", "graham_bound_s", "graham_workers"):
        a_, b_ = getattr(fast, key), getattr(full, key)
        assert a_ == b_ if a_ is None or isinstance(a_, str) else a_ == pytest.approx(b_, rel=1e-12)
    assert fast.makespan_s == pytest.approx(full.makespan_s, rel=1e-12)


def test_ten_million_devices_are_fast_and_counted():
    import time

    start = time.perf_counter()
    s = schedule_tasks("recsys-step", "dgx-a100", 10**7)
    assert time.perf_counter() - start < 1.0
    assert s.n_workers == 10**7 + 10**7 // 8 and dict(s.worker_counts)["a100-sxm4-80gb"] == 10**7
    assert len(s.workers) <= 10 * 8 + 10  # at most n tasks nodes, n devices each, and their hosts
    assert 0 < s.work_bound_s < s.critical_path_s == s.lower_bound_s <= s.makespan_s


@pytest.mark.parametrize("devices", [0, -1, 10**7 + 1, 2.0, True, "8"])
def test_devices_out_of_range_is_a_plan_error(devices):
    from perfmodel.errors import PlanError

    with pytest.raises(PlanError, match="devices"):
        schedule_tasks("recsys-step", "dgx-a100", devices)


def test_unreadable_task_graph_files_are_named_errors(tmp_path):
    nested = tmp_path / "n.toml"
    nested.write_text("a = " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(SpecError, match="n.toml: nested too deeply"):
        load_task_graph(nested)
    with pytest.raises(InputFileError, match="is a directory"):
        load_task_graph(tmp_path)
    for name in ("a" * 100_000, "x" * 300 + ".toml"):
        with pytest.raises((InputFileError, UnknownNameError)):
            load_task_graph(name)
    binary = tmp_path / "b.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InputFileError, match="not UTF-8"):
        load_task_graph(binary)
