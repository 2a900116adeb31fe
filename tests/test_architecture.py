"""The package's architecture, enforced: layers only import downwards, no import cycles (type-only
and function-level imports included), Prefect only in the adapter and flows/.

The layers are those of docs/architecture.md, lowest first. A module may import its own package
and anything in a lower layer; packages of one layer never import each other.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "neuroerp_ci"

# Lowest first. An entry is a module or a package (its submodules too); the longest entry that
# prefixes a module decides its layer.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("neuroerp_ci", "neuroerp_ci.model", "neuroerp_ci.errors", "neuroerp_ci.dag"),
    ("neuroerp_ci.support", "neuroerp_ci.demo"),
    ("neuroerp_ci.project", "neuroerp_ci.checks", "neuroerp_ci.store", "neuroerp_ci.reports"),
    ("neuroerp_ci.gates",),
    ("neuroerp_ci.config",),
    ("neuroerp_ci.run",),
    ("neuroerp_ci.release",),
    ("neuroerp_ci.orchestration",),
    ("neuroerp_ci.cli",),
    ("neuroerp_ci.__main__",),
)
PREFECT_ALLOWED = ("neuroerp_ci.orchestration",)


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> Iterator[Path]:
    demo_project = PACKAGE / "demo" / "project"
    for path in sorted(PACKAGE.rglob("*.py")):
        # The demo's sample project is a target the product tests, not part of the product.
        if demo_project not in path.parents:
            yield path


def imports_of(path: Path, root: Path = ROOT) -> set[str]:
    """Every module ``path`` imports, anywhere in it (TYPE_CHECKING blocks, functions)."""
    name = module_name(path, root)
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            # ``from pkg import sub`` imports the submodule when there is one.
            for alias in node.names:
                if _is_module(f"{module}.{alias.name}"):
                    found.add(f"{module}.{alias.name}")
    return found


def _is_module(name: str) -> bool:
    if not name.startswith("neuroerp_ci"):
        return False
    base = ROOT.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in package_modules()}
    return {
        name: {m for m in imports_of(path) if m in modules and m != name}
        for name, path in modules.items()
    }


def layer_of(module: str) -> tuple[int, str]:
    """(layer index, the entry that placed it there)."""
    best: tuple[int, str] | None = None
    for index, entries in enumerate(LAYERS):
        for entry in entries:
            if module == entry or module.startswith(entry + "."):
                if best is None or len(entry) > len(best[1]):
                    best = (index, entry)
    assert best is not None, f"{module} is in no layer: add it to LAYERS and docs/architecture.md"
    return best


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    bad = []
    for module, targets in sorted(edges.items()):
        layer, entry = layer_of(module)
        for target in sorted(targets):
            target_layer, target_entry = layer_of(target)
            if target_entry == entry or target == "neuroerp_ci":
                continue  # its own package (or the root package's __version__)
            if target_layer > layer:
                bad.append(f"{module} (layer {layer}) imports {target} (layer {target_layer})")
            elif target_layer == layer:
                bad.append(f"{module} imports its sibling {target} (both layer {layer})")
    return bad


def test_every_module_is_in_a_layer() -> None:
    for module in graph():
        layer_of(module)


def test_no_import_cycles() -> None:
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_layers_only_import_downwards() -> None:
    assert upward_imports(graph()) == []


def test_prefect_only_in_the_adapter() -> None:
    offenders = [
        module_name(path)
        for path in package_modules()
        if module_name(path) not in PREFECT_ALLOWED
        and any(m == "prefect" or m.startswith("prefect.") for m in imports_of(path))
    ]
    assert offenders == []


def test_the_checker_sees_cycles_and_upward_imports() -> None:
    """The graph functions themselves, on a made-up graph: the test above can fail."""
    edges = {
        "neuroerp_ci.model": {"neuroerp_ci.run.runner"},
        "neuroerp_ci.run.runner": {"neuroerp_ci.checks.interface"},
        "neuroerp_ci.checks.interface": {"neuroerp_ci.model", "neuroerp_ci.store.history"},
        "neuroerp_ci.store.history": set(),
    }
    assert find_cycle(edges) == [
        "neuroerp_ci.checks.interface",
        "neuroerp_ci.model",
        "neuroerp_ci.run.runner",
        "neuroerp_ci.checks.interface",
    ]
    assert upward_imports(edges) == [
        "neuroerp_ci.checks.interface imports its sibling neuroerp_ci.store.history (both layer 2)",
        "neuroerp_ci.model (layer 0) imports neuroerp_ci.run.runner (layer 5)",
    ]


def test_type_only_and_function_level_imports_count(tmp_path: Path) -> None:
    source = tmp_path / "neuroerp_ci" / "gates" / "probe.py"
    source.parent.mkdir(parents=True)
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from neuroerp_ci.config import Pipeline\n"
        "def f():\n    from neuroerp_ci.reports import writer\n"
    )
    assert {"neuroerp_ci.config", "neuroerp_ci.reports.writer"} <= imports_of(source, tmp_path)


@pytest.mark.parametrize(
    ("filename", "banned"),
    [
        ("neuroerp_ci/model.py", True),
        ("neuroerp_ci/run/runner.py", True),
        ("neuroerp_ci/cli/commands.py", True),
        ("neuroerp_ci/orchestration.py", False),
        ("flows/stage_gate.py", False),
    ],
)
def test_the_lint_rule_refuses_prefect_outside_the_adapter(filename: str, banned: bool) -> None:
    """ruff's banned-api rule (pyproject.toml, run by .ci/run) on a deliberate Prefect import."""
    source = "from prefect.settings import PREFECT_API_URL\n\nprint(PREFECT_API_URL)\n"
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--select", "TID251", "--no-cache",
         "--stdin-filename", filename, "-"],
        input=source, capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
    )  # fmt: skip
    if banned:
        assert done.returncode == 1, done.stdout + done.stderr
        assert "TID251" in done.stdout and "orchestration.py and flows/" in done.stdout
    else:
        assert done.returncode == 0, done.stdout + done.stderr
