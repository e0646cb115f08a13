"""Python API, a drop-in for ExecuTorch's ``visualization_utils``.

``visualize(program)`` and ``visualize_with_clusters(program, json_file_name=None, ...)``
take an ExportedProgram, an EdgeProgramManager (every method), an
ExecutorchProgramManager or a partitioner's PartitionResult. Partitions (partitioner tags
or lowered delegates, expanded) and QDQ clusters are always drawn, inside the module
hierarchy and coloured, so the two functions differ only in the user functions they take.

With ``json_file_name`` the graph is written there and the call returns (no server).
Without it, this minimal version writes ``.etviz/<label>.json`` in the working folder and
prints how to open it; showing it in the shared Model Explorer server is the explorer
room's part (merged by the lead).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

NodeNamer = Callable[[Any], "str | None"]
DEFAULT_LABEL = "ExecuTorch"


def visualize(
    program: Any,
    reuse_server: bool = True,
    no_open_in_browser: bool = False,
    json_file_name: str | Path | None = None,
    label: str = DEFAULT_LABEL,
    **kwargs: Any,
) -> Path:
    """Show ``program`` (or write it to ``json_file_name``); returns the JSON's path."""
    return visualize_with_clusters(
        program,
        json_file_name=json_file_name,
        no_open_in_browser=no_open_in_browser,
        reuse_server=reuse_server,
        label=label,
        **kwargs,
    )


def visualize_with_clusters(
    program: Any,
    json_file_name: str | Path | None = None,
    no_open_in_browser: bool = False,
    reuse_server: bool = False,
    get_node_partition_name: NodeNamer | None = None,
    get_node_qdq_cluster_name: NodeNamer | None = None,
    label: str = DEFAULT_LABEL,
    **kwargs: Any,
) -> Path:
    """Like ExecuTorch's: partitions and QDQ clusters highlighted, hierarchy kept.

    ``get_node_partition_name`` / ``get_node_qdq_cluster_name`` take a ``torch.fx.Node``
    and return a name or None; by default partitions come from ``delegation_tag`` and
    lowered delegates, clusters from ``node.meta["cluster"]`` or the graph itself.
    """
    del no_open_in_browser, reuse_server, kwargs  # used by the server part
    from etviz_lsp.graph import convert
    from etviz_lsp.graph.writer import write_json_atomic

    collection = convert.from_programs(
        [_named(program, label)],
        label=label,
        partition_name=get_node_partition_name,
        cluster_name=get_node_qdq_cluster_name,
    )
    if json_file_name is not None:
        path = Path(json_file_name)
        write_json_atomic(path, collection.to_json())
        return path
    path = Path.cwd() / ".etviz" / f"{label}.json"
    path.parent.mkdir(exist_ok=True)
    write_json_atomic(path, collection.to_json())
    print(f"etviz: wrote {path}; open it with: model-explorer {path}", file=sys.stderr)
    return path


def _named(program: Any, label: str) -> tuple[str, Any]:
    """A bare ExportedProgram gets its stage in its name; managers name their own."""
    import torch

    from etviz_lsp.graph import programs

    if isinstance(program, torch.export.ExportedProgram):
        return f"{label} ({programs.stage(program)})", program
    return label, program
