from __future__ import annotations

import math

import pytest

from neuroerp_ci.support.formatting import format_duration, format_number, format_value, plain_text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (12.345, "12.3"),
        (412.75, "412.8"),
        (412.0, "412"),
        (300, "300"),
        (1.5, "1.5"),
        (1.234, "1.23"),
        (0.0123, "0.0123"),
        (0.01, "0.01"),
        (0.05, "0.05"),
        (-3.14159, "-3.14"),
        (99.96, "100"),
        (2.5e-07, "2.5e-07"),
        (1e-05, "1e-05"),
        (0.0, "0"),
        (1_234_567.891, "1234567.9"),
        (math.inf, "∞"),
        (-math.inf, "-∞"),
        (math.nan, "n/a"),
    ],
)
def test_format_number(value: float, text: str) -> None:
    assert format_number(value) == text


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (None, "", "—"),
        (None, "ms", "—"),
        (12.345, "", "12.3"),
        (12.345, "count", "12.3"),
        (0.0123, "ratio", "1.2 %"),
        (0.8734, "ratio", "87.3 %"),
        (1.0, "ratio", "100 %"),
        (0.0004, "ratio", "0.04 %"),
        (12.5, "%", "12.5 %"),
        (412.75, "ms", "412.8 ms"),
        (88.4, "rps", "88.4 rps"),
        (512, "bytes", "512 B"),
        (1536, "bytes", "1.5 KiB"),
        (3 * 1024 * 1024, "B", "3 MiB"),
        (5 * 1024**5, "B", "5120 TiB"),
        (12.34, "s", "12.3 s"),
        (123, "s", "2 min 03 s"),
        (math.nan, "ms", "n/a"),
    ],
)
def test_format_value(value: float | None, unit: str, text: str) -> None:
    assert format_value(value, unit) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.8, "0.8 s"), (59.94, "59.9 s"), (60, "1 min 00 s"), (3725, "1 h 02 min"), (-5, "-5 s")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_docstring_examples() -> None:
    import doctest

    import neuroerp_ci.reports.writer as writer_module
    import neuroerp_ci.support.formatting as format_module

    for module in (format_module, writer_module):
        assert doctest.testmod(module).failed == 0


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("\x1b[31mERROR\x1b[0m: x", "ERROR: x"),
        ("a\x00b\x07c", "a\ufffdb\ufffdc"),
        ("tab\tand\nnewline stay", "tab\tand\nnewline stay"),
    ],
)
def test_plain_text(raw: str, clean: str) -> None:
    assert plain_text(raw) == clean
