"""A run configuration from the client (a launch.json configuration the extension resolved)
as the worker's :class:`RunTarget`, checked: it comes from another process.

Shape (``etviz.server.visualize``'s ``run``): ``{name, program | module, args: [str],
cwd: absolute path, env: {str: str}}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from etviz_lsp.errors import EtvizError
from etviz_lsp.lsp.commands import RequestFailed
from etviz_lsp.worker import RunTarget


def from_client(data: object) -> RunTarget:
    """The worker's target for ``data``; ``RequestFailed`` naming what is wrong."""
    if not isinstance(data, dict):
        raise RequestFailed(f"run configuration: expected an object, got {data!r}")
    name = data.get("name") if isinstance(data.get("name"), str) else "?"
    try:
        return RunTarget(
            script=_absolute(data, "program"),
            module=_text(data, "module"),
            args=tuple(_strings(data.get("args", []), "args")),
            cwd=_absolute(data, "cwd"),
            env=tuple(sorted(_env(data.get("env", {})).items())),
        )
    except (EtvizError, ValueError) as error:
        raise RequestFailed(f'run configuration "{name}": {error}') from None


def label(target: RunTarget) -> str:
    """How progress and logs name a run: ``export.py --blocks 3``."""
    return " ".join([target.label, *target.args])


def _text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ValueError(f"'{key}' must be a non-empty string")
    return value


def _absolute(data: dict[str, Any], key: str) -> Path | None:
    text = _text(data, key)
    if text is None:
        return None
    path = Path(text)
    if not path.is_absolute():
        raise ValueError(f"'{key}' must be an absolute path, got {text!r}")
    return path


def _strings(value: object, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"'{key}' must be a list of strings")
    return list(value)


def _env(value: object) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError("'env' must map names to strings")
    return dict(value)
