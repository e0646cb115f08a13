"""Reliability through the real language server: bad inputs, faults, load, loopback-only
sockets, and the editor dying. One trusted session (real worker, real Model Explorer
server) serves the module, started by a stand-in editor process that the last test kills.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psutil
import pytest
import pytest_asyncio
from pygls.exceptions import JsonRpcException

from tests.conftest import PYTHON
from tests.lsp_session import Session, export_script, lsp_session, processes_of, wait_until_gone
from tests.reliability_load import InFlight, refresh, refresh_soak, roles
from tests.test_lsp_e2e import graph_file, node_count, progress_tokens

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]
LOOPBACK = {"127.0.0.1", "::1"}


@pytest.fixture(scope="module")
def editor() -> Iterator[subprocess.Popen[bytes]]:
    """A stand-in for the editor: the session is told its pid (``processId``)."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    yield process
    process.kill()
    process.wait()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def session(
    tmp_path_factory: pytest.TempPathFactory, editor: subprocess.Popen[bytes]
) -> AsyncIterator[Session]:
    root = tmp_path_factory.mktemp("lsp-reliability")
    async with lsp_session(
        root, process_id=editor.pid, trusted=True, early_worker=True
    ) as session:
        yield session


@pytest.fixture
def workspace(session: Session) -> Path:
    return session.root / "workspace"


@pytest.fixture(scope="module")
def good_pt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pt2") / "relu.pt2"
    save = ("import sys, torch\n"
            "torch.export.save(torch.export.export(torch.nn.ReLU(), (torch.randn(2),)), "
            "sys.argv[1])\n")
    subprocess.run([PYTHON, "-c", save, str(path)], check=True, timeout=300)
    return path


