"""Open a ``.pt2`` with ``torch.export.load`` (the unpickling path).

``torch.export.load`` unpickles parts of the archive, so only call it on files the user
trusts. Quantized programs refer to ``quantized_decomposed`` ops that exist only once
their library is imported; we import it first so quantized archives load.
"""

from __future__ import annotations

import contextlib
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from etviz_lsp.errors import EtvizError

if TYPE_CHECKING:
    import torch


def check_archive(path: Path) -> None:
    """Fail with a clear message for files that are not an exported-program archive."""
    if not path.exists():
        raise EtvizError(str(path), "no such file")
    if path.is_dir():
        raise EtvizError(str(path), "is a directory, not a .pt2 file")
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile as exc:
        raise EtvizError(str(path), "not a .pt2 archive (not a zip file)") from exc
    except PermissionError as exc:
        raise EtvizError(str(path), "permission denied") from exc
    except OSError as exc:
        raise EtvizError(str(path), f"cannot read: {exc.strerror or exc}") from exc
    if any("/models/" in name and name.endswith(".json") for name in names):
        return
    if any("aotinductor" in name or name.endswith(".so") for name in names):
        raise EtvizError(
            str(path),
            "an AOTInductor package (compiled code, no exported graph); "
            "save the program with torch.export.save to view it",
        )
    raise EtvizError(str(path), "a zip file but not a torch.export .pt2 archive (no models/*.json)")


def load_exported_program(path: Path) -> torch.export.ExportedProgram:
    """``torch.export.load`` with quantized ops registered, errors made one-line."""
    check_archive(path)
    import torch

    _register_quantized_ops()
    try:
        return torch.export.load(str(path))
    except Exception as exc:  # torch raises many types here; all mean "cannot load"
        cause = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EtvizError(str(path), f"torch.export.load failed: {cause[:300]}") from exc


def _register_quantized_ops() -> None:
    try:
        import torch.ao.quantization.fx._decomposed  # noqa: F401  (registers the ops)
    except ImportError:  # pragma: no cover - newer torch moved them to torchao
        with contextlib.suppress(ImportError):
            import torchao.quantization.pt2e  # noqa: F401
