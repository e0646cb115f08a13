"""Why an op stayed on the CPU (issue 26): the partitioners' own words, from a real run.

``tests/scripts/why_not_delegated.py`` lowers a conv + batch norm + mean + cumsum + linear
net with ``XnnpackPartitioner`` and with ``VulkanPartitioner`` through the real CLI
(``--once``, a real worker), and writes the XNNPACK program as a ``.pte`` with its
ETRecord. The same texts are read here from the partitioners themselves, independently of
how the run heard them: XNNPACK's config check logs its ``WhyNoPartition`` at DEBUG (read
with a logging handler), its configs are looked up for an op none takes, Vulkan's operator
support logs its "Due to [...]" line at INFO on the root logger.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from etviz_lsp.graph import inputs
from etviz_lsp.graph.core import model
from etviz_lsp.graph.core import not_delegated as core
from etviz_lsp.graph.readers import not_delegated_file

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).parent / "scripts" / "why_not_delegated.py"


def _read(pte: Path) -> model.GraphCollection:
    """The .pte as etviz opens it: through the kinds table, which finds the ETRecord beside it."""
    return inputs.known_kind(pte).read(pte)


def _stage(name: str, kind: str) -> str:
    """The graph id of the program the script assigns to ``name`` (its line: the call)."""
    lines = SCRIPT.read_text().splitlines()
    line = next(i for i, text in enumerate(lines, 1) if text.startswith(f"{name} = "))
    return f"{name} @ {SCRIPT.name}:{line} ({kind})"


XNNPACK_GRAPH = _stage("xnnpack", "lowered")
EXECUTORCH_GRAPH = _stage("xnnpack_program", "executorch")
VULKAN_GRAPH = _stage("vulkan", "lowered")
BOTH_GRAPH = _stage("both", "lowered")  # XNNPACK first, then Vulkan on what it left
NOT_OPS = ("operator.getitem", "executorch.exir.memory.alloc")  # plumbing, no backend's op
PLUMBING = ("getitem", "executorch_call_delegate")


@dataclass(frozen=True)
class Run:
    folder: Path
    stdout: str
    graphs: dict[str, dict[str, Any]]


def _once(script: Path, folder: Path) -> Run:
    """A real ``--once`` run of ``script``, copied into ``folder``."""
    shutil.copy(script, folder / script.name)
    env = {**os.environ, "XDG_CACHE_HOME": str(folder / "cache")}
    done = subprocess.run(
        [sys.executable, "-m", "etviz_lsp", "--once", script.name],
        cwd=folder, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads((folder / ".etviz" / f"{script.name}.json").read_text())
    return Run(folder, done.stdout, {g["id"]: g for g in data["graphs"]})


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One run of the script (the three lowerings, the .pte and ETRecord)."""
    return _once(SCRIPT, tmp_path_factory.mktemp("not-delegated"))


@dataclass(frozen=True)
class OwnWords:
    """What each partitioner says about each op it leaves out, asked here directly."""

    xnnpack: dict[str, str]  # FX node name -> the text
    vulkan: dict[str, str]


@pytest.fixture(scope="module")
def own_words() -> OwnWords:
    """The same net lowered in this process; each CPU op asked of its partitioner's own
    check (one lowering per partitioner, shared by the module's tests)."""
    import torch
    from executorch.backends.vulkan.partitioner.vulkan_partitioner import VulkanPartitioner
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    namespace: dict[str, Any] = {}
    source = SCRIPT.read_text().split("here = Path")[0]  # the net, not the lowering
    exec(compile(source, str(SCRIPT), "exec"), namespace)
    ep = torch.export.export(namespace["Net"]().eval(), (torch.randn(1, 3, 8, 8),))
    xnnpack = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()])
    vulkan = to_edge_transform_and_lower(ep, partitioner=[VulkanPartitioner()])
    return OwnWords(
        _xnnpack_words(xnnpack.exported_program()), _vulkan_words(vulkan.exported_program())
    )


def _cpu_ops(program: Any) -> list[Any]:
    return [
        n for n in program.graph.nodes
        if n.op == "call_function" and n.target.__name__ not in PLUMBING
    ]  # fmt: skip


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def _listening(logger: logging.Logger, level: int) -> Iterator[_Records]:
    """Every record ``logger`` gets at ``level``, kept (not printed) while inside."""
    handler = _Records()
    before = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before[0])
        logger.propagate = before[1]


