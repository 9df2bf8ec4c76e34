"""Hidden data-parallel collectives are not free on a GPU: their NCCL kernel holds SMs (one CTA per
channel) beside the compute that hides them. A system states how many in ``[fabric]
collective_units``; the step pays T_hidden x n / U (formulas.gemm_overlap
.hidden_collective_slowdown_time). Checked by hand against the same system without the line."""

from __future__ import annotations

from pathlib import Path

import pytest

import perfmodel as pm
from perfmodel.errors import SpecError
from perfmodel.specs.registry import bundled_dir

PLAN = dict(devices=64, tp=2, micro_batch=1, global_batch=256, seq=4096, zero=1)


def _without_contention(tmp_path, name="dgx-h100", units=None) -> str:
    text = (Path(bundled_dir()) / "system" / f"{name}.toml").read_text()
    lines = [ln for ln in text.splitlines() if not ln.startswith("collective_units")]
    if units is not None:
        at = lines.index("[fabric]")
        lines[at + 1:at + 1] = [f"collective_units = {units}", 'collective_units_source = "test"']
    path = tmp_path / f"{name}-x.toml"
    path.write_text("\n".join(lines).replace(f'name = "{name}"', f'name = "{name}-x"') + "\n")
    return str(path)


def test_hidden_sync_pays_the_sms_its_collective_holds(tmp_path):
    model = pm.load_model("llama2-7b")
    plan = pm.Plan(stack="megatron-core", **PLAN)
    charged = pm.predict(model, "dgx-h100", plan)
    free = pm.predict(model, _without_contention(tmp_path), plan)
    sync, exposed = charged.details["dp_sync_s"], free.breakdown_s["dp_comm"]
    assert sync > exposed > 0  # most of the sync is hidden under the last backward
    by_hand = exposed + (sync - exposed) * 24 / 132
    assert charged.breakdown_s["dp_comm"] == pytest.approx(by_hand, rel=1e-9)
    for key in ("compute", "tp_comm", "optimizer"):
        assert charged.breakdown_s[key] == pytest.approx(free.breakdown_s[key], rel=1e-12)


def test_fsdp_prefetched_gathers_pay_it_too(tmp_path):
    model = pm.load_model("llama2-7b")
    plan = pm.Plan(devices=8, zero=3, micro_batch=2, global_batch=16, seq=4096, stack="fsdp")
    charged = pm.predict(model, "dgx-h100", plan)
    free = pm.predict(model, _without_contention(tmp_path), plan)
    hidden = charged.details["dp_sync_s"] - free.breakdown_s["dp_comm"]
    assert hidden > 0
    assert charged.step_time_s - free.step_time_s == pytest.approx(hidden * 24 / 132, rel=1e-9)


def test_no_charge_where_no_system_states_it_or_on_a_tpu():
    model = pm.load_model("llama2-7b")
    assert pm.load_system("dgx-a100").fabric.collective_units == 0
    tpu = pm.predict(model, "tpu-v5p-pod", pm.Plan(devices=64, zero=3, micro_batch=4, global_batch=256, stack="jax-xla"))
    from perfmodel.prediction.hardware import hw_params
    assert hw_params(pm.load_system("tpu-v5p-pod"), "bf16").collective_units == 0 and tpu.step_time_s > 0


def test_a_collective_holding_every_sm_is_refused(tmp_path):
    path = _without_contention(tmp_path, units=132)
    with pytest.raises(SpecError, match="collective_units 132 leaves no SM"):
        pm.predict(pm.load_model("llama2-7b"), path, pm.Plan(stack="megatron-core", **PLAN))
