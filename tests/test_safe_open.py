"""Opening a file never runs its code and never costs more than its graph.

No code: ``torch.export.load`` (which unpickles) only with the user's opt-in for that run
(``--allow-pickle``, ``etviz.allowPickle``), never because the file was named on the
command line or the workspace is trusted. The crafted archive is a real one whose
``lin.bias`` weight is a pickle that creates a marker file, and whose program claims
schema version 99.0: the direct reader does not know it, so only the unpickling fallback
could open it.

Bounded cost: a 3 MB archive whose program JSON inflates to 3 GiB of whitespace (the
real program, then blanks: valid JSON) is refused by ``--once`` in under a second with
peak memory under 300 MB, measured from the child's rusage, whatever its headers say.
"""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
import zlib
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from pygls.exceptions import JsonRpcException

from tests import corpus, crafted_zip
from tests.conftest import PYTHON
from tests.lsp_session import lsp_session
from tests.test_pt2_archive import booby_trapped, rewrite, with_schema_version


@pytest.fixture(scope="module")
def mutation_pt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("safe-open") / "mutation_model.pt2"
    torch.export.save(corpus.CORPUS["mutation_model"](), str(path))
    return path


def crafted(source: Path, folder: Path) -> tuple[Path, Path]:
    """(the crafted archive, the marker its payload creates when unpickled)."""
    marker = folder / "payload-ran"
    trapped = booby_trapped(source, folder / "trapped.pt2", marker)
    target = rewrite(trapped, folder / "crafted.pt2", with_schema_version(99))
    with zipfile.ZipFile(target) as archive:  # the trap survived the rewrite
        assert any(b"payload-ran" in archive.read(n) for n in archive.namelist())
    return target, marker


def once(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "etviz_lsp", "--once", *args],
        capture_output=True, text=True, timeout=300, cwd=cwd,
    )