def bad_inputs(folder: Path, good_pt2: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, the cause its one-line error must give)."""
    folder.mkdir(exist_ok=True)
    files: dict[str, tuple[Path, str]] = {}

    def add(name: str, data: bytes, cause: str) -> None:
        (folder / name).write_bytes(data)
        files[name] = (folder / name, cause)

    good = good_pt2.read_bytes()
    add("empty.pt2", b"", "not a .pt2 archive")
    add("random.pt2", os.urandom(4096), "not a .pt2 archive")
    add("truncated.pt2", good[: len(good) // 2], "truncated or damaged")
    add("notes.pt2", _zip({"notes/readme.txt": b"hi"}), "not a torch.export .pt2 archive")
    add("aoti.pt2", _zip({"m/archive_version": b"0", "m/data/aotinductor/m.so": b"\x7fELF"}),
        "AOTInductor package")
    add("graph.json", b'{"not": "a graph"}', "unsupported file type '.json'")
    (folder / "folder.pt2").mkdir(exist_ok=True)
    files["folder.pt2"] = (folder / "folder.pt2", "is a directory")
    files["missing.pt2"] = (folder / "missing.pt2", "no such file")
    return files


async def test_bad_inputs_are_one_line_errors_and_the_server_carries_on(
    session: Session, workspace: Path, good_pt2: Path
) -> None:
    for name, (path, cause) in bad_inputs(workspace / "bad", good_pt2).items():
        with pytest.raises(JsonRpcException) as caught:
            await session.visualize(path)
        message = str(caught.value)
        assert "\n" not in message and "Traceback" not in message, (name, message)
        assert str(path) in message or path.name in message, (name, message)
        assert cause in message, (name, message)
    good = workspace / "good.pt2"
    good.write_bytes(good_pt2.read_bytes())
    assert node_count(await session.visualize(good)) == 3  # x, relu, output


async def test_script_failures_become_diagnostics(session: Session, workspace: Path) -> None:
    cases = {
        "syntax.py": ("def broken(:\n", 0, "SyntaxError"),
        "raises.py": ("import torch\n\nraise ValueError('bad shapes')\n", 2, "bad shapes"),
        "exits.py": ("import sys\n\nsys.exit(0)\n", 2, "before making a program"),
        "os_exit.py": ("import os\n\nos._exit(3)\n", None, "status 3"),
    }
    for name, (text, line, message) in cases.items():
        script = workspace / name
        script.write_text(text)
        with pytest.raises(JsonRpcException, match=message):
            await session.visualize(script)
        [diagnostic] = session.client.diagnostics[script.as_uri()]
        assert message in diagnostic.message, (name, diagnostic.message)
        if line is not None:
            assert diagnostic.range.start.line == line, name


async def test_a_script_that_deletes_itself_then_comes_back(
    session: Session, workspace: Path
) -> None:
    script = workspace / "vanishes.py"
    script.write_text(export_script(layers=1, before_export="import os; os.remove(__file__)"))
    first = await session.visualize(script)
    assert node_count(first) == 5 and not script.exists()
    before = len(session.graph_ready)
    await asyncio.sleep(2)  # the deletion is seen by the watcher: nothing runs, nothing breaks
    assert session.graph_ready[before:] == []
    assert psutil.Process(session.server_pid).is_running()
    script.write_text(export_script(layers=2))  # re-created: watched again, re-run
    ready = await session.next_graph(script, before, seconds=120)
    assert (node_count(ready), ready.stale, ready.url) == (8, False, first.url)
    script.unlink()  # deleted and re-created once more, atomically this time
    await asyncio.sleep(1)
    temp = workspace / ".vanishes.py.tmp"
    temp.write_text(export_script(layers=3))
    before = len(session.graph_ready)
    os.replace(temp, script)
    ready = await session.next_graph(script, before, seconds=120)
    assert node_count(ready) == 11


async def test_model_explorer_killed_mid_session_is_restarted_by_the_next_refresh(
    session: Session, workspace: Path
) -> None:
    script = workspace / "shown.py"
    script.write_text(export_script(layers=1))
    await session.visualize(script)
    explorer = roles(session)["explorer"]
    os.killpg(explorer.pid, signal.SIGKILL)
    await _dead(explorer)
    answer = await refresh(session, script)
    [shown] = answer["refreshed"]
    restarted = roles(session)["explorer"]
    assert restarted.pid != explorer.pid
    with urllib.request.urlopen(shown["url"], timeout=30) as page:  # the new URL answers
        assert page.status == 200


async def test_a_crashed_worker_is_replaced(session: Session, workspace: Path) -> None:
    script = workspace / "after_crash.py"
    script.write_text(export_script(layers=2))
    await session.visualize(script)
    worker = roles(session)["worker"]
    worker.kill()
    await _dead(worker)
    answer = await refresh(session, script)
    assert [g["nodeCount"] for g in answer["refreshed"][0]["graphs"]] == [8]
    assert roles(session)["worker"].pid != worker.pid


async def test_a_hundred_saves_in_ten_seconds(session: Session, workspace: Path) -> None:
    """Bursts of saves with pauses just past the debounce, so runs start and get killed.
    At most one run in flight, the last save's graph shown, nothing leaked."""
    script = workspace / "burst.py"
    script.write_text(export_script(layers=1))
    await session.visualize(script)
    await asyncio.sleep(1)
    procs = roles(session)
    fds_before = {role: p.num_fds() for role, p in procs.items()}
    pids_before = {p.pid for p in processes_of(session.marker)}
    tokens_before = progress_tokens(session)
    before = len(session.graph_ready)
    started = next_save = time.monotonic()
    with InFlight(procs["worker"]) as in_flight:
        for index in range(100):
            session.save(script, export_script(layers=12 if index == 99 else 1 + index % 7))
            # A burst keeps to its timetable (a late save, on a busy machine, does not delay
            # the rest); the pause after it is a whole one, past the debounce.
            next_save = time.monotonic() + 0.5 if index % 10 == 9 else next_save + 0.045
            await asyncio.sleep(max(0.0, next_save - time.monotonic()))
        saving = time.monotonic() - started
        await session.wait_for(
            lambda: any(node_count(g) == 38 for g in session.graph_ready[before:]),
            180, "the last save's graph",
        )
        await asyncio.sleep(3)  # anything still queued would have landed by now
    last = session.graph_ready[-1]
    assert saving < 12, saving
    assert in_flight.most == 1, in_flight.most
    assert (last.source, last.stale, node_count(last)) == (script.as_uri(), False, 2 + 3 * 12)
    graph = json.loads(graph_file(last.url).read_text())["graphs"][0]
    assert sum(n["label"] == "linear" for n in graph["nodes"]) == 12  # the file as last saved
    runs = len(progress_tokens(session) - tokens_before)
    print(f"\n100 saves in {saving:.1f} s: {runs} runs started, {len(in_flight.runs_seen)} "
          f"run processes, at most {in_flight.most} at once")
    assert {p.pid for p in processes_of(session.marker)} == pids_before
    fds_after = {role: p.num_fds() for role, p in roles(session).items()}
    for role, count in fds_before.items():
        assert fds_after[role] <= count + 3, (role, fds_before, fds_after)