def _xnnpack_words(program: Any) -> dict[str, str]:
    """Each CPU op: its XNNPACK config's check (the WhyNoPartition it logs at DEBUG), or,
    when XNNPACK has no config for its target, that."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir.backend.canonical_partitioners.config_partitioner import (
        format_target_name,
    )

    configs = XnnpackPartitioner().target_partitioner_configs
    logger = logging.getLogger("executorch.backends.xnnpack")
    words = {}
    for node in _cpu_ops(program):
        name = format_target_name(node.target.__name__)
        if name not in configs:
            words[node.name] = f"no partitioner config for {name}"
            continue
        with _listening(logger, logging.DEBUG) as handler:
            assert not configs[name].check_constraints(node, program)
        [record] = [r for r in handler.records if hasattr(r.msg, "reason")]
        words[node.name] = record.msg.reason
    return words


def _vulkan_words(program: Any) -> dict[str, str]:
    """Each CPU op asked of Vulkan's operator support, its "Due to [...]" line read back."""
    from executorch.backends.vulkan import utils
    from executorch.backends.vulkan.partitioner.vulkan_partitioner import (
        VulkanSupportedOperators,
    )

    support = VulkanSupportedOperators(utils.DEFAULT_TEXTURE_LIMITS, utils.DEFAULT_BUFFER_LIMIT)
    root = logging.getLogger()
    words = {}
    for node in _cpu_ops(program):
        with _listening(root, logging.INFO) as handler:
            assert not support.is_node_supported({}, node)
        [said] = [re.match(r"\[Vulkan Partitioner\] Due to \[(.*)\], skipping", r.getMessage())
                  for r in handler.records if "Vulkan Partitioner" in r.getMessage()]
        assert said is not None
        words[node.name] = said.group(1)
    return words


def _reasons(graph: dict[str, Any]) -> dict[str, str]:
    return {
        node["id"]: a["value"] for node in graph["nodes"] for a in node["attrs"]
        if a["key"] == core.KEY
    }  # fmt: skip


def _cpu_op_nodes(graph: dict[str, Any]) -> list[str]:
    """Op nodes outside every partition, plumbing aside."""
    found = []
    for node in graph["nodes"]:
        attrs = {a["key"]: a["value"] for a in node["attrs"]}
        outside = "partition" not in attrs and attrs.get("target") not in NOT_OPS
        if attrs.get("kind") == "op" and outside:
            found.append(node["id"])
    return found


def test_every_cpu_op_of_the_lowered_stages_carries_its_partitioners_own_words(
    run: Run, own_words: OwnWords
) -> None:
    for graph_id, partitioner, words in (
        (XNNPACK_GRAPH, "XnnpackPartitioner", own_words.xnnpack),
        (VULKAN_GRAPH, "VulkanPartitioner", own_words.vulkan),
    ):
        graph = run.graphs[graph_id]
        cpu = _cpu_op_nodes(graph)
        assert sorted(cpu) == ["aten_cumsum_default", "aten_mean_dim"]
        assert _reasons(graph) == {node: f"{partitioner}: {words[node]}" for node in cpu}
    # Both partitioners looked at each op left on the CPU: one line each, in their order.
    both = run.graphs[BOTH_GRAPH]
    assert _reasons(both) == {
        node: f"XnnpackPartitioner: {own_words.xnnpack[node]}\n"
        f"VulkanPartitioner: {own_words.vulkan[node]}"
        for node in _cpu_op_nodes(both)
    }
    assert sorted(_cpu_op_nodes(both)) == ["aten_cumsum_default", "aten_mean_dim"]
    # What the words are, so a change in ExecuTorch shows here (not only equal to itself).
    assert own_words.xnnpack == {
        "aten_mean_dim": "mean.dim only supports keepdim=True",
        "aten_cumsum_default": "no partitioner config for cumsum.default",
    }
    assert own_words.vulkan["aten_cumsum_default"] == "no operator implementation"


def test_the_executorch_stage_keeps_them_and_the_graph_info_lists_each_first_reason(
    run: Run, own_words: OwnWords
) -> None:
    graph = run.graphs[EXECUTORCH_GRAPH]
    assert sorted(_cpu_op_nodes(graph)) == ["aten_cumsum_default", "aten_mean_dim"]
    assert _reasons(graph) == {n: f"XnnpackPartitioner: {w}" for n, w in own_words.xnnpack.items()}
    info = run.graphs[XNNPACK_GRAPH]["groupNodeAttributes"][""]
    assert info["on CPU"] == "2"
    assert info["on CPU: cumsum (aten_cumsum_default)"] == (
        "XnnpackPartitioner: no partitioner config for cumsum.default"
    )
    assert info["on CPU: mean (aten_mean_dim)"].startswith("XnnpackPartitioner: mean.dim")
    # Delegated ops say nothing: the conv and the linear went to the backend.
    assert not [n for n in _reasons(graph) if n.startswith("lowered_module_")]


def test_once_says_it_in_one_line_per_lowering(run: Run, own_words: OwnWords) -> None:
    xnnpack = ", ".join(
        f"{op} (XnnpackPartitioner: {own_words.xnnpack[node]})"
        for op, node in (("mean", "aten_mean_dim"), ("cumsum", "aten_cumsum_default"))
    )
    vulkan = ", ".join(
        f"{op} (VulkanPartitioner: {own_words.vulkan[node]})"
        for op, node in (("mean", "aten_mean_dim"), ("cumsum", "aten_cumsum_default"))
    )
    lines = [line for line in run.stdout.splitlines() if "not delegated:" in line]
    assert lines == [
        f"  not delegated: {XNNPACK_GRAPH}: 2 ops on the CPU: {xnnpack}",
        f"  not delegated: {VULKAN_GRAPH}: 2 ops on the CPU: {vulkan}",
        f"  not delegated: {BOTH_GRAPH}: 2 ops on the CPU: {xnnpack}",  # the first reasons
    ]


