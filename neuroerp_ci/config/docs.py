"""Generate ``docs/configuration.md`` from the pipeline file's models.

Run ``python -m neuroerp_ci.config.docs > docs/configuration.md``;
``tests/test_configuration_docs.py`` fails when the committed page differs from what this
prints, so the reference cannot drift from the code.

Everything comes from the models themselves: the tables :class:`PipelineFile` nests (walked
from its fields, so a new section appears without touching this module), the settings model
of every kind in :data:`neuroerp_ci.checks.KINDS`, and the condition forms. A key's
description is its ``Field(description=...)`` if it has one, else the source comments on and
right above its line: the models document themselves with comments, and reading them keeps
one text for people reading the code and people reading this page. The output depends only
on the code (no clock, no paths, no set order), so it is stable byte for byte.
"""

from __future__ import annotations

import ast
import enum
import inspect
import io
import json
import re
import sys
import textwrap
import tokenize
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from neuroerp_ci.checks import KINDS, CheckKind
from neuroerp_ci.config.pipeline import CheckEntry, PipelineFile
from neuroerp_ci.gates.conditions import ConditionSpec
from neuroerp_ci.gates.conditions.registry import FORMS

COMMAND = "python -m neuroerp_ci.config.docs > docs/configuration.md"

# Keys whose meaning another section of the page gives, not their own type.
_SEE_ALSO: dict[tuple[type[BaseModel], str], str] = {
    (CheckEntry, "settings"): "check-kinds",
}


# Tables whose keys are not all fields of their model.
_TABLE_NOTES: dict[type[BaseModel], str] = {
    ConditionSpec: "Plus the keys of ONE [condition form](#condition-forms), which select it.",
}


# --- what a model looks like --------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """One TOML table to document: a model and every key path it is found at."""

    model: type[BaseModel]
    paths: list[str] = field(default_factory=list)
    anchor: str = ""


@dataclass
class _Type:
    """A field's type for people: its text, the tables inside it and their path suffixes."""

    text: str
    nested: list[tuple[type[BaseModel], str]] = field(default_factory=list)
    choices: list[str] = field(default_factory=list)
    item_constraints: list[str] = field(default_factory=list)


def describe_type(annotation: Any) -> _Type:
    """``list[str] | None`` -> ``array of string``, with the models it holds and where."""
    return _describe(annotation, "")


def _describe(annotation: Any, suffix: str) -> _Type:
    origin = get_origin(annotation)
    if origin is Annotated:
        inner, *meta = get_args(annotation)
        shape = _describe(inner, suffix)
        for item in meta:
            metadata = item.metadata if isinstance(item, FieldInfo) else [item]
            shape.item_constraints.extend(constraint_texts(metadata, shape.text))
        return shape
    if origin in (Union, types.UnionType):
        parts = [a for a in get_args(annotation) if a is not type(None)]
        if len(parts) == 1:
            return _describe(parts[0], suffix)
        shapes = [_describe(p, suffix) for p in parts]
        if all(s.choices for s in shapes):  # an enum or a literal extended by more values
            choices = [c for s in shapes for c in s.choices]
            return _Type(" or ".join(dict.fromkeys(s.text for s in shapes)), choices=choices)
        merged = _Type(" or ".join(_inline(s) for s in shapes))
        for s in shapes:
            merged.nested.extend(s.nested)
            merged.item_constraints.extend(s.item_constraints)
        return merged
    if origin is Literal:
        values = list(get_args(annotation))
        return _Type(_scalar_name(type(values[0])), choices=[_toml(v) for v in values])
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        values = [member.value for member in annotation]
        return _Type(_scalar_name(type(values[0])), choices=[_toml(v) for v in values])
    if origin in (list, tuple, Sequence):
        (item, *_) = get_args(annotation) or (Any,)
        inner = _describe(item, suffix + "[]")
        return _Type(f"array of {inner.text}", inner.nested, item_constraints=_each(inner))
    if origin is dict:
        _key, value = get_args(annotation) or (str, Any)
        if value is Any:
            return _Type("table")
        inner = _describe(value, suffix + ".<name>")
        return _Type(f"table of {inner.text}", inner.nested, item_constraints=_each(inner))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _Type("table", [(annotation, suffix)])
    return _Type(_scalar_name(annotation))


def _each(inner: _Type) -> list[str]:
    """The constraints of an array's or a table's items, choices first."""
    own = [_one_of(inner.choices)] if inner.choices else []
    return [f"each: {c}" for c in (*own, *inner.item_constraints)]


def _one_of(choices: Sequence[str]) -> str:
    return "one of " + ", ".join(f"`{c}`" for c in choices)


