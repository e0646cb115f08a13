"""Open a ``.pt2`` with ``torch.export.load`` (the unpickling path).

``torch.export.load`` unpickles parts of the archive, which can run code the file carries:
it is called only with the user's opt-in for the run (``--allow-pickle``,
``etviz.allowPickle``; see ``convert.from_pt2``). Quantized programs refer to
``quantized_decomposed`` ops that exist only once their library is imported; we import it
first so quantized archives load.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from etviz_lsp.errors import EtvizError
from etviz_lsp.graph.readers import pt2_zip

if TYPE_CHECKING:
    import torch


def check_archive(path: Path) -> None:
    """Fail with a clear message for files that are not an exported-program archive
    (the direct reader's zip errors and kind checks: one mapping, in ``pt2_zip``)."""
    with pt2_zip.open_zip(path) as archive:
        names = set(archive.namelist())
    pt2_zip.check_kind(path, names, pt2_zip.archive_root(names))


def load_exported_program(path: Path) -> torch.export.ExportedProgram:
    """``torch.export.load`` with quantized ops registered, errors made one-line."""
    check_archive(path)
    import torch

    _register_quantized_ops()
    with _torch_export_log() as logged:
        try:
            return torch.export.load(str(path))
        except Exception as exc:  # torch raises many types here; all mean "cannot load"
            # torch logs the real cause (with a traceback) and raises a vaguer error
            # ("check the warnings above"): report the logged cause, print no traceback.
            causes = [r.exc_info[1] for r in logged if r.exc_info and r.exc_info[1]]
            cause = _first_line(causes[-1] if causes else exc)
            raise EtvizError(str(path), f"torch.export.load failed: {cause[:300]}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def _torch_export_log() -> Iterator[list[logging.LogRecord]]:
    """Keep what ``torch.export`` logs while loading, instead of printing it to stderr."""
    logger = logging.getLogger("torch.export")
    handler = _Records()
    # torch._logging puts its own stderr handler on this logger: set it aside too.
    saved, propagate = logger.handlers[:], logger.propagate
    logger.handlers = [handler]
    logger.propagate = False
    try:
        yield handler.records
    finally:
        logger.handlers = saved
        logger.propagate = propagate


def _register_quantized_ops() -> None:
    try:
        import torch.ao.quantization.fx._decomposed  # noqa: F401  (registers the ops)
    except ImportError:  # pragma: no cover - newer torch moved them to torchao
        with contextlib.suppress(ImportError):
            import torchao.quantization.pt2e  # noqa: F401
