"""The PCIe contention story on pcie-8gpu (issue 4, items 4 and 7): k GPUs behind one PCIe switch slow
each other's transfers, the transaction overhead's share, where tensor parallelism turns bus-bound, and
when the root complex matters. Every number is derived from the bundled spec files and the formulas.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from perfmodel.cli import main
from perfmodel.errors import PerfModelError
from perfmodel.formulas import pcie as pf
from perfmodel.compare.pcie import pcie_contention_story, pcie_overheads
from perfmodel.specs.registry import load_system

MODEL = "megatron-1.7b"  # 32 heads: tp = 2, 4, 8 are all valid plans


@pytest.fixture(scope="module")
def story():
    return pcie_contention_story("pcie-8gpu", MODEL, global_batch=8)


def _link_data_rate():
    """Posted-write data rate of the bundled pcie4-x16 link, from the PCIe formulas."""
    link = load_system("pcie-8gpu").fabric.link
    gen = pf.PCIE_GENERATIONS[link.pcie_generation]
    return pf.pcie_write_bandwidth(link.bandwidth, 0.0, link.max_payload_bytes, pf.TLP_HEADER_BYTES["mem_64bit"],
                                   gen["tlp_framing_bytes"])


def test_k_gpus_behind_one_switch_slow_each_others_transfers(story):
    """Per-GPU bandwidth of concurrent host copies falls with the GPUs behind one switch: min(link, uplink/k)."""
    rows = story.switch_rows
    ks = [r.devices_per_switch for r in rows]
    assert ks == [1, 2, 4, 8]
    per_gpu = [r.copy_bandwidth_per_switch_group for r in rows]
    assert all(a > b for a, b in zip(per_gpu, per_gpu[1:]))
    rate = _link_data_rate()  # the uplink is the same x16 link
    for k, bw in zip(ks, per_gpu):
        assert bw == pytest.approx(rate / k, rel=1e-12)
    # on the bundled system (2 per switch): a TP pair copying at once gets half of what one GPU gets
    tp1, tp2 = (next(r for r in story.tp_rows if r.tp == k) for k in (1, 2))
    assert tp2.copy_bandwidth == pytest.approx(tp1.copy_bandwidth / 2) and tp2.copy_limited_by == "switch uplink"


def test_the_transaction_overhead_share_is_shown(story):
    o = story.overheads
    # PCIe 4.0 x16: 16 GT/s x 16 lanes / 8 = 32 GB/s raw; 128b/130b and 1 SKP block in 376
    assert o.raw_bandwidth == pytest.approx(32e9)
    assert o.encoding_share == pytest.approx(1 - 128 / 130 * (1 - 1 / 376), rel=1e-9)
    # 256-B payload TLPs with a 4-DW header and 8 B of framing: 24 of every 280 bytes are overhead
    assert o.tlp_overhead_share == pytest.approx(24 / 280)
    assert 0.005 < o.dllp_share < 0.007  # Acks + UpdateFCs at the spec's x16 Ack latency limit (~0.6 %)
    assert o.total_overhead_share == pytest.approx(1 - o.write_bandwidth / o.raw_bandwidth)
    assert o.write_bandwidth == pytest.approx(_link_data_rate())
    assert any("8.57 %" in n for n in story.notes)


def test_tensor_parallelism_turns_bus_bound_inside_the_node(story):
    rows = {r.tp: r for r in story.tp_rows}
    assert rows[1].bound == "compute" and not rows[1].bus_bound
    assert story.bus_bound_tp in (2, 4, 8)
    assert all(rows[k].bus_bound for k in rows if k >= story.bus_bound_tp)
    ratio = [rows[k].tp_comm_s / rows[k].compute_s for k in (2, 4, 8)]
    assert ratio[0] < ratio[1] < ratio[2]  # communication stays, compute per GPU shrinks as 1/k
    # the continuous crossover of find_crossover (one layer's TP collectives vs that layer's
    # compute) lies above tp = 2 (a third of the layer's compute) and at or below the first degree
    # the whole step turns bus-bound (whose compute also holds the LM head, which has no TP
    # collective: at tp = 4 the step is at 0.995 of bus-bound since the A100 GEMM shape model)
    assert 2 < story.crossover_tp <= story.bus_bound_tp


def test_the_bundled_root_complex_never_limits_the_tp_ring(story):
    """126 GB/s of root bandwidth: each ring is limited by the GPUs' own links, the same for tp = 2, 4, 8."""
    multi = [r for r in story.tp_rows if r.tp > 1]
    assert all(r.ring_limited_by.startswith("own link") for r in multi)
    assert len({round(r.ring_bandwidth) for r in multi}) == 1
    assert story.root_limits_ring_below < story.root_bandwidth
    # all 8 GPUs copying at once: the switch uplinks limit before the root complex does ...
    bundled = next(r for r in story.switch_rows if r.bundled)
    assert bundled.copy_all_limited_by == "switch uplink"
    # ... and with one GPU per switch the root complex takes over: 126 GB/s / 8 each
    one = next(r for r in story.switch_rows if r.devices_per_switch == 1)
    assert one.copy_all_limited_by == "root complex"
    assert one.copy_bandwidth_all == pytest.approx(story.root_bandwidth / 8)


