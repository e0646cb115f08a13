"""The worker room: run a user's export script in an isolated, warm child process.

Import surface for the caller (never imports torch): :class:`WarmWorker`, its results
(:class:`RunResult`, :class:`GraphInfo`, :class:`StageUpdate` while it runs), what to run
(:class:`RunTarget`: a script or ``-m`` module, arguments, folder, environment) and
failures (:class:`ScriptFailed` carrying a :class:`ScriptError`).
"""

from etviz_lsp.worker.run_target import RunTarget
from etviz_lsp.worker.script_error import ScriptError, ScriptFailed
from etviz_lsp.worker.warm_worker import GraphInfo, RunResult, StageUpdate, WarmWorker

__all__ = [
    "GraphInfo", "RunResult", "RunTarget", "ScriptError", "ScriptFailed", "StageUpdate",
    "WarmWorker",
]
