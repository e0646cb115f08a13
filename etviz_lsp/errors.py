"""The one error type users see: a file, a cause, one line.

Every room raises :class:`EtvizError` for problems a user can fix (a bad file, a missing
folder, a script that failed); the CLI prints ``str(error)`` and exits non-zero, the
language server turns it into a diagnostic or a message. Anything else is a bug and keeps
its traceback (in the log).
"""

from __future__ import annotations


class EtvizError(Exception):
    def __init__(self, path: str, cause: str) -> None:
        super().__init__(f"{path}: {cause}")
        self.path = path
        self.cause = cause
