"""A failed run as an LSP diagnostic: at the failing line of the script, with the place
inside torch (or wherever the exception was raised) as related information; and the
publishing of them (``Diagnostics``: one visualized file's diagnostics replace its
previous ones, a good run clears them).

Works from the fields of the worker's ``ScriptError`` (kind, file, line, column, message,
traceback text); the traceback is parsed from its standard ``File "...", line N, in f``
lines.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from etviz_lsp.lsp.paths import uri_of

SOURCE = "etviz"
_OURS = str(Path(__file__).parents[1]) + os.sep  # the etviz_lsp package
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+)(?:, in (?P<func>.+))?$')


def information(text: str, line: int, message: str, code: str) -> types.Diagnostic:
    """An Information diagnostic over line ``line`` (0-based) whose text is ``text``,
    from its first non-blank character."""
    start = len(text) - len(text.lstrip())
    return types.Diagnostic(
        range=types.Range(
            types.Position(line, start), types.Position(line, max(len(text.rstrip()), start + 1))
        ),
        message=message,
        severity=types.DiagnosticSeverity.Information,
        source=SOURCE,
        code=code,
    )


class ErrorFields(Protocol):
    @property
    def kind(self) -> str: ...
    @property
    def file(self) -> str: ...
    @property
    def line(self) -> int | None: ...
    @property
    def column(self) -> int | None: ...
    @property
    def message(self) -> str: ...
    @property
    def traceback(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Frame:
    file: str
    line: int  # 1-based
    function: str


class Diagnostics:
    """What the server has published, per visualized file (a run's error can sit in any
    workspace file: a module run fails in the package, a script in the model it imports)."""

    def __init__(self, server: LanguageServer) -> None:
        self._server = server
        self._published: dict[Path, set[Path]] = {}  # visualized file -> files with its diagnostics

    def publish(self, source: Path, error: ErrorFields) -> None:
        """The run of ``source`` failed with ``error``: one diagnostic, where it points."""
        self.clear(source)
        target = diagnostic_file(error, source)
        uri = uri_of(target)
        diagnostic = to_diagnostic(error, source, line_reader(self._server, uri, target))
        self._server.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=[diagnostic])
        )
        self._published[source] = {target}

    def clear(self, source: Path) -> None:
        """A good run of ``source``: its diagnostics go away."""
        for target in self._published.pop(source, set()):
            self._server.text_document_publish_diagnostics(
                types.PublishDiagnosticsParams(uri=uri_of(target), diagnostics=[])
            )



def line_reader(server: LanguageServer, uri: str, path: Path) -> Callable[[int], str]:
    """The editor's text of the file if it is open (what the user sees), else the disk's."""
    document = server.workspace.text_documents.get(uri)
    if document is not None:
        lines = document.lines
    else:
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            lines = []
    return lambda i: lines[i].rstrip("\r\n") if 0 <= i < len(lines) else ""


def parse_frames(traceback: str) -> list[Frame]:
    """The frames of a Python traceback text, outermost first."""
    frames = []
    for text in traceback.splitlines():
        match = _FRAME.match(text)
        if match:
            frames.append(Frame(match["file"], int(match["line"]), match["func"] or "?"))
    return frames


def where_it_failed(error: ErrorFields, script: Path) -> Frame | None:
    """The deepest frame outside the script's own file (inside torch, usually); our own
    worker's frames (the capture wrappers) are not news to the user."""
    own = {str(script), error.file}
    for frame in reversed(parse_frames(error.traceback)):
        if frame.file in own or frame.file.startswith("<") or frame.file.startswith(_OURS):
            continue
        return frame
    return None


def to_diagnostic(
    error: ErrorFields, script: Path, line_text: Callable[[int], str]
) -> types.Diagnostic:
    """``line_text(i)`` gives 0-based line ``i`` of the file the diagnostic is on."""
    line = max((error.line or 1) - 1, 0)  # no line (a crash, a timeout): the first line
    text = line_text(line)
    start = max((error.column or 0) - 1, 0) if error.column else _indent(text)
    end = max(len(text.rstrip()), start + 1)
    related = None
    frame = where_it_failed(error, script)
    if frame is not None:
        related = [
            types.DiagnosticRelatedInformation(
                location=types.Location(
                    uri=uri_of(frame.file),
                    range=_line_range(frame.line - 1),
                ),
                message=f"raised here, in {frame.function}",
            )
        ]
    return types.Diagnostic(
        range=types.Range(types.Position(line, start), types.Position(line, end)),
        message=error.message or error.kind,
        severity=types.DiagnosticSeverity.Error,
        source=SOURCE,
        code=error.kind,
        related_information=related,
    )


def diagnostic_file(error: ErrorFields, script: Path) -> Path:
    """The file the diagnostic belongs on: where the error points, else the script."""
    return Path(error.file) if error.file and error.line else script


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip())


def _line_range(line: int) -> types.Range:
    line = max(line, 0)
    return types.Range(types.Position(line, 0), types.Position(line + 1, 0))