def test_naming_a_crafted_pt2_never_runs_its_payload(mutation_pt2: Path, tmp_path: Path) -> None:
    source, marker = crafted(mutation_pt2, tmp_path)
    out = tmp_path / "graph.json"
    done = once(str(source), "-o", str(out), cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert str(source) in lines[0] and "schema version 99.0" in lines[0]
    assert "unpickles" in lines[0] and "--allow-pickle" in lines[0], lines[0]
    assert not marker.exists(), "the payload ran without the opt-in"
    assert not out.exists()


def test_allow_pickle_really_reaches_torch_export_load(
    mutation_pt2: Path, tmp_path: Path
) -> None:
    """Control for the test above: with the opt-in the same file is unpickled (the payload
    runs), so the refusal above is the opt-in's doing, not a file that cannot run."""
    source, marker = crafted(mutation_pt2, tmp_path)
    done = once(str(source), "-o", str(tmp_path / "graph.json"), "--allow-pickle", cwd=tmp_path)
    assert marker.exists(), done.stderr
    # torch.export.load still refuses schema 99 after unpickling: told in one line
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "torch.export.load failed" in lines[0], done.stderr


def test_allow_pickle_leaves_readable_archives_on_the_direct_reader(
    mutation_pt2: Path, tmp_path: Path
) -> None:
    """The opt-in only matters once the direct reader could not read the file: a readable
    archive with a pickled weight still never gets unpickled."""
    marker = tmp_path / "payload-ran"
    source = booby_trapped(mutation_pt2, tmp_path / "trapped.pt2", marker)
    out = tmp_path / "graph.json"
    done = once(str(source), "-o", str(out), "--allow-pickle", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert not marker.exists()
    assert json.loads(out.read_text())["graphs"]


async def test_a_trusted_workspace_without_the_setting_refuses_to_unpickle(
    mutation_pt2: Path, tmp_path: Path
) -> None:
    async with lsp_session(tmp_path, trusted=True) as session:
        source, marker = crafted(mutation_pt2, session.root / "workspace")
        with pytest.raises(JsonRpcException) as caught:
            await session.visualize(source)
        message = str(caught.value)
        assert "\n" not in message and source.name in message, message
        assert "unpickles" in message and "etviz.allowPickle" in message, message
        assert not marker.exists(), "a trusted workspace unpickled without etviz.allowPickle"
        assert await session.close() == []


async def test_the_editor_setting_reaches_torch_export_load(
    mutation_pt2: Path, tmp_path: Path
) -> None:
    """Control for the test above: ``allowPickle`` in initializationOptions does unpickle."""
    async with lsp_session(tmp_path, trusted=True, allowPickle=True) as session:
        source, marker = crafted(mutation_pt2, session.root / "workspace")
        with pytest.raises(JsonRpcException, match="torch.export.load failed"):
            await session.visualize(source)
        assert marker.exists()
        assert await session.close() == []


# ---- a zip bomb ----------------------------------------------------------------------------

BLOCK = 64 << 20  # blanks per repeated deflate block
BOMB_SIZE = 48 * BLOCK  # 3 GiB


@pytest.fixture(scope="module")
def bomb_parts(mutation_pt2: Path) -> tuple[list[crafted_zip.Member], crafted_zip.Member]:
    """The real archive's members, and its program JSON followed by 3 GiB of blanks."""
    with zipfile.ZipFile(mutation_pt2) as archive:
        members = [crafted_zip.stored(n, archive.read(n)) for n in archive.namelist()]
    program = next(m for m in members if "/models/" in m.name)
    others = [m for m in members if m is not program]
    bomb = crafted_zip.deflated(program.name, program.data, b" " * BLOCK, 48)
    return others, bomb


def bomb_variants(others: list[crafted_zip.Member], bomb: crafted_zip.Member) -> dict[str, list]:
    return {
        # the headers tell the truth: 3 GiB, over the 2 GiB limit
        "honest headers": [*others, bomb],
        # the headers claim the program's own size: the blanks are the lie
        "declared small": [*others, replace(bomb, size=len(bomb.data) * 4)],
        # sizes under every limit, ratio 1: only the streamed bytes show the bomb
        "declared uncompressed": [*others, replace(bomb, size=1 << 30, compressed_size=1 << 30)],
    }


def test_the_bomb_is_real(bomb_parts: tuple[list[crafted_zip.Member], crafted_zip.Member]) -> None:
    """Control: a small file whose deflate stream really inflates ~1000-fold (sampled: the
    first 1 MB of it gives over 500 MB)."""
    _, bomb = bomb_parts
    assert len(bomb.data) < 4_000_000 and bomb.size > 3 * (1 << 30) - 1
    inflater = zlib.decompressobj(-15)
    total, data = 0, bomb.data[: 1 << 20]
    while data:
        total += len(inflater.decompress(data, 64 << 20))
        data = inflater.unconsumed_tail
    assert total > 500 << 20


# Runs the command and reports its wall time and rusage. A small process of its own: a
# child forked from pytest (torch imported, ~500 MB) would report pytest's memory as its
# peak, since ru_maxrss keeps the high-water mark from before exec.
LAUNCHER = """
import json, os, subprocess, sys, time
started = time.monotonic()
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
stderr = child.stderr.read().decode()
_, status, usage = os.wait4(child.pid, 0)
print(json.dumps({"code": os.waitstatus_to_exitcode(status), "stderr": stderr,
                  "seconds": time.monotonic() - started, "peak_kb": usage.ru_maxrss,
                  "cpu_seconds": usage.ru_utime + usage.ru_stime}))
"""


def measured(command: list[str], cwd: Path) -> dict:
    done = subprocess.run([PYTHON, "-c", LAUNCHER, *command], capture_output=True, text=True,
                          cwd=cwd, timeout=120, check=True)
    return json.loads(done.stdout)


@pytest.mark.parametrize("variant", ["honest headers", "declared small", "declared uncompressed"])
def test_a_zip_bomb_is_refused_fast_with_flat_memory(
    variant: str,
    bomb_parts: tuple[list[crafted_zip.Member], crafted_zip.Member],
    tmp_path: Path,
) -> None:
    source = crafted_zip.write(tmp_path / "bomb.pt2", bomb_variants(*bomb_parts)[variant])
    assert source.stat().st_size < 4_000_000
    out = tmp_path / "graph.json"
    run = measured([PYTHON, "-m", "etviz_lsp", "--once", str(source), "-o", str(out)], tmp_path)
    seconds, peak_mb, stderr = run["seconds"], run["peak_kb"] / 1024, run["stderr"]
    cpu = run["cpu_seconds"]
    print(f"{variant}: refused in {seconds:.2f} s ({cpu:.2f} s of CPU), peak {peak_mb:.0f} MB: "
          f"{stderr.strip()}")
    assert run["code"] == 1, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and str(source) in lines[0] and "refused unread" in lines[0], stderr
    # The work done, not the wall time a busy machine stretches: inflating the bomb would
    # take seconds of CPU; starting Python and refusing it takes under half a second.
    assert cpu < 1.0, f"took {cpu:.2f} s of CPU ({seconds:.2f} s wall)"
    assert peak_mb < 300, f"peak {peak_mb:.0f} MB"
    assert not out.exists()


def test_the_inflate_cap_is_configurable(mutation_pt2: Path, tmp_path: Path) -> None:
    """ETVIZ_MAX_INFLATED_BYTES sets the cap: below this archive's JSON it is refused,
    named; a value that is no size is an error, not a silent default."""
    env = {**os.environ, "ETVIZ_MAX_INFLATED_BYTES": "4096"}
    out = tmp_path / "graph.json"
    command = [PYTHON, "-m", "etviz_lsp", "--once", str(mutation_pt2), "-o", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1 and not out.exists()
    assert "past 4,096 bytes" in done.stderr and "ETVIZ_MAX_INFLATED_BYTES" in done.stderr
    env["ETVIZ_MAX_INFLATED_BYTES"] = "lots"
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1 and "must be a positive number of bytes" in done.stderr
    del env["ETVIZ_MAX_INFLATED_BYTES"]
    assert subprocess.run(command, env=env, timeout=120).returncode == 0
