"""Text from outside (file names, tool output, tool versions) made safe for every report.

A file name with bytes that are not UTF-8 arrives as lone surrogates (``os.fsdecode``), which
no UTF-8 file, JSON document or database can hold; tools print colour codes and control
characters that XML cannot carry at all and Markdown shows as garbage. :func:`printable`
turns any ``str`` into text every report format and the history store can hold, and
:func:`printable_result` applies it to everything a check reports, once, where the result
leaves the check (:func:`neuroerp_ci.checks.interface.execute_check`).

>>> printable("bad\\udcffname\\x1b[31m red\\x1b[0m\\x00.js")
'bad\\\\xffname red\\ufffd.js'
"""

from __future__ import annotations

import re
from dataclasses import replace

from neuroerp_ci.model import CheckResult, Finding, Metric

# Colour and cursor codes that tools print into reasons; a report shows them as garbage.
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
# C0 controls but tab and line breaks, DEL and the C1 controls.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_NAME_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    # surrogateescape keeps an undecodable byte 0xNN as U+DCNN: show the byte.
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else "\ufffd"


def printable(text: str) -> str:
    """``text`` with undecodable bytes shown as ``\\xNN``, ANSI escapes removed and other
    control characters as U+FFFD. Tabs and line breaks stay; each format decides on them."""
    return _CONTROL.sub("\ufffd", _ANSI_ESCAPE.sub("", _SURROGATE.sub(_escaped, text)))


def printable_name(name: str) -> str:
    """A file name as printable text, one to one (two names never become one): undecodable
    bytes and control characters as ``\\xNN``, a backslash doubled.

    >>> printable_name("a\\\\b\\udcff\\x07.js")
    'a\\\\\\\\b\\\\xff\\\\x07.js'
    """
    doubled = name.replace("\\", "\\\\")
    try:
        raw = doubled.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate no file system name holds
        raw = doubled.encode("utf-8", "backslashreplace")
    text = raw.decode("utf-8", "backslashreplace")
    return _NAME_CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def printable_result(result: CheckResult) -> CheckResult:
    """``result`` with every text it carries made :func:`printable` (metric names included,
    so a condition reads the same name in every report)."""
    metrics = {}
    for metric in result.metrics.values():
        name = printable(metric.name)
        metrics[name] = _metric(metric, name)
    return replace(
        result,
        reason=printable(result.reason),
        metrics=metrics,
        findings=[_finding(f) for f in result.findings],
        suppressed=[_finding(f) for f in result.suppressed],
        waived=[_finding(f) for f in result.waived],
        absent=[_finding(f) for f in result.absent],
        components=[
            replace(
                c,
                name=printable(c.name),
                version=printable(c.version),
                purl=printable(c.purl),
                license=printable(c.license),
                license_declared=printable(c.license_declared),
            )
            for c in result.components
        ],
        artifacts={printable(k): printable(v) for k, v in result.artifacts.items()},
        tool_versions={printable(k): printable(v) for k, v in result.tool_versions.items()},
    )


def _metric(metric: Metric, name: str) -> Metric:
    return metric if name == metric.name else replace(metric, name=name)


def _finding(finding: Finding) -> Finding:
    return replace(
        finding,
        tool=printable(finding.tool),
        rule=printable(finding.rule),
        message=printable(finding.message),
        location=printable(finding.location),
        confidence=None if finding.confidence is None else printable(finding.confidence),
        fix_versions=tuple(printable(v) for v in finding.fix_versions),
        fingerprint=printable(finding.fingerprint),
        help_url=printable(finding.help_url),
        aliases=tuple(printable(a) for a in finding.aliases),
    )


def tail_lines(text: str, chars: int) -> str:
    """The end of a tool's output quoted on one line of at most ``chars``, starting at a
    line: the last lines that fit whole, blank ones left out, whitespace runs as one space.
    When the last line alone is longer, its end from a word on, after an ellipsis.

    >>> tail_lines("collected 3 items\\nE   AssertionError: 1 != 2\\n", 30)
    'E AssertionError: 1 != 2'
    >>> tail_lines("Traceback: the worker crashed hard", 20)
    '… crashed hard'
    """
    lines = [" ".join(line.split()) for line in text.splitlines()]
    kept: list[str] = []
    used = -1  # no space before the first line
    for line in reversed([line for line in lines if line]):
        if used + 1 + len(line) > chars:
            break
        kept.append(line)
        used += 1 + len(line)
    if kept or not any(lines):
        return " ".join(reversed(kept))
    last = next(line for line in reversed(lines) if line)
    end = last[len(last) - (chars - 2) :] if chars > 2 else ""
    if " " in end and last[len(last) - len(end) - 1] != " ":
        end = end.split(" ", 1)[1]  # a word cut in two: start at the next one
    return f"… {end}"


def clip_words(text: str, chars: int) -> str:
    """``text`` cut to at most ``chars`` at a word's end, with an ellipsis when it was cut.

    >>> clip_words("3 of 4 failed (2x HTTP 503, 1x connection refused)", 30)
    '3 of 4 failed (2x HTTP 503, …'
    >>> clip_words("short", 30)
    'short'
    """
    if len(text) <= chars:
        return text
    cut = text[: max(chars - 1, 0)]
    if " " in cut and text[len(cut)] != " ":
        cut = cut.rsplit(" ", 1)[0] + " "  # a word cut in two: end before it
    return cut + "…"
