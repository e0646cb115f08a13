"""ExecuTorch's own export entry points through the real CLI: ``etviz-lsp --once -m ...``.

Each flow runs once per module (real ExecuTorch 1.5.1, real XNNPACK lowering, a real
worker process) and many tests read its result: the XNNPACK example compiler installed in
site-packages, and ``export_llm`` on a tiny random Llama (every export and lowering call
happens inside ExecuTorch's ``LLMEdgeManager``, none in a file of the caller's).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

# A Qwen3-shaped decoder (grouped-query attention, QK-norm, HF rope), 2 layers, random weights.
QWEN_PARAMS = {
    "dim": 128, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2, "head_dim": 32,
    "hidden_dim": 384, "vocab_size": 1024, "norm_eps": 1e-06, "rope_theta": 1000000.0,
    "use_qk_norm": True, "qk_norm_before_rope": True, "use_hf_rope": True,
}  # fmt: skip


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
    inside = [n for n in lowered["nodes"] if "XnnpackBackend #0" in n["namespace"].split("/")]
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


# -- export_llm: an LLM as users export it, shrunk (8da4w, XNNPACK with extended ops) ----------

LLM = "executorch.extension.llm.export.export_llm"


@pytest.fixture(scope="module")
def llm(tmp_path_factory: pytest.TempPathFactory) -> Flow:
    folder = tmp_path_factory.mktemp("llm")
    (folder / "params.json").write_text(json.dumps(QWEN_PARAMS))
    return run_flow(
        folder, "-m", LLM, "--", "base.model_class=stories110m",
        "base.params=params.json", "model.use_kv_cache=True",
        "model.use_sdpa_with_kv_cache=True", "quantization.qmode=8da4w",
        "quantization.group_size=32", "backend.xnnpack.enabled=True",
        "backend.xnnpack.extended_ops=True", "export.max_seq_length=128",
        "export.max_context_length=128", f"export.output_dir={folder}",
        "export.output_name=tiny.pte",
    )


def test_export_llm_exported_graph_has_the_layers_hierarchy(llm: Flow):
    exported = [g for i, g in llm.graphs.items() if stage_of(i).startswith("quantized")]
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
    assert any(re.match(r"layers/0 \(TransformerBlock\)/(.+/)?XnnpackBackend #\d+/", ns)
               for ns in namespaces(graph))
    # the builder's line names it: the calls happen in ExecuTorch's LLMEdgeManager
    assert " @ builder.py:" in lowered[0]


def test_export_llm_writes_the_pte_and_says_so(llm: Flow):
    pte = llm.folder / "tiny.pte"
    assert pte.is_file() and pte.stat().st_size > 10_000
    assert f"the run wrote {pte}" in llm.done.stdout
    assert "executorch" in {stage_of(i) for i in llm.graphs}


# -- the same run, read as a user reads an LLM: a small top level, blocks said once ------------

MAX_TOP_LEVEL_ITEMS = 12
UNWRAP = "access_subclass_inner_tensor"  # torchao's quantized weights, unwrapped
_SPLIT = re.compile(r"(?<!\\)/")


def stages_named(llm: Flow, kind: str) -> list[dict[str, Any]]:
    return [graph for graph_id, graph in llm.graphs.items() if f"({kind}" in graph_id]


def pieces(namespace: str) -> list[str]:
    return _SPLIT.split(namespace) if namespace else []


def attrs(node: dict[str, Any]) -> dict[str, str]:
    return {item["key"]: item["value"] for item in node["attrs"]}


def enclosing_paths(graph: dict[str, Any], namespace: str) -> list[str]:
    """Module paths of the layers a namespace is in, outermost first."""
    layers = graph["groupNodeAttributes"]
    parts = pieces(namespace)
    found = ["/".join(parts[: depth + 1]) for depth in range(len(parts))]
    return [layers[ns]["path"] for ns in found if "path" in layers.get(ns, {})]


def test_stages_are_named_for_what_they_hold(llm: Flow) -> None:
    names = list(llm.graphs)
    assert len(names) == 4, names
    exported = [name for name in names if "@ builder.py" in name and "(quantized" in name]
    assert len(exported) == 2, "both exports hold torchao's quantized weights"
    assert not any(name.endswith("#2") for name in names), "a repeat says what differs"
    assert exported[1].endswith("from GraphModule"), exported
    assert len(stages_named(llm, "lowered")) == len(stages_named(llm, "executorch")) == 1


def test_every_stage_shows_few_items_at_its_top_level(llm: Flow) -> None:
    for graph_id, graph in llm.graphs.items():
        loose = [n["label"] for n in graph["nodes"] if not n["namespace"]]
        groups = {pieces(n["namespace"])[0] for n in graph["nodes"] if n["namespace"]}
        assert len(loose) + len(groups) <= MAX_TOP_LEVEL_ITEMS, (graph_id, loose, groups)
        assert "layers" in groups, graph_id
        assert {"attn_options_input_pos", "output", "tokens"} <= set(loose), graph_id


def test_size_arithmetic_and_asserts_sit_in_one_layer(llm: Flow) -> None:
    sizes_ops = {"sym_size", "_local_scalar_dense", "_assert_scalar", "ge", "le", "lt"}
    for graph_id, graph in llm.graphs.items():
        top = [n["label"] for n in graph["nodes"] if not n["namespace"]]
        assert not sizes_ops & set(top), (graph_id, top)
        sizes = [n for n in graph["nodes"] if n["namespace"] == "sizes and checks"]
        allowed = sizes_ops | {"add", "item", "select", "select_copy", "memory"}
        assert sizes and {n["label"] for n in sizes} <= allowed, graph_id
        assert all("qdq_cluster" not in attrs(n) for n in sizes), "no cluster forms on sizes"
    for graph in stages_named(llm, "quantized"):  # torch.export's runtime asserts
        asserts = [n for n in graph["nodes"] if n["label"] == "_assert_scalar"]
        assert asserts and all(n["namespace"] == "sizes and checks" for n in asserts
                               if "/" not in n["namespace"])


def test_partitions_sit_inside_the_decoder_blocks(llm: Flow) -> None:
    (lowered,) = stages_named(llm, "lowered")
    layers = lowered["groupNodeAttributes"]
    partition_layers = [ns for ns, a in layers.items() if "partition" in a]
    in_blocks = [ns for ns in partition_layers if re.match(r"layers/\d+ \(TransformerBlock\)/", ns)]
    assert len(in_blocks) >= len(partition_layers) // 2, partition_layers
    for namespace in partition_layers:  # in the deepest module holding all its ops
        key = layers[namespace]["partition"]
        modules = [
            attrs(n)["module"] for n in lowered["nodes"]
            if attrs(n).get("partition") == key and attrs(n)["kind"] == "op"
            and not n["label"].startswith(("quantize", "dequantize")) and n["label"] != "getitem"
        ]  # fmt: skip
        holder = enclosing_paths(lowered, namespace)
        assert (holder[-1] if holder else "") == common_module(modules), (namespace, modules)


def common_module(paths: list[str]) -> str:
    """The deepest dotted module path all of ``paths`` are in."""
    common = paths[0].split(".") if paths and paths[0] else []
    for path in paths[1:]:
        parts = path.split(".") if path else []
        depth = 0
        while depth < min(len(common), len(parts)) and common[depth] == parts[depth]:
            depth += 1
        common = common[:depth]
    return ".".join(common)


def test_quantized_weights_sit_in_the_layer_of_their_module(llm: Flow) -> None:
    for graph_id, graph in llm.graphs.items():
        by_id = {n["id"]: n for n in graph["nodes"]}
        readers: dict[str, list[dict[str, Any]]] = {}
        for node in graph["nodes"]:
            for edge in node.get("incomingEdges", []):
                readers.setdefault(edge["sourceNodeId"], []).append(node)
        weights = [
            n for n in graph["nodes"]
            if attrs(n)["kind"] == "parameter" or n["label"] == UNWRAP
        ]  # fmt: skip
        assert weights, graph_id
        for node in weights:
            module = _served_module(node, readers, by_id)
            if module is None:
                continue
            assert module in enclosing_paths(graph, node["namespace"]), (graph_id, node["id"])


def _served_module(
    node: dict[str, Any], readers: dict[str, list[dict[str, Any]]], by_id: dict[str, Any]
) -> str | None:
    """The module of the op that computes with this weight (through unwrapping ops)."""
    for reader in readers.get(node["id"], []):
        if reader["label"] == UNWRAP:
            return _served_module(reader, readers, by_id)
        found = attrs(reader).get("module")
        if found and attrs(reader)["kind"] == "op":
            return found
    return None


def test_repeated_blocks_are_said_once(llm: Flow) -> None:
    for graph_id, graph in llm.graphs.items():
        info = graph["groupNodeAttributes"][""]
        assert info["repeated blocks"].startswith("layers: 2 blocks"), graph_id
        blocks = [
            a["structure"] for ns, a in graph["groupNodeAttributes"].items()
            if re.fullmatch(r"layers/\d+ \(TransformerBlock\)", ns)
        ]  # fmt: skip
        assert len(blocks) == 2, graph_id
    for graph in stages_named(llm, "quantized"):
        said = graph["groupNodeAttributes"][""]["repeated blocks"]
        assert "2 with the structure of layers/0" in said


def test_parameters_count_the_delegated_weights(llm: Flow) -> None:
    (lowered,) = stages_named(llm, "lowered")
    exported = stages_named(llm, "quantized")[-1]
    total = lowered["groupNodeAttributes"][""]["parameters"]
    assert total.split(" ")[0] == exported["groupNodeAttributes"][""]["parameters"]
    assert "outside delegates" in total