def _inline(shape: _Type) -> str:
    """A type inside another: its choices written out (``"PASS" or "FAIL"``)."""
    return " or ".join(shape.choices) if shape.choices else shape.text


def _scalar_name(annotation: Any) -> str:
    names = {str: "string", int: "integer", float: "number", bool: "boolean"}
    if annotation is Any:
        return "any"
    if isinstance(annotation, type) and annotation in names:
        return names[annotation]
    return getattr(annotation, "__name__", str(annotation))


def constraint_texts(metadata: Sequence[Any], type_text: str = "") -> list[str]:
    """Pydantic's constraint metadata as people read it: ``> 0``, ``≤ 10``, ``pattern ...``."""
    unit = "item" if type_text.startswith(("array", "table")) else "character"
    texts: list[str] = []
    for item in metadata:
        if isinstance(item, annotated_types.Gt):
            texts.append(f"> {_toml(item.gt)}")
        elif isinstance(item, annotated_types.Ge):
            texts.append(f"≥ {_toml(item.ge)}")
        elif isinstance(item, annotated_types.Lt):
            texts.append(f"< {_toml(item.lt)}")
        elif isinstance(item, annotated_types.Le):
            texts.append(f"≤ {_toml(item.le)}")
        elif isinstance(item, annotated_types.MinLen):
            texts.append(f"at least {_count(item.min_length, unit)}")
        elif isinstance(item, annotated_types.MaxLen):
            texts.append(f"at most {_count(item.max_length, unit)}")
        elif getattr(item, "pattern", None) is not None:
            texts.append(f"pattern `{item.pattern}`")
    return texts


def _count(n: int | None, unit: str) -> str:
    return f"{n} {unit}" + ("" if n == 1 else "s")


# --- descriptions from the source ---------------------------------------------------------


@cache
def _field_comments(cls: type) -> dict[str, str]:
    """Field name -> the comments right above its line and on its lines, in ``cls``'s source."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    comments: dict[int, str] = {}
    code_lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            text = token.string.lstrip("#").strip()
            if not re.match(r"(noqa|type:|pragma)\b", text):
                comments[token.start[0]] = text
        elif token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            code_lines.update(range(token.start[0], token.end[0] + 1))
    (node,) = ast.parse(source).body
    found: dict[str, str] = {}
    assert isinstance(node, ast.ClassDef)
    for statement in node.body:
        if not (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)):
            continue
        first, last = statement.lineno, statement.end_lineno or statement.lineno
        above: list[str] = []
        line = first - 1
        while line in comments and line not in code_lines:
            above.insert(0, comments[line])
            line -= 1
        inside = [comments[n] for n in range(first, last + 1) if n in comments]
        found[statement.target.id] = " ".join(above + inside)
    return found


def field_description(model: type[BaseModel], name: str, info: FieldInfo) -> str:
    """``Field(description=...)``, else the source comments of the class that declares it."""
    if info.description:
        return markdown(" ".join(info.description.split()))
    for cls in model.__mro__:
        if name in cls.__dict__.get("__annotations__", {}):
            return markdown(_field_comments(cls).get(name, ""))
    return ""


def class_doc(cls: type) -> str:
    """The class's own docstring (not an inherited one), in Markdown."""
    doc = cls.__dict__.get("__doc__")
    return markdown(inspect.cleandoc(doc)) if isinstance(doc, str) else ""


_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")


def markdown(text: str) -> str:
    """Docstring and comment text (reStructuredText-ish) as Markdown: ``x`` and
    :role:`~a.b` become code spans, and ``<`` outside them is no HTML tag."""
    text = _ROLE.sub(lambda m: f"``{m.group(1)}``", text).replace("``", "`")
    parts = text.split("`")
    for i in range(0, len(parts), 2):  # outside code spans
        parts[i] = parts[i].replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts)


# --- walking the models -------------------------------------------------------------------


def tables(root: type[BaseModel], prefix: str = "") -> list[Table]:
    """Every table reachable from ``root``, depth first in field order, each model once with
    all the key paths it appears at (``stages.<name>.hooks.backup``, ``...deploy``, ...)."""
    found: dict[type[BaseModel], Table] = {}

    def visit(model: type[BaseModel], path: str) -> None:
        seen = model in found
        table = found.setdefault(model, Table(model))
        if path:
            table.paths.append(path)
        if seen:
            return
        for name, info in model.model_fields.items():
            key = info.alias or name
            for nested, suffix in describe_type(info.annotation).nested:
                visit(nested, f"{path}.{key}{suffix}" if path else f"{key}{suffix}")

    visit(root, prefix)
    return [t for t in found.values() if t.paths]


