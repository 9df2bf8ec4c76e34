"""Hardware spec files: every bundled name loads; a wrong file does not, and says why."""

import dataclasses

import pytest

from perfmodel.errors import InputFileError, PerfModelError, SpecError, UnknownNameError
from perfmodel.specs import registry

# docs/interface.md "Bundled names" (exact; users and checks rely on them)
BUNDLED = {
    "gpu": ["v100-sxm2-32gb", "a100-sxm4-80gb", "h100-sxm5-80gb", "h200-sxm-141gb", "b200-sxm", "mi300x"],
    "cpu": ["xeon-8380", "xeon-8480p", "epyc-9654", "xeon-host-16vcpu"],
    "xpu": ["tpu-v4", "tpu-v5p", "gaudi2", "gaudi3"],
    "link": ["pcie3-x16", "pcie4-x16", "pcie5-x16", "pcie6-x16", "nvlink2", "nvlink3", "nvlink4", "nvlink5",
             "ib-edr", "ib-hdr", "ib-ndr", "ib-xdr", "eth-25g", "eth-100g", "eth-400g"],
    "system": ["dgx-a100", "dgx-h100", "pcie-8gpu", "cpu-cluster", "tpu-v4-pod", "gaudi2-hls"],
}


@pytest.mark.parametrize("kind,name", [(k, n) for k, names in BUNDLED.items() for n in names])
def test_bundled_name_exists_and_loads(kind, name):
    assert registry.bundled_names()[name][0] == kind
    spec = registry.load_spec(name)
    assert spec.name == name
    assert spec.kind == kind


def test_every_bundled_file_loads_and_every_value_has_a_source():
    for name in registry.bundled_names():
        spec = registry.load_spec(name)
        assert spec.sources, name
        assert all(isinstance(s, str) and s.strip() for s in spec.sources.values()), name


def test_device_name_as_system_is_the_device_alone():
    system = registry.load_system("h100-sxm5-80gb")
    assert system.devices_per_node == 1 and system.network is None and system.fabric.kind == "none"


def test_units_are_si_after_loading():
    system = registry.load_system("dgx-h100")
    assert system.device.peak("bf16") == 989e12  # "989 TFLOP/s"
    assert system.device.memory_bandwidth == 3.35e12  # "3.35 TB/s"
    assert system.network.link.bandwidth == 50e9  # "400 Gb/s" per direction
    assert system.fabric.link.latency == 1e-6  # "1 us"


def test_specs_are_frozen_and_copied_for_what_ifs():
    device = registry.load_device("h100-sxm5-80gb")
    with pytest.raises(dataclasses.FrozenInstanceError):
        device.memory_bytes = 1
    bigger = dataclasses.replace(device, memory_bytes=2 * device.memory_bytes)
    assert bigger.memory_bytes == 2 * device.memory_bytes and device.memory_bytes == 85017493504


def test_missing_dtype_is_an_error_not_a_guess():
    device = registry.load_device("h100-sxm5-80gb")
    with pytest.raises(PerfModelError, match="fp64"):
        device.peak("fp64")


GOOD_LINK = """
kind = "link"
name = "{name}"
description = "test link"
family = "infiniband"
bandwidth = { value = "200 Gb/s", direction = "per-direction", source = "test" }
latency = { value = "5 us", source = "test" }
"""

# (file text with {name} placeholder, fragments the one-line error must contain)
BAD = [
    ("kind = 'link'\nname = [", ["malformed TOML"]),
    (GOOD_LINK.replace('"200 Gb/s"', '"200 Gb"'), ["bandwidth: expected a bandwidth", "'200 Gb'", "(a size)"]),
    (GOOD_LINK.replace('"5 us"', '"5 GB"'), ["latency", "expected a time", "'5 GB'"]),
    (GOOD_LINK.replace('"5 us"', '"-5 us"'), ["latency", "non-negative"]),
    (GOOD_LINK.replace('"5 us"', '"nan us"'), ["latency", "cannot read a number"]),
    (GOOD_LINK.replace('"200 Gb/s"', "200"), ["bandwidth", "a string with a unit", "200 (int)"]),
    (GOOD_LINK.replace('"200 Gb/s"', '"0 Gb/s"'), ["bandwidth", "positive"]),
    (GOOD_LINK.replace(', direction = "per-direction"', ""), ["bandwidth", "direction", "missing"]),
    (GOOD_LINK.replace('"per-direction"', '"both"'), ["direction", "expected one of"]),
    (GOOD_LINK.replace(', source = "test" }\nlatency', ' }\nlatency'), ["bandwidth", "source", "missing"]),
    (GOOD_LINK.replace('family = "infiniband"', 'family = "infiniband"\nbandwith = 3'), ["bandwith", "unknown key", "did you mean"]),
    (GOOD_LINK.replace('family = "infiniband"', 'family = "infiniban"'), ["family", "expected one of", "did you mean 'infiniband'"]),
    (GOOD_LINK.replace('kind = "link"', 'kind = "lnk"'), ["kind", "expected one of"]),
    (GOOD_LINK.replace('kind = "link"\n', ""), ["kind", "missing"]),
    (GOOD_LINK.replace('name = "{name}"', 'name = "other"'), ["name", "stem"]),
    (GOOD_LINK.replace('description = "test link"', "description = 7"), ["description", "expected a non-empty string"]),
    # implausible magnitudes: a typo, not a link (specs/bounds.py PLAUSIBLE)
    (GOOD_LINK.replace('"200 Gb/s"', '"1e-30 Gb/s"'), ["bandwidth", "'1e-30 Gb/s' is not a plausible value",
                                                      "a bandwidth in [100000, 1e+17] B/s"]),
    (GOOD_LINK.replace('"5 us"', '"1e9 s"'), ["latency", "'1e9 s' is not a plausible value", "a time in [0, 10] s"]),
]


