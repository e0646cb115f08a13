"""Typed ``initializationOptions``: what the editor tells the server when it starts.

Every field is optional; a value of the wrong type is dropped with a warning (the server
still starts with the default), so a typo in an editor's settings never stops the server.

Some settings also change while the server runs (``workspace/didChangeConfiguration``, see
``update``): a new timeout or auto-refresh needs no restart, which would lose the warm
worker and the list of visualized files.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

# Seconds a run may take in the editor: generous (lowering an LLM takes ~10 min on 2 cores),
# yet a hung script still ends; the command line has no limit unless given one.
DEFAULT_TIMEOUT = 1800.0
TIMEOUT_SETTING = "etviz.timeout"  # the editor's name of ``timeout`` (package.json)
PROFILE_MODES = ("off", "command", "onSave")  # etviz.profile (issue 17, lsp/profile.py)


@dataclass(frozen=True, slots=True)
class InitOptions:
    # The client says the workspace is trusted: only then are export scripts run.
    trusted: bool = False
    # The user opted in (etviz.allowPickle) to let torch.export.load unpickle a .pt2 the
    # direct reader cannot read. Separate from trust: a trusted workspace still never
    # unpickles without it. Fixed for the server's life (not a live setting).
    allow_pickle: bool = False
    # Interpreter for the worker (None: the interpreter running this server).
    python_path: str | None = None
    # Seconds one script run may take before its worker is killed.
    timeout: float = DEFAULT_TIMEOUT
    # Re-convert a visualized file when it is saved or changed on disk.
    auto_refresh: bool = True
    # Port for the Model Explorer server (None: a free one).
    port: int | None = None
    # The editor's process: when it dies the server exits.
    client_pid: int | None = None
    # Seconds between polls when watching by polling (None: inotify, polling only as fallback).
    poll_interval: float | None = None
    # The numeric overlay of a run's quantized stages (etviz.numeric): "onRun" or "off".
    numeric: str = "onRun"
    # Information diagnostics on the lines of ops a partitioner left on the CPU, with its
    # reasons (etviz.notDelegatedDiagnostics; lsp/not_delegated_diagnostics.py).
    not_delegated_diagnostics: bool = True
    # Profile on this machine: "off", "command" (runs keep their ExecuTorch program for the
    # command), "onSave" (every run also profiles it); how many times the program runs.
    profile: str = "command"
    profile_iterations: int = 20
    # The runtime numeric gap (etviz.profileNumericGap): runs keep their ETRecord and a
    # profile records a debug buffer (worker/profile_run.py), shown as node data and as
    # Information diagnostics on the worst lines (lsp/numeric_diagnostics.py).
    profile_numeric_gap: bool = False
    # Start the warm worker at initialize when the workspace holds an export script
    # (etviz.prestartWorker; lsp/prestart.py), so the first run pays only itself.
    prestart_worker: bool = True
    # How the worker runs scripts (etviz.workerMode): "fork" (a fork of the warm worker per
    # run), "portable" (a run host warmed before each run: no fork, macOS and Windows), or
    # "auto": ETVIZ_WORKER_MODE, else fork on Linux. Fixed for the server's life.
    worker_mode: str = "auto"
    # The version of the editor extension that started this server (lsp/versions.py).
    extension_version: str | None = None
    warnings: tuple[str, ...] = field(default=(), compare=False)


# camelCase key -> (field name, accepted types)
_KEYS: dict[str, tuple[str, tuple[type, ...]]] = {
    "trusted": ("trusted", (bool,)),
    "allowPickle": ("allow_pickle", (bool,)),
    "pythonPath": ("python_path", (str,)),
    "timeout": ("timeout", (int, float)),
    "autoRefresh": ("auto_refresh", (bool,)),
    "port": ("port", (int,)),
    "clientPid": ("client_pid", (int,)),
    "pollInterval": ("poll_interval", (int, float)),
    "numeric": ("numeric", (str,)),
    "notDelegatedDiagnostics": ("not_delegated_diagnostics", (bool,)),
    "profile": ("profile", (str,)),
    "profileIterations": ("profile_iterations", (int,)),
    "profileNumericGap": ("profile_numeric_gap", (bool,)),
    "extensionVersion": ("extension_version", (str,)),
    "prestartWorker": ("prestart_worker", (bool,)),
    "workerMode": ("worker_mode", (str,)),
}
# String settings that take one of a few values.
_CHOICES: dict[str, tuple[str, ...]] = {
    "numeric": ("off", "onRun"), "profile": PROFILE_MODES,
    "workerMode": ("auto", "fork", "portable"),
}


def timeout_advice(seconds: float) -> str:
    """What a run stopped at its time limit tells the user: the setting to raise."""
    return f"raise the {TIMEOUT_SETTING} setting (now {seconds:g} s) to give it longer"


def parse(raw: object) -> InitOptions:
    """``initializationOptions`` (any JSON) -> options; problems land in ``.warnings``."""
    if raw is None:
        return InitOptions()
    if not isinstance(raw, dict):
        return InitOptions(warnings=(f"initializationOptions is not an object: {raw!r}",))
    values, warnings = _values(raw, "initialization option")
    if values.get("python_path") == "":
        del values["python_path"]
    return InitOptions(**values, warnings=tuple(warnings))


def _values(raw: dict[str, Any], what: str) -> tuple[dict[str, Any], list[str]]:
    """Field name -> usable value for each camelCase key given (null: not given), and a
    warning for each unknown key or bad value."""
    values: dict[str, Any] = {}
    warnings: list[str] = []
    for key, value in raw.items():
        if key not in _KEYS:
            warnings.append(f"unknown {what} {key!r} ignored")
            continue
        name, types = _KEYS[key]
        if value is None:
            continue
        problem = _check(key, value, types, what)
        if problem:
            warnings.append(problem)
            continue
        values[name] = float(value) if float in types else value
    return values, warnings


def _check(key: str, value: object, types: tuple[type, ...], what: str) -> str | None:
    # bool is an int in Python; JSON true is not a port number.
    if isinstance(value, bool) and bool not in types:
        return f"{what} {key!r} must be a number, got {value!r}"
    if not isinstance(value, types):
        wanted = " or ".join(sorted({_json_name(t) for t in types}))
        return f"{what} {key!r} must be a {wanted}, got {value!r}"
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0:
        return f"{what} {key!r} must be positive, got {value!r}"
    if key in _CHOICES and value not in _CHOICES[key]:
        return f"{what} {key!r} must be one of {', '.join(_CHOICES[key])}, got {value!r}"
    return None


def _json_name(kind: type) -> str:
    return {bool: "boolean", str: "string", int: "number", float: "number"}[kind]


# Settings a running server takes from workspace/didChangeConfiguration. Trust, the pickle
# opt-in, the interpreter and the worker mode are fixed for a server's life: the editor
# restarts it when they change (a settings message alone can never turn unpickling on).
LIVE_KEYS = (
    "timeout", "autoRefresh", "port", "numeric", "profile", "profileIterations",
    "profileNumericGap", "notDelegatedDiagnostics",
)


def update(current: InitOptions, settings: object) -> InitOptions:
    """``current`` with the live settings of an ``etviz`` settings object applied; other
    keys are ignored, bad values leave the current value (and a warning). ``port: null``
    means any free port again."""
    if not isinstance(settings, dict):
        return replace(current, warnings=(f"settings are not an object: {settings!r}",))
    live = {key: settings[key] for key in LIVE_KEYS if key in settings}
    changes, warnings = _values(live, "setting")
    if live.get("port", 0) is None:
        changes["port"] = None
    return replace(current, **changes, warnings=tuple(warnings))
