"""The warm worker with real scripts: real torch.export, PT2E, XNNPACK lowering, real kills.

One warm worker (imports and warm-up paid once) serves every test of this module, the way
the language server keeps one for a session.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from etviz_lsp.worker import ScriptFailed, WarmWorker
from tests.lsp_session import ancestors_of, ancestry_script

SCRIPTS = Path(__file__).parent / "scripts"


class Logs:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def __call__(self, text: str) -> None:
        self.parts.append(text)

    def take(self) -> str:
        text, self.parts = "".join(self.parts), []
        return text


@pytest.fixture(scope="module")
def logs() -> Logs:
    return Logs()


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory, logs: Logs) -> Iterator[WarmWorker]:
    warm = WarmWorker(log=logs, log_dir=tmp_path_factory.mktemp("logs"), mode="fork")
    warm.start()
    yield warm
    warm.close()


@pytest.fixture(scope="module")
def each_mode(
    worker_mode: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
    logs: Logs,
) -> Iterator[WarmWorker]:
    """A worker in each mode: the fork one is ``worker``; the portable one runs each script
    in a run host, here lean ones (torch imported ahead, ExecuTorch not: ready in a second
    or two): a preloading host takes seconds more, and these tests follow each other at
    once. The preloading portable worker: ``test_an_early_start_...``, the LSP tests."""
    if worker_mode == "fork":
        yield request.getfixturevalue("worker")
        return
    warm = WarmWorker(log=logs, log_dir=tmp_path_factory.mktemp("logs"), mode=worker_mode,
                      warm_up=False, preload=False)
    warm.start()
    yield warm
    warm.close()


_run_started: dict[int, float] = {}


def run(worker: WarmWorker, script: Path, tmp_path: Path, timeout: float = 120, **kw: object):
    _run_started[id(worker)] = time.time()
    return worker.run(script, tmp_path / "out.json", timeout=timeout, **kw)  # type: ignore[arg-type]


def failure(worker: WarmWorker, script: Path, tmp_path: Path, **kw: object) -> ScriptFailed:
    output = tmp_path / "out.json"
    output.write_text("previous graph")
    with pytest.raises(ScriptFailed) as caught:
        run(worker, script, tmp_path, **kw)
    assert output.read_text() == "previous graph", "a failed run must keep the last good graph"
    return caught.value


def leftovers(worker: WarmWorker) -> list[psutil.Process]:
    """What still runs below the worker after its last run. The portable mode's next run
    host, started after that run began, childless, is no leftover (the run's own host was
    started before the run and must be gone)."""
    assert worker.pid is not None
    below = psutil.Process(worker.pid).children(recursive=True)
    if worker.mode != "portable":
        return below
    return [p for p in below if not _spare_host(p, worker.pid, _run_started[id(worker)])]


def _spare_host(process: psutil.Process, worker_pid: int, run_started: float) -> bool:
    # (its command line may still be the worker's: caught between fork and exec)
    try:
        return (process.ppid() == worker_pid and process.create_time() > run_started
                and not process.children())
    except psutil.NoSuchProcess:
        return True  # gone while we looked


def write_script(tmp_path: Path, text: str, name: str = "script.py") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def graph_json(path: Path) -> dict[str, dict]:
    return {graph["id"]: graph for graph in json.loads(path.read_text())["graphs"]}


def test_quantize_and_lower_script_captures_every_stage(worker: WarmWorker, tmp_path: Path):
    stages: list[str] = []
    result = run(worker, SCRIPTS / "quantize_lower.py", tmp_path, on_progress=stages.append)
    ids = [graph.id for graph in result.graphs]
    assert ids == [
        "ep @ quantize_lower.py:25 (exported)",
        "quantized @ quantize_lower.py:29 (quantized)",
        "edge @ quantize_lower.py:30 (lowered)",
        "et_program @ quantize_lower.py:31 (executorch)",
    ]
    graphs = graph_json(result.output)
    assert list(graphs) == ids
    # The lowered stage really holds delegates: the graph room shows each one expanded into
    # its original ops, every one of them tagged with its partition.
    lowered = graphs["edge @ quantize_lower.py:30 (lowered)"]["nodes"]
    partitions = {a["value"] for n in lowered for a in n["attrs"] if a["key"] == "partition"}
    assert partitions and all(p.startswith("XnnpackBackend#") for p in partitions)
    assert {"running script", "exporting", "lowering", "converting"} <= set(stages)
    assert all(graph.node_count == len(graphs[graph.id]["nodes"]) for graph in result.graphs)


def test_example_export_convnet_script(worker: WarmWorker, tmp_path: Path):
    example = Path(__file__).parent.parent / "examples" / "export_convnet.py"
    result = run(worker, example, tmp_path)
    assert [g.id.split(" @ ")[0] + " " + g.id.rsplit(" ", 1)[1] for g in result.graphs] == [
        "exported (exported)", "quantized (quantized)", "lowered (lowered)",
        "program (executorch)",
    ]
    exported = graph_json(result.output)[result.graphs[0].id]
    assert any(n["namespace"].startswith("stages/0 (Block)") for n in exported["nodes"])


def test_importing_the_worker_room_does_not_import_torch():
    code = "import sys, etviz_lsp.worker; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr


def test_to_edge_then_to_backend_are_edge_and_lowered(worker: WarmWorker, tmp_path: Path):
    script = write_script(tmp_path, (
        "import torch\n"
        "from executorch.backends.xnnpack.partition.xnnpack_partitioner import (\n"
        "    XnnpackPartitioner as Partitioner)\n"
        "import executorch.exir as exir\n"
        "ep = torch.export.export(torch.nn.Linear(4, 4).eval(), (torch.randn(1, 4),))\n"
        "edge = exir.to_edge(ep)\n"
        "lowered = edge.to_backend(Partitioner())\n"
    ))
    result = run(worker, script, tmp_path)
    assert [g.id for g in result.graphs] == [
        "ep @ script.py:5 (exported)", "edge @ script.py:6 (edge)",
        "lowered @ script.py:7 (lowered)",
    ]


def test_two_models_exported_from_a_helper_are_two_graphs(worker: WarmWorker, tmp_path: Path):
    result = run(worker, SCRIPTS / "two_models.py", tmp_path)
    assert [g.id for g in result.graphs] == [  # the repeat says what it exported
        "program @ two_models.py:7 (exported)",
        "program @ two_models.py:7 (exported) from Conv2d",
    ]
    linear, conv = graph_json(result.output).values()
    assert "linear" in {n["label"] for n in linear["nodes"]}
    assert "conv2d" in {n["label"] for n in conv["nodes"]}


def test_programs_left_in_globals_are_captured(worker: WarmWorker, tmp_path: Path):
    script = write_script(tmp_path, (
        "import torch\n"
        "from torch.export import export\n"
        "direct = export(torch.nn.ReLU(), (torch.randn(2),))\n"
        "torch.export.save(direct, 'relu.pt2')\n"
        "loaded = torch.export.load('relu.pt2')  # a program no captured call returned\n"
    ))
    result = run(worker, script, tmp_path, cwd=tmp_path)
    assert [g.id for g in result.graphs] == ["direct @ script.py:3 (exported)", "loaded (exported)"]


def test_exception_is_reported_at_the_users_line(each_mode: WarmWorker, tmp_path: Path, logs: Logs):
    logs.take()
    error = failure(each_mode, SCRIPTS / "raises.py", tmp_path).error
    assert error.kind == "exception"
    assert (Path(error.file).name, error.line) == ("raises.py", 12)
    assert str(error).endswith(
        "raises.py:12: RuntimeError: a and b must have same reduction dim, "
        "but got [1, 2] X [3, 3]."
    )
    assert "torch/export" in error.traceback and 'raises.py", line 15' in error.traceback
    assert "Traceback (most recent call last)" in logs.take()


def test_syntax_error_names_line_and_column(worker: WarmWorker, tmp_path: Path):
    script = write_script(tmp_path, "import torch\n\ndef broken(:\n    pass\n")
    error = failure(worker, script, tmp_path).error
    assert (error.kind, error.line, error.column) == ("syntax", 3, 12)
    assert str(error).endswith("script.py:3: SyntaxError: invalid syntax")


def test_syntax_error_in_an_imported_user_module(worker: WarmWorker, tmp_path: Path):
    write_script(tmp_path, "x = = 1\n", name="helper_mod.py")
    script = write_script(tmp_path, "import torch\nimport helper_mod\n")
    error = failure(worker, script, tmp_path).error
    assert (error.kind, Path(error.file).name, error.line) == ("syntax", "helper_mod.py", 1)


def test_script_that_exports_nothing_says_so(worker: WarmWorker, tmp_path: Path):
    error = failure(worker, SCRIPTS / "exports_nothing.py", tmp_path).error
    assert error.kind == "no-program"
    assert "made no program" in error.message


def test_sys_exit_before_export_is_no_program_at_that_line(worker: WarmWorker, tmp_path: Path):
    error = failure(worker, SCRIPTS / "exits_early.py", tmp_path).error
    assert (error.kind, error.line) == ("no-program", 6)
    assert "sys.exit(0)" in error.message


def test_sys_exit_with_status_is_a_failure(worker: WarmWorker, tmp_path: Path):
    script = write_script(tmp_path, "import sys\nsys.exit(2)\n")
    error = failure(worker, script, tmp_path).error
    assert (error.kind, error.line) == ("crash", 2)
    assert "status 2" in error.message


def test_os_exit_is_reported_as_a_crash(each_mode: WarmWorker, tmp_path: Path):
    error = failure(each_mode, SCRIPTS / "os_exit.py", tmp_path).error
    assert error.kind == "crash"
    assert "exited with status 3 before reporting a result" in error.message
    assert leftovers(each_mode) == []


def test_segfault_is_reported_with_the_line(each_mode: WarmWorker, tmp_path: Path):
    script = write_script(tmp_path, "import ctypes\n\nctypes.string_at(0)\n")
    error = failure(each_mode, script, tmp_path).error
    assert (error.kind, error.line) == ("crash", 3)
    assert "SIGSEGV" in error.message


def test_hanging_script_is_killed_at_the_timeout(each_mode: WarmWorker, tmp_path: Path):
    started: list[float] = []  # when the script began (a run host may have been importing)
    error = failure(each_mode, SCRIPTS / "hangs.py", tmp_path, timeout=3,
                    on_progress=lambda _stage: started.append(time.monotonic())).error
    assert started and time.monotonic() - started[0] < 3 + 5
    assert (error.kind, error.line) == ("timeout", 7), "names the line the script hung on"
    assert "timed out after 3 s" in error.message
    assert leftovers(each_mode) == []


def test_processes_the_script_started_are_killed(each_mode: WarmWorker, tmp_path: Path):
    run(each_mode, SCRIPTS / "spawns_child.py", tmp_path, cwd=tmp_path)
    pids = [int(pid) for pid in (tmp_path / "spawned.pids").read_text().split()]
    assert len(pids) == 2
    for pid in pids:  # one stayed in the script's group, one left it (new session)
        assert not psutil.pid_exists(pid)
    assert leftovers(each_mode) == []


def test_a_forked_copy_of_the_script_does_not_answer(worker: WarmWorker, tmp_path: Path):
    script = write_script(tmp_path, (
        "import os, torch\n"
        "pid = os.fork()\n"  # both processes run on to the end of the script
        "relu = torch.export.export(torch.nn.ReLU(), (torch.randn(2),))\n"
        "if pid:\n"
        "    os.waitpid(pid, 0)\n"
        "    tanh = torch.export.export(torch.nn.Tanh(), (torch.randn(2),))\n"
    ))
    result = run(worker, script, tmp_path)
    assert [g.id for g in result.graphs] == [
        "relu @ script.py:3 (exported)", "tanh @ script.py:6 (exported)"
    ]


def test_megabytes_of_output_go_to_the_log(each_mode: WarmWorker, tmp_path: Path, logs: Logs):
    logs.take()
    result = run(each_mode, SCRIPTS / "prints_megabytes.py", tmp_path)
    assert len(result.graphs) == 1
    assert result.log_path is not None
    log_text = result.log_path.read_text()
    assert log_text.count("x" * 99) == 70_000 and log_text.rstrip().endswith("done")
    forwarded = logs.take()
    assert 64_000 <= len(forwarded) < 70_000, "the editor log gets the start, not 7 MB"
    assert f"output continues in {result.log_path}" in forwarded


def test_each_run_starts_warm_and_clean(each_mode: WarmWorker, tmp_path: Path):
    script = write_script(tmp_path, (
        "import sys\n"
        "warm = 'executorch.exir' in sys.modules\n"
        "import torch\n"
        "assert not hasattr(torch, 'etviz_marker'), 'state leaked from an earlier run'\n"
        "torch.etviz_marker = True\n"
        "program = torch.export.export(torch.nn.ReLU(), (torch.randn(2),))\n"
        "open('warm.txt', 'w').write(str(warm))\n"
    ))
    preloaded = each_mode.mode == "fork"  # the portable one here is lean (see each_mode)
    for _ in range(2):
        run(each_mode, script, tmp_path, cwd=tmp_path)
        assert (tmp_path / "warm.txt").read_text() == str(preloaded)


def test_script_sees_its_argv_folder_and_the_callers_cwd(each_mode: WarmWorker, tmp_path: Path):
    (tmp_path / "lib").mkdir()
    write_script(tmp_path / "lib", "VALUE = 3\n", name="local_helper.py")
    script = write_script(tmp_path / "lib", (
        "import os, sys, torch\n"
        "import local_helper\n"
        "assert __name__ == '__main__' and sys.argv == [__file__], sys.argv\n"
        "open('where.txt', 'w').write(os.getcwd())\n"
        "p = torch.export.export(torch.nn.ReLU(), (torch.randn(local_helper.VALUE),))\n"
    ))
    run(each_mode, script, tmp_path, cwd=tmp_path)
    assert (tmp_path / "where.txt").read_text() == str(tmp_path)


def test_cancel_stops_the_run_from_another_thread(each_mode: WarmWorker, tmp_path: Path):
    stages: list[str] = []

    started: list[float] = []

    def progress(stage: str) -> None:  # cancel from another thread once the script runs
        stages.append(stage)
        if stage == "running script":
            started.append(time.monotonic())
            threading.Timer(0.5, each_mode.cancel).start()

    error = failure(each_mode, SCRIPTS / "hangs.py", tmp_path, timeout=60,
                    on_progress=progress).error
    assert error.kind == "cancelled" and time.monotonic() - started[0] < 10
    assert error.line == 7, "names where the script was when it was stopped"
    assert stages == ["running script"]
    assert leftovers(each_mode) == []


def test_pt2_is_converted_in_the_worker(worker: WarmWorker, tmp_path: Path):
    saver = write_script(tmp_path, (
        "import torch\n"
        "p = torch.export.export(torch.nn.ReLU(), (torch.randn(2),))\n"
        "torch.export.save(p, 'relu.pt2')\n"
    ))
    run(worker, saver, tmp_path, cwd=tmp_path)
    pt2 = tmp_path / "relu.pt2"
    for allow_pickle in (True, False):  # a readable archive: the direct reader either way
        result = worker.run(pt2, tmp_path / "out.json", timeout=60, allow_pickle=allow_pickle)
        assert len(result.graphs) == 1 and result.graphs[0].node_count >= 3
        (graph,) = graph_json(result.output).values()
        assert "relu" in {node["label"] for node in graph["nodes"]}
    (tmp_path / "broken.pt2").write_bytes(b"not a zip")
    error = failure(worker, tmp_path / "broken.pt2", tmp_path).error
    assert error.kind == "bad-input" and "not a .pt2 archive" in error.message
    # an archive only torch.export.load could open is refused without the opt-in, not unpickled
    future = tmp_path / "future.pt2"
    with zipfile.ZipFile(pt2) as src, zipfile.ZipFile(future, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            dst.writestr(name, data.replace(b'"major": 8', b'"major": 99')
                         if "/models/" in name else data)
    error = failure(worker, future, tmp_path).error
    assert error.kind == "bad-input" and "unpickles" in error.message
    assert "etviz.allowPickle" in error.message
    # with it, the request reaches torch.export.load (whose own refusal of 99.0 is told)
    error = failure(worker, future, tmp_path, allow_pickle=True).error
    assert error.kind == "bad-input" and "torch.export.load failed" in error.message


def test_bad_input_fails_before_running(worker: WarmWorker, tmp_path: Path):
    with pytest.raises(ScriptFailed, match="no such file"):
        worker.run(tmp_path / "missing.py", tmp_path / "o.json", timeout=5)
    notes = write_script(tmp_path, "hi", name="notes.txt")
    with pytest.raises(ScriptFailed, match="unsupported file type '.txt'"):
        worker.run(notes, tmp_path / "o.json", timeout=5)
    with pytest.raises(ScriptFailed, match="does not exist"):
        worker.run(SCRIPTS / "two_models.py", tmp_path / "nowhere" / "o.json", timeout=5)


def test_interpreter_without_torch_is_a_clear_error(tmp_path: Path):
    # A fresh virtual environment: the same Python, no torch installed.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "bare")],
                   check=True)
    bare = str(tmp_path / "bare" / "bin" / "python")
    worker = WarmWorker(python=bare, log_dir=tmp_path / "logs")
    with worker, pytest.raises(ScriptFailed) as caught:
        run(worker, SCRIPTS / "two_models.py", tmp_path)
    error = caught.value.error
    assert error.kind == "bad-input"
    # one line: the interpreter and what it lacks (etviz_lsp/run_requirements.py)
    assert error.message == (f"{bare}: torch is not installed "
                             "(runs export scripts; needs >= 2.10)")
    # started early (the language server's pre-start): the same line, and it is stopped
    worker.start()
    with worker, pytest.raises(ScriptFailed, match="torch is not installed"):
        worker.wait_until_ready()
    assert worker.pid is None


def test_worker_that_dies_is_reported_then_restarted(tmp_path: Path, worker_mode: str):
    worker = WarmWorker(log_dir=tmp_path / "logs", warm_up=False, preload=False,
                        mode=worker_mode)
    script = write_script(tmp_path, (
        "import os, signal, torch\n"
        "os.kill(os.getppid(), signal.SIGKILL)\n"  # the warm worker itself dies
        "import time; time.sleep(30)\n"
    ))
    try:
        worker.start()
        error = failure(worker, script, tmp_path, timeout=60).error
        assert error.kind == "crash" and "worker process" in error.message
        result = run(worker, SCRIPTS / "two_models.py", tmp_path)
        assert len(result.graphs) == 2
        pid = worker.pid
        assert pid is not None
        below = psutil.Process(pid).children(recursive=True)
    finally:
        worker.close()
    assert not psutil.pid_exists(pid)
    # A SIGKILLed host importing torch takes a moment to go on a loaded machine: gone soon,
    # not necessarily at once (a clean-clone run under load saw one still there).
    _, left = psutil.wait_procs(below, timeout=10)
    assert not [p.pid for p in left if p.is_running() and p.status() != "zombie"]


def test_an_early_start_is_awaited_in_a_thread_and_serves_the_first_run(
    tmp_path: Path, worker_mode: str
):
    """The language server's pre-start: one thread waits for the worker's imports while
    runs arrive; a run waits too (and can be cancelled meanwhile), then runs in that same
    worker."""
    # preloading, as the language server's worker does: its imports take seconds
    worker = WarmWorker(log_dir=tmp_path / "logs", warm_up=False, preload=True,
                        mode=worker_mode)
    script = write_script(tmp_path, ancestry_script(1))
    with worker, ThreadPoolExecutor(2) as pool:
        worker.start()
        pid = worker.pid
        waiting = pool.submit(worker.wait_until_ready)
        cancelled = pool.submit(run, worker, script, tmp_path)
        time.sleep(0.5)  # importing torch takes longer
        worker.cancel()
        with pytest.raises(ScriptFailed, match="cancelled while the worker was starting"):
            cancelled.result(timeout=5)
        assert not waiting.done()  # a run's cancel does not end the early start's wait
        result = run(worker, script, tmp_path)
        ready = waiting.result(timeout=5)
        assert ready is not None and ready["event"] == "ready"
        assert [g.node_count for g in result.graphs] == [5]
        assert worker.pid == pid and pid in ancestors_of(script)


def test_closing_ends_the_wait_of_an_early_start(tmp_path: Path, worker_mode: str):
    worker = WarmWorker(log_dir=tmp_path / "logs", warm_up=False, preload=True,
                        mode=worker_mode)
    with ThreadPoolExecutor(1) as pool:
        worker.start()
        pid = worker.pid
        assert pid is not None
        waiting = pool.submit(worker.wait_until_ready)
        time.sleep(1.0)
        below = psutil.Process(pid).children(recursive=True)  # portable: its run host
        assert len(below) == (1 if worker_mode == "portable" else 0)
        worker.close()  # while it still imports torch
        assert waiting.result(timeout=5) is None
    assert not psutil.pid_exists(pid)
    # A SIGKILLed host importing torch takes a moment to go on a loaded machine: gone soon,
    # not necessarily at once (a clean-clone run under load saw one still there).
    _, left = psutil.wait_procs(below, timeout=10)
    assert not [p.pid for p in left if p.is_running() and p.status() != "zombie"]
