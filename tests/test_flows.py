"""ExecuTorch's own export entry points through the real CLI: ``etviz-lsp --once -m ...``.

Each flow runs once per module (real ExecuTorch 1.5.1, real XNNPACK lowering, a real
worker process) and many tests read its result: the XNNPACK example compiler installed in
site-packages, and ``export_llm`` on a tiny random Llama (every export and lowering call
happens inside ExecuTorch's ``LLMEdgeManager``, none in a file of the caller's).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

TINY_PARAMS = {
    "dim": 64, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2, "vocab_size": 512,
    "multiple_of": 32, "norm_eps": 1e-5,
}


@dataclass
class Flow:
    done: subprocess.CompletedProcess[str]
    folder: Path
    graphs: dict[str, dict]

    def stage_lines(self, label: str) -> list[str]:
        prefix = f"etviz: {label}: "
        return [line[len(prefix):] for line in self.done.stderr.splitlines()
                if line.startswith(prefix)]


def run_flow(folder: Path, *args: str) -> Flow:
    out = folder / "graphs.json"
    env = {**os.environ, "XDG_CACHE_HOME": str(folder / "cache")}
    done = subprocess.run(
        [sys.executable, "-m", "etviz_lsp", "--once", "-o", str(out), *args],
        cwd=folder, env=env, capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    graphs = {g["id"]: g for g in json.loads(out.read_text())["graphs"]}
    return Flow(done, folder, graphs)


def partitions(graph: dict) -> set[str]:
    return {a["value"] for n in graph["nodes"] for a in n["attrs"] if a["key"] == "partition"}


def namespaces(graph: dict) -> set[str]:
    return {node["namespace"] for node in graph["nodes"]}


def stage_of(graph_id: str) -> str:
    return graph_id.rsplit(" (", 1)[1].split(")")[0]


# -- the XNNPACK example compiler, installed in site-packages -----------------------------

AOT = "executorch.examples.xnnpack.aot_compiler"


@pytest.fixture(scope="module")
def aot(tmp_path_factory: pytest.TempPathFactory) -> Flow:
    folder = tmp_path_factory.mktemp("aot")
    return run_flow(folder, "-m", AOT, "--", "--model_name", "linear", "--quantize",
                    "--delegate")


def test_aot_compiler_makes_each_stage_once(aot: Flow):
    # One graph per stage: the quantizer's internal pattern exports and the to_backend
    # calls inside lowering are nested calls, never graphs of their own.
    ids = list(aot.graphs)
    assert [stage_of(i) for i in ids] == ["exported", "quantized", "lowered", "executorch"]
    # named by the module's own lines (a site-packages file, still one the user can open)
    assert all(" @ aot_compiler.py:" in i for i in ids), ids


def test_aot_compiler_lowered_graph_shows_the_xnnpack_partition_expanded(aot: Flow):
    lowered = next(g for i, g in aot.graphs.items() if stage_of(i) == "lowered")
    assert partitions(lowered) == {"XnnpackBackend#0"}
    inside = [n for n in lowered["nodes"] if n["namespace"].startswith("XnnpackBackend #0")]
    assert any("linear" in n["label"] or "addmm" in n["label"] for n in inside), [
        n["label"] for n in inside
    ]
    assert not any(n["label"] == "executorch_call_delegate" for n in lowered["nodes"])


def test_aot_compiler_progress_is_one_line_per_stage_and_names_the_pte(aot: Flow):
    stages = [line.rsplit(" (", 1)[0] for line in aot.stage_lines(f"-m {AOT}")]
    assert stages[0] == "running script"
    order = [s for s in stages if s in ("exporting", "quantizing", "lowering")]
    assert order[:3] == ["exporting", "quantizing", "quantizing"] and "lowering" in order
    assert all(a != b for a, b in zip(stages, stages[1:], strict=False)), "a stage repeats"
    assert "\r" not in aot.done.stderr  # not a terminal: nothing redrawn
    written = aot.folder / "linear_xnnpack_q8.pte"
    assert written.is_file() and f"the run wrote {written}" in aot.done.stdout


# -- export_llm: the tiny Llama, exported and lowered inside LLMEdgeManager ----------------

LLM = "executorch.extension.llm.export.export_llm"


@pytest.fixture(scope="module")
def llm(tmp_path_factory: pytest.TempPathFactory) -> Flow:
    folder = tmp_path_factory.mktemp("llm")
    (folder / "tiny_params.json").write_text(json.dumps(TINY_PARAMS))
    return run_flow(
        folder, "-m", LLM, "--", "base.model_class=stories110m",
        "base.params=tiny_params.json", "model.use_kv_cache=True",
        "model.use_sdpa_with_kv_cache=True", "backend.xnnpack.enabled=True",
        "export.max_seq_length=128", f"export.output_dir={folder}",
        "export.output_name=tiny.pte",
    )


def test_export_llm_exported_graph_has_the_layers_hierarchy(llm: Flow):
    exported = [g for i, g in llm.graphs.items() if stage_of(i) == "exported"]
    assert exported, list(llm.graphs)
    for graph in exported:
        spaces = namespaces(graph)
        for layer in ("layers/0 (TransformerBlock)", "layers/1 (TransformerBlock)"):
            assert any(ns.startswith(f"{layer}/attention") for ns in spaces), sorted(spaces)
        assert "layers/2 (TransformerBlock)" not in {"/".join(s.split("/")[:2]) for s in spaces}


def test_export_llm_lowered_graph_has_xnnpack_partitions_with_layers_inside(llm: Flow):
    lowered = [i for i in llm.graphs if stage_of(i) == "lowered"]
    assert len(lowered) == 1, list(llm.graphs)
    graph = llm.graphs[lowered[0]]
    assert len(partitions(graph)) >= 2
    assert all(p.startswith("XnnpackBackend#") for p in partitions(graph))
    assert any(ns.startswith("XnnpackBackend #0/layers/0 (TransformerBlock)")
               for ns in namespaces(graph))
    # the builder's line names it: the calls happen in ExecuTorch's LLMEdgeManager
    assert " @ builder.py:" in lowered[0]


def test_export_llm_writes_the_pte_and_says_so(llm: Flow):
    pte = llm.folder / "tiny.pte"
    assert pte.is_file() and pte.stat().st_size > 10_000
    assert f"the run wrote {pte}" in llm.done.stdout
    assert "executorch" in {stage_of(i) for i in llm.graphs}
