"""``{name}`` placeholders in pipeline values: ``{python}``, ``{port}``, ``{base_url}``,
``{project}``. Only known names are replaced, so other braces (JSON, say) pass through."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

_PLACEHOLDER = re.compile(r"\{(python|port|base_url|project)\}")


def expand(text: str, values: Mapping[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def expand_all(items: Sequence[str], values: Mapping[str, str]) -> list[str]:
    return [expand(item, values) for item in items]
