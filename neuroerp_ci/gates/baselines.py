"""Where gate conditions get their baselines from: a small protocol the store implements."""

from __future__ import annotations

from typing import Protocol

from neuroerp_ci.model import Baseline


class BaselineProvider(Protocol):
    def baseline(self, check: str, metric: str) -> Baseline | None:
        """The baseline of ``metric`` of ``check``, or None when there is none yet."""


class NoBaselines:
    """For runs without a history store: every baseline condition reports 'no baseline'."""

    def baseline(self, check: str, metric: str) -> Baseline | None:
        return None
