"""`compare devices`: the same model, network and scheme on CPU, GPU and XPU devices.

The classic result (issue 4, item 2): on the same network a GPU cluster turns communication-bound
at fewer workers and scales less efficiently than a CPU cluster, because its compute per worker is
faster. It must come out of the bundled spec files through the formulas; nothing here tells the
model which device is which beyond its spec.
"""

import json

import pytest

import perfmodel as pm
from perfmodel.compare.devices import compare_devices, device_cluster
from perfmodel.errors import PlanError, UnknownNameError

CPU, GPU, XPU = "xeon-8480p", "h100-sxm5-80gb", "tpu-v4"
WORKERS = (1, 2, 4, 8, 16, 32, 64)


def cli(capsys, monkeypatch, *args):
    from perfmodel.cli import main

    monkeypatch.setenv("COLUMNS", "200")
    try:
        code = main(list(args))
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module", params=["resnet50", "gpt2-124m"])
def result(request):
    return compare_devices(request.param, [CPU, GPU, XPU], "eth-100g", "switch", "dp", WORKERS)


def test_the_classic_result_comes_out_of_the_formulas(result):
    cpu, gpu, xpu = (result.crossover(d) for d in (CPU, GPU, XPU))
    print(f"{result.model} over eth-100g: crossover workers cpu {cpu:.3g}, gpu {gpu:.3g}, xpu {xpu:.3g}")
    assert gpu < xpu < cpu  # the fastest compute per worker runs out of compute to hide the sync first
    for n in (8, 16, 32, 64):  # below 8 workers a transformer's sync is a few % of the step on either
        assert result.efficiency(GPU, n) < result.efficiency(CPU, n), n
    assert result.efficiency(CPU, 64) > result.efficiency(GPU, 64) + 0.2


def test_rows_are_consistent(result):
    assert {r["device"] for r in result.rows} == {CPU, GPU, XPU}
    for r in result.rows:
        assert r["kind"] == {CPU: "cpu", GPU: "gpu", XPU: "xpu"}[r["device"]]
        assert abs(r["speedup"] / r["workers"] - r["efficiency"]) < 1e-12
        assert 0 <= r["comm_fraction"] < 1 and r["bandwidth_elasticity"] <= 0
        if r["workers"] == 1:
            assert r["efficiency"] == 1 and r["comm_fraction"] == 0
    for c in result.crossovers:
        assert abs(c["t_comm_s"] / c["t_compute_s"] - 1) < 1e-3


def test_the_ad_hoc_cluster_is_one_device_per_node_on_the_given_link():
    s = device_cluster(GPU, "eth-100g", "fat-tree")
    assert s.devices_per_node == 1 and s.fabric.kind == "none"
    assert s.network.link.name == "eth-100g" and s.network.nics_per_node == 1 and s.network.topology == "fat-tree"
    assert s.device == pm.load_system(GPU).device
    with pytest.raises(UnknownNameError, match="did you mean 'torus'"):
        device_cluster(GPU, "eth-100g", "toruss")


def test_inputs_are_checked():
    with pytest.raises(PlanError, match="does not divide evenly"):
        compare_devices("resnet50", [GPU], "eth-100g", workers=[1, 3])
    with pytest.raises(UnknownNameError):
        compare_devices("resnet50", [GPU], "eth-100g", scheme="pp")


def test_tensor_parallel_over_the_network():
    r = compare_devices("megatron-1.7b", [CPU, GPU], "eth-100g", scheme="tp", workers=[1, 2, 4], global_batch=8)
    assert r.efficiency(GPU, 4) < r.efficiency(CPU, 4)
    assert all(c["crossover_workers"] is not None for c in r.crossovers)


def test_cli_json_and_plot(tmp_path, capsys, monkeypatch):
    svg = tmp_path / "devices.svg"
    code, out, err = cli(capsys, monkeypatch, "compare", "devices", "--model", "resnet50", "--devices-list",
                         f"{CPU},{GPU},{XPU}", "--link", "eth-100g", "--topology", "switch", "--scheme", "dp",
                         "--workers", "1,2,4,8", "--plot", str(svg), "--format", "json")
    assert code == 0, err
    obj = json.loads(out)
    assert {"model", "link", "topology", "scheme", "rows", "crossovers"} <= set(obj)
    assert len(obj["rows"]) == 12 and [c["device"] for c in obj["crossovers"]] == [CPU, GPU, XPU]
    assert svg.read_text().lstrip().startswith("<?xml") and "<svg" in svg.read_text()[:2000]
    code, out, err = cli(capsys, monkeypatch, "compare", "devices", "--model", "resnet50", "--devices-list", GPU,
                         "--link", "eth-100g", "--topology", "switch", "--workers", "1,x")
    assert code == 2 and err.startswith("error:") and err.count("\n") == 1


def test_rows_say_whether_the_model_fits():
    # a model too large for the device is still timed (the scaling story), and each row says it
    # does not fit and how much it would need, as predict does
    big = compare_devices("megatron-1t", ["h100-sxm5-80gb"], "ib-ndr", workers=[1, 64])
    assert [r["fits_in_memory"] for r in big.rows] == [False, False]
    one = pm.predict("megatron-1t", device_cluster("h100-sxm5-80gb", "ib-ndr"), devices=1, global_batch=512,
                     micro_batch=512, stack="megatron")
    assert big.rows[0]["memory_bytes_per_device"] == pytest.approx(one.memory_bytes_per_device["total"])
    small = compare_devices("gpt2-124m", ["h100-sxm5-80gb"], "ib-ndr", workers=[1], global_batch=8)
    assert small.rows[0]["fits_in_memory"]
