"""``neuroerp-ci plan``: what a stage will run, in which order and what may run at once."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from neuroerp_ci.checks import KINDS
from neuroerp_ci.config import Pipeline
from neuroerp_ci.dag import critical_path, layers, mermaid


@dataclass(frozen=True)
class StagePlan:
    stage: str
    order: list[str]
    layers: list[list[str]]
    critical_path: list[str]
    critical_path_s: float
    mermaid: str

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
    )
