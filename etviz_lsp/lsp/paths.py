"""URIs <-> paths, the one place the server turns what the client sends into files.

Everything downstream (runs, watches, source maps, diagnostics) is keyed by resolved
absolute paths, so a URI and a path the worker reported compare equal.
"""

from __future__ import annotations

import os
from pathlib import Path

from pygls import uris


def path_of(uri: object) -> Path | None:
    """A ``file:`` URI (or an absolute path) as a resolved path; None for anything else."""
    if not isinstance(uri, str) or not uri:
        return None
    if uri.startswith("file:"):
        path = uris.to_fs_path(uri)
        return Path(path).resolve() if path else None
    # an absolute path of this system (on Windows ``C:\\...``, which no ``/`` test sees)
    return Path(uri).resolve() if os.path.isabs(uri) else None


def uri_of(path: Path | str) -> str:
    """The ``file:`` URI of ``path`` (the path itself if it cannot be one)."""
    return uris.from_fs_path(str(path)) or str(path)
