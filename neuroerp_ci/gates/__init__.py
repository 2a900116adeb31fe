"""Gates: conditions turn check results into outcomes; the verdict sums them up."""

from neuroerp_ci.gates.baselines import NO_BASELINES, BaselineProvider, NoBaselines
from neuroerp_ci.gates.conditions import completed, evaluate, evaluate_stage
from neuroerp_ci.gates.statistics import ShiftComparison, compare_samples
from neuroerp_ci.gates.verdict import decide, summarize

__all__ = [
    "NO_BASELINES",
    "BaselineProvider",
    "NoBaselines",
    "ShiftComparison",
    "compare_samples",
    "completed",
    "decide",
    "evaluate",
    "evaluate_stage",
    "summarize",
]