def anchor(text: str) -> str:
    """An HTML id for a heading: lowercase words joined by ``-``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _toml(value: Any) -> str:
    """A default as it would be written in the pipeline file."""
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    return str(value)


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "**required**"
    value = info.get_default(call_default_factory=True, validated_data={})
    if value is None or value is PydanticUndefined:
        return "unset"
    if isinstance(value, BaseModel):
        return "its defaults"
    return f"`{_toml(value)}`"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


@dataclass(frozen=True)
class Page:
    """Every table with its scope ("" for the pipeline file, a kind's or a form's name) and
    anchor, so a type cell can link to the table's own section."""

    placed: list[tuple[Table, str]]

    @property
    def anchors(self) -> dict[tuple[type[BaseModel], str], str]:
        return {(t.model, scope): t.anchor for t, scope in self.placed}

    def scoped(self, scope: str) -> list[Table]:
        return [t for t, s in self.placed if s == scope]

    def link(self, model: type[BaseModel], scope: str) -> str:
        target = self.anchors.get((model, scope))
        return f"[table](#{target})" if target else "table"


def key_rows(model: type[BaseModel], page: Page, scope: str) -> Iterator[str]:
    yield "| key | type | default | constraints | description |"
    yield "|---|---|---|---|---|"
    for name, info in model.model_fields.items():
        key = info.alias or name
        shape = describe_type(info.annotation)
        type_text = shape.text
        for nested, _suffix in shape.nested:
            type_text = type_text.replace("table", page.link(nested, scope), 1)
        see = _SEE_ALSO.get((model, name))
        if see:
            type_text = f"[table](#{see})"
        constraints = constraint_texts(info.metadata, shape.text) + shape.item_constraints
        if shape.choices:
            constraints.insert(0, _one_of(shape.choices))
        if (model, name) == (CheckEntry, "kind"):
            constraints.insert(0, _one_of([_toml(k) for k in sorted(KINDS)]))
        yield (
            f"| `{key}` | {_cell(type_text)} | {_cell(_default(info))} "
            f"| {_cell('; '.join(constraints))} | {_cell(field_description(model, name, info))} |"
        )


def table_section(table: Table, page: Page, scope: str, level: str = "###") -> Iterator[str]:
    first, *others = table.paths
    yield f'<a id="{table.anchor}"></a>'
    yield ""
    yield f"{level} `{first}`"
    yield ""
    if others:
        yield "The same table at " + ", ".join(f"`{p}`" for p in others) + "."
        yield ""
    doc = class_doc(table.model)
    if doc:
        yield doc
        yield ""
    note = _TABLE_NOTES.get(table.model)
    if note:
        yield note
        yield ""
    yield from key_rows(table.model, page, scope)
    yield ""


# --- the page -----------------------------------------------------------------------------


INTRO = f"""\
# Configuration reference

<!-- Generated from the pydantic models by `{COMMAND}`.
     Do not edit by hand: tests/test_configuration_docs.py fails when this page is stale. -->

Every key of the pipeline file (`neuroerp-ci.toml`) and of each check kind's `settings`, as
the code validates them: unknown keys, wrong types and values outside the constraints are
refused when the file is loaded, one line naming the key (exit 2). The commented example
is the demo's pipeline file, `neuroerp_ci/demo/project/neuroerp-ci.toml`; how the pieces work
together is in [usage.md](usage.md).

How to read a key path: `a.b` is key `b` of table `a`; `checks[]` is one entry of an array of
tables (`[[checks]]` in TOML); `stages.<name>` is a table under a name you choose
(`[stages.staging]`). Types are TOML's: a *number* accepts an integer or a float; *unset*
means the key may be left out and then has no value. Constraints: `> 0` exclusive, `≥ 0`
inclusive; `each:` applies to every item of an array or table.
"""


def render() -> str:
    """The whole of ``docs/configuration.md``."""
    scoped = [(t, "") for t in tables(PipelineFile)]
    for name in sorted(KINDS):
        scoped += [(t, name) for t in tables(KINDS[name].settings_model, "checks[].settings")]
    for name, form in FORMS.items():
        conditions = "stages.<name>.conditions[]"
        scoped += [(t, f"form {name}") for t in tables(form.params_model, conditions)]
    page = Page(_placed(scoped))
    lines = [INTRO, "## Contents", ""]
    lines.append("- [The pipeline file](#the-pipeline-file)")
    lines.extend(f"  - [`{t.paths[0]}`](#{t.anchor})" for t in page.scoped(""))
    lines.append("- [Check kinds](#check-kinds)")
    lines.extend(f"  - [`{name}`](#kind-{anchor(name)})" for name in sorted(KINDS))
    lines.append("- [Condition forms](#condition-forms)")
    lines.extend(f"  - [`{name}`](#form-{anchor(name)})" for name in FORMS)
    lines.append("")
    lines += ["## The pipeline file", ""]
    for table in page.scoped(""):
        lines.extend(table_section(table, page, ""))
    lines += list(_kinds_section(page))
    lines += list(condition_forms_section(page))
    return "\n".join(lines).rstrip("\n") + "\n"


