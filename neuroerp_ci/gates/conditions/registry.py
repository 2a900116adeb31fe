"""The condition forms a pipeline file may use: one module per form, one line each here.

:class:`~neuroerp_ci.gates.conditions.spec.ConditionSpec` picks a condition's form from this
mapping when the file is loaded, and the dispatcher describes and judges through it, so a
new form is its module plus its line below. The order is the order forms are named in
messages ("needs 'max' or 'min', or a limit against the baseline: ...").
"""

from __future__ import annotations

from typing import Any

from neuroerp_ci.gates.conditions.absolute import AbsoluteLimit
from neuroerp_ci.gates.conditions.findings import FindingsLimit
from neuroerp_ci.gates.conditions.interface import ConditionForm
from neuroerp_ci.gates.conditions.regression import RegressionTest
from neuroerp_ci.gates.conditions.relative import RelativeLimit

FORMS: dict[str, ConditionForm[Any]] = {
    form.name: form
    for form in (
        AbsoluteLimit(),
        RelativeLimit(),
        RegressionTest(),
        FindingsLimit(),
    )
}
