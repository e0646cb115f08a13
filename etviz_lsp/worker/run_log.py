"""Where a run's stdout/stderr go: a log file, and the first part to the caller's log.

A script may print megabytes; the file takes it all (up to a cap that protects the disk from
a script printing in a loop), the caller gets the first ``forward_limit`` bytes, which is
what a person reads in an editor's output panel, then one note saying where the rest is.
"""

from __future__ import annotations

import codecs
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

FILE_LIMIT = 64 * 1024 * 1024
FORWARD_LIMIT = 64 * 1024


class RunLog:
    def __init__(
        self,
        path: Path,
        forward: Callable[[str], None],
        forward_limit: int = FORWARD_LIMIT,
        file_limit: int = FILE_LIMIT,
    ) -> None:
        self.path = path
        self._forward = forward
        self._forward_left = forward_limit
        self._file_left = file_limit
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.total = 0
        self._file: BinaryIO | None = self._open(path)

    @staticmethod
    def _open(path: Path) -> BinaryIO | None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return open(path, "wb")  # noqa: SIM115 (closed in close())
        except OSError:
            return None

    def write(self, data: bytes) -> None:
        self.total += len(data)
        self._to_file(data)
        if self._forward_left > 0:
            part = data[: self._forward_left]
            self._forward_left -= len(part)
            text = self._decoder.decode(part)
            if self._forward_left <= 0:
                text += f"\n[etviz] output continues in {self.path}\n"
            if text:
                self._forward(text)

    def note(self, text: str) -> None:
        """A line of our own (timeout, crash), in the file and to the caller."""
        line = f"[etviz] {text}\n"
        self._to_file(line.encode())
        self._forward(line)

    def _to_file(self, data: bytes) -> None:
        if self._file is None or self._file_left <= 0:
            return
        part = data[: self._file_left]
        self._file_left -= len(part)
        try:
            self._file.write(part)
            if self._file_left <= 0:
                self._file.write(b"\n[etviz] log truncated here\n")
        except OSError:
            self._file = None

    def close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