async def test_refreshes_keep_memory_flat(
    session: Session, workspace: Path, good_pt2: Path
) -> None:
    """Short version of ``bench/soak.py`` (200 refreshes): 30 refreshes of a .pt2."""
    archive = workspace / "soak.pt2"
    archive.write_bytes(good_pt2.read_bytes())
    await session.visualize(archive)
    await refresh_soak(session, archive, 5, 5)  # warm: first-use allocations
    samples = await refresh_soak(session, archive, 30, 10)
    print("\n" + "\n".join(f"after {i * 10:>3} refreshes: {s}" for i, s in enumerate(samples)))
    first, last = samples[0], samples[-1]
    assert last.server - first.server < 10, samples
    assert last.worker - first.worker < 10, samples
    assert last.explorer - first.explorer < 15, samples


async def test_every_listening_socket_is_on_loopback(session: Session) -> None:
    listening = []
    for proc in processes_of(session.marker):
        with contextlib.suppress(psutil.Error):
            for conn in proc.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    listening.append((proc.pid, conn.laddr.ip, conn.laddr.port))
    assert listening, "the Model Explorer server should be listening"
    assert {ip for _pid, ip, _port in listening} <= LOOPBACK, listening
    # the same seen from the kernel's tables: no socket of ours bound to a wildcard address
    inodes = set()
    for proc in processes_of(session.marker):
        with contextlib.suppress(psutil.Error, OSError):
            for fd in os.listdir(f"/proc/{proc.pid}/fd"):
                target = os.readlink(f"/proc/{proc.pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    bound = [_local_address(line) for table in ("tcp", "tcp6")
             for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]
             if line.split()[9] in inodes and line.split()[3] == "0A"]  # 0A: LISTEN
    assert bound and all(address in {"0100007F", "00000000000000000000000001000000"}
                         for address in bound), bound


async def test_editor_killed_without_shutdown_everything_exits(
    session: Session, editor: subprocess.Popen[bytes]
) -> None:
    assert "explorer" in roles(session) and "worker" in roles(session)
    server = psutil.Process(session.server_pid)
    editor.kill()
    editor.wait()
    died = time.monotonic()
    await asyncio.to_thread(server.wait, 15)
    left = await asyncio.to_thread(wait_until_gone, session.marker, 10)
    took = time.monotonic() - died
    print(f"\neditor killed: every process gone after {took:.1f} s")
    assert left == [], [(p.pid, p.cmdline()[:4]) for p in left]
    assert took < 10
    session.closed = True  # nothing left to shut down


async def _dead(proc: psutil.Process, seconds: float = 10) -> None:
    """Gone, or a zombie its parent has not reaped yet (it reaps on next use)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{proc.pid} still running")


def _local_address(line: str) -> str:
    return line.split()[1].split(":")[0]


def _zip(files: dict[str, bytes]) -> bytes:
    import io

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


async def test_a_crashed_language_server_leaves_no_worker_behind(
    tmp_path: Path, worker_mode: str
) -> None:
    """The language server is killed (SIGKILL: no shutdown, no clean-up of its own) while a
    run is in flight: the warm worker, its run (a fork, or a run host) and what the run
    started all end by themselves (the worker watches its parent: the channel's end, and
    in the portable mode a watching thread; a run host watches the worker). The shared
    Model Explorer server is detached on purpose and is stopped here by hand."""
    script = tmp_path / "workspace" / "hangs_after_export.py"
    script.parent.mkdir(parents=True)
    script.write_text(
        "import pathlib, subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'],\n"
        "                 start_new_session=True)\n"
        "pathlib.Path(__file__).with_suffix('.running').write_text('')\n"
        "time.sleep(300)\n"
    )
    async with lsp_session(tmp_path, trusted=True, workerMode=worker_mode) as session:
        try:
            visualizing = asyncio.ensure_future(session.visualize(script))
            running = script.with_suffix(".running")
            await session.wait_for(running.exists, 600, "the run to start")
            ours = [p for p in processes_of(session.marker)
                    if "etviz_lsp.explorer.serve" not in " ".join(p.cmdline())]
            assert len(ours) >= 4, ours  # server, worker, the run, its child (+ a spare)
            psutil.Process(session.server_pid).kill()
            killed = time.monotonic()
            session.closed = True
            left = await asyncio.to_thread(
                lambda: [p for p in wait_until_gone(session.marker, 10)
                         if "etviz_lsp.explorer.serve" not in " ".join(p.cmdline())])
            took = time.monotonic() - killed
            print(f"\n{worker_mode}: language server killed, its processes gone in {took:.1f} s")
            assert left == [], [(p.pid, p.cmdline()[:3]) for p in left]
            visualizing.cancel()
        finally:
            for process in processes_of(session.marker):
                with contextlib.suppress(psutil.Error):
                    process.kill()
