"""Find the user's own line in a node's recorded stack trace.

A stack trace recorded by ``torch.export`` runs from the export call down into torch's
modules (``nn.Conv2d.forward``...). The user wants the deepest frame that is in THEIR
code: not in site-packages, not in the standard library.
"""

from __future__ import annotations

import re
import sys
import sysconfig
from dataclasses import dataclass
from functools import lru_cache

_LIBRARY_PACKAGES = frozenset({"torch", "torchao", "executorch", "functorch", "torchvision"})
_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+)')


@dataclass(frozen=True, slots=True)
class Frame:
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


def frames(stack_trace: str) -> list[Frame]:
    return [Frame(m["file"], int(m["line"])) for m in _FRAME.finditer(stack_trace)]


def user_frame(stack_trace: str | None) -> Frame | None:
    """Deepest frame in user code, or None when there is none (or no trace)."""
    if not stack_trace:
        return None
    return _user_frame(stack_trace)


def user_location(stack_trace: str | None) -> str | None:
    """``file:line`` of :func:`user_frame`, the text shown on a node."""
    if not stack_trace:
        return None
    return _user_location(stack_trace)


@lru_cache(maxsize=8192)  # as _user_frame: spelled once per distinct trace
def _user_location(stack_trace: str) -> str | None:
    frame = _user_frame(stack_trace)
    return None if frame is None else str(frame)


# Nodes of one layer share their trace text: a 20k-node program has a few thousand
# distinct traces, so parsing each text once saves most of the work.
@lru_cache(maxsize=8192)
def _user_frame(stack_trace: str) -> Frame | None:
    for frame in reversed(frames(stack_trace)):
        if is_user_file(frame.file):
            return frame
    return None


@lru_cache(maxsize=4096)
def is_user_file(path: str) -> bool:
    if path.startswith("<") or not path.endswith(".py"):
        return False
    normalized = path.replace("\\", "/")
    if "/site-packages/" in normalized or "/dist-packages/" in normalized:
        return False
    if normalized.split("/", 1)[0] in _LIBRARY_PACKAGES:  # torch records some paths relative
        return False
    return not any(normalized.startswith(prefix) for prefix in _library_prefixes())


@lru_cache(maxsize=1)
def _library_prefixes() -> tuple[str, ...]:
    """The interpreter's own library folders (stdlib), where no user code lives."""
    names = ("stdlib", "platstdlib")
    paths = {sysconfig.get_paths().get(name, "") for name in names}
    paths.add(sys.base_prefix + "/lib/")
    return tuple(sorted(p.rstrip("/") + "/" for p in paths if p))
