"""Gate conditions, an extension axis like check kinds and report formats: the interface
(:mod:`.interface`), one module per condition form (:mod:`.absolute`, :mod:`.relative`,
:mod:`.regression`, :mod:`.findings`), the registry the pipeline file's conditions pick
their form from (:mod:`.registry`), the condition as written (:mod:`.spec`) and the
dispatcher that turns a condition and a check's result into an outcome (:mod:`.dispatch`).
"""

from neuroerp_ci.gates.conditions.dispatch import (
    DEFAULT_MARK,
    StageConditions,
    completed,
    describe,
    evaluate,
    evaluate_stage,
)
from neuroerp_ci.gates.conditions.findings import counted_findings
from neuroerp_ci.gates.conditions.interface import ConditionForm, Evidence, FormParams, Subject
from neuroerp_ci.gates.conditions.judgement import Judgement, Resolution
from neuroerp_ci.gates.conditions.registry import FORMS
from neuroerp_ci.gates.conditions.regression import RegressionSpec
from neuroerp_ci.gates.conditions.spec import ConditionSpec

__all__ = [
    "DEFAULT_MARK",
    "FORMS",
    "ConditionForm",
    "ConditionSpec",
    "Evidence",
    "FormParams",
    "Judgement",
    "RegressionSpec",
    "Resolution",
    "StageConditions",
    "Subject",
    "completed",
    "counted_findings",
    "describe",
    "evaluate",
    "evaluate_stage",
]
