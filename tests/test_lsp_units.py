"""Initialization options and the diagnostic built from a script error (no server needed)."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types

import etviz_lsp
from etviz_lsp.lsp import diagnostics, options
from etviz_lsp.worker import ScriptError

OURS = Path(etviz_lsp.__file__).parent


def test_options_parse_camel_case_and_keep_defaults() -> None:
    parsed = options.parse(
        {"trusted": True, "pythonPath": "/opt/py/bin/python", "timeout": 30, "autoRefresh": False,
         "port": 9100, "clientPid": 4242, "pollInterval": 0.5, "allowPickle": True,
         "prestartWorker": False}
    )
    assert parsed == options.InitOptions(
        trusted=True, python_path="/opt/py/bin/python", timeout=30.0, auto_refresh=False,
        port=9100, client_pid=4242, poll_interval=0.5, allow_pickle=True,
        prestart_worker=False,
    )
    assert parsed.warnings == ()
    assert options.parse(None) == options.InitOptions()
    assert options.parse({}).prestart_worker is True  # the worker starts early by default
    # the worker's mode: auto unless the client names one; a name it does not know is warned
    assert options.parse({}).worker_mode == "auto"
    assert options.parse({"workerMode": "portable"}).worker_mode == "portable"
    wrong = options.parse({"workerMode": "spawn"})
    assert wrong.worker_mode == "auto"
    assert "must be one of auto, fork, portable" in wrong.warnings[0]
    assert options.update(options.parse({"workerMode": "fork"}),
                          {"workerMode": "portable"}).worker_mode == "fork"  # not live
    assert options.parse({}).trusted is False  # no word from the client: not trusted
    # trust is no consent to unpickle: that takes its own setting
    assert options.parse({"trusted": True}).allow_pickle is False


def test_bad_option_values_are_dropped_with_a_warning() -> None:
    parsed = options.parse({"trusted": "yes", "port": True, "timeout": -1, "colour": "red"})
    assert parsed == options.InitOptions()
    assert len(parsed.warnings) == 4
    assert "'trusted' must be a boolean" in parsed.warnings[0]
    assert options.parse([1, 2]).warnings


def test_live_settings_change_timeout_refresh_and_port_but_never_trust_or_pickle() -> None:
    current = options.InitOptions(trusted=True, python_path="/py", timeout=300.0, port=8080)
    updated = options.update(
        current,
        {"timeout": 20, "autoRefresh": False, "trusted": False, "pythonPath": "/x",
         "allowPickle": True},
    )
    assert updated == options.InitOptions(
        trusted=True, python_path="/py", timeout=20.0, auto_refresh=False, port=8080
    )
    assert options.update(updated, {"port": None}).port is None  # any free port again
    bad = options.update(updated, {"timeout": -5, "autoRefresh": "no"})
    assert (bad.timeout, bad.auto_refresh) == (20.0, False)  # bad values keep the current
    assert bad.warnings == (
        "setting 'timeout' must be positive, got -5",
        "setting 'autoRefresh' must be a boolean, got 'no'",
    )
    assert options.update(updated, "nonsense").warnings


TRACEBACK = f"""\
Traceback (most recent call last):
  File "/home/u/ws/export.py", line 15, in <module>
    ep = torch.export.export(Net(), (torch.randn(2, 5),))
  File "{OURS}/worker/capture.py", line 155, in capturing
    result = original(*args, **kwargs)
  File "/venv/site-packages/torch/export/__init__.py", line 171, in export
    return _export(
  File "/home/u/ws/export.py", line 12, in forward
    return self.layers(x)
  File "/venv/site-packages/torch/_meta_registrations.py", line 2518, in meta_mm
    torch._check(
  File "<string>", line 1, in <lambda>
RuntimeError: a and b must have same reduction dim
"""


def test_a_script_error_becomes_a_diagnostic_at_its_line_with_the_torch_frame() -> None:
    error = ScriptError(
        "exception", "/home/u/ws/export.py", 12, 16,
        "RuntimeError: a and b must have same reduction dim", TRACEBACK,
    )
    lines = {11: "        return self.layers(x)"}
    script = Path("/home/u/ws/export.py")
    diagnostic = diagnostics.to_diagnostic(error, script, lambda i: lines.get(i, ""))
    assert diagnostic.range == types.Range(types.Position(11, 15), types.Position(11, 29))
    assert diagnostic.message == "RuntimeError: a and b must have same reduction dim"
    assert diagnostic.code == "exception"
    [related] = diagnostic.related_information or []
    assert related.location.uri == "file:///venv/site-packages/torch/_meta_registrations.py"
    assert related.location.range.start.line == 2517
    assert "meta_mm" in related.message


def test_an_error_without_a_line_sits_on_the_first_line_of_the_script() -> None:
    error = ScriptError("no-program", "/home/u/ws/export.py", None, None, "no program was exported")
    script = Path("/home/u/ws/export.py")
    diagnostic = diagnostics.to_diagnostic(error, script, lambda i: "import torch")
    assert (diagnostic.range.start.line, diagnostic.range.start.character) == (0, 0)
    assert diagnostic.related_information is None
    assert diagnostics.diagnostic_file(error, script) == script


def test_a_run_configuration_from_the_client_is_checked() -> None:
    """What the extension sends as ``run`` becomes the worker's target; anything else is a
    one-line error naming the configuration and what is wrong with it."""
    import pytest

    from etviz_lsp.lsp import run_configs
    from etviz_lsp.lsp.commands import RequestFailed
    from etviz_lsp.worker import RunTarget

    target = run_configs.from_client({
        "name": "export", "module": "pkg.export", "args": ["--blocks", "3"], "cwd": "/ws",
        "env": {"B": "2", "A": "1"},
    })
    assert target == RunTarget(module="pkg.export", args=("--blocks", "3"), cwd=Path("/ws"),
                               env=(("A", "1"), ("B", "2")))
    assert run_configs.label(target) == "-m pkg.export --blocks 3"
    bad = [
        ({"name": "rel", "program": "export.py"}, "'program' must be an absolute path"),
        ({"name": "both", "program": "/a.py", "module": "a"}, "exactly one of a script"),
        ({"name": "args", "module": "m", "args": "--x"}, "'args' must be a list of strings"),
        ({"name": "env", "module": "m", "env": {"A": 1}}, "'env' must map names to strings"),
        ({"name": "mod", "module": "not a module"}, "not a module name"),
    ]
    for data, why in bad:
        with pytest.raises(RequestFailed, match=why) as raised:
            run_configs.from_client(data)
        assert str(raised.value).startswith(f'run configuration "{data["name"]}": ')
        assert "\n" not in str(raised.value)
    with pytest.raises(RequestFailed, match="expected an object"):
        run_configs.from_client(["not", "an", "object"])
