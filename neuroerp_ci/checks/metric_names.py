"""What metric names a check can produce, so a condition naming another one fails at load.

Each kind declares them for a check's settings (:meth:`CheckKind.metric_names`): fixed names
(``p95_ms``), and names derived per item, ``<item>.<suffix>``, where the items come from the
settings (http endpoints, database statements, network hosts) or are only known at run time
(locust's endpoints, front-end chunks) and then only have to look like one.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from neuroerp_ci.model import NEW_FINDINGS, FindingSeverity

_SHOWN = 8

# What every check that reports findings also measures against the stage's baseline run
# (gates/new_findings.py): the findings this version introduced, in all and per severity.
NEW_FINDINGS_METRICS = frozenset(
    {NEW_FINDINGS} | {f"{NEW_FINDINGS}_{s.value}" for s in FindingSeverity}
)


@dataclass(frozen=True)
class MetricNames:
    """The metric names of one check.

    ``per_item`` are the suffixes of ``<item>.<suffix>`` names: ``items`` lists the items,
    or ``None`` when they are only known at run time and must match ``item_pattern``.
    ``needs`` says which setting a name (or a per-item suffix) needs when these settings do
    not produce it (``"coverage_pct": "settings.cov"``); the key ``"*"`` covers every other
    name. ``any_name``: the check reports names of its own choosing (a command's JSON line).
    ``findings``: the check reports findings, so findings limits apply to it. ``audit``: they
    are a code audit's (a scanner's): fingerprinted, compared with the baseline run (``new =
    true`` limits, the ``new_findings`` metrics) and written to SARIF.
    """

    fixed: frozenset[str] = frozenset()
    per_item: frozenset[str] = frozenset()
    items: frozenset[str] | None = frozenset()
    item: str = "item"  # what an item is called in messages: endpoint, statement, ...
    item_pattern: str = r"[a-z0-9_-]+"
    any_name: bool = False
    findings: bool = False
    audit: bool = False
    needs: Mapping[str, str] = field(default_factory=dict)

    def produces(self, metric: str) -> bool:
        if self.any_name or metric in self.fixed:
            return True
        if self.audit and metric in NEW_FINDINGS_METRICS:
            return True
        item, dot, suffix = metric.rpartition(".")
        if not dot or suffix not in self.per_item:
            return False
        if self.items is None:
            return re.fullmatch(self.item_pattern, item) is not None
        return item in self.items

    def problem(self, metric: str, check: str, kind: str) -> str:
        """Why ``metric`` is not a metric of the check, in one line, with the closest name."""
        suffix = metric.rpartition(".")[2]
        need = self.needs.get(metric) or self.needs.get(suffix)
        close = self.closest(metric)
        other = self.needs.get("*")
        if need or (other and not close):
            return f"check {check!r} ({kind}) measures {metric!r} only with {need or other}"
        text = f"check {check!r} ({kind}) never measures {metric!r}"
        if close:
            text += f"; did you mean {close!r}?"
        if other:
            return f"{text} (any other name only with {other})"
        return f"{text} (it measures: {self.describe()})"

    def closest(self, metric: str) -> str | None:
        candidates: set[str] = set(self.fixed)
        item, dot, _ = metric.rpartition(".")
        known_items: Iterable[str] = self.items if self.items is not None else ()
        if dot and self.items is None:
            known_items = [item]  # a run-time item: keep the one written, mend the suffix
        candidates.update(f"{i}.{s}" for i in known_items for s in self.per_item)
        found = difflib.get_close_matches(metric, sorted(candidates), n=1, cutoff=0.6)
        return found[0] if found else None

    def describe(self) -> str:
        parts = [", ".join(sorted(self.fixed))] if self.fixed else []
        if self.per_item:
            suffixes = ", ".join(sorted(self.per_item))
            if self.items is None:
                parts.append(f"<{self.item}>.{{{suffixes}}} per {self.item}")
            elif self.items:
                shown = sorted(self.items)
                more = f", +{len(shown) - _SHOWN} more" if len(shown) > _SHOWN else ""
                listed = ", ".join(shown[:_SHOWN]) + more
                parts.append(f"<{self.item}>.{{{suffixes}}} for {self.item}s {listed}")
        return "; ".join(parts) or "no metric"
