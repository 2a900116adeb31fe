"""``neuroerp-ci plan`` and ``validate``: what a stage will run, in which order, what may run
at once, and the conditions that will decide its verdict (the kinds' defaults marked)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from neuroerp_ci.checks import KINDS
from neuroerp_ci.config import Pipeline
from neuroerp_ci.dag import critical_path, layers, mermaid
from neuroerp_ci.gates.conditions import DEFAULT_MARK, describe
from neuroerp_ci.model import Severity

# "stage": written in the stage; "default": the check kind's default condition;
# "completed": the implicit condition of a check with neither (it must have run).
Source = Literal["stage", "default", "completed"]


@dataclass(frozen=True)
class PlannedCondition:
    """One condition that will gate the stage, and where it comes from."""

    check: str
    kind: str
    condition: str  # as the outcome will name it: "failed <= 0 (default)", "completed"
    severity: str
    source: Source
    note: str = ""  # for "completed": why it is the only condition

    def to_text(self) -> str:
        where = {"stage": "", "default": f"; default of {self.kind}", "completed": "; implicit"}
        note = f": {self.note}" if self.note else ""
        return f"  {self.check}: {self.condition} [{self.severity}{where[self.source]}{note}]"


def stage_conditions(pipeline: Pipeline, stage_name: str) -> list[PlannedCondition]:
    """Every condition of a stage, check by check, as the gate will evaluate them."""
    stage = pipeline.stage(stage_name)
    planned: list[PlannedCondition] = []
    for check_id, (conditions, default) in stage.conditions_by_check().items():
        check = pipeline.checks[check_id]
        priority = Severity.for_priority(check.priority).value
        for cond in conditions:
            text = describe(cond)[0] + (DEFAULT_MARK if default else "")
            severity = cond.severity.value if cond.severity else priority
            source: Source = "default" if default else "stage"
            planned.append(PlannedCondition(check_id, check.kind, text, severity, source))
        if not conditions:
            kind = KINDS[check.kind]
            note = kind.completed_means
            if kind.default_conditions(check.settings):
                note = "default_conditions = false"
            planned.append(
                PlannedCondition(check_id, check.kind, "completed", priority, "completed", note)
            )
    return planned


def conditions_text(pipeline: Pipeline, stage_name: str) -> list[str]:
    """``Conditions of stage X:`` and one line per condition."""
    lines = [f"Conditions of stage {stage_name}:"]
    return lines + [c.to_text() for c in stage_conditions(pipeline, stage_name)]


@dataclass(frozen=True)
class StagePlan:
    stage: str
    order: list[str]
    layers: list[list[str]]
    critical_path: list[str]
    critical_path_s: float
    mermaid: str
    conditions: list[PlannedCondition]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_text(self) -> str:
        lines = [f"Stage {self.stage}: {len(self.order)} checks", "", "Parallel layers:"]
        lines += [f"  {i}. {', '.join(layer)}" for i, layer in enumerate(self.layers, 1)]
        lines += [
            "",
            f"Critical path (~{self.critical_path_s:g} s by estimate or timeout): "
            + " -> ".join(self.critical_path),
            "",
            "Conditions:",
            *(c.to_text() for c in self.conditions),
            "",
            "Mermaid:",
            self.mermaid,
        ]
        return "\n".join(lines)


def stage_plan(pipeline: Pipeline, stage_name: str) -> StagePlan:
    stage = pipeline.stage(stage_name)
    checks = [pipeline.checks[c] for c in stage.checks]
    graph = {c.id: c.dependencies for c in checks}
    exclusive = {c.id for c in checks if KINDS[c.kind].exclusive}
    groups = layers(graph, exclusive)
    cost = {c.id: c.estimate_s if c.estimate_s is not None else c.timeout for c in checks}
    path = critical_path(graph, cost)
    return StagePlan(
        stage=stage.name,
        order=[c for group in groups for c in group],
        layers=groups,
        critical_path=path.checks,
        critical_path_s=path.duration_s,
        mermaid=mermaid(graph, {c.id: f"{c.title} ({c.kind})" for c in checks}),
        conditions=stage_conditions(pipeline, stage_name),
    )
