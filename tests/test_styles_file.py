"""``styles/cluster_highlight_style.json``: the format Model Explorer's "Import rules" reads.

The names a rule may use are read from the installed web app bundle itself (the enums its
node styler is compiled from), so a Model Explorer upgrade that renames one fails here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import model_explorer
import pytest

from etviz_lsp.graph.core import palette
from tests.conftest import REPO_ROOT

STYLE_FILE = REPO_ROOT / "styles" / "cluster_highlight_style.json"
_ENUM = re.compile(r"function\(i\)\{return ((?:i\.[A-Z0-9_]+=\"[^\"]*\",)+)i\}")
_MEMBER = re.compile(r"i\.([A-Z0-9_]+)=\"([^\"]*)\"")


@pytest.fixture(scope="module")
def ui_enums() -> list[dict[str, str]]:
    web_app = Path(model_explorer.__file__).parent / "web_app"
    (bundle,) = web_app.glob("main-*.js")
    text = bundle.read_text(encoding="utf-8")
    return [dict(_MEMBER.findall(m.group(1))) for m in _ENUM.finditer(text)]


def enum_with(enums: list[dict[str, str]], *keys: str) -> set[str]:
    (found,) = [e for e in enums if set(keys) <= set(e)]
    return set(found.values())


def test_shipped_file_is_what_the_palette_makes() -> None:
    assert json.loads(STYLE_FILE.read_text()) == palette.import_rules()


def test_every_rule_uses_only_names_the_ui_knows(ui_enums) -> None:
    query_types = enum_with(ui_enums, "REGEX", "ATTR_VALUE_RANGE", "NODE_TYPE")
    node_types = enum_with(ui_enums, "OP_NODES", "LAYER_NODES")
    match_types = enum_with(ui_enums, "NODE_LABEL", "ATTRIBUTE", "INPUT_METADATA")
    style_ids = enum_with(ui_enums, "NODE_BG_COLOR", "NODE_BORDER_COLOR")
    versions = enum_with(ui_enums, "V2")
    assert {"regex", "node_type", "title", "list", "node_bg_color", "v2"} <= (
        query_types | node_types | match_types | style_ids | versions
    ), "the enums were not found in the bundle"
    rules = json.loads(STYLE_FILE.read_text())
    assert isinstance(rules, list) and rules
    for rule in rules:
        assert set(rule) == {"queries", "nodeType", "styles", "version"}
        assert rule["version"] in versions and rule["nodeType"] in node_types
        for query in rule["queries"]:
            assert query["type"] in query_types
            if query["type"] == "node_type":
                assert query["nodeType"] in node_types
            if query["type"] == "regex":
                assert set(query["matchTypes"]) <= match_types
                re.compile(query["queryRegex"])
        for style_id, style in rule["styles"].items():
            assert style_id in style_ids and style["id"] == style_id
            assert re.fullmatch(r"#[0-9a-f]{6}", style["value"])


def test_a_broken_rule_is_caught(ui_enums) -> None:
    """The check above must be able to fail: a misspelled style id is not in the UI."""
    assert "node_background_color" not in enum_with(ui_enums, "NODE_BG_COLOR")
