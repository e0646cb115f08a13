"""What went wrong in a user's script, structured for a diagnostic and one line for a human.

A :class:`ScriptError` crosses the process boundary as JSON (``to_json`` / ``from_json``),
so the language server can put a diagnostic at ``file:line:column`` and the CLI can print
``script.py:LINE: ExceptionType: message``. Columns are 1-based, like ``SyntaxError.offset``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal, cast

from etviz_lsp.errors import EtvizError

Kind = Literal[
    "exception", "syntax", "crash", "timeout", "no-program", "cancelled", "bad-input"
]
KINDS: tuple[Kind, ...] = (
    "exception", "syntax", "crash", "timeout", "no-program", "cancelled", "bad-input"
)
_HEADLINE_LIMIT = 300


@dataclass(frozen=True, slots=True)
class ScriptError:
    kind: Kind
    file: str
    line: int | None = None
    column: int | None = None
    message: str = ""
    traceback: str = ""

    @property
    def location(self) -> str:
        where = display_path(self.file)
        return f"{where}:{self.line}" if self.line else where

    @property
    def headline(self) -> str:
        """First line of the message, short enough for a status line."""
        first = self.message.strip().splitlines()[0] if self.message.strip() else self.kind
        return first if len(first) <= _HEADLINE_LIMIT else first[: _HEADLINE_LIMIT - 1] + "…"

    def __str__(self) -> str:
        return f"{self.location}: {self.headline}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScriptError:
        kind = data.get("kind")
        if kind not in KINDS:
            kind = "crash"
        return cls(
            kind=cast(Kind, kind),
            file=str(data.get("file", "")),
            line=_optional_int(data.get("line")),
            column=_optional_int(data.get("column")),
            message=str(data.get("message", "")),
            traceback=str(data.get("traceback", "")),
        )


@dataclass(frozen=True, slots=True)
class PartialStages:
    """A failed run's finished stages: the marked file, and each graph's id and node count."""

    path: Path
    graphs: tuple[tuple[str, int], ...]
    failure: str  # kind, where and what, one line (as in the file)

    def describe(self) -> str:
        """``its 2 finished stages are in PATH (marked partial)``, for one-line errors."""
        count = len(self.graphs)
        stages = "stage is" if count == 1 else "stages are"
        return f"its {count} finished {stages} in {display_path(str(self.path))} (marked partial)"


class ScriptFailed(EtvizError):
    """A run that made no graph; ``str()`` is ``script.py:LINE: ExceptionType: message``."""

    def __init__(self, error: ScriptError) -> None:
        super().__init__(error.location, error.headline)
        self.error = error
        # the workspace kind of .py files the run imported before it failed (when known):
        # a fix in any of them is worth a re-run
        self.imported_files: list[Path] = []
        # the stages the run finished before it failed, marked partial (partial_stages)
        self.partial: PartialStages | None = None

    def with_note(self, note: str) -> ScriptFailed:
        """The same failure, ``note`` added to its one line (what the user can do)."""
        error = replace(self.error, message=f"{self.error.headline}; {note}")
        noted = ScriptFailed(error)
        noted.imported_files, noted.partial = self.imported_files, self.partial
        return noted


def display_path(file: str) -> str:
    """The path relative to the current folder when it lies below it (shorter to read)."""
    if not file:
        return "<script>"
    try:
        return str(Path(file).resolve().relative_to(Path(os.getcwd()).resolve()))
    except (ValueError, OSError):
        return file


def _optional_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
