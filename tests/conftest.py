"""Shared test set-up: subprocesses import this checkout's etviz_lsp, not an installed copy."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

_existing = os.environ.get("PYTHONPATH", "")
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), _existing) if p)