def test_a_slower_root_complex_limits_the_ring_and_slows_the_step(story):
    system = load_system("pcie-8gpu")
    slow = replace(system, fabric=replace(system.fabric, root_bandwidth=0.5 * story.root_limits_ring_below))
    what_if = pcie_contention_story(slow, MODEL, global_batch=8)
    fast8, slow8 = (next(r for r in s.tp_rows if r.tp == 8) for s in (story, what_if))
    assert slow8.ring_limited_by == "root complex"
    assert slow8.ring_bandwidth < fast8.ring_bandwidth and slow8.tp_comm_s > fast8.tp_comm_s


def test_a_model_whose_heads_do_not_split_says_so():
    s = pcie_contention_story("pcie-8gpu", "gpt2-1.5b")  # 25 heads
    assert s.bus_bound_tp is None
    assert all("25 attention heads" in r.note for r in s.tp_rows if r.tp > 1)


def test_only_pcie_trees_have_a_story():
    with pytest.raises(PerfModelError, match="not a PCIe tree"):
        pcie_contention_story("dgx-h100", MODEL)
    with pytest.raises(PerfModelError, match="not a PCIe link"):
        pcie_overheads(load_system("dgx-h100").fabric.link)


def test_cli_json(capsys):
    main(["compare", "pcie", "--system", "pcie-8gpu", "--model", MODEL, "--global-batch", "8", "--format", "json"])
    obj = json.loads(capsys.readouterr().out)
    assert obj["bus_bound_tp"] in (2, 4, 8)
    assert [r["tp"] for r in obj["tp"]] == [1, 2, 4, 8]
    assert {"tlp_overhead_share", "dllp_share", "raw_bandwidth"} <= set(obj["overheads"])
    assert obj["notes"]


def test_a_plan_no_tp_degree_can_run_is_a_plan_error():
    """Global batch 3 with micro-batch 2 fails at every TP degree: that is an error, not a story of empty rows."""
    from perfmodel.errors import PlanError
    from perfmodel.compare.pcie import pcie_contention_story

    with pytest.raises(PlanError, match="global batch 3 is not divisible by micro-batch x dp = 2 x 1 = 2"):
        pcie_contention_story("pcie-8gpu", "megatron-1.7b", global_batch=3, micro_batch=2)
    # a plan only some degrees can run keeps its story, the others say why in their note
    story = pcie_contention_story("pcie-8gpu", "megatron-1.7b", sequence_parallel=True)
    assert story.tp_rows[0].step_time_s is None and "sequence parallelism needs tp > 1" in story.tp_rows[0].note
    assert all(r.step_time_s is not None for r in story.tp_rows[1:])


def test_the_tp_rows_say_whether_the_model_fits():
    from perfmodel.compare.pcie import pcie_contention_story

    assert all(r.fits_in_memory is False for r in pcie_contention_story(model="megatron-1t").tp_rows)
    assert all(r.fits_in_memory for r in pcie_contention_story().tp_rows)
