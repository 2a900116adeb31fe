"""The check graph: cycles, execution order, parallel layers, critical path, Mermaid text.

Pure functions over ``{check_id: dependencies}``; nothing here runs a check.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass

Graph = Mapping[str, Sequence[str]]  # check id -> ids it depends on


def find_cycle(graph: Graph) -> list[str] | None:
    """A dependency cycle as ``[a, b, ..., a]``, or None. Unknown ids are ignored."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    # Depth first without recursion: a chain of thousands of checks must not overflow the stack.
    for root in graph:
        if root in state:
            continue
        path: list[str] = [root]
        pending: list[Iterator[str]] = [iter(graph[root])]
        state[root] = 1
        while pending:
            dep = next(pending[-1], None)
            if dep is None:
                state[path.pop()] = 2
                pending.pop()
            elif dep in graph and state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            elif dep in graph and dep not in state:
                state[dep] = 1
                path.append(dep)
                pending.append(iter(graph[dep]))
    return None


def layers(graph: Graph, exclusive: Collection[str] = ()) -> list[list[str]]:
    """Groups that can run at once, in order. An exclusive check gets a layer of its own,
    placed as late as its dependants allow so the other checks finish first."""
    # Kahn's algorithm with the ready checks kept in file order (heaps of their positions):
    # linear in the graph's size but for the sorting, however long its chains are.
    position = {node: i for i, node in enumerate(graph)}
    waiting = {node: len(set(deps) & position.keys()) for node, deps in graph.items()}
    dependants: dict[str, list[str]] = {node: [] for node in graph}
    for node, deps in graph.items():
        for dep in set(deps) & position.keys():
            dependants[dep].append(node)
    shared: list[int] = []
    alone: list[int] = []
    for node, count in waiting.items():
        if count == 0:
            heapq.heappush(alone if node in exclusive else shared, position[node])
    nodes = list(graph)
    result: list[list[str]] = []
    done = 0
    while done < len(nodes):
        if not shared and not alone:
            left = [n for n in nodes if waiting[n] > 0]
            raise ValueError(f"dependency cycle among {sorted(left)}")
        # Run exclusive checks only once nothing shared is ready, one at a time.
        if shared:
            layer = [nodes[heapq.heappop(shared)] for _ in range(len(shared))]
        else:
            layer = [nodes[heapq.heappop(alone)]]
        result.append(layer)
        done += len(layer)
        for node in layer:
            for after in dependants[node]:
                waiting[after] -= 1
                if waiting[after] == 0:
                    heapq.heappush(alone if after in exclusive else shared, position[after])
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
    # Each check's longest chain: its cost and the dependency it came through.
    best: dict[str, tuple[float, str | None]] = {}
    for node in order(graph):
        deps = [d for d in graph[node] if d in best]
        via = max(deps, key=lambda d: best[d][0], default=None)
        before = best[via][0] if via is not None else 0.0
        best[node] = (before + cost.get(node, 0.0), via)
    if not best:
        return CriticalPath([], 0.0)
    last = max(best, key=lambda n: best[n][0])
    chain: list[str] = []
    step: str | None = last
    while step is not None:
        chain.append(step)
        step = best[step][1]
    return CriticalPath(chain[::-1], best[last][0])


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
