"""Text from outside made safe for every report: neuroerp_ci.support.text."""

from __future__ import annotations

import doctest
import os

import neuroerp_ci.support.text as text_module
from neuroerp_ci.model import CheckResult, CheckStatus, Finding, FindingSeverity, Metric
from neuroerp_ci.support.text import printable, printable_name, printable_result


def test_doctests() -> None:
    assert doctest.testmod(text_module).failed == 0


def test_printable_keeps_text_and_shows_bytes() -> None:
    assert printable("café\ttab\nline") == "café\ttab\nline"
    assert printable(os.fsdecode(b"x\xffy")) == "x\\xffy"
    assert printable("\ud800 lone") == "\ufffd lone"  # not from a file name: no byte to show
    assert printable("\x1b[1mbold\x1b[0m \x00\x85\x7f") == "bold \ufffd\ufffd\ufffd"
    printable(os.fsdecode(b"\xff\xfe")).encode("utf-8")  # always encodable


def test_printable_name_is_one_to_one() -> None:
    names = [os.fsdecode(b"\xff.js"), "\\xff.js", "a\x07.js", "a\x08.js", "\ud800.js"]
    shown = [printable_name(n) for n in names]
    assert len(set(shown)) == len(names)
    assert shown[:4] == ["\\xff.js", "\\\\xff.js", "a\\x07.js", "a\\x08.js"]


def test_printable_result_cleans_every_text() -> None:
    odd = os.fsdecode(b"v\xff\x1b[31m\x00")
    result = CheckResult(
        "c", "k", CheckStatus.OK, reason=odd,
        metrics={odd + ".m": Metric(odd + ".m", 1.0)},
        findings=[Finding("t" + odd, "R", FindingSeverity.LOW, odd, odd, odd, (odd,), (odd,))],
        artifacts={"log": "/p/" + odd}, tool_versions={"tool": odd},
    )
    clean = printable_result(result)
    assert clean.reason == "v\\xff\ufffd"
    assert list(clean.metrics) == ["v\\xff\ufffd.m"] and clean.metrics["v\\xff\ufffd.m"].value == 1
    assert clean.tool_versions == {"tool": "v\\xff\ufffd"}
    assert clean.findings[0].location == "v\\xff\ufffd" and clean.findings[0].aliases == (
        "v\\xff\ufffd",
    )
    assert clean.artifacts == {"log": "/p/v\\xff\ufffd"}
