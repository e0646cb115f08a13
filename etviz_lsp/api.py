"""Python API, shaped like ExecuTorch's ``devtools.visualization`` helpers.

    visualize(program)                          # show it in the shared Model Explorer server
    visualize(program, "model.json")            # only write the graph JSON (no server)
    visualize_with_clusters(program, ...)       # the same, grouping QDQ clusters / partitions

Differences from ExecuTorch's versions, on purpose:

- No call starts a server of its own or blocks the script: the graph goes to the one
  shared server (started detached when needed, reused afterwards), and the call returns
  the URL. ``block=True`` keeps the old blocking behaviour (until Ctrl+C) for scripts that
  relied on it to keep the page alive.
- ``reuse_server=True``: when this graph is already shown, its open tabs reload in place
  instead of a new tab opening. ``reuse_server=False`` (the default) opens a new tab; it
  never starts a second server.
- ``program`` may be an ``ExportedProgram``, an ``EdgeProgramManager`` or an
  ``ExecutorchProgramManager`` (each program inside becomes a graph).
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from etviz_lsp.graph import convert
from etviz_lsp.graph.model import GraphCollection
from etviz_lsp.graph.writer import write_json_atomic

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
) -> str:
    """Show ``program`` (returns the URL), or write it to ``json_file_name`` (returns the path)."""
    if isinstance(json_file_name, bool):
        # ExecuTorch's own visualize() takes reuse_server second: visualize(ep, True).
        json_file_name, reuse_server = None, json_file_name
    collection = _collection(program, name, label=name)
    return _deliver(
        collection, name, json_file_name, reuse_server, no_open_in_browser, block, timeout
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
        collection, name, json_file_name, reuse_server, no_open_in_browser, block, timeout
    )


def _collection(
    program: Any, name: str, label: str, **grouping: NodeNamer | None
) -> GraphCollection:
    wanted = {key: value for key, value in grouping.items() if value is not None}
    # CLUSTERING PLUGS IN HERE. Grouping QDQ clusters and partitions belongs to the graph
    # room (its own issue, in progress). Once graph.convert.from_programs accepts
    # get_node_partition_name / get_node_qdq_cluster_name, they are passed straight
    # through; until then the graph keeps its nn.Module layers and the caller is warned
    # that the grouping was not applied (nothing pretends it was).
    accepted = inspect.signature(convert.from_programs).parameters
    ignored = sorted(key for key in wanted if key not in accepted)
    if ignored:
        warnings.warn(
            f"etviz-lsp: {', '.join(ignored)} not applied yet (cluster/partition grouping "
            "is not built); the graph shows nn.Module layers",
            stacklevel=3,
        )
    passed = {key: value for key, value in wanted.items() if key in accepted}
    return convert.from_programs([(name, program)], label=label, **passed)


def _deliver(
    collection: GraphCollection,
    name: str,
    json_file_name: str | os.PathLike[str] | None,
    reuse_server: bool,
    no_open_in_browser: bool,
    block: bool,
    timeout: float,
) -> str:
    if json_file_name is not None:
        target = Path(json_file_name)
        write_json_atomic(target, collection.to_json())
        return str(target)

    from etviz_lsp.explorer.publish import cache_path_for
    from etviz_lsp.explorer.show import show

    # One cache file per (working folder, name): calling again updates the same graph.
    graph = cache_path_for(Path.cwd() / name)
    write_json_atomic(graph, collection.to_json())
    shown = show(
        graph,
        open_browser=not no_open_in_browser,
        new_tab_if_shown_before=not reuse_server,
        timeout=timeout,
    )
    print(f"Model Explorer: {shown.url}", file=sys.stderr)
    if block:
        _wait_for_interrupt()
    return shown.url


def _wait_for_interrupt() -> None:
    print("Showing the graph; press Ctrl+C to continue.", file=sys.stderr)
    with contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()
