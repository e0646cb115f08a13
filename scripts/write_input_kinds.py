"""The extension's copy of the kinds table, made from ``etviz_lsp/graph/inputs.py``.

    python3 scripts/write_input_kinds.py          # writes vscode-extension/src/input_kinds_table.ts
    python3 scripts/write_input_kinds.py --check  # writes nothing

Either way it exits 1, saying what, when the extension and the table differ.

The extension needs the kinds before its server answers ``initialize`` (and with a server
that says nothing): ``input_kinds_table.ts`` is that table, written here from the Python one
(the Makefile writes it before the extension is built or tested). ``package.json``'s menus
(``when`` clauses) and activation events are static and follow from the same table, but
rewriting that file would reformat it: they are checked, and the script says what they must
read instead.
``tests/test_input_kinds.py`` runs ``--check``. Needs only the standard library.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXTENSION = REPO / "vscode-extension"
TABLE = EXTENSION / "src" / "input_kinds_table.ts"
PACKAGE = EXTENSION / "package.json"
# The menu entries that offer a command on files of some kinds: every kind, or scripts only.
VISUALIZE, SHOW_IN_GRAPH = "etviz.visualize", "etviz.showInGraph"
KIND_MENUS = {VISUALIZE: False, SHOW_IN_GRAPH: True}  # command -> scripts only

Kinds = list[dict[str, object]]


def server_kinds() -> Kinds:
    """``inputs.client_info()``: what the server also says at ``initialize``."""
    from etviz_lsp.graph import inputs

    return inputs.client_info()


def table_ts(kinds: Kinds) -> str:
    rows = "".join(
        f"  {{ suffix: '{k['suffix']}', runsScript: {_ts(k['runsScript'])}, "
        f"needsTrust: {_ts(k['needsTrust'])}, mayUnpickle: {_ts(k['mayUnpickle'])} }},\n"
        for k in kinds
    )
    return (
        "// Generated from etviz_lsp/graph/inputs.py by scripts/write_input_kinds.py: "
        "do not edit.\n"
        "// tests/test_input_kinds.py fails when it differs from the Python table.\n"
        "import type { InputKind } from './input_kinds';\n\n"
        f"export const TABLE_KINDS: readonly InputKind[] = [\n{rows}];\n"
    )


def _ts(value: object) -> str:
    return "true" if value is True else "false"


def when_clause(kinds: Kinds, scripts_only: bool) -> str:
    """``resourceExtname =~ /^\\.(py|pt2)$/i``: the files of these kinds, in any case."""
    names = [str(k["suffix"])[1:] for k in kinds if k["runsScript"] or not scripts_only]
    if not all(name.isalnum() and name.isascii() for name in names):
        raise ValueError(f"a suffix a when clause cannot hold as it is: {names}")
    return f"resourceExtname =~ /^\\.({'|'.join(names)})$/i"


def activation_events(kinds: Kinds) -> list[str]:
    """A workspace holding a file to read (not a script: ``onLanguage:python``) activates."""
    return [f"workspaceContains:**/*{k['suffix']}" for k in kinds if not k["runsScript"]]


def differences(kinds: Kinds, table: str, package: dict[str, object]) -> list[str]:
    """What the extension's table and ``package.json`` say otherwise than ``kinds``."""
    found = [] if table == table_ts(kinds) else [f"{TABLE.name}: not the Python table"]
    events = [e for e in _list(package.get("activationEvents")) if "workspaceContains" in e]
    if events != activation_events(kinds):
        found.append(f"activationEvents: {json.dumps(events)}, "
                     f"expected {json.dumps(activation_events(kinds))}")
    menus = _dict(_dict(package.get("contributes")).get("menus"))
    offered: set[str] = set()
    for menu, entries in menus.items():
        for entry in entries if isinstance(entries, list) else []:
            command, when = str(entry.get("command")), str(entry.get("when", ""))
            if command not in KIND_MENUS:
                if "resourceExtname" in when:
                    found.append(f"menus.{menu}: {command} decides by suffix outside the table")
                continue
            offered.add(command)
            expected = when_clause(kinds, KIND_MENUS[command])
            if when != expected:
                found.append(f'menus.{menu}: {command} "when": {json.dumps(when)}, '
                             f"expected {json.dumps(expected)}")
    found += [f"menus: {command} is offered nowhere" for command in KIND_MENUS.keys() - offered]
    return found


def _list(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _dict(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def main(argv: list[str]) -> int:
    """Write the table (or only ``--check`` it); either way, 1 when anything differs."""
    sys.path.insert(0, str(REPO))
    from etviz_lsp import atomic_file

    kinds = server_kinds()
    if "--check" not in argv:
        atomic_file.write_bytes(TABLE, table_ts(kinds).encode())
    table = TABLE.read_text() if TABLE.is_file() else ""
    found = differences(kinds, table, json.loads(PACKAGE.read_text()))
    for line in found:
        print(f"write_input_kinds: {line}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
