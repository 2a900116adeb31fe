"""Numbers for people: the one place that decides how a value reads in a report.

>>> format_value(12.345)
'12.3'
>>> format_value(0.0123, "ratio")
'1.2 %'
>>> format_value(None)
'—'

Plain numbers keep three significant digits (at least one decimal, trailing zeros dropped), so
thresholds such as ``0.005`` and values such as ``412.7`` both stay readable. Units known here
are shown in their natural form; any other unit is appended as written.
"""

from __future__ import annotations

import math

from neuroerp_ci.support.text import printable

MISSING = "—"  # a value that was not measured or does not apply
NOT_A_NUMBER = "n/a"

_PLAIN_UNITS = frozenset({"", "count", "1"})
_RATIO_UNITS = frozenset({"ratio", "fraction"})
_PERCENT_UNITS = frozenset({"%", "percent", "pct"})
_BYTE_UNITS = frozenset({"B", "bytes", "byte"})
_SECOND_UNITS = frozenset({"s", "seconds", "sec"})
_BINARY_PREFIXES = ("KiB", "MiB", "GiB", "TiB")


def format_number(value: float) -> str:
    """A number with three significant digits, at least one decimal, no trailing zeros.

    ``412`` → ``"412"``, ``412.75`` → ``"412.8"``, ``12.345`` → ``"12.3"``,
    ``0.0123`` → ``"0.0123"``, ``2.5e-07`` → ``"2.5e-07"``.
    """
    if math.isnan(value):
        return NOT_A_NUMBER
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    magnitude = abs(value)
    if magnitude < 1e-4:
        # Fixed notation would be a row of zeros; scientific notation stays short.
        mantissa, exponent = f"{value:.2e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{exponent}"
    decimals = max(1, 2 - math.floor(math.log10(magnitude)))
    text = f"{value:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def format_value(value: float | None, unit: str = "") -> str:
    """A value with its unit, the way a person reads it; ``None`` becomes ``"—"``.

    ``ms`` and other unknown units are appended (``"412 ms"``); ``ratio`` is shown as a
    percentage; ``%`` is appended as ``" %"``; byte counts use binary prefixes; seconds
    above a minute become minutes.
    """
    if value is None:
        return MISSING
    if math.isnan(value) or math.isinf(value) or unit in _PLAIN_UNITS:
        return format_number(value)
    if unit in _RATIO_UNITS:
        return _percent(value * 100)
    if unit in _PERCENT_UNITS:
        return _percent(value)
    if unit in _BYTE_UNITS:
        return _bytes(value)
    if unit in _SECOND_UNITS:
        return format_duration(value)
    return f"{format_number(value)} {unit}"


def format_duration(seconds: float) -> str:
    """``12.34`` → ``"12.3 s"``, ``123`` → ``"2 min 03 s"``, ``3725`` → ``"1 h 02 min"``."""
    if math.isnan(seconds) or math.isinf(seconds) or abs(seconds) < 60:
        return f"{format_number(seconds)} s"
    total = round(seconds)
    sign, total = ("-" if total < 0 else ""), abs(total)
    if total < 3600:
        return f"{sign}{total // 60} min {total % 60:02d} s"
    return f"{sign}{total // 3600} h {total % 3600 // 60:02d} min"


def plain_text(text: str) -> str:
    """Tool output made printable: ANSI escapes removed, other control characters → U+FFFD,
    undecodable bytes of a file name as ``\\xNN`` (:func:`neuroerp_ci.support.text.printable`).

    Tabs and line breaks stay; each format decides what to do with them.
    """
    return printable(text)


def _percent(percent: float) -> str:
    if abs(percent) >= 1:
        text = f"{percent:.1f}".rstrip("0").rstrip(".")
        return f"{text} %"
    return f"{format_number(percent)} %"


def _bytes(count: float) -> str:
    if abs(count) < 1024:
        return f"{format_number(count)} B"
    scaled, shown = count, _BINARY_PREFIXES[0]
    for prefix in _BINARY_PREFIXES:
        scaled, shown = scaled / 1024, prefix
        if abs(scaled) < 1024:
            break
    return f"{format_number(scaled)} {shown}"
