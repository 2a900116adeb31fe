"""``{name}`` placeholders in pipeline values: ``{python}``, ``{port}``, ``{base_url}``,
``{project}``.

Only known names are replaced, so other braces (JSON, a dict literal) pass through. A
``{word}`` that names no placeholder is refused when the pipeline file is loaded
(:func:`unknown_placeholder`), since it would silently stay as it is; ``{{word}}`` is the
escape for a literal ``{word}`` (a Python f-string in a ``-c`` argument, say).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence

from neuroerp_ci.support.secrets import REFERENCE_KINDS

PLACEHOLDERS = ("python", "port", "base_url", "project")

# Secret references ({env:NAME}, {secret:BLOCK}; see neuroerp_ci.support.secrets) are replaced from
# values keyed "env:NAME" / "secret:BLOCK", which only the runner has.
_PLACEHOLDER = re.compile(
    r"\{\{([A-Za-z_]\w*)\}\}|\{(python|port|base_url|project|(?:"
    + "|".join(REFERENCE_KINDS)
    + r"):[^{}]*)\}"
)
# What a person would write meaning a placeholder: {word}, not doubled.
_CANDIDATE = re.compile(r"(?<!\{)\{([A-Za-z_]\w*)\}(?!\})")


def expand(text: str, values: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(1) is not None:  # {{word}}: the literal {word}
            return "{" + match.group(1) + "}"
        return values.get(match.group(2), match.group(0))

    return _PLACEHOLDER.sub(replace, text)


def expand_all(items: Sequence[str], values: Mapping[str, str]) -> list[str]:
    return [expand(item, values) for item in items]


def placeholder_names(text: str) -> list[str]:
    """The ``{word}`` names in ``text`` (escaped ``{{word}}`` left out), in order."""
    return _CANDIDATE.findall(text)


def unknown_placeholder(text: str, known: Collection[str]) -> str | None:
    """The first ``{word}`` in ``text`` whose word is not in ``known``, or None."""
    return next((name for name in placeholder_names(text) if name not in known), None)


def describe_known(known: Collection[str]) -> str:
    """``{python}, {project}``: the placeholders of a field, for a message."""
    return ", ".join("{" + name + "}" for name in known) if known else "none"
