"""Python API, shaped like ExecuTorch's ``devtools.visualization`` helpers.

    visualize(program)                          # show it in the shared Model Explorer server
    visualize(program, "model.json")            # only write the graph JSON (no server)
    visualize_with_clusters(program, ...)       # the same, grouping QDQ clusters / partitions
    visualize_graph(graph_module, program)      # a GraphModule from a pass pipeline

Differences from ExecuTorch's versions, on purpose:

- No call starts a server of its own or blocks the script: the graph goes to the one
  shared server (started detached when needed, reused afterwards), and the call returns
  the URL. ``block=True`` keeps the old blocking behaviour (until Ctrl+C) for scripts that
  relied on it to keep the page alive.
- ``reuse_server=True``: when this graph is already shown, its open tabs reload in place
  instead of a new tab opening. ``reuse_server=False`` (the default) opens a new tab; it
  never starts a second server.
- ``program`` may be an ``ExportedProgram``, an ``EdgeProgramManager``, an
  ``ExecutorchProgramManager`` (each program inside becomes a graph) or a partitioner's
  ``PartitionResult``.
- In a Jupyter / IPython kernel the returned URL renders inline under the cell (an
  iframe of the shared server, ``height`` pixels high) and no browser tab opens; a cell
  run again updates the same graph (same name, same URL).
- All three draw partitions (lowered delegates expanded, partitioner tags) and QDQ
  clusters inside the nn.Module hierarchy, coloured; ``visualize_with_clusters`` also
  takes ExecuTorch's two naming functions.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etviz_lsp import notebook
from etviz_lsp.graph import convert
from etviz_lsp.graph.core.model import GraphCollection
from etviz_lsp.graph.core.writer import write_json_atomic

NodeNamer = Callable[[Any], "str | None"]


def visualize(
    program: Any,
    json_file_name: str | os.PathLike[str] | None = None,
    reuse_server: bool = False,
    no_open_in_browser: bool = False,
    *,
    name: str = "program",
    block: bool = False,
    timeout: float = 60.0,
    height: int = notebook.DEFAULT_HEIGHT,
) -> str:
    """Show ``program`` (returns the URL), or write it to ``json_file_name`` (returns the path)."""
    if isinstance(json_file_name, bool):
        # ExecuTorch's own visualize() takes reuse_server second: visualize(ep, True).
        json_file_name, reuse_server = None, json_file_name
    collection = _collection(program, name, label=name)
    return _deliver(
        collection, name, json_file_name, _Showing(reuse_server, no_open_in_browser, block,
                                                   timeout, height)
    )


def visualize_with_clusters(
    exported_program: Any,
    json_file_name: str | os.PathLike[str] | None = None,
    no_open_in_browser: bool = False,
    reuse_server: bool = False,
    get_node_partition_name: NodeNamer | None = None,
    get_node_qdq_cluster_name: NodeNamer | None = None,
    *,
    name: str = "program",
    block: bool = False,
    timeout: float = 60.0,
    height: int = notebook.DEFAULT_HEIGHT,
) -> str:
    """Like :func:`visualize`, with QDQ clusters and partitions grouped (see below).

    The two callables take an FX node and return the name of its partition / QDQ cluster
    (or None), as in ExecuTorch.
    """
    collection = _collection(
        exported_program,
        name,
        label=name,
        get_node_partition_name=get_node_partition_name,
        get_node_qdq_cluster_name=get_node_qdq_cluster_name,
    )
    return _deliver(
        collection, name, json_file_name, _Showing(reuse_server, no_open_in_browser, block,
                                                   timeout, height)
    )


def visualize_graph(
    graph_module: Any,
    exported_program: Any,
    reuse_server: bool = True,
    no_open_in_browser: bool = False,
    *,
    json_file_name: str | os.PathLike[str] | None = None,
    name: str = "graph",
    get_node_partition_name: NodeNamer | None = None,
    get_node_qdq_cluster_name: NodeNamer | None = None,
    block: bool = False,
    timeout: float = 60.0,
    height: int = notebook.DEFAULT_HEIGHT,
) -> str:
    """Show a GraphModule returned by a pass (``PassResult.graph_module``) in place of
    ``exported_program``'s graph (that program, or its Edge / ExecuTorch manager, gives
    the signature and weights). Operators are not verified, so custom ops show too.
    Hierarchy, partitions and clusters are drawn as for a program. ``reuse_server`` is
    True by default, as in ExecuTorch: looking again after the next pass reloads the
    open tab instead of opening another."""
    from etviz_lsp.graph.readers import pass_graph

    program = pass_graph.with_graph_module(graph_module, exported_program)
    return visualize_with_clusters(
        program, json_file_name, no_open_in_browser, reuse_server,
        get_node_partition_name, get_node_qdq_cluster_name,
        name=name, block=block, timeout=timeout, height=height,
    )


def _collection(
    program: Any, name: str, label: str, **grouping: NodeNamer | None
) -> GraphCollection:
    """Partitions and QDQ clusters are always drawn (graph room: ``partitions``, ``qdq``);
    the user's functions, when given, replace the default names (``delegation_tag``,
    ``node.meta["cluster"]`` or clusters found from the graph)."""
    return convert.from_programs(
        [_named(program, name)],
        label=label,
        partition_name=grouping.get("get_node_partition_name"),
        cluster_name=grouping.get("get_node_qdq_cluster_name"),
    )


def _named(program: Any, name: str) -> tuple[str, Any]:
    """A bare ExportedProgram gets its stage in its graph's name (``program (lowered)``);
    program managers name their own (``program (edge)``, ``program.forward (executorch)``)."""
    from etviz_lsp.graph.readers import programs

    if type(program).__name__ == "ExportedProgram":
        return f"{name} ({programs.stage(program)})", program
    return name, program


@dataclass(frozen=True, slots=True)
class _Showing:
    """How a graph is shown when no JSON file is asked for."""

    reuse_server: bool
    no_open_in_browser: bool
    block: bool
    timeout: float
    height: int


def _deliver(
    collection: GraphCollection,
    name: str,
    json_file_name: str | os.PathLike[str] | None,
    how: _Showing,
) -> str:
    if json_file_name is not None:
        target = Path(json_file_name)
        write_json_atomic(target, collection.to_json())
        return str(target)

    from etviz_lsp.explorer.publish import cache_path_for
    from etviz_lsp.explorer.show import show

    inline = notebook.in_ipython_kernel()
    if inline:
        notebook.InlineGraph("", how.height)  # a bad height fails before any work
    # One cache file per (working folder, name): calling again updates the same graph.
    graph = cache_path_for(Path.cwd() / name)
    write_json_atomic(graph, collection.to_json())
    shown = show(
        graph,
        # The notebook shows it under the cell: no tab, and no blocking the kernel.
        open_browser=not (how.no_open_in_browser or inline),
        new_tab_if_shown_before=not how.reuse_server,
        timeout=how.timeout,
    )
    if inline:
        return notebook.InlineGraph(shown.url, how.height)
    print(f"Model Explorer: {shown.url}", file=sys.stderr)
    if how.block:
        _wait_for_interrupt()
    return shown.url


def _wait_for_interrupt() -> None:
    print("Showing the graph; press Ctrl+C to continue.", file=sys.stderr)
    with contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()