@pytest.mark.parametrize("text,fragments", BAD)
def test_wrong_file_names_file_key_kind_and_value(tmp_path, text, fragments):
    path = tmp_path / "bad-link.toml"
    path.write_text(text.replace("{name}", "bad-link"))
    with pytest.raises(SpecError) as info:
        registry.check_file(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_good_link_loads(tmp_path):
    path = tmp_path / "good-link.toml"
    path.write_text(GOOD_LINK.replace("{name}", "good-link"))
    link = registry.check_file(path)
    assert link.bandwidth == 25e9 and link.latency == 5e-6


def test_bidirectional_figure_is_halved(tmp_path):
    path = tmp_path / "bi.toml"
    path.write_text(GOOD_LINK.replace("{name}", "bi").replace('"per-direction"', '"bidirectional"'))
    assert registry.check_file(path).bandwidth == 12.5e9


SYSTEM = """
kind = "system"
name = "{name}"
description = "test system"
device = "{device}"
devices_per_node = 8

[fabric]
kind = "nvswitch"
link = "nvlink4"
links_per_device = 18
source = "test"
"""


def test_system_referencing_unknown_device(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(SYSTEM.format(name="s", device="h100-sxm5-80g"))
    with pytest.raises(UnknownNameError, match="did you mean 'h100-sxm5-80gb'"):
        registry.check_file(path)


def test_system_referencing_a_link_as_device(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(SYSTEM.format(name="s", device="nvlink4"))
    with pytest.raises(SpecError, match="is a link spec, expected a device"):
        registry.check_file(path)


def test_system_referencing_a_relative_file(tmp_path):
    (tmp_path / "my-link.toml").write_text(GOOD_LINK.replace("{name}", "my-link"))
    path = tmp_path / "s.toml"
    path.write_text(SYSTEM.format(name="s", device="h100-sxm5-80gb").replace('"nvlink4"', '"my-link.toml"'))
    assert registry.check_file(path).fabric.link.name == "my-link"


def test_torus_dims_must_match_devices(tmp_path):
    path = tmp_path / "t.toml"
    text = SYSTEM.format(name="t", device="h100-sxm5-80gb").replace(
        'kind = "nvswitch"\nlink = "nvlink4"\nlinks_per_device = 18', 'kind = "torus"\nlink = "nvlink4"\ndims = [2, 2, 3]')
    path.write_text(text)
    with pytest.raises(SpecError, match="product 12"):
        registry.check_file(path)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(InputFileError, match="no such file"):
        registry.check_file(tmp_path / "absent.toml")
    with pytest.raises(InputFileError, match="is a directory"):
        registry.check_file(tmp_path)
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00kind")
    with pytest.raises(SpecError, match="UTF-8"):
        registry.check_file(binary)


def test_unknown_bundled_name_suggests():
    with pytest.raises(UnknownNameError, match="did you mean 'dgx-a100'"):
        registry.load_system("dgx-a10")


# --- a bad reference says which file and key hold it ------------------------------------------------

SYSTEM_WITH_REFS = """\
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
source = "test"
"""


@pytest.mark.parametrize("old, new, error, prefix, fragment", [
    ('device = "h100-sxm5-80gb"', 'device = "h100-sxm5"', UnknownNameError, "sys.toml device: ",
     "did you mean 'h100-sxm5-80gb'"),
    ('link = "nvlink4"', 'link = "h100-sxm5-80gb"', SpecError, "sys.toml [fabric] link: ",
     "'h100-sxm5-80gb' is a gpu spec, expected a link"),
    ('link = "ib-ndr"', 'link = "ib-ndx"', UnknownNameError, "sys.toml [network] link: ", "did you mean 'ib-ndr'"),
    ('device = "h100-sxm5-80gb"', 'device = "nope/dev.toml"', InputFileError, "sys.toml device: ", "no such file"),
])
def test_a_bad_reference_names_its_file_and_key(tmp_path, old, new, error, prefix, fragment):
    path = tmp_path / "sys.toml"
    path.write_text(SYSTEM_WITH_REFS.replace(old, new))
    with pytest.raises(error) as exc:
        registry.check_file(path)
    message = str(exc.value)
    assert message.startswith(str(tmp_path / prefix)) and fragment in message and "\n" not in message


def test_a_deeply_nested_spec_file_is_a_spec_error(tmp_path):
    path = tmp_path / "lnk.toml"
    path.write_text("a = " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(SpecError, match="lnk.toml: nested too deeply"):
        registry.check_file(path)


@pytest.mark.parametrize("name", ["x" * 300 + ".toml", "d/" + "y" * 300 + ".toml", "nul\0byte.toml"])
def test_an_unusable_file_name_is_an_input_file_error(name):
    with pytest.raises(InputFileError) as exc:
        registry.load_spec(name)
    assert "\n" not in str(exc.value)


def test_specs_and_predictions_pickle_and_deep_copy():
    """Dask workers receive specs by pickle; notebooks deep-copy them for what-ifs."""
    import copy
    import pickle

    import perfmodel as pm

    system = registry.load_system("dgx-h100")
    assert pickle.loads(pickle.dumps(system)) == system
    assert copy.deepcopy(system) == system
    result = pm.predict("gpt2-124m", system, pm.Plan(devices=8, micro_batch=4, global_batch=32))
    again = pickle.loads(pickle.dumps(result))
    assert again.step_time_s == result.step_time_s and dict(again.breakdown_s) == dict(result.breakdown_s)
    with pytest.raises(TypeError, match="read-only"):
        system.device.peak_flops_per_s["bf16"] = 1.0
