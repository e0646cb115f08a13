"""The kinds of file etviz opens, in one table: suffix, reader, what opening one may do.

Every place that decides what a file is (the CLI, ``--once``, the worker, the language
server, and through the server's ``initialize`` answer the editor extension) looks the
suffix up here, so adding a kind is one reader and one row. Readers are named by module
and function and imported only when a file of their kind is opened: this module stays
free of torch and of every reader.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from etviz_lsp.errors import EtvizError

if TYPE_CHECKING:
    from etviz_lsp.graph.core.model import GraphCollection


class Reader(Protocol):
    def __call__(
        self, path: Path, *, allow_pickle: bool = False, etrecord: Path | None = None
    ) -> GraphCollection: ...


@dataclass(frozen=True, slots=True)
class InputKind:
    suffix: str
    what: str  # for messages and menus: "an export script"
    # "module:function" of the reader; "" for scripts (they run in the worker's child).
    reader: str
    runs_script: bool = False
    # Opening it at all needs the user's trust (workspace trust in the editor).
    needs_trust: bool = False
    # Some files of this kind open only by unpickling: that path is taken only with the
    # user's explicit opt-in (--allow-pickle, etviz.allowPickle); the safe readers never
    # unpickle, and trust alone never allows it.
    may_unpickle: bool = False
    # The reader imports no torch (so a process without torch can open it).
    torch_free: bool = False

    def read(
        self, path: Path, *, allow_pickle: bool = False, etrecord: Path | None = None
    ) -> GraphCollection:
        """The file's graphs (not for scripts: those run in the worker's child)."""
        if self.runs_script:
            raise EtvizError(str(path), "a script runs in the worker, it is not read")
        module_name, _, function = self.reader.partition(":")
        reader: Reader = getattr(importlib.import_module(module_name), function)
        return reader(path, allow_pickle=allow_pickle, etrecord=etrecord)


KINDS: tuple[InputKind, ...] = (
    InputKind(".py", "an export script", "", runs_script=True, needs_trust=True),
    InputKind(".pt2", "a torch.export archive", "etviz_lsp.graph.convert:read_pt2",
              may_unpickle=True, torch_free=True),
    InputKind(".pte", "an ExecuTorch program", "etviz_lsp.graph.readers.pte_reader:read_pte",
              torch_free=True),
    InputKind(".etrecord", "an ETRecord", "etviz_lsp.graph.readers.etrecord:read_etrecord",
              torch_free=True),
)  # fmt: skip
_BY_SUFFIX = {kind.suffix: kind for kind in KINDS}


def suffixes() -> tuple[str, ...]:
    return tuple(_BY_SUFFIX)


def kind_of(path: Path | str) -> InputKind | None:
    """The kind of ``path`` by its suffix (case-sensitive, as the tools that write them)."""
    return _BY_SUFFIX.get(Path(path).suffix)


def is_script(path: Path | str) -> bool:
    kind = kind_of(path)
    return kind is not None and kind.runs_script


def expected() -> str:
    """``an export script .py, a .pt2, a .pte or an .etrecord`` (for error messages)."""
    names = [f"{KINDS[0].what} {KINDS[0].suffix}"] + [
        f"{'an' if kind.suffix[1] in 'aeiou' else 'a'} {kind.suffix}" for kind in KINDS[1:]
    ]
    return ", ".join(names[:-1]) + " or " + names[-1]


def known_kind(path: Path) -> InputKind:
    """The kind of ``path``, or a one-line error naming the file and what is expected."""
    kind = kind_of(path)
    if kind is None:
        cause = f"unsupported file type '{path.suffix}' (expected {expected()})"
        raise EtvizError(str(path), cause)
    return kind


def client_info() -> list[dict[str, object]]:
    """What the language server tells the editor at ``initialize`` (one entry per kind)."""
    return [
        {"suffix": kind.suffix, "runsScript": kind.runs_script, "needsTrust": kind.needs_trust,
         "mayUnpickle": kind.may_unpickle}
        for kind in KINDS
    ]  # fmt: skip
