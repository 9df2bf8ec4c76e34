"""The unit parser against pint (the reference; a test dependency only, too slow for the CLI)."""

import math

import pint
import pytest

from perfmodel.errors import UnitError
from perfmodel.units import format_quantity, parse_quantity

ureg = pint.UnitRegistry()
ureg.define("FLOP = [flop]")
ureg.define("transfer = [transfer] = T")

# (our string, dimension, the same quantity spelled for pint, SI unit for pint)
CASES = [
    ("3.35 TB/s", "bandwidth", "3.35 terabyte/second", "byte/second"),
    ("200 Gb/s", "bandwidth", "200 gigabit/second", "byte/second"),
    ("25 Gbps", "bandwidth", "25 gigabit/second", "byte/second"),
    ("1.5 GiB/s", "bandwidth", "1.5 gibibyte/second", "byte/second"),
    ("80 GiB", "bytes", "80 gibibyte", "byte"),
    ("80 GB", "bytes", "80 gigabyte", "byte"),
    ("4096 B", "bytes", "4096 byte", "byte"),
    ("512 Kib", "bytes", "512 kibibit", "byte"),
    ("2 us", "time", "2 microsecond", "second"),
    ("2 \u00b5s", "time", "2 microsecond", "second"),
    ("8.4 ms", "time", "8.4 millisecond", "second"),
    ("3 min", "time", "3 minute", "second"),
    ("989 TFLOP/s", "flop_rate", "989 teraFLOP/second", "FLOP/second"),
    ("1.2 PFLOP", "flops", "1.2 petaFLOP", "FLOP"),
    ("1.98 GHz", "frequency", "1.98 gigahertz", "hertz"),
    ("32 GT/s", "transfer_rate", "32 gigatransfer/second", "transfer/second"),
    ("700 W", "power", "700 watt", "watt"),
]


@pytest.mark.parametrize("text,dim,pint_text,si", CASES)
def test_matches_pint(text, dim, pint_text, si):
    expected = ureg.Quantity(pint_text).to(si).magnitude
    assert math.isclose(parse_quantity(text, dim), expected, rel_tol=1e-12)


def test_decimal_and_binary_prefixes_differ():
    assert parse_quantity("1 GB", "bytes") == 1e9
    assert parse_quantity("1 GiB", "bytes") == 2**30


def test_bits_and_bytes_differ():
    assert parse_quantity("100 Gb/s", "bandwidth") * 8 == parse_quantity("100 GB/s", "bandwidth")


@pytest.mark.parametrize(
    "text,dim,fragment",
    [
        ("3.35 TB", "bandwidth", "(a size)"),
        ("2 us", "bytes", "(a time)"),
        ("989 TFLOPs", "flop_rate", "ambiguous"),
        ("3 KB", "bytes", "'k' (1e3) or 'Ki'"),
        ("80", "bytes", "no unit"),
        ("nan GB", "bytes", "cannot read a number"),
        ("inf GB", "bytes", "cannot read a number"),
        ("1e999 GB", "bytes", "finite"),
        ("-5 GB/s", "bandwidth", "non-negative"),
        ("fast", "time", "cannot read a number"),
        ("5 furlongs", "time", "unknown unit"),
        ("3 Gis", "time", "unknown unit"),
    ],
)
def test_refuses_with_a_named_problem(text, dim, fragment):
    with pytest.raises(UnitError) as info:
        parse_quantity(text, dim)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_zero_refused_when_asked():
    with pytest.raises(UnitError, match="positive"):
        parse_quantity("0 GB/s", "bandwidth", allow_zero=False)


def test_non_string_refused():
    with pytest.raises(UnitError):
        parse_quantity(3.35, "bandwidth")


@pytest.mark.parametrize("value,dim,text", [
    (3.35e12, "bandwidth", "3.35 TB/s"),
    (989e12, "flop_rate", "989 TFLOP/s"),
    (2e-6, "time", "2 us"),
    (0.0123, "time", "12.3 ms"),
    (80e9, "bytes", "80 GB"),
])
def test_format_round_trips(value, dim, text):
    assert format_quantity(value, dim) == text
    assert math.isclose(parse_quantity(text, dim), value, rel_tol=1e-12)
