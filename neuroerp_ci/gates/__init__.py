"""Gates: conditions turn check results into outcomes; the verdict sums them up."""

from neuroerp_ci.gates.conditions import completed, evaluate, evaluate_stage
from neuroerp_ci.gates.verdict import decide, summarize

__all__ = ["completed", "decide", "evaluate", "evaluate_stage", "summarize"]