def _placed(scoped: list[tuple[Table, str]]) -> list[tuple[Table, str]]:
    """Each table with a unique anchor; a kind's tables (scope: its name) carry the kind."""
    used: set[str] = set()
    placed: list[tuple[Table, str]] = []
    for table, scope in scoped:
        name = anchor(f"{scope} {table.paths[0]}")
        if name in used:
            name = anchor(f"{name} {table.model.__name__}")
        used.add(name)
        placed.append((Table(table.model, table.paths, name), scope))
    return placed


def _kinds_section(page: Page) -> Iterator[str]:
    yield '<a id="check-kinds"></a>'
    yield ""
    yield "## Check kinds"
    yield ""
    yield (
        "`[[checks]] settings` is validated by the settings model of the check's `kind`"
        " (`neuroerp_ci.checks.KINDS`). *Runs alone*: a measurement kind that never runs"
        " beside another check, so other work does not distort its timings."
    )
    yield ""
    for name in sorted(KINDS):
        kind = KINDS[name]
        yield f'<a id="kind-{anchor(name)}"></a>'
        yield ""
        yield f'### `kind = "{name}"`'
        yield ""
        for text in (class_doc(type(kind)), class_doc(kind.settings_model)):
            if text:
                yield text
                yield ""
        yield from (f"- {fact}" for fact in _kind_facts(kind))
        yield ""
        root, *nested = page.scoped(name)
        yield f"`checks[].settings` (`{kind.settings_model.__module__}.{root.model.__name__}`):"
        yield ""
        yield from key_rows(root.model, page, name)
        yield ""
        for table in nested:
            yield from table_section(table, page, name, level="####")


def _kind_facts(kind: CheckKind) -> Iterator[str]:
    yield f"Module: `{type(kind).__module__}` (`{type(kind).__name__}`)"
    yield "Runs alone: " + ("yes" if kind.exclusive else "no")
    target = "always" if kind.needs_target else "no"
    if "uses_target" in kind.settings_model.model_fields:
        target = "with `uses_target = true`"
    yield f"Needs the target service: {target}"
    for key in sorted(kind.placeholders):
        names = ", ".join(f"`{{{p}}}`" for p in sorted(kind.placeholders[key]))
        yield f"Placeholders in `{key}`: {names}"


def condition_forms_section(page: Page) -> Iterator[str]:
    """The forms a ``stages.<name>.conditions[]`` entry can take, from the forms' registry."""
    yield '<a id="condition-forms"></a>'
    yield ""
    yield "## Condition forms"
    yield ""
    yield (
        "A condition (`stages.<name>.conditions[]`) is the [shared keys](#stages-name-conditions)"
        " plus the keys of ONE form, which select it: the forms of"
        " `neuroerp_ci.gates.conditions.registry.FORMS`, in its order."
    )
    yield ""
    for name, form in FORMS.items():
        yield f'<a id="form-{anchor(name)}"></a>'
        yield ""
        yield f"### `{name}`"
        yield ""
        for text in (class_doc(type(form)), class_doc(form.params_model)):
            if text:
                yield text
                yield ""
        yield f"- Module: `{type(form).__module__}` (`{type(form).__name__}`)"
        yield "- Selected by: " + ", ".join(f"`{key}`" for key in form.keys)
        limits = "the check's findings (no `metric`)" if form.subject == "findings" else "a metric"
        yield f"- Limits: {limits}"
        baseline = "yes (`on_no_baseline` applies while there is none)"
        yield "- Against the baseline: " + (baseline if form.needs_baseline else "no")
        yield ""
        root, *nested = page.scoped(f"form {name}")
        yield f"Its keys, beside the shared ones (`{root.model.__name__}`):"
        yield ""
        yield from key_rows(root.model, page, f"form {name}")
        yield ""
        for table in nested:
            yield from table_section(table, page, f"form {name}", level="####")


def main(argv: Sequence[str] | None = None) -> int:
    """Print the page to stdout (``> docs/configuration.md``)."""
    del argv
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
