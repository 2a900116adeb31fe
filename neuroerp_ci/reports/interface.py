"""What a report format is: a pure function from a stage report to text.

A renderer does no I/O and reads no clock; :mod:`neuroerp_ci.reports.writer` alone decides
where its text goes. A new format is one new module with one renderer plus one line in
:data:`neuroerp_ci.reports.RENDERERS` (file name -> renderer).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

from neuroerp_ci.model import StageReport

Renderer: TypeAlias = Callable[[StageReport], str]
"""Turns a :class:`~neuroerp_ci.model.StageReport` into the full text of one file."""
