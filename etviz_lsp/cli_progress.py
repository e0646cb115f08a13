"""What ``--once`` shows on stderr while an export flow runs: the stage and the time so far.

On a terminal, one line that keeps updating (redrawn every half second, so the elapsed time
moves during a long lowering) and is cleared at the end; otherwise (a log, CI) one line per
stage change, nothing redrawn.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

_REDRAW = 0.5  # seconds between redraws of the terminal line
_CLEAR = "\r\x1b[K"


class ProgressLine:
    def __init__(self, label: str, stream: TextIO | None = None, *,
                 interactive: bool | None = None) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self.stage = "starting Python"
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def __enter__(self) -> ProgressLine:
        self._started = time.monotonic()
        if self.interactive:  # a log gets its first line with the first stage
            self._write(self._text())
            self._ticker = threading.Thread(target=self._tick, name="etviz-progress",
                                            daemon=True)
            self._ticker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        if self.interactive:
            with self._lock:
                self._write(_CLEAR)

    def __call__(self, stage: str) -> None:
        """The worker's progress callback: a new stage (repeats are ignored)."""
        with self._lock:
            if stage == self.stage:
                return
            self.stage = stage
            if self.interactive:
                self._write(_CLEAR + self._text())
            else:
                self._write(self._text() + "\n")

    def log(self, text: str) -> None:
        """The script's own output (``-v``): above the progress line, never through it."""
        with self._lock:
            if self.interactive:
                self._write(_CLEAR + text + ("" if text.endswith("\n") else "\n") + self._text())
            else:
                self._write(text)

    def _tick(self) -> None:
        while not self._stop.wait(_REDRAW):
            with self._lock:
                self._write(_CLEAR + self._text())

    def _text(self) -> str:
        return f"etviz: {self.label}: {self.stage} ({time.monotonic() - self._started:.1f} s)"

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken stderr costs only the display
            pass
