from __future__ import annotations

import pytest

from neuroerp_ci.dag import critical_path, find_cycle, layers, mermaid, order


def test_find_cycle_names_the_loop() -> None:
    graph = {"a": [], "b": ["a", "d"], "c": ["b"], "d": ["c"]}
    cycle = find_cycle(graph)
    assert cycle is not None
    assert cycle[0] == cycle[-1]
    assert set(cycle) == {"b", "c", "d"}


def test_no_cycle_and_self_loop() -> None:
    assert find_cycle({"a": [], "b": ["a"], "c": ["a", "b"]}) is None
    assert find_cycle({"a": ["a"]}) == ["a", "a"]


def test_layers_run_independent_checks_together() -> None:
    graph = {"unit": [], "lint": [], "integration": ["unit"], "e2e": ["integration", "lint"]}
    assert layers(graph) == [["unit", "lint"], ["integration"], ["e2e"]]


def test_exclusive_checks_get_a_layer_of_their_own_after_the_rest() -> None:
    graph = {"probe": [], "unit": [], "audit": [], "smoke": ["probe"], "load": []}
    result = layers(graph, exclusive={"probe", "load"})
    assert result[0] == ["unit", "audit"]
    assert ["probe"] in result and ["load"] in result
    assert all(len(layer) == 1 for layer in result if set(layer) & {"probe", "load"})
    ordered = order(graph, {"probe", "load"})
    assert ordered.index("smoke") > ordered.index("probe")


def test_layers_refuse_a_cycle() -> None:
    with pytest.raises(ValueError, match="cycle"):
        layers({"a": ["b"], "b": ["a"]})


def test_critical_path_takes_the_longest_chain() -> None:
    graph = {"a": [], "b": ["a"], "c": [], "d": ["b", "c"]}
    path = critical_path(graph, {"a": 10, "b": 5, "c": 30, "d": 1})
    assert path.checks == ["c", "d"]
    assert path.duration_s == 31


def test_mermaid_has_nodes_and_edges() -> None:
    text = mermaid({"unit-tests": [], "e2e": ["unit-tests"]}, {"e2e": 'End "to" end'})
    assert text.startswith("flowchart LR\n")
    assert "c_unit_tests --> c_e2e" in text
    assert "End 'to' end" in text
