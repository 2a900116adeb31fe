"""Gates: conditions (one module per form, :mod:`.conditions`) turn check results into
outcomes; the verdict sums them up."""

from neuroerp_ci.gates.baselines import NO_BASELINES, BaselineProvider, NoBaselines
from neuroerp_ci.gates.conditions import (
    DEFAULT_MARK,
    FORMS,
    ConditionForm,
    ConditionSpec,
    RegressionSpec,
    completed,
    counted_findings,
    describe,
    evaluate,
    evaluate_stage,
)
from neuroerp_ci.gates.statistics import ShiftComparison, compare_samples
from neuroerp_ci.gates.verdict import decide, summarize

__all__ = [
    "DEFAULT_MARK",
    "FORMS",
    "NO_BASELINES",
    "BaselineProvider",
    "ConditionForm",
    "ConditionSpec",
    "NoBaselines",
    "RegressionSpec",
    "ShiftComparison",
    "compare_samples",
    "completed",
    "counted_findings",
    "decide",
    "describe",
    "evaluate",
    "evaluate_stage",
    "summarize",
]
