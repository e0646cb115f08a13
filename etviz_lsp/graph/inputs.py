"""The kinds of file etviz opens, in one table: suffix, reader, what opening one may do.

Every place that decides what a file is (the CLI, ``--once``, the worker, the language
server, and through the server's ``initialize`` answer and a generated copy of the table
the editor extension) looks the suffix up here, so adding a kind is one reader and one row.
A suffix matches without case (``model.PTE`` is a ``.pte``), as the editor offers files.
The rules that go with a kind are columns of the same row: the file of the same name beside
it that its reader uses, the ``--once`` options that go with it, whether a run that writes
one made something to open. Readers are named by module and function and imported only when
a file of their kind is opened: this module stays free of torch and of every reader.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from etviz_lsp.errors import EtvizError

if TYPE_CHECKING:
    from etviz_lsp.graph.core.model import GraphCollection


class Reader(Protocol):
    def __call__(
        self, path: Path, *, allow_pickle: bool = False, etrecord: Path | None = None,
        beside: Path | None = None,
    ) -> GraphCollection: ...


@dataclass(frozen=True, slots=True)
class InputKind:
    suffix: str  # lower case; a file's suffix matches it in any case
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
    # A run that writes a file of this kind made something the user can open next (the
    # worker lists them after a script run: worker/run_footprint.py).
    artifact: bool = False
    # The suffix of the file of the same name beside one of these that its reader uses
    # when the user names none (``m.pte`` -> ``m.etrecord``); "" for none.
    beside: str = ""
    # The --once options that go with this kind of file only.
    options: tuple[str, ...] = ()
    # An --etdump's latency lands on this file's stages by debug handle, through the
    # program beside it (``beside``: the ``.pte`` the ETRecord was written with), not on
    # graphs of its own instructions.
    latency_on_stages: bool = False
    # An --etdump's latency lands on this program through the ETRecord of its lowering
    # (--etrecord, which must have recorded this very program) and the .pte beside that.
    latency_by_etrecord: bool = False

    def read(
        self, path: Path, *, allow_pickle: bool = False, etrecord: Path | None = None
    ) -> GraphCollection:
        """The file's graphs (not for scripts: those run in the worker's child). A companion
        the user named (``etrecord``) must be good; one found beside the file may be bad."""
        if self.runs_script:
            raise EtvizError(str(path), "a script runs in the worker, it is not read")
        module_name, _, function = self.reader.partition(":")
        reader: Reader = getattr(importlib.import_module(module_name), function)
        found = companion(path) if etrecord is None else None
        beside = found if found is not None and found.is_file() else None
        return reader(path, allow_pickle=allow_pickle, etrecord=etrecord, beside=beside)


_PTE_OPTIONS = ("--etrecord", "--etdump", "--debug-buffer", "--memory-svg")
KINDS: tuple[InputKind, ...] = (
    InputKind(".py", "an export script", "", runs_script=True, needs_trust=True,
              options=("--etdump",), latency_on_stages=True),
    InputKind(".pt2", "a torch.export archive", "etviz_lsp.graph.convert:read_pt2",
              may_unpickle=True, torch_free=True, artifact=True,
              options=("--etdump", "--etrecord"), latency_by_etrecord=True),
    InputKind(".pte", "an ExecuTorch program", "etviz_lsp.graph.readers.pte_reader:read_pte",
              torch_free=True, artifact=True, beside=".etrecord", options=_PTE_OPTIONS),
    InputKind(".etrecord", "an ETRecord", "etviz_lsp.graph.readers.etrecord:read_etrecord",
              torch_free=True, artifact=True, beside=".pte", options=("--etdump",),
              latency_on_stages=True),
)  # fmt: skip
_BY_SUFFIX = {kind.suffix: kind for kind in KINDS}
# Options a run's output goes with: "the .pte program that made it", not "a .pte program"
_MADE_BY_A_RUN = frozenset({"--etdump", "--debug-buffer"})


def suffixes() -> tuple[str, ...]:
    return tuple(_BY_SUFFIX)


def suffix_of(path: os.PathLike[str] | str) -> str:
    """``.PTE`` for ``m/model.PTE``, as ``os.path.splitext`` reads it (none for ``.pte``, a
    name that is only dots before its last one). Plain string searches: the worker asks it
    of every file a run writes and of each entry of its folders' scan."""
    name = os.fspath(path)
    start = max(name.rfind("/"), name.rfind(os.sep)) + 1
    dot = name.rfind(".")
    return name[dot:] if dot > start and name[start:dot].strip(".") else ""


def kind_of(path: os.PathLike[str] | str) -> InputKind | None:
    """The kind of ``path`` by its suffix, in any case (``model.PTE`` is a ``.pte``)."""
    return _BY_SUFFIX.get(suffix_of(path).lower())


def is_script(path: os.PathLike[str] | str) -> bool:
    kind = kind_of(path)
    return kind is not None and kind.runs_script


def is_artifact(path: os.PathLike[str] | str) -> bool:
    """Whether a run that writes ``path`` made a file etviz opens (a ``.pte``, not a log)."""
    kind = kind_of(path)
    return kind is not None and kind.artifact


def companion(path: Path) -> Path | None:
    """The file beside ``path`` its reader uses (``m.pte`` -> ``m.etrecord``): the first
    spelling that is a file (``m.etrecord``, ``m.ETRECORD``), else the lower-case one; None
    when ``path``'s kind has no companion."""
    kind = kind_of(path)
    if kind is None or not kind.beside:
        return None
    spellings = [path.with_name(path.stem + s) for s in (kind.beside, kind.beside.upper())]
    return next((p for p in spellings if p.is_file()), spellings[0])


def expected() -> str:
    """``an export script .py, a .pt2, a .pte or an .etrecord`` (for error messages)."""
    names = [f"{KINDS[0].what} {KINDS[0].suffix}"] + [
        f"{'an' if kind.suffix[1] in 'aeiou' else 'a'} {kind.suffix}" for kind in KINDS[1:]
    ]
    return ", ".join(names[:-1]) + " or " + names[-1]


def unsupported(path: os.PathLike[str] | str) -> str:
    """Why ``path`` is not opened: ``unsupported file type '.json' (expected ...)``."""
    return f"unsupported file type '{suffix_of(path)}' (expected {expected()})"


def known_kind(path: Path) -> InputKind:
    """The kind of ``path``, or a one-line error naming the file and what is expected."""
    kind = kind_of(path)
    if kind is None:
        raise EtvizError(str(path), unsupported(path))
    return kind


def goes_with(option: str) -> str:
    """``--etdump goes with the .pte program that made it``: said when ``option`` is given
    with a file of another kind."""
    takers = " or ".join(kind.suffix for kind in KINDS if option in kind.options)
    if option in _MADE_BY_A_RUN:
        return f"{option} goes with the {takers} program that made it"
    return f"{option} goes with a {takers} program"


def check_options(kind: InputKind, given: dict[str, Path | None]) -> None:
    """A one-line error naming the file of the first option given (not None) that does not
    go with ``kind`` (``{"--etdump": path}``)."""
    for option, value in given.items():
        if value is not None and option not in kind.options:
            raise EtvizError(str(value), goes_with(option))


def client_info() -> list[dict[str, object]]:
    """What the language server tells the editor at ``initialize`` (one entry per kind);
    also the extension's built-in table (``scripts/write_input_kinds.py``)."""
    return [
        {"suffix": kind.suffix, "runsScript": kind.runs_script, "needsTrust": kind.needs_trust,
         "mayUnpickle": kind.may_unpickle}
        for kind in KINDS
    ]  # fmt: skip
