"""The check graph: cycles, execution order, parallel layers, critical path, Mermaid text.

Pure functions over ``{check_id: dependencies}``; nothing here runs a check.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

Graph = Mapping[str, Sequence[str]]  # check id -> ids it depends on


def find_cycle(graph: Graph) -> list[str] | None:
    """A dependency cycle as ``[a, b, ..., a]``, or None. Unknown ids are ignored."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in graph.get(node, ()):
            if dep not in graph:
                continue
            if state.get(dep) == 1:
                return [*path[path.index(dep):], dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in graph:
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def layers(graph: Graph, exclusive: Collection[str] = ()) -> list[list[str]]:
    """Groups that can run at once, in order. An exclusive check gets a layer of its own,
    placed as late as its dependants allow so the other checks finish first."""
    remaining = {node: set(deps) & set(graph) for node, deps in graph.items()}
    order = list(graph)
    result: list[list[str]] = []
    while remaining:
        ready = [n for n in order if n in remaining and not remaining[n]]
        if not ready:
            raise ValueError(f"dependency cycle among {sorted(remaining)}")
        shared = [n for n in ready if n not in exclusive]
        # Run exclusive checks only once nothing shared is ready, one at a time.
        layer = shared or ready[:1]
        result.append(layer)
        for node in layer:
            del remaining[node]
        for deps in remaining.values():
            deps.difference_update(layer)
    return result


def order(graph: Graph, exclusive: Collection[str] = ()) -> list[str]:
    """A topological order consistent with :func:`layers`."""
    return [node for layer in layers(graph, exclusive) for node in layer]


@dataclass(frozen=True)
class CriticalPath:
    checks: list[str]
    duration_s: float


def critical_path(graph: Graph, cost: Mapping[str, float]) -> CriticalPath:
    """The chain of dependencies with the largest summed cost (expected seconds)."""
    best: dict[str, tuple[float, list[str]]] = {}
    for node in order(graph):
        deps = [d for d in graph[node] if d in best]
        before = max((best[d] for d in deps), key=lambda b: b[0], default=(0.0, []))
        best[node] = (before[0] + cost.get(node, 0.0), [*before[1], node])
    if not best:
        return CriticalPath([], 0.0)
    total, chain = max(best.values(), key=lambda b: b[0])
    return CriticalPath(chain, total)


def mermaid(graph: Graph, labels: Mapping[str, str] | None = None) -> str:
    """A Mermaid flowchart of the graph (dependencies point at their dependants)."""
    labels = labels or {}
    lines = ["flowchart LR"]
    for node in graph:
        label = labels.get(node, node).replace('"', "'")
        lines.append(f'    {_mid(node)}["{label}"]')
    lines.extend(
        f"    {_mid(dep)} --> {_mid(node)}"
        for node, deps in graph.items()
        for dep in deps
        if dep in graph
    )
    return "\n".join(lines) + "\n"


def _mid(node: str) -> str:
    return "c_" + "".join(ch if ch.isalnum() else "_" for ch in node)
