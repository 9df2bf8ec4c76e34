"""Issue 10 done-when: "Predictions for bundled devices never print 'datasheet peak' as the GEMM rate
unless the spec file gives nothing else, and then the output says it is an upper bound."

For every bundled device and every plan dtype it has a peak for, the GEMM timing the prediction
uses is one of: a measured curve, the shape model at a measured maximum achievable matmul rate
(MAMF), or the datasheet peak. The test works out which from the spec file alone (does it hold
GEMM points or a MAMF for the dtype or its 16-bit sibling?) and checks that the prediction used
that one, and that a datasheet-peak rate is called an upper bound in the table and the JSON."""

import json

import pytest

import perfmodel as pm
from perfmodel.plan import DTYPES, precision_of
from perfmodel.prediction.hardware import gemm_rates_source, hw_params
from perfmodel.prediction.kernels import GemmShapeModel, RateCurve
from perfmodel.specs.registry import bundled_names, load_device, load_system

SIXTEEN_BIT = ("bf16", "fp16")
UPPER = "upper bound"


def _devices():
    return sorted(n for n, (kind, _) in bundled_names().items() if kind in ("cpu", "gpu", "xpu"))


def _cases():
    for name in _devices():
        device = load_device(name)
        for dtype in DTYPES:
            if dtype in device.peak_flops_per_s and precision_of(dtype).linear in device.peak_flops_per_s:
                yield name, dtype


def _spec_measures(device, dtype) -> str:
    """What the spec file gives for ``dtype``'s GEMMs: 'curve', 'mamf' or 'nothing'."""
    family = [dtype] + ([d for d in SIXTEEN_BIT if d != dtype] if dtype in SIXTEEN_BIT else [])
    if any(device.gemm.get(d) for d in family):
        return "curve"
    achievable = device.matmul.achievable if device.matmul is not None else {}
    if any(d in achievable for d in family):
        return "mamf"
    return "nothing"


def _check_model(model, device, dtype):
    peak = device.peak(dtype)
    given = _spec_measures(device, dtype)
    if isinstance(model, GemmShapeModel):
        if given == "nothing":
            assert model.achievable_flops_per_s == peak and UPPER in model.source, model.source
        else:  # a MAMF of the dtype (or of a sibling scaled by the peaks' ratio), or the FP8 curve's base
            assert given == "mamf" and "MAMF" in model.source and UPPER not in model.source, model.source
            assert model.achievable_flops_per_s <= peak
    else:
        assert isinstance(model, RateCurve)
        assert "measured" in model.source and UPPER not in model.source, model.source
    return given == "nothing"


@pytest.mark.parametrize("name,dtype", list(_cases()))
def test_gemm_rate_is_measured_or_called_an_upper_bound(name, dtype):
    device = load_device(name)
    hw = hw_params(load_system(name), dtype)  # a device name where a system is expected: it alone
    at_peak = _check_model(hw.gemm, device, precision_of(dtype).compute)
    if hw.gemm_linear is not None:
        at_peak |= _check_model(hw.gemm_linear, device, precision_of(dtype).linear)
    note = gemm_rates_source(hw)
    assert (UPPER in note) == at_peak, note


@pytest.mark.parametrize("name", _devices())
def test_predict_table_and_json_carry_the_gemm_rate_source(name):
    """One predict per device (its first dtype, with a stack that trains in it): the table row
    "GEMM rates" and the JSON ``details.gemm_curve`` hold the note; 'datasheet peak' never appears
    without 'upper bound'."""
    device = load_device(name)
    dtype = next(d for d in ("bf16", "fp16", "fp32") if d in device.peak_flops_per_s)
    p = pm.predict("gpt2-124m", name, pm.Plan(micro_batch=1, global_batch=1, seq=1024, dtype=dtype))
    rows = dict(p.summary_rows())
    note = json.loads(json.dumps(p.to_dict()))["details"]["gemm_curve"]
    assert rows["GEMM rates"] == note
    if "datasheet peak" in note:
        assert UPPER in note
    assert (UPPER in note) == (_spec_measures(device, dtype) == "nothing")


def test_which_devices_run_at_the_datasheet_peak():
    """The bundled devices whose spec gives no measured GEMM rate for their training dtype (so their
    predictions are upper bounds): CPUs without a measured sweep, V100 (no MAMF published in the
    sources read), and TPU v4 (no achievable matmul rate found; v5e has the XLA matmul of the JAX
    Pallas TPU guide, which v5p takes as an inference). Adding a MAMF or a
    curve to one of them moves it out of this list; a device silently losing its measurement
    moves it in, and this test fails either way."""
    at_peak = sorted(n for n in _devices()
                     if _spec_measures(load_device(n), next(d for d in ("bf16", "fp16", "fp32")
                                                            if d in load_device(n).peak_flops_per_s)) == "nothing")
    assert at_peak == ["epyc-7742", "epyc-9654", "tpu-v4", "v100-sxm2-32gb", "xeon-8168", "xeon-8380"]


def test_the_xeon_8480p_runs_at_a_measured_amx_rate():
    """Sapphire Rapids' AMX reaches about a fifth of its derived BF16 peak in oneDNN's own matmul
    benchmark (uxlfoundation/oneDNN #1992: 42.9 TFLOP/s on two sockets), so a CPU prediction in BF16
    runs at that, through the shape model (56 cores, 16 x 16 x 32 AMX tiles), not at 114.7 TFLOP/s."""
    hw = hw_params(pm.load_system("cpu-cluster"), "bf16")
    assert "oneDNN issue #1992" in hw.gemm.source and UPPER not in hw.gemm.source
    assert hw.gemm.units == 56 and (hw.gemm.tile_m, hw.gemm.tile_n) == (16, 16)
    # at the measured shape the model gives the measured time back, plus its epilogue: 256 x 960
    # output tiles of 16 x 16 over 56 cores = 4389 waves, each writing 56 tiles of 16 x 16 bf16 at
    # the socket's measured DDR5 bandwidth (187.5 GB/s): 0.67 ms on top of 30.0 ms
    t = hw.gemm.time(4096, 15360, 5120, True, hw.memory_bandwidth, 1.0)
    assert t == pytest.approx(2 * 4096 * 15360 * 5120 / 21.46e12 + 4389 * 56 * 16 * 16 * 2 / 187.5e9, rel=1e-9)


def test_the_tpu_v5p_takes_the_v5e_matmul_efficiency_and_says_it_is_an_inference():
    """No v5p matmul was measured in the sources read; its bf16 GEMMs run the shape model at the v5e's
    measured XLA matmul efficiency (181.8 / 197) times the v5p's 459 TFLOP/s peak, and the GEMM rates
    line says that this is an inference rather than a measurement or an upper bound."""
    v5e, v5p = load_device("tpu-v5e"), load_device("tpu-v5p")
    fraction = v5e.matmul.achievable["bf16"].flops_per_s / v5e.peak("bf16")
    assert abs(v5p.matmul.achievable["bf16"].flops_per_s - fraction * v5p.peak("bf16")) < 0.1e12
    note = pm.predict("gpt2-124m", "tpu-v5p", pm.Plan(micro_batch=1, global_batch=1, seq=1024)).to_dict()[
        "details"]["gemm_curve"]
    assert "inference" in note and "v5e" in note and UPPER not in note
