"""The worker room: run a user's export script in an isolated, warm child process.

Import surface for the caller (never imports torch): :class:`WarmWorker`, its results
(:class:`RunResult`, :class:`GraphInfo`) and failures (:class:`ScriptFailed` carrying a
:class:`ScriptError`).
"""

from etviz_lsp.worker.script_error import ScriptError, ScriptFailed
from etviz_lsp.worker.warm_worker import GraphInfo, RunResult, WarmWorker

__all__ = ["GraphInfo", "RunResult", "ScriptError", "ScriptFailed", "WarmWorker"]
