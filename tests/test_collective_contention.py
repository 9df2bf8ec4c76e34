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


def test_no_charge_where_no_system_states_it(tmp_path):
    """A system that states no CTA count charges its hidden gradient all-reduce nothing beyond its
    exposed tail; with the line it pays n / U of it: dgx-a100 states 24 (NCCL's 24 channels on an
    NVSwitch A100 node), here taken out, then put back at 16."""
    model = pm.load_model("gpt3-175b")
    plan = pm.Plan(devices=1024, tp=8, pp=8, micro_batch=1, global_batch=1536, sequence_parallel=True)
    assert pm.load_system("dgx-a100").fabric.collective_units == 24
    free = pm.predict(model, _without_contention(tmp_path, "dgx-a100"), plan)
    charged = pm.predict(model, _without_contention(tmp_path, "dgx-a100", units=16), plan)  # the line added
    hidden = free.details["dp_sync_s"] - free.breakdown_s["dp_comm"]
    assert hidden > 0
    assert charged.breakdown_s["dp_comm"] - free.breakdown_s["dp_comm"] == pytest.approx(hidden * 16 / 108, rel=1e-9)
    stated = pm.predict(model, "dgx-a100", plan)
    assert stated.breakdown_s["dp_comm"] - free.breakdown_s["dp_comm"] == pytest.approx(hidden * 24 / 108, rel=1e-9)


@pytest.mark.parametrize("system,units,message", [
    ("dgx-h100", 132, r"collective_units: expected an integer in \[1, 131\], got 132"),
    ("tpu-v5e-pod", 4, "collective_units: SMs a collective's kernel takes from a GPU, but tpu-v5e is a xpu"),
])
def test_a_count_the_device_cannot_give_is_refused_with_the_file(tmp_path, system, units, message):
    path = _without_contention(tmp_path, system, units=units)
    with pytest.raises(SpecError, match=message) as err:
        pm.load_system(path)
    assert path in str(err.value) and len(str(err.value).splitlines()) == 1


def test_hardware_show_and_stacks_show_state_the_new_fields():
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "perfmodel", "hardware", "show", "dgx-h100", "--format", "json"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    row = next(f for f in json.loads(out)["fields"] if f["field"] == "fabric.collective_units")
    assert row["si_value"] == 24 and "ncclAllGather" in row["source"]
    out = subprocess.run([sys.executable, "-m", "perfmodel", "stacks", "show", "megatron-core", "--format", "json"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert json.loads(out)["capabilities"]["uneven_stages"] is True
