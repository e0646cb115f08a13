"""Write a file atomically: a reader never sees half of it.

The bytes go to a temporary file in the target folder (``mkstemp``: mode 0600, so a
file holding a token is never readable by others, not even briefly), are flushed to
disk, then renamed over the target. On any failure the previous file is untouched and
the temp is removed. A writer killed outright (SIGKILL, power loss) cannot remove its
temp: the next write to the same target removes such leftovers once they are clearly
abandoned. The graph outputs (``graph.writer``), the shared server's record
(``explorer.state``), its leases and the graph cache (``explorer.publish``) are written here.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from pathlib import Path

from etviz_lsp.errors import EtvizError

# A temp this old is no write in progress (a 20k-node graph is written in well under 1 s).
ABANDONED_AFTER_S = 300.0


def write_bytes(path: Path, payload: bytes) -> int:
    """Write ``payload`` to ``path`` atomically; returns the number of bytes written."""
    folder = path.parent
    if not folder.is_dir():
        raise EtvizError(str(path), f"output folder {folder} does not exist")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise EtvizError(str(path), f"cannot write to {folder}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
        _remove_abandoned_temps(path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        if isinstance(exc, OSError):
            raise EtvizError(str(path), f"cannot write: {exc.strerror}") from exc
        raise
    return len(payload)


def _remove_abandoned_temps(path: Path) -> None:
    """Temps of earlier writes to ``path`` that were killed before they could clean up.
    Only names mkstemp gives our temps match; nothing else in the folder is touched."""
    ours = re.compile(rf"\.{re.escape(path.name)}\.[A-Za-z0-9_]{{8}}\.tmp")
    cutoff = time.time() - ABANDONED_AFTER_S
    with os.scandir(path.parent) as entries:
        for entry in entries:
            if ours.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                        os.unlink(entry.path)