def test_the_pte_shows_them_on_its_cpu_kernels_through_the_etrecord(
    run: Run, own_words: OwnWords
) -> None:
    pte, etrecord = run.folder / "net_xnnpack.pte", run.folder / "net_xnnpack.etrecord"
    assert not_delegated_file.path_for(etrecord).is_file()  # etviz's own folder beside it
    [forward, *_delegates] = _read(pte).graphs
    kernels = {
        model.node_attr(n, "edge ops"): model.node_attr(n, core.KEY) for n in forward.nodes
        if model.node_attr(n, "runs on") == "CPU (portable/optimized kernel)"
    }  # fmt: skip
    assert kernels == {n: f"XnnpackPartitioner: {w}" for n, w in own_words.xnnpack.items()}
    delegate_calls = [n for n in forward.nodes if model.node_attr(n, "backend")]
    assert delegate_calls and all(model.node_attr(n, core.KEY) is None for n in delegate_calls)
    assert forward.group_attrs[""]["on CPU"] == "2"

    # The ETRecord saved again (without etviz): the kept reasons are another program's.
    stat = etrecord.stat()
    os.utime(etrecord, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    [again, *_] = _read(pte).graphs
    assert all(model.node_attr(n, core.KEY) is None for n in again.nodes)
    assert "on CPU" not in again.group_attrs[""]
    os.utime(etrecord, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def _copy_program(run: Run, folder: Path) -> tuple[Path, Path]:
    for name in ("net_xnnpack.pte", "net_xnnpack.etrecord"):
        shutil.copy2(run.folder / name, folder / name)
    return folder / "net_xnnpack.pte", folder / "net_xnnpack.etrecord"


@pytest.mark.parametrize(
    "damage",
    ["not json", "a list", "another version", "bad entries", "another op's name", "over 64 MiB"],
)
def test_a_damaged_or_foreign_reasons_file_is_not_used_and_the_pte_still_opens(
    run: Run, tmp_path: Path, damage: str
) -> None:
    pte, etrecord = _copy_program(run, tmp_path)
    kept = not_delegated_file.path_for(etrecord)
    kept.parent.mkdir()
    good = not_delegated_file.content(etrecord, [
        {"handle": 4, "node": "aten_cumsum_default", "op": "cumsum", "reasons": ["P: words"]},
    ])  # fmt: skip
    written: Any = {
        "not json": "{",
        "a list": [good],
        "another version": {**good, "version": 99},
        "bad entries": {**good, "ops": [{"handle": "4", "reasons": "P"}, 7, None]},
        "another op's name": {**good, "ops": [{**good["ops"][0], "node": "aten_mean_dim"}]},
    }.get(damage)
    if damage == "over 64 MiB":
        kept.write_text(json.dumps(good))
        os.truncate(kept, not_delegated_file.MAX_BYTES + 1)
    else:
        kept.write_text(written if isinstance(written, str) else json.dumps(written))
    [forward, *_] = _read(pte).graphs
    assert all(model.node_attr(n, core.KEY) is None for n in forward.nodes)
    assert model.node_attr(next(n for n in forward.nodes if n["label"] == "aten::cumsum"),
                           "edge ops") == "aten_cumsum_default"  # linked all the same
    kept.write_text(json.dumps(good))  # the control: the same file, whole, is used
    [forward, *_] = _read(pte).graphs
    said = {n["label"]: model.node_attr(n, core.KEY) for n in forward.nodes}
    assert said["aten::cumsum"] == "P: words" and said["aten::mean"] is None


def test_core_ml_says_it_through_its_operator_support_for_every_node(tmp_path: Path) -> None:
    """Core ML's partitioner logs each message once per call; every node still gets its
    words, the same its operator support gives when asked here."""
    script = SCRIPT.with_name("why_not_delegated_coreml.py")
    done = _once(script, tmp_path)
    [graph] = [g for g in done.graphs.values() if g["id"].endswith("(lowered)")]
    assert _cpu_op_nodes(graph) == ["aten_acosh_default"]

    import torch
    from executorch.backends.apple.coreml.partition import coreml_partitioner
    from executorch.exir import to_edge

    namespace: dict[str, Any] = {}
    exec(compile(script.read_text().split("ep = ")[0], str(script), "exec"), namespace)
    ep = torch.export.export(namespace["Net"]().eval(), (torch.randn(2, 8),))
    edge = to_edge(ep).exported_program()
    [acosh] = [n for n in edge.graph.nodes if n.name == "aten_acosh_default"]
    support = coreml_partitioner._OperatorsSupportedForCoreMLBackend(log=True)
    with _listening(logging.getLogger(coreml_partitioner.__name__), logging.INFO) as handler:
        assert not support.is_node_supported(None, acosh)
    words = "; ".join(r.getMessage().rstrip(".") for r in handler.records)
    assert "not supported by CoreML" in words
    assert _reasons(graph) == {"aten_acosh_default": f"CoreMLPartitioner: {words}"}
