"""docs/configuration.md is generated from the models: it must be what the generator prints."""

from __future__ import annotations

from pathlib import Path

from neuroerp_ci.checks import KINDS
from neuroerp_ci.config import PipelineFile
from neuroerp_ci.config.docs import COMMAND, render, tables
from neuroerp_ci.gates.conditions.registry import FORMS

PAGE = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def test_configuration_page_is_current() -> None:
    expected = render()
    actual = PAGE.read_text(encoding="utf-8") if PAGE.is_file() else ""
    assert actual == expected, f"docs/configuration.md is stale: run `.venv/bin/{COMMAND}`"


def test_rendering_is_deterministic() -> None:
    assert render() == render()


def test_every_section_and_kind_is_on_the_page() -> None:
    page = render()
    for name in PipelineFile.model_fields:
        assert f"`{name}" in page, name
    for table in tables(PipelineFile):
        assert f"### `{table.paths[0]}`" in page
    for name, kind in KINDS.items():
        assert f'### `kind = "{name}"`' in page
        for key, info in kind.settings_model.model_fields.items():
            assert f"| `{info.alias or key}` |" in page, (name, key)
    for name, form in FORMS.items():
        assert f"### `{name}`" in page
        for key in form.keys:
            assert f"| `{key}` |" in page, (name, key)
