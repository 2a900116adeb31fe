"""The environment fingerprint: enough to tell runs apart, without naming the host."""

from __future__ import annotations

import os
import platform
import socket

from neuroerp_ci.store import (
    environment_fingerprint,
    hashed_hostname,
    report_tool_versions,
    with_tool_versions,
)

from .conftest import make_report


def test_the_fingerprint_describes_this_process() -> None:
    fingerprint = environment_fingerprint({"pytest": "9.0"})
    assert fingerprint["python"] == platform.python_version()
    assert fingerprint["cpu_count"] == os.cpu_count()
    assert fingerprint["machine"] == platform.machine()
    assert fingerprint["tools"] == {"pytest": "9.0"}
    assert socket.gethostname() not in str(fingerprint)
    assert fingerprint["host"] == hashed_hostname()


def test_host_names_are_hashed_stably_and_distinctly() -> None:
    assert hashed_hostname("ci-1") == hashed_hostname("ci-1")
    assert hashed_hostname("ci-1") != hashed_hostname("ci-2")
    assert len(hashed_hostname("ci-1")) == 16 and "ci-1" not in hashed_hostname("ci-1")


def test_tool_versions_come_from_every_check_and_differences_show() -> None:
    report = make_report("r")
    report.checks[1].tool_versions["httpx"] = "0.27.0"
    assert report_tool_versions(report) == {"bandit": "1.9.4", "httpx": "0.27.0 | 0.28.1"}
    merged = with_tool_versions({"python": "3.11", "tools": {"git": "2.39"}}, report)
    assert merged["tools"] == {"bandit": "1.9.4", "git": "2.39", "httpx": "0.27.0 | 0.28.1"}
    assert merged["python"] == "3.11"
