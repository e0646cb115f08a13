"""Run targets in a real worker: scripts with arguments, ``-m`` packages with relative
imports, ``cwd`` and ``env``; stages sent while the run goes on; what a run imported and
wrote. Real torch.export in a real forked child; one lean worker for the module."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from etviz_lsp.worker import RunTarget, ScriptFailed, StageUpdate, WarmWorker

NET = """\
import torch


class Net(torch.nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(4, width)

    def forward(self, x):
        return torch.relu(self.fc(x))
"""

# Line 10 makes the program; what the module saw goes to seen.json in its cwd.
EXPORT = """\
import json
import os
import sys

import torch

from .model import Net

width = int(sys.argv[sys.argv.index("--width") + 1])
ep = torch.export.export(Net(width), (torch.randn(2, 4),))
with open("seen.json", "w") as f:
    json.dump({"argv": sys.argv, "path0": sys.path[0], "cwd": os.getcwd(),
               "env": os.environ.get("ETVIZ_TEST_VALUE"), "name": __name__,
               "package": __package__}, f)
"""


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory, worker_mode: str) -> Iterator[WarmWorker]:
    """A lean worker (as the CLI's) in each mode: runs as forks, or in run hosts."""
    warm = WarmWorker(log_dir=tmp_path_factory.mktemp("logs"), warm_up=False, preload=False,
                      mode=worker_mode)
    warm.start()
    yield warm
    warm.close()


def make_package(root: Path) -> Path:
    package = root / "proj" / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "model.py").write_text(NET)
    (package / "export.py").write_text(EXPORT)
    return package.parent


def out_features(output: Path) -> set[str]:
    """The shapes the graph shows on its nodes' outputs (the width argument lands there)."""
    graph = json.loads(output.read_text())["graphs"][0]
    return {
        attr["value"]
        for node in graph["nodes"]
        for meta in node.get("outputsMetadata", [])
        for attr in meta["attrs"]
        if attr["key"] == "tensor_shape"
    }


def test_module_with_relative_imports_runs_with_args_cwd_and_env(
    worker: WarmWorker, tmp_path: Path
):
    project = make_package(tmp_path)
    target = RunTarget(
        module="pkg.export", args=("--width", "7"), cwd=project,
        env=(("ETVIZ_TEST_VALUE", "from --env"),),
    )
    result = worker.run(target, tmp_path / "out.json", timeout=120, cwd=tmp_path)
    assert [g.id for g in result.graphs] == ["ep @ export.py:10 (exported)"]
    assert any("7" in shape for shape in out_features(result.output))
    seen = json.loads((project / "seen.json").read_text())
    assert seen == {
        "argv": [str(project / "pkg" / "export.py"), "--width", "7"],
        "path0": str(project), "cwd": str(project), "env": "from --env",
        "name": "__main__", "package": "pkg",
    }
    assert set(result.imported_files) == {
        project / "pkg" / name for name in ("__init__.py", "export.py", "model.py")
    }
    # another argument, another graph: nothing of the previous run is left in the worker
    again = worker.run(
        RunTarget(module="pkg.export", args=("--width", "3"), cwd=project),
        tmp_path / "out.json", timeout=120,
    )
    assert any("3" in shape for shape in out_features(again.output))
    assert json.loads((project / "seen.json").read_text())["env"] is None


def test_script_arguments_reach_sys_argv(worker: WarmWorker, tmp_path: Path):
    script = tmp_path / "show_argv.py"
    script.write_text(textwrap.dedent("""\
        import sys
        import torch
        assert sys.argv[1:] == ["--flag", "two words", "--"], sys.argv
        ep = torch.export.export(torch.nn.Linear(2, int(sys.argv[0] == __file__) + 1),
                                 (torch.randn(1, 2),))
    """))
    result = worker.run(
        RunTarget(script=script, args=("--flag", "two words", "--")), tmp_path / "o.json",
        timeout=120,
    )
    assert [g.id for g in result.graphs] == ["ep @ show_argv.py:4 (exported)"]
    assert result.imported_files == [script]


def test_a_module_that_does_not_exist_is_a_clear_error(worker: WarmWorker, tmp_path: Path):
    project = make_package(tmp_path)
    with pytest.raises(ScriptFailed) as caught:
        worker.run(RunTarget(module="pkg.missing", cwd=project), tmp_path / "o.json", timeout=60)
    assert str(caught.value) == "pkg.missing: no module named 'pkg.missing'"
    assert not (tmp_path / "o.json").exists()
    # a missing dependency of the package is the package's error, at its line
    (project / "pkg" / "__init__.py").write_text("import json\nimport not_installed_dep\n")
    with pytest.raises(ScriptFailed) as caught:
        worker.run(RunTarget(module="pkg.export", cwd=project), tmp_path / "o.json", timeout=60)
    error = caught.value.error
    assert (error.kind, error.file, error.line) == (
        "exception", str(project / "pkg" / "__init__.py"), 2)
    assert "No module named 'not_installed_dep'" in error.message


def test_an_error_in_a_module_run_is_at_the_users_line(worker: WarmWorker, tmp_path: Path):
    project = make_package(tmp_path)
    (project / "pkg" / "export.py").write_text("from .model import Net\n\nNet(width='x')\n")
    with pytest.raises(ScriptFailed) as caught:
        worker.run(RunTarget(module="pkg.export", cwd=project), tmp_path / "o.json", timeout=60)
    error = caught.value.error
    assert (error.file, error.line, error.kind) == (str(project / "pkg" / "model.py"), 7,
                                                    "exception")
    assert project / "pkg" / "model.py" in caught.value.imported_files


def test_an_error_in_an_installed_module_is_at_the_modules_own_line(
    worker: WarmWorker, tmp_path: Path
):
    """-m of a site-packages module: nothing of it is in the working folder, so the error
    points at the module's own file (one the user can open), not inside argparse or dicts."""
    target = RunTarget(module="executorch.examples.xnnpack.aot_compiler",
                       args=("--model_name", "no-such-model"), cwd=tmp_path)
    with pytest.raises(ScriptFailed) as caught:
        worker.run(target, tmp_path / "o.json", timeout=300)
    error = caught.value.error
    assert error.file.endswith("executorch/examples/xnnpack/aot_compiler.py"), error
    assert error.kind == "exception" and error.line and "no-such-model" in error.message


def test_bad_arguments_are_reported_with_argparse_s_own_words(
    worker: WarmWorker, tmp_path: Path
):
    script = tmp_path / "cli_tool.py"
    script.write_text(textwrap.dedent("""\
        import argparse
        parser = argparse.ArgumentParser(prog="cli_tool.py")
        parser.add_argument("--model_name", choices=["linear", "mv2"], required=True)
        args = parser.parse_args()
    """))
    with pytest.raises(ScriptFailed) as caught:
        worker.run(RunTarget(script=script, args=("--model_name", "mv3")), tmp_path / "o.json",
                   timeout=60)
    error = caught.value.error
    assert (error.kind, error.line) == ("crash", 4)
    assert error.message == (
        "the script exited with status 2 (sys.exit): cli_tool.py: error: argument "
        "--model_name: invalid choice: 'mv3' (choose from 'linear', 'mv2')"
    ), error.message


def test_each_stage_is_sent_when_converted_and_output_waits_for_success(
    worker: WarmWorker, tmp_path: Path
):
    script = tmp_path / "two_then_fail.py"
    script.write_text(textwrap.dedent("""\
        import torch
        first = torch.export.export(torch.nn.Linear(2, 3), (torch.randn(1, 2),))
        second = torch.export.export(torch.nn.ReLU(), (torch.randn(1, 2),))
        raise RuntimeError("after two stages")
    """))
    output, partial = tmp_path / "out.json", tmp_path / "partial.json"
    output.write_text("last good graph")
    updates: list[StageUpdate] = []
    seen_on_disk: list[list[str]] = []

    def on_stage(update: StageUpdate) -> None:
        updates.append(update)
        seen_on_disk.append([g["id"] for g in json.loads(update.path.read_text())["graphs"]])

    with pytest.raises(ScriptFailed, match="after two stages"):
        worker.run(script, output, timeout=120, on_stage=on_stage, partial_output=partial)
    expected = [
        ["first @ two_then_fail.py:2 (exported)"],
        ["first @ two_then_fail.py:2 (exported)", "second @ two_then_fail.py:3 (exported)"],
    ]
    assert [[g.id for g in u.graphs] for u in updates] == expected
    assert seen_on_disk == expected  # the partial file held those stages when announced
    assert all(u.path == partial for u in updates)
    assert 0 < updates[0].elapsed <= updates[1].elapsed
    assert all(0 <= u.latency < 10 for u in updates)
    assert output.read_text() == "last good graph"


def test_on_stage_needs_a_partial_output(worker: WarmWorker, tmp_path: Path):
    with pytest.raises(ValueError, match="partial_output"):
        worker.run(tmp_path / "x.py", tmp_path / "o.json", timeout=1, on_stage=print)


def test_run_target_round_trips_json_and_refuses_bad_shapes(tmp_path: Path):
    target = RunTarget(module="a.b", args=("x",), cwd=tmp_path, env=(("K", "v=1"),))
    assert RunTarget.from_json(json.loads(json.dumps(target.to_json()))) == target
    assert target.label == "-m a.b"
    assert RunTarget(script=Path("dir/export.py")).label == "export.py"
    from etviz_lsp.errors import EtvizError

    for bad in ({}, {"script": Path("a.py"), "module": "a"}, {"module": "not a module"},
                {"module": "m", "env": (("A=B", "c"),)}):
        with pytest.raises(EtvizError):
            RunTarget(**bad)  # type: ignore[arg-type]


# The quantize + lower flow of tests/scripts/quantize_lower.py, counting the calls that
# really reach torch.export.export and EdgeProgramManager.to_backend (through our capture).
COUNTING_FLOW = """\
import json
import torch
from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
    XNNPACKQuantizer, get_symmetric_quantization_config)
from executorch.exir import EdgeProgramManager, to_edge_transform_and_lower
from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

calls = {"export": 0, "to_backend": 0}


def counting(name, real):
    def call(*args, **kwargs):
        calls[name] += 1
        return real(*args, **kwargs)
    return call


torch.export.export = counting("export", torch.export.export)
EdgeProgramManager.to_backend = counting("to_backend", EdgeProgramManager.to_backend)
net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                          torch.nn.Linear(8 * 14 * 14, 4)).eval()
inputs = (torch.randn(1, 3, 16, 16),)
ep = torch.export.export(net, inputs)
quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config())
prepared = prepare_pt2e(ep.module(), quantizer)
prepared(*inputs)
quantized = torch.export.export(convert_pt2e(prepared), inputs)
edge = to_edge_transform_and_lower(quantized, partitioner=[XnnpackPartitioner()])
with open("calls.json", "w") as f:
    json.dump(calls, f)
"""


def test_nested_calls_make_no_graph_and_stages_arrive_as_made(
    worker: WarmWorker, tmp_path: Path
):
    script = tmp_path / "flow.py"
    script.write_text(COUNTING_FLOW)
    updates: list[StageUpdate] = []
    result = worker.run(
        RunTarget(script=script, cwd=tmp_path), tmp_path / "out.json", timeout=300,
        on_stage=updates.append, partial_output=tmp_path / "partial.json",
    )
    calls = json.loads((tmp_path / "calls.json").read_text())
    # Lowering called to_backend, and the quantizer more exports than the script's two:
    # those nested calls are in the chain of a captured call or of quantizer internals.
    assert calls["to_backend"] >= 1 and calls["export"] > 2
    ids = [g.id for g in result.graphs]
    # one graph per stage (named at the script's counting wrapper: the deepest user frame)
    assert [i.split(" (")[-1] for i in ids] == ["exported)", "quantized)", "lowered)"]
    assert all(" @ flow.py:" in i for i in ids), ids
    # each stage was announced as soon as it was converted, the first long before the end
    assert [[g.id for g in u.graphs] for u in updates] == [ids[:1], ids[:2], ids]
    first = updates[0]
    assert first.elapsed < result.elapsed - 1.0
    assert first.latency < 2.0
    print(f"\nexport returned -> first StageUpdate: {first.latency * 1000:.0f} ms "
          f"(first at {first.elapsed:.1f} s of a {result.elapsed:.1f} s run)")


WRITES = """\
import os
import sys

import torch

out = sys.argv[1]
ep = torch.export.export(torch.nn.Linear(2, 2), (torch.randn(1, 2),))
with open(os.path.join(out, "direct.pte"), "wb") as f:
    f.write(b"program")
os.close(os.open(os.path.join(out, "low_level.etrecord"), os.O_WRONLY | os.O_CREAT))
with open(os.path.join(out, "saving.tmp"), mode="wb") as f:
    f.write(b"archive")
os.replace(os.path.join(out, "saving.tmp"), os.path.join(out, "renamed.pt2"))
with open(os.path.join(out, "direct.pte"), "rb") as f:  # a read is no write
    f.read()
open(os.path.join(out, "notes.txt"), "w").close()  # not a program file
# what the standard library decides from these functions' identity still holds
with open("checks.txt", "w") as f:
    f.write(f"{os.open in os.supports_dir_fd} {os.rename in os.supports_dir_fd}")
"""


def _writes_script(root: Path) -> tuple[Path, Path]:
    """The script above in ``root/proj``, and the folder it is to write in, elsewhere."""
    project, out = root / "proj", root / "elsewhere"
    project.mkdir()
    out.mkdir()
    (project / "writes.py").write_text(WRITES)
    return project / "writes.py", out


def test_program_files_the_run_writes_from_python_are_named_wherever_they_are(
    worker: WarmWorker, tmp_path: Path
):
    """Outside the run's folders (which are also scanned), only the Python-level writes
    (open, os.open, os.replace) can tell: each program file written is named, reads and
    other files are not."""
    script, out = _writes_script(tmp_path)
    project = script.parent
    result = worker.run(
        RunTarget(script=script, args=(str(out),), cwd=project), tmp_path / "o.json",
        timeout=120,
    )
    assert [g.id for g in result.graphs] == ["ep @ writes.py:7 (exported)"]
    assert sorted(result.artifacts) == [
        out / "direct.pte", out / "low_level.etrecord", out / "renamed.pt2"
    ]
    assert (project / "checks.txt").read_text() == "True True"


def test_a_lean_worker_leaves_torch_to_the_run(worker: WarmWorker, tmp_path: Path):
    """A CLI run's worker imports no torch before forking its run child (the child imports
    it as `python -m` would): memory the two shared would be copied page by page as the
    child touched it. The modules' own runs above still capture `torch.export.export`.
    (The portable mode's worker never imports torch: its run hosts do.)"""
    script, out = _writes_script(tmp_path)
    worker.run(RunTarget(script=script, args=(str(out),), cwd=script.parent),
               tmp_path / "o.json", timeout=120)  # fmt: skip
    pid = worker.pid
    assert pid is not None
    maps = Path(f"/proc/{pid}/maps").read_text()
    assert "libtorch" not in maps
    rss_kb = int(next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                      if line.startswith("VmRSS:")).split()[1])  # fmt: skip
    assert rss_kb < 100 * 1024, f"the lean worker holds {rss_kb // 1024} MB"


def test_program_files_named_in_any_case_are_the_runs_artifacts(
    worker: WarmWorker, tmp_path: Path
):
    """``Model.PTE`` is a program as ``model.pte`` is (graph/inputs.py matches suffixes
    without case): written from Python, or found by the scan of the run's folder."""
    script = tmp_path / "upper.py"
    script.write_text(textwrap.dedent("""\
        import torch

        ep = torch.export.export(torch.nn.Linear(2, 2), (torch.randn(1, 2),))
        with open("Model.PTE", "wb") as f:
            f.write(b"program")
        torch.export.save(ep, "Model.Pt2")  # written from C++: found by the scan
        open("Notes.TXT", "w").close()
    """))
    result = worker.run(RunTarget(script=script, cwd=tmp_path), tmp_path / "o.json",
                        timeout=120)  # fmt: skip
    assert sorted(result.artifacts) == [tmp_path / "Model.PTE", tmp_path / "Model.Pt2"]
