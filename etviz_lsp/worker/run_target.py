"""What a run executes: ``python SCRIPT ARGS`` or ``python -m MODULE ARGS``, where, with what.

A :class:`RunTarget` crosses the process boundary as JSON (``to_json`` / ``from_json``):
the caller (language server, CLI) builds it, the run child applies it (``argv``,
``sys.path[0]``, ``cwd``, environment). No torch here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etviz_lsp.errors import EtvizError

# A dotted module name as `python -m` takes it (identifiers separated by dots).
_MODULE_NAME = re.compile(r"^[^\W\d]\w*(\.[^\W\d]\w*)*$")


@dataclass(frozen=True, slots=True)
class RunTarget:
    """What to run, as `python SCRIPT ARGS` / `python -m MODULE ARGS` would."""

    script: Path | None = None  # exactly one of script / module
    module: str | None = None
    args: tuple[str, ...] = ()  # sys.argv[1:]
    cwd: Path | None = None  # default: the caller's cwd
    env: tuple[tuple[str, str], ...] = ()  # extra environment variables for the run

    def __post_init__(self) -> None:
        if (self.script is None) == (self.module is None):
            raise EtvizError("<run>", "give exactly one of a script or a module to run")
        if self.module is not None and not _MODULE_NAME.match(self.module):
            raise EtvizError(self.module, "not a module name (expected dotted.module.name)")
        for key, _ in self.env:
            if not key or "=" in key or "\0" in key:
                raise EtvizError(key or "<env>", "not an environment variable name")

    @property
    def label(self) -> str:
        """``export.py`` or ``-m pkg.mod``: how messages name the run."""
        return f"-m {self.module}" if self.module is not None else Path(str(self.script)).name

    def to_json(self) -> dict[str, Any]:
        return {
            "script": None if self.script is None else str(self.script),
            "module": self.module,
            "args": list(self.args),
            "cwd": None if self.cwd is None else str(self.cwd),
            "env": [list(pair) for pair in self.env],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunTarget:
        script, cwd = data.get("script"), data.get("cwd")
        return cls(
            script=None if script is None else Path(str(script)),
            module=None if data.get("module") is None else str(data["module"]),
            args=tuple(str(arg) for arg in data.get("args") or ()),
            cwd=None if cwd is None else Path(str(cwd)),
            env=tuple((str(k), str(v)) for k, v in data.get("env") or ()),
        )


def parse_env(assignments: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """``["KEY=VALUE", ...]`` (the command line's ``--env``) -> pairs; a bad one raises."""
    pairs = []
    for text in assignments:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise EtvizError(text, "expected KEY=VALUE for --env")
        pairs.append((key, value))
    return tuple(pairs)
