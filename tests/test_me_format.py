"""Our JSON against Model Explorer's own graph schema (its ``graph_builder`` data classes).

Every key we write must be a field Model Explorer declares, at every level; the top level
must be the ``{"label", "graphs"}`` collection its UI loads from a file. The browser test
(tests/test_explorer_browser*) then checks the real web app renders it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

import pytest
from model_explorer import graph_builder as gb

from etviz_lsp.graph import convert
from tests import corpus


def construct(cls: type, data: Any, where: str) -> Any:
    """Build ``cls`` from ``data`` the strict way: unknown keys and wrong types fail."""
    origin = typing.get_origin(cls)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(cls) if a is not type(None)]
        if data is None:
            return None
        errors = []
        for option in options:
            try:
                return construct(option, data, where)
            except (TypeError, AssertionError) as exc:
                errors.append(str(exc))
        raise TypeError(f"{where}: no union member fits: {errors}")
    if origin is list:
        assert isinstance(data, list), f"{where}: expected a list"
        (item,) = typing.get_args(cls)
        return [construct(item, value, f"{where}[{i}]") for i, value in enumerate(data)]
    if origin is dict:
        assert isinstance(data, dict), f"{where}: expected an object"
        _, value_type = typing.get_args(cls)
        return {k: construct(value_type, v, f"{where}.{k}") for k, v in data.items()}
    if dataclasses.is_dataclass(cls):
        assert isinstance(data, dict), f"{where}: expected an object for {cls.__name__}"
        hints = typing.get_type_hints(cls)
        unknown = set(data) - set(hints)
        assert not unknown, f"{where}: keys Model Explorer does not know: {unknown}"
        return cls(**{k: construct(hints[k], v, f"{where}.{k}") for k, v in data.items()})
    if cls is typing.Any:
        return data
    if isinstance(cls, type):
        assert isinstance(data, cls), f"{where}: expected {cls.__name__}, got {data!r:.60}"
    return data


@pytest.mark.parametrize("name", ["nested_convnet", "cond_model", "mutation_model"])
def test_collection_matches_model_explorer_schema(name: str) -> None:
    collection = convert.from_programs([(name, corpus.CORPUS[name]())], label=name).to_json()
    assert set(collection) == {"label", "graphs"}
    built = construct(gb.GraphCollection, collection, "collection")
    assert len(built.graphs) == len(collection["graphs"])
    assert all(isinstance(node, gb.GraphNode) for g in built.graphs for node in g.nodes)


def test_strict_check_rejects_a_misspelled_field() -> None:
    """The checker itself must fail on a format mistake, or the test above proves nothing."""
    bad = {"label": "x", "graphs": [{"id": "g", "nodes": [{"id": "a", "label": "a",
                                                          "incomingEdge": []}]}]}
    with pytest.raises(AssertionError, match="incomingEdge"):
        construct(gb.GraphCollection, bad, "collection")
